import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { runCli, runCliToEnd, type CliProcess } from "../helpers/cli.js";
import { ModelStub } from "../helpers/model-stub.js";
import { TestNatsServer } from "../helpers/nats-server.js";
import { freePort } from "../helpers/ports.js";
import { Keys, TerminalCli } from "../helpers/terminal.js";

const EXAMPLE = fileURLToPath(new URL("../../examples/llm-agents/agents.yaml", import.meta.url));
const API_KEY = "sk-test-DO-NOT-LOG-4f9a2c";
const SLOW_TIMEOUT_MS = 2_000;

/**
 * The shipped example (hr and finance on a language model) pointed at the stub, plus an agent
 * whose model is down. finance gets a short time-out for the slow-model case.
 */
async function agentsFile(stub: ModelStub): Promise<string> {
  const example = parseYaml(readFileSync(EXAMPLE, "utf8")) as { defaults: Record<string, unknown>; agents: { type: string; model: Record<string, unknown> }[] };
  example.defaults = { ...example.defaults, url: stub.url, model: "stub-model", apiKeyEnv: "TEST_LLM_KEY", timeoutMs: 20_000 };
  for (const agent of example.agents) if (agent.type === "finance") agent.model = { ...agent.model, timeoutMs: SLOW_TIMEOUT_MS };
  example.agents.push({
    type: "archive",
    description: "The records archive: old files and documents kept on record",
    keywords: ["archive"],
    examples: ["Find the archived file from 2019"],
    model: { url: `http://127.0.0.1:${await freePort()}/v1`, systemPrompt: "You are the archive." },
  } as (typeof example.agents)[number]);
  const file = join(mkdtempSync(join(tmpdir(), "sb-llm-")), "agents.yaml");
  writeFileSync(file, stringifyYaml(example));
  return file;
}

