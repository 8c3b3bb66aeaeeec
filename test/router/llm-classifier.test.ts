import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { Classification, Classifier, RoutingProfile } from "../../src/router/classifier.js";
import { LlmClassifier } from "../../src/router/llm-classifier.js";
import { isAmbiguous } from "../../src/router/hybrid/index.js";

const profiles: RoutingProfile[] = [
  { type: "hr", description: "Human resources: leave, benefits, hiring.", keywords: ["hr"], examples: ["How many vacation days do I have left?"] },
  { type: "finance", description: "Finance: budgets, expenses, invoices.", keywords: ["budget"], examples: ["Has the supplier invoice been paid?"] },
];

/** Answers every request with `answer` as the assistant message and records what it was sent. */
interface FakeModel {
  readonly url: string;
  readonly requests: { readonly body: Record<string, unknown>; readonly authorization: string | undefined }[];
  readonly server: Server;
}

async function startFakeModel(answer: (body: Record<string, unknown>) => string | { status: number } | { delayMs: number }): Promise<FakeModel> {
  const requests: FakeModel["requests"] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
      requests.push({ body, authorization: req.headers.authorization });
      if (req.url !== "/v1/chat/completions" || req.method !== "POST") {
        res.writeHead(404).end();
        return;
      }
      const reply = answer(body);
      if (typeof reply === "object" && "status" in reply) {
        res.writeHead(reply.status).end();
        return;
      }
      if (typeof reply === "object") {
        setTimeout(() => res.writeHead(200).end("{}"), reply.delayMs).unref();
        return;
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ id: "cmpl-1", object: "chat.completion", model: body.model, choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant", content: reply } }] }));
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/v1`, requests, server };
}

/** A fallback that always answers the same, so tests can tell which path produced a result. */
class FixedClassifier implements Classifier {
  profiles: readonly RoutingProfile[] = [];
  constructor(private readonly ranked: readonly [string, number][] = [["hr", 0.7], ["finance", 0.2]]) {}
  setProfiles(p: readonly RoutingProfile[]): void {
    this.profiles = p;
  }
  classify(): Classification {
    const [best] = this.ranked;
    const score = best?.[1] ?? 0;
    return { agent: score >= 0.5 ? best?.[0] : undefined, score, intent: "fixed", ranked: this.ranked.map(([agent, s]) => ({ agent, score: s })) };
  }
}

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

describe("LlmClassifier", () => {
  it("routes to the agent the model names and sends the profiles, model and API key", async () => {
    const model = await startFakeModel(() => '{"agent": "finance", "confidence": 0.92, "reason": "supplier payment"}');
    servers.push(model.server);
    const c = new LlmClassifier({ url: model.url, model: "tiny", apiKey: "secret", fallback: new FixedClassifier() });
    c.setProfiles(profiles);
    const result = await c.classifyAsync("The vendor says we still owe them for March");
    expect(result).toMatchObject({ agent: "finance", score: 0.92, intent: "llm:supplier payment" });
    expect(result.ranked.map((r) => r.agent)).toEqual(["finance", "hr"]);
    const [sent] = model.requests;
    expect(sent?.authorization).toBe("Bearer secret");
    expect(sent?.body.model).toBe("tiny");
    expect(JSON.stringify(sent?.body.messages)).toContain("Finance: budgets, expenses, invoices.");
  });

  it("accepts JSON wrapped in prose or a code fence", async () => {
    const model = await startFakeModel(() => 'Sure:\n```json\n{"agent": "hr", "confidence": 0.8, "reason": "leave"}\n```');
    servers.push(model.server);
    const c = new LlmClassifier({ url: `${model.url}/chat/completions`, model: "tiny", fallback: new FixedClassifier() });
    c.setProfiles(profiles);
    expect((await c.classifyAsync("Can I take Friday off?")).agent).toBe("hr");
  });

  it("chooses no agent when the model answers null", async () => {
    const model = await startFakeModel(() => '{"agent": null, "confidence": 0.9, "reason": "small talk"}');
    servers.push(model.server);
    const c = new LlmClassifier({ url: model.url, model: "tiny", fallback: new FixedClassifier() });
    c.setProfiles(profiles);
    expect(await c.classifyAsync("Tell me a joke")).toMatchObject({ agent: undefined, intent: "llm:small talk" });
  });

  it("falls back when the model names an agent type that is not registered", async () => {
    const model = await startFakeModel(() => '{"agent": "legal", "confidence": 0.9}');
    servers.push(model.server);
    const c = new LlmClassifier({ url: model.url, model: "tiny", fallback: new FixedClassifier() });
    c.setProfiles(profiles);
    expect(await c.classifyAsync("Review this NDA")).toMatchObject({ agent: "hr", intent: "fallback:fixed" });
  });

  it("falls back when the server answers with an error status", async () => {
    const model = await startFakeModel(() => ({ status: 500 }));
    servers.push(model.server);
    const c = new LlmClassifier({ url: model.url, model: "tiny", fallback: new FixedClassifier() });
    c.setProfiles(profiles);
    expect(await c.classifyAsync("hello")).toMatchObject({ agent: "hr", intent: "fallback:fixed" });
  });

  it("falls back when the model does not answer within the timeout", async () => {
    const model = await startFakeModel(() => ({ delayMs: 2000 }));
    servers.push(model.server);
    const c = new LlmClassifier({ url: model.url, model: "tiny", timeoutMs: 100, fallback: new FixedClassifier() });
    c.setProfiles(profiles);
    const started = Date.now();
    expect(await c.classifyAsync("hello")).toMatchObject({ intent: "fallback:fixed" });
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it("falls back to the built-in classifier when the server is down", async () => {
    const model = await startFakeModel(() => "{}");
    const url = model.url;
    await new Promise((r) => model.server.close(r));
    const c = new LlmClassifier({ url, model: "tiny", timeoutMs: 1000, cascade: false });
    c.setProfiles(profiles);
    const result = await c.classifyAsync("I need help with my budget");
    expect(result).toMatchObject({ agent: "finance", intent: "fallback:keyword:budget" });
  });

  it("rejects when the caller aborts", async () => {
    const model = await startFakeModel(() => ({ delayMs: 2000 }));
    servers.push(model.server);
    const c = new LlmClassifier({ url: model.url, model: "tiny", fallback: new FixedClassifier() });
    c.setProfiles(profiles);
    const controller = new AbortController();
    const pending = c.classifyAsync("hello", controller.signal);
    controller.abort(new Error("user left"));
    await expect(pending).rejects.toThrow("user left");
  });

  it("answers synchronously from the fallback", () => {
    const fallback = new FixedClassifier();
    const c = new LlmClassifier({ url: "http://127.0.0.1:9/v1", model: "tiny", fallback });
    c.setProfiles(profiles);
    expect(fallback.profiles).toBe(profiles);
    expect(c.classify("anything")).toMatchObject({ agent: "hr", intent: "fixed" });
  });

  it("asks the model only when the fallback is unsure, and settles the choice the router would have asked about", async () => {
    const model = await startFakeModel(() => '{"agent": "finance", "confidence": 0.8, "reason": "invoice"}');
    servers.push(model.server);
    const ask = (ranked: readonly [string, number][]) => {
      const c = new LlmClassifier({ url: model.url, model: "tiny", fallback: new FixedClassifier(ranked) });
      c.setProfiles(profiles);
      return c.classifyAsync("text");
    };
    // Sure either way: the offline answer stands and nothing is sent.
    expect(await ask([["hr", 0.999], ["finance", 0.1]])).toMatchObject({ agent: "hr", intent: "fixed" });
    expect(await ask([["hr", 0.01], ["finance", 0.005]])).toMatchObject({ agent: undefined, intent: "fixed" });
    expect(model.requests).toHaveLength(0);
    // Two agents too close to call: the model decides, and the result is not a tie any more.
    const settled = await ask([["hr", 0.9991], ["finance", 0.999]]);
    expect(settled).toMatchObject({ agent: "finance", intent: "llm:invoice" });
    expect(isAmbiguous(settled)).toBe(false);
    // In the uncertain band.
    expect(await ask([["hr", 0.3], ["finance", 0.1]])).toMatchObject({ agent: "finance" });
    expect(model.requests).toHaveLength(2);

    const always = new LlmClassifier({ url: model.url, model: "tiny", fallback: new FixedClassifier([["hr", 0.999], ["finance", 0.1]]), cascade: false });
    always.setProfiles(profiles);
    expect(await always.classifyAsync("text")).toMatchObject({ agent: "finance" });
    expect(model.requests).toHaveLength(3);
  });
});
