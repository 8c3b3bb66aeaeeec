import { spawn } from "node:child_process";
import { rm } from "node:fs/promises";
import { DiscardPolicy, jetstreamManager } from "@nats-io/jetstream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TaskAgentType } from "../../src/agents/task-agent.js";
import { natsServerBinary } from "../helpers/nats-server.js";
import { runCli, runCliToEnd } from "../helpers/cli.js";
import { subjects, TestSystem } from "../helpers/system.js";
import { freePort } from "../helpers/ports.js";

/** A desk that answers after `delayMs`: longer than the chat waits in these tests. */
const slowDesk = (delayMs: number) => new TaskAgentType({ type: "slowdesk", description: "Slow questions.", keywords: ["slowly"], examples: [] }, { delayMs });

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe("the JSON chat", () => {
  let sys: TestSystem;
  beforeEach(async () => {
    sys = await TestSystem.start();
    await sys.startHost();
    await sys.startWorker(["router", "user_proxy", "hr", "finance"]);
  });
  afterEach(async () => {
    await sys.close();
  });

  it("turns a message the server will not store into an error event for that turn, and goes on", async () => {
    const jsm = await jetstreamManager(await sys.connect());
    const stream = await jsm.streams.info(subjects.eventStream);
    const chat = runCli(["chat", "--json", "--user", "olga"], { NATS_URL: sys.url, LOG_LEVEL: "warn" });
    chat.write("I need help with my budget");
    await chat.waitFor((p) => p.events.some((e) => e["event"] === "reply"), 15_000, "the first reply");
    // The stream full, as a server out of storage leaves it: the next publish is refused.
    await jsm.streams.update(subjects.eventStream, { ...stream.config, max_msgs: (await jsm.streams.info(subjects.eventStream)).state.messages, discard: DiscardPolicy.New });
    chat.write("and the travel costs?");
    await chat.waitFor((p) => p.events.some((e) => e["event"] === "error"), 15_000, "the error event");
    await jsm.streams.update(subjects.eventStream, stream.config);
    chat.write("and the forecast?");
    chat.endInput();
    // The chat went on, and its exit status says that a message was not sent.
    expect(await chat.exited).toBe(1);
    const events = chat.events.map((e) => [e["event"], e["code"] ?? e["agent"] ?? null]);
    expect(events).toEqual([
      ["routed", "finance"],
      ["reply", "finance"],
      ["error", "publish_failed"],
      ["reply", "finance"],
    ]);
    expect(String(chat.events[2]?.["message"])).toMatch(/^your message was not sent: .*maximum messages/);
  });

  it("starts a new session after an END that timed out, and prints late answers for the turns they answer", async () => {
    await sys.startWorker([slowDesk(5_000)]);
    const chat = runCli(["chat", "--json", "--user", "ivan", "--timeout", "2500"], { NATS_URL: sys.url, LOG_LEVEL: "warn" });
    const of = (turn: unknown) => chat.events.filter((e) => e["turn"] === turn);
    chat.write("please answer slowly");
    await chat.waitFor((p) => p.events.some((e) => e["event"] === "timeout"), 15_000, "the first timeout");
    const first = chat.events.find((e) => e["event"] === "timeout") ?? {};
    expect(first["text"]).toBe("please answer slowly");
    await chat.waitFor((p) => of(first["turn"]).some((e) => e["late"] === true), 15_000, "the late answer");
    const late = of(first["turn"]).find((e) => e["late"] === true) ?? {};
    expect(late).toMatchObject({ event: "reply", agent: "slowdesk", session: first["session"], content: "Hello from slowdesk_agent! You said: please answer slowly" });

    chat.write("thanks, END");
    await chat.waitFor((p) => p.events.filter((e) => e["event"] === "timeout").length === 2, 15_000, "the END's timeout");
    const end = chat.events.filter((e) => e["event"] === "timeout")[1] ?? {};
    expect(end["session"]).toBe(first["session"]);
    // The next conversation is not the ended one: routed afresh, in a session of its own, and
    // answered in time (not late, not handed over from the ended session's agent).
    const before = chat.events.length;
    chat.write("I need help with my budget");
    await chat.waitFor((p) => p.events.slice(before).some((e) => e["late"] === undefined && ["reply", "timeout", "error"].includes(String(e["event"]))), 15_000, "the budget answer");
    const budget = chat.events.slice(before).filter((e) => e["late"] === undefined);
    expect(budget.map((e) => e["event"])).toEqual(["routed", "reply"]);
    expect(budget[0]).toMatchObject({ agent: "finance", intent: "keyword:budget" });
    expect(budget[0]?.["from"]).toBeUndefined();
    expect(budget[0]?.["session"]).not.toBe(first["session"]);
    expect(budget[1]?.["turn"]).toBe(budget[0]?.["turn"]);
    // The END is answered late, in its own session, and changes nothing for the new one.
    await chat.waitFor((p) => of(end["turn"]).some((e) => e["event"] === "ended" && e["late"] === true), 15_000, "the late end");
    chat.write("and the travel costs?");
    await chat.waitFor((p) => p.events.filter((e) => e["event"] === "reply" && e["agent"] === "finance").length === 2, 15_000, "the follow-up");
    chat.endInput();
    expect(await chat.exited).toBe(0);
    for (const event of chat.events) {
      expect(event["ts"]).toMatch(ISO_TIME);
      expect(event["turn"]).toMatch(/^t/);
    }
  });

  it("exits 1 when a message is left with only a timeout at the end of input", async () => {
    await sys.startWorker([slowDesk(10_000)]);
    const chat = runCli(["chat", "--json", "--user", "judy", "--timeout", "1000"], { NATS_URL: sys.url, LOG_LEVEL: "warn" });
    chat.write("please answer slowly");
    chat.endInput();
    expect(await chat.exited).toBe(1);
    expect(chat.events.map((e) => e["event"])).toEqual(["routed", "timeout"]);
    const timeout = chat.events[1] ?? {};
    expect(timeout["turn"]).toBe(chat.events[0]?.["turn"]);
    expect(timeout["text"]).toBe("please answer slowly");
  });

  it("stops at once, exiting 0, on SIGTERM while it waits for an answer", async () => {
    await sys.startWorker([slowDesk(20_000)]);
    const chat = runCli(["chat", "--json", "--user", "ken"], { NATS_URL: sys.url, LOG_LEVEL: "warn" });
    chat.write("please answer slowly");
    await chat.waitFor((p) => p.events.some((e) => e["event"] === "routed"), 15_000, "routed");
    const started = Date.now();
    expect(await chat.stop("SIGTERM")).toBe(0);
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});

describe("the chat before its server", () => {
  it("waits for a server that is not up yet, saying so, and then chats", async () => {
    const port = await freePort();
    const url = `nats://127.0.0.1:${port}`;
    const chat = runCli(["chat", "--json", "--user", "lena", "--timeout", "20000"], { NATS_URL: url, LOG_LEVEL: "warn" });
    await chat.waitFor((p) => p.stderr.includes("waiting for one"), 15_000, "the waiting message");
    const server = spawn(natsServerBinary(), ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", `/tmp/sb-chat-wait-${port}`], { stdio: "ignore" });
    const sys = TestSystem.on(url);
    try {
      await new Promise((r) => setTimeout(r, 500));
      await sys.startHost();
      await sys.startWorker(["router", "user_proxy", "hr", "finance"]);
      chat.write("I need help with my budget");
      chat.endInput();
      expect(await chat.exited, chat.stderr).toBe(0);
      expect(chat.events.map((e) => e["event"])).toEqual(["routed", "reply"]);
    } finally {
      await sys.close();
      server.kill("SIGTERM");
      await new Promise((r) => server.once("exit", r));
      await rm(`/tmp/sb-chat-wait-${port}`, { recursive: true, force: true });
    }
  });

  it("gives up waiting on SIGTERM, exiting 0", async () => {
    const chat = runCli(["chat", "--json", "--user", "mia"], { NATS_URL: `nats://127.0.0.1:${await freePort()}`, LOG_LEVEL: "warn" });
    await chat.waitFor((p) => p.stderr.includes("waiting for one"), 15_000, "the waiting message");
    expect(await chat.stop("SIGTERM")).toBe(0);
  });
});

describe("exit codes and usage errors", () => {
  it("exits 2 for wrong usage, naming the fix", async () => {
    const cases: [string[], RegExp][] = [
      [["chta"], /unknown command "chta"; did you mean `switchboard chat`\?/],
      [["chat", "--jsno"], /unknown option --jsno; did you mean --json\?/],
      [["chat", "--timeout", "abc"], /--timeout must be a number of milliseconds/],
      [["chat", "--user"], /--user needs a value/],
      [["up", "--port", "99999"], /--port must be a port number/],
      [["worker", "--port", "0"], /--port must be a port number/],
      [["admin", "stats", "--port", "14222", "--nats", "nats://127.0.0.1:4222"], /give either --port or --nats, not both/],
      [["logs", "wroker"], /did you mean worker\?/],
      [["users", "add", "bad name", "--no-reload"], /invalid user name "bad name"/],
      [["admin", "session", "../etc"], /invalid session id/],
    ];
    for (const [args, message] of cases) {
      const run = await runCliToEnd(args);
      expect(run.code, args.join(" ")).toBe(2);
      expect(run.stderr).toMatch(message);
    }
  });

  it("prints its version and exits 0", async () => {
    const run = await runCliToEnd(["--version"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^switchboard \d+\.\d+\.\d+ \(Node\.js \d+/);
  });
});