/** Agents on a language model, through the real CLI worker, with a real HTTP model server. */
describe("LLM agents from an agents file", () => {
  let server: TestNatsServer;
  let stub: ModelStub;
  let env: Record<string, string>;
  let host: CliProcess;
  let worker: CliProcess;
  const chats: CliProcess[] = [];
  const chat = (user: string, ...flags: string[]) => {
    const c = runCli(["chat", "--user", user, "--json", ...flags], env);
    chats.push(c);
    return c;
  };
  /** Sends a line and waits for the final event of its turn. */
  const turn = async (c: CliProcess, line: string): Promise<{ events: Record<string, unknown>[]; ms: number }> => {
    const before = c.events.length;
    const started = Date.now();
    c.write(line);
    const final = (e: Record<string, unknown>) => ["reply", "ended", "error", "timeout", "no_agent", "clarify"].includes(String(e["event"]));
    await c.waitFor((p) => p.events.slice(before).some(final), 30_000, `the answer to ${JSON.stringify(line)}`);
    return { events: c.events.slice(before), ms: Date.now() - started };
  };

  beforeAll(async () => {
    server = await TestNatsServer.start();
    stub = await ModelStub.start();
    env = { NATS_URL: server.url, SB_HEARTBEAT_MS: "500", SB_WORKER_TTL_MS: "3000" };
    host = runCli(["host"], env);
    await host.waitFor((p) => p.stderr.includes('"event":"host.started"'), 15_000, "host start");
    const file = await agentsFile(stub);
    // Debug logs, so that a key slipping into any log line would show.
    worker = runCli(["worker", "--agents-file", file, "--log-level", "debug"], { ...env, TEST_LLM_KEY: API_KEY });
    await worker.waitFor((p) => p.stderr.includes('"event":"worker.started"'), 20_000, "worker start");
  });

  afterAll(async () => {
    for (const c of chats) await c.stop("SIGKILL");
    await worker?.stop("SIGKILL");
    await host?.stop("SIGKILL");
    await stub?.close();
    await server?.stop();
  });

  it("answers through the model with the system prompt and the conversation so far, streaming deltas with --stream", async () => {
    const c = chat("alice", "--stream");
    const first = await turn(c, "I need help with my budget");
    expect(first.events.map((e) => e["event"]).filter((e) => e !== "delta")).toEqual(["routed", "reply"]);
    expect(first.events[0]).toMatchObject({ agent: "finance" });
    const reply = first.events.at(-1) ?? {};
    expect(reply).toMatchObject({ agent: "finance", name: "finance_agent" });
    expect(reply["content"]).toMatch(/^system: You are the finance desk of a mid-sized company.* \| earlier: \(none\) \| answers so far: 0 \| you said: I need help with my budget$/);
    const deltas = first.events.filter((e) => e["event"] === "delta");
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.every((d) => d["agent"] === "finance" && d["session"] === reply["session"])).toBe(true);
    // The deltas, in order, are the answer; the reply carries it all again.
    expect(deltas.map((d) => d["text"]).join("")).toBe(reply["content"]);

    const second = await turn(c, "And what about next quarter?");
    expect(second.events.at(-1)?.["content"]).toMatch(/ \| earlier: I need help with my budget \| answers so far: 1 \| you said: And what about next quarter\?$/);
    // What the model was sent: the system prompt, then the conversation, then the new message.
    const sent = stub.requests.at(-1);
    expect(sent?.authorization).toBe(`Bearer ${API_KEY}`);
    expect(sent?.body).toMatchObject({ model: "stub-model", stream: true, temperature: 0.1, max_tokens: 512 });
    expect(sent?.body.messages.map((m) => m.role)).toEqual(["system", "user", "assistant", "user"]);
    expect(sent?.body.messages[2]?.content).toBe(reply["content"]);

    const end = await turn(c, "thanks, END");
    expect(end.events.at(-1)).toMatchObject({ event: "ended", agent: "finance", content: "Session ended. Thank you for contacting finance_agent." });
  });

  it("emits no delta lines without --stream, and the whole reply all the same", async () => {
    const c = chat("bob");
    const { events } = await turn(c, "What is the parental leave policy?");
    expect(events.map((e) => e["event"])).toEqual(["routed", "reply"]);
    expect(events[1]).toMatchObject({ agent: "hr" });
    expect(events[1]?.["content"]).toContain("you said: What is the parental leave policy?");
  });

  it("shows the answer in the terminal as it is produced, and only once", async () => {
    let release = () => undefined as void;
    const held = new Promise<void>((resolve) => (release = resolve));
    stub.answer = () => ({ kind: "stream", chunks: ["Parental leave ", "is sixteen weeks, ", "paid in full."], holdLast: held });
    const t = TerminalCli.start(["chat", "--user", "carol"], env);
    try {
      await t.waitFor("what do you need help with?");
      t.type(`What is the parental leave policy?${Keys.Enter}`);
      // The first two chunks are on screen while the model still holds back the last one.
      await t.waitFor("Parental leave is sixteen weeks,", 1, 30_000);
      expect(t.screen).not.toContain("paid in full.");
      release();
      await t.waitFor("Parental leave is sixteen weeks, paid in full.");
      await t.waitFor("You → hr");
      expect(t.screen.split("sixteen weeks").length - 1).toBe(1);
    } finally {
      release();
      await t.stop();
    }
  });

  it("gives model_error when the model fails with HTTP 500", async () => {
    stub.answer = () => ({ kind: "status", status: 500, message: "the model is overloaded" });
    const c = chat("dave");
    const { events } = await turn(c, "How much is left in the marketing budget?");
    expect(events.at(-1)).toMatchObject({ event: "error", agent: "finance", code: "model_error" });
    // The user is told in general words; the model's URL and its server's text are for the log.
    expect(events.at(-1)?.["message"]).toBe("the language model this agent uses failed to answer; try again later");
    await worker.waitFor((p) => p.stderr.includes("HTTP 500: the model is overloaded"), 5_000, "the model's error in the worker's log");
  });

  it("answers from a server that ignores stream: true and sends the whole completion at once", async () => {
    stub.answer = () => ({ kind: "whole", content: "The budget has 4,000 left." });
    const c = chat("gina", "--stream");
    const { events } = await turn(c, "How much is left in the marketing budget?");
    expect(events.map((e) => e["event"])).toEqual(["routed", "delta", "reply"]);
    expect(events.at(-1)).toMatchObject({ event: "reply", agent: "finance", content: "The budget has 4,000 left." });
  });

  it("gives model_error, not an empty reply, when the model's URL answers with a web page", async () => {
    stub.answer = () => ({ kind: "page", contentType: "text/html; charset=utf-8", body: "<!doctype html><title>Dashboard</title>" });
    const c = chat("hank");
    const { events } = await turn(c, "Has the supplier invoice been paid?");
    expect(events.at(-1)).toMatchObject({ event: "error", code: "model_error" });
    expect(String(events.at(-1)?.["message"])).not.toContain("http");
    await worker.waitFor((p) => p.stderr.includes("not a stream of server-sent events (content-type text/html; charset=utf-8)"), 5_000, "the model's error in the worker's log");
  });

  it("gives model_timeout within the agent's time-out when the model is slow", async () => {
    stub.answer = () => ({ kind: "stream", chunks: ["Let me think", "… done"], firstDelayMs: 60_000 });
    const c = chat("erin");
    const { events, ms } = await turn(c, "Can you prepare the quarterly forecast?");
    expect(events.at(-1)).toMatchObject({ event: "error", code: "model_timeout" });
    expect(ms).toBeGreaterThanOrEqual(SLOW_TIMEOUT_MS);
    // The time-out plus the hops of one turn, with room for a busy machine.
    expect(ms).toBeLessThan(SLOW_TIMEOUT_MS + 8_000);
  });

  it("gives model_unreachable when nothing answers at the model's URL", async () => {
    const c = chat("frank");
    const { events, ms } = await turn(c, "Find the archived file from 2019 in the archive");
    expect(events[0]).toMatchObject({ event: "routed", agent: "archive" });
    expect(events.at(-1)).toMatchObject({ event: "error", agent: "archive", code: "model_unreachable", message: "the language model this agent uses cannot be reached right now; try again later" });
    expect(ms).toBeLessThan(15_000);
  });

  it("never writes the API key to a log or the chat", async () => {
    const admin = await runCliToEnd(["admin", "sessions", "--json"], env);
    const everything = [worker.stderr, worker.lines.join("\n"), host.stderr, host.lines.join("\n"), admin.stdout, ...chats.map((c) => `${c.stderr}\n${c.lines.join("\n")}`)].join("\n");
    // The check looks at logs that exist: the worker logged at debug level, model calls included.
    expect(worker.stderr).toContain('"event":"worker.llm_agents"');
    expect(worker.stderr).toContain('"event":"agent.turn_failed"');
    expect(everything).not.toContain(API_KEY);
    expect(everything).not.toContain(API_KEY.slice(8));
  });
});

