import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BUILTIN_PROFILES, builtinAgents } from "../../src/agents/builtin.js";
import { TaskAgentType } from "../../src/agents/task-agent.js";
import { UserProxyAgentType } from "../../src/agents/user-proxy.js";
import { LlmClassifier } from "../../src/router/llm-classifier.js";
import { RouterAgentType } from "../../src/router/router-agent.js";
import { openChat } from "../helpers/chat.js";
import { eventually, withHostedSystem, TestSystem } from "../helpers/system.js";

const LEGAL = {
  type: "legal",
  description: "Legal: contracts and agreements, NDAs, compliance with laws and regulations, intellectual property, disputes and litigation.",
  keywords: ["legal", "lawyer"],
  examples: ["Do we need an NDA before the demo?"],
};

describe("semantic routing through the real system", () => {
  let sys: TestSystem;
  withHostedSystem((s) => (sys = s));

  it("routes requests without any keyword to the agent whose topic they are about", async () => {
    await sys.startWorker(["router", "user_proxy", "hr", "finance"]);
    const chat = await openChat(sys);
    const receipts = await chat.send("Where do I send receipts from my trip?");
    expect(receipts.map((e) => e.event)).toEqual(["routed", "reply"]);
    expect(receipts[0]).toMatchObject({ agent: "finance", intent: expect.stringMatching(/^(semantic|lexical|related):/) });
    expect(receipts[1]).toMatchObject({ agent: "finance", content: "Hello from finance_agent! You said: Where do I send receipts from my trip?" });

    chat.newSession();
    const leave = await chat.send("I'm going on maternity leave in June, what do I do?");
    expect(leave[0]).toMatchObject({ event: "routed", agent: "hr" });
  });

  it("rejects requests that fit no agent and names those available", async () => {
    await sys.startWorker(["router", "user_proxy", "hr", "finance"]);
    const chat = await openChat(sys);
    for (const text of ["What's the capital of Australia?", "My laptop screen is flickering"]) {
      const [event] = await chat.send(text);
      expect(event).toMatchObject({ event: "no_agent", available: ["finance", "hr"] });
    }
  });

  it("has its own worker's agent types in the router's index once the worker has started", async () => {
    const router = new RouterAgentType();
    await sys.startWorker([router, new UserProxyAgentType(), ...builtinAgents(["hr", "finance"])]);
    // No wait: a message sent now must find them.
    expect(router.routableProfiles().map((p) => p.type).sort()).toEqual(["finance", "hr"]);
  });

  it("makes a new agent type on a new worker routable within a second, and never chooses it once it is gone", async () => {
    const router = new RouterAgentType();
    await sys.startWorker([router, new UserProxyAgentType(), ...builtinAgents(["hr", "finance"])]);
    const chat = await openChat(sys);
    const request = "Do we need a non-disclosure agreement for the new partner?";
    // (Before the legal agent exists nothing can choose it: the check that matters is after it
    // was registered and routable, below.)

    const legalWorker = await sys.startWorker([new TaskAgentType(LEGAL)]);
    const registered = Date.now();
    let routedTo: string | undefined;
    while (Date.now() - registered < 1_000) {
      chat.newSession();
      const [first] = await chat.send(request);
      routedTo = first?.event === "routed" ? first.agent : undefined;
      if (routedTo === "legal") break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(routedTo).toBe("legal");
    expect(Date.now() - registered).toBeLessThan(1_000);

    await legalWorker.close();
    // Gone for the router once its view of the registry has the worker's leaving (a watch: a few
    // milliseconds, longer on a loaded machine).
    await eventually(() => !router.routableProfiles().some((p) => p.type === "legal"), 5_000, "the router to see legal gone");
    for (let i = 0; i < 3; i++) {
      chat.newSession();
      const [first] = await chat.send(request);
      // Known, routable a moment ago, and now without a worker: never chosen nor offered.
      expect(first?.event).toMatch(/^(routed|no_agent|clarify)$/);
      expect(first).not.toMatchObject({ agent: "legal" });
      if (first?.event === "no_agent") expect(first.available).not.toContain("legal");
      if (first?.event === "clarify") expect(first.options.map((o) => o.agent)).not.toContain("legal");
    }
  });
});

/** A chat-completions server that always names `agent`, until stopped. */
async function startModel(agent: string): Promise<{ url: string; server: Server; requests: number }> {
  const state = { requests: 0 };
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      state.requests++;
      const content = JSON.stringify({ agent, confidence: 0.9, reason: "model says so" });
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ choices: [{ message: { role: "assistant", content } }] }));
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    server,
    get requests() {
      return state.requests;
    },
  };
}

describe("the router with the LLM classifier", () => {
  let sys: TestSystem;
  let model: Awaited<ReturnType<typeof startModel>> | undefined;
  beforeEach(async () => {
    sys = await TestSystem.start();
    await sys.startHost();
  });
  afterEach(async () => {
    model?.server.close();
    await sys.close();
  });

  it("routes as the model says while it answers, and falls back to the hybrid classifier when it is down", async () => {
    model = await startModel("hr");
    const router = new RouterAgentType({ classifier: new LlmClassifier({ url: model.url, model: "test-model", timeoutMs: 1_000 }) });
    await sys.startWorker([router, new UserProxyAgentType(), ...BUILTIN_PROFILES.map((p) => new TaskAgentType(p))]);
    const chat = await openChat(sys);

    // The hybrid classifier would reject this; the model's choice wins.
    const modelled = await chat.send("three people are waiting outside");
    expect(modelled[0]).toMatchObject({ event: "routed", agent: "hr", intent: "llm", score: 0.9 });
    expect(model.requests).toBeGreaterThan(0);

    model.server.close();
    model.server.closeAllConnections();
    await once(model.server, "close");
    chat.newSession();
    // Only requests the hybrid classifier is unsure of reach the model (see DEFAULT_CASCADE_BAND).
    const fallback = await chat.send("three people are waiting outside for their interview");
    expect(fallback[0]).toMatchObject({ event: "routed", agent: "hr", intent: expect.stringMatching(/^fallback:/) });
    chat.newSession();
    expect((await chat.send("three people are waiting outside"))[0]).toMatchObject({ event: "no_agent" });
  });
});