describe("a worker given a bad agents file", () => {
  const write = (name: string, text: string) => {
    const file = join(mkdtempSync(join(tmpdir(), "sb-llm-bad-")), name);
    writeFileSync(file, text);
    return file;
  };

  it("refuses to start, naming the file, the entry and the problem", async () => {
    const file = write("agents.yaml", "agents:\n  - type: hr\n    description: People\n    model: { url: 'ftp://models', model: m }\n");
    const { code, stderr } = await runCliToEnd(["worker", "--agents-file", file], { NATS_URL: "nats://127.0.0.1:1" });
    expect(code).toBe(2);
    expect(stderr).toContain(`${file}: agents[0] (hr): model.url must be an http(s) URL`);
  });

  it("refuses an agent that a --module also defines, naming both", async () => {
    const travel = fileURLToPath(new URL("../fixtures/modules/travel.mjs", import.meta.url));
    const file = write("agents.yaml", "agents:\n  - type: travel\n    description: Trips\n    model: { url: 'http://127.0.0.1:9/v1', model: m }\n");
    const { code, stderr } = await runCliToEnd(["worker", "--module", travel, "--agents-file", file], { NATS_URL: "nats://127.0.0.1:1" });
    expect(code).toBe(2);
    expect(stderr).toContain(`${file}: agents[0] (travel): agent type "travel" is also exported by ${travel}`);
  });

  it("refuses to start when the variable meant to hold the API key is not set", async () => {
    const file = write("agents.json", JSON.stringify({ agents: [{ type: "finance", description: "Money", model: { url: "http://127.0.0.1:9/v1", model: "m", apiKeyEnv: "SB_TEST_UNSET_KEY" } }] }));
    const { code, stderr } = await runCliToEnd(["worker", "--agents-file", file], { NATS_URL: "nats://127.0.0.1:1" });
    expect(code).toBe(2);
    expect(stderr).toContain(`${file}: agents[0] (finance): environment variable SB_TEST_UNSET_KEY (model.apiKeyEnv) is not set`);
  });
});
