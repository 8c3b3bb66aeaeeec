import { isMessage } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentReplySchema } from "../../src/gen/switchboard/v1/conversation_pb.js";
import { openChat } from "../helpers/chat.js";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { runCli, CliProcess } from "../helpers/cli.js";
import { watchResponses } from "../helpers/responses.js";
import { eventually, TestSystem } from "../helpers/system.js";

/** Whether a worker's debug log shows it handling a message of the dictation agent (keys in any order). */
const handlingDictation = (p: CliProcess) => /"agentType":"dictation"[^\n]*"event":"message.handling"|"event":"message.handling"[^\n]*"agentType":"dictation"/.test(p.stderr);

/** Two workers serve finance; the one handling a message is killed (SIGKILL) before it acks. */
describe("a worker killed mid-message", () => {
  let sys: TestSystem;
  const procs: CliProcess[] = [];
  const env = (extra: Record<string, string> = {}) => ({ NATS_URL: sys.url, SB_HEARTBEAT_MS: "300", SB_WORKER_TTL_MS: "2000", SB_ACK_WAIT_MS: "1500", ...extra });
  const start = async (args: string[], extra: Record<string, string> = {}) => {
    const p = runCli(args, env(extra));
    procs.push(p);
    await p.waitFor((x) => x.stderr.includes("host.started") || x.stderr.includes("worker.started"), 20_000, `${args.join(" ")} start`);
    return p;
  };

  beforeAll(async () => {
    sys = await TestSystem.start();
    await start(["host"]);
    await start(["worker", "--agents", "router,user_proxy"]);
  });
  afterAll(async () => {
    for (const p of procs) await p.stop("SIGKILL");
    await sys.close();
  });

  it("has the other worker complete the turn, shows one reply, and drops the dead worker from the registry", async () => {
    const slow = { SB_AGENT_DELAY_MS: "1200", LOG_LEVEL: "debug" };
    const a = await start(["worker", "--agents", "finance", "--id", "w-finance-a"], slow);
    const b = await start(["worker", "--agents", "finance", "--id", "w-finance-b"], slow);
    const chat = await openChat(sys, "alice", 20_000);
    const wire = await watchResponses(await sys.connect(), "alice");

    const turn = chat.send("I need help with my budget");
    const handling = (p: CliProcess) => p.stderr.includes('"event":"message.handling"');
    await eventually(() => handling(a) || handling(b), 10_000, "a finance worker handling the message");
    const [victim, survivor] = handling(a) ? [a, b] : [b, a];
    await victim.stop("SIGKILL");

    const events = await turn;
    expect(events.map((e) => e.event)).toEqual(["routed", "reply"]);
    expect(events[1]).toMatchObject({ agent: "finance", content: "Hello from finance_agent! You said: I need help with my budget" });
    expect(handling(survivor)).toBe(true);
    // Exactly one reply on the wire, not merely one on screen.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(wire.filter((e) => isMessage(e.message, AgentReplySchema))).toHaveLength(1);

    const admin = await sys.hostClient();
    const victimId = victim === a ? "w-finance-a" : "w-finance-b";
    const started = Date.now();
    await eventually(async () => (await admin.workers()).every((w) => w.workerId !== victimId), 10_000, "dead worker expired");
    expect(Date.now() - started).toBeLessThan(8_000);
    const finance = (await admin.agents()).find((x) => x.spec?.type === "finance");
    expect(finance).toMatchObject({ available: true, workerIds: [victim === a ? "w-finance-b" : "w-finance-a"] });

    // The session goes on with the survivor, and its turn count continued from shared state.
    const next = await chat.send("and the forecast?");
    expect(next.map((e) => e.event)).toEqual(["reply"]);
    await eventually(() => wire.filter((e) => isMessage(e.message, AgentReplySchema)).length === 2, 5_000, "second reply");
    const turns = wire.flatMap((e) => (isMessage(e.message, AgentReplySchema) ? [e.message.turn] : []));
    expect(turns).toEqual([1, 2]);
  });

  it("streams the answer again from its start, marked as a new attempt, when the worker dies mid-stream", async () => {
    const module = fileURLToPath(new URL("../fixtures/modules/slow-stream.mjs", import.meta.url));
    const debug = { LOG_LEVEL: "debug" };
    const a = await start(["worker", "--module", module, "--id", "w-dictation-a"], debug);
    const b = await start(["worker", "--module", module, "--id", "w-dictation-b"], debug);
    const chat = runCli(["chat", "--user", "carol", "--json", "--stream"], env());
    procs.push(chat);

    chat.write("please dictate a memo");
    await chat.waitFor((p) => p.events.some((e) => e["event"] === "delta"), 20_000, "the first part of the answer");
    const [victim, survivor] = handlingDictation(a) ? [a, b] : [b, a];
    expect(handlingDictation(victim)).toBe(true);
    await victim.stop("SIGKILL");

    await chat.waitFor((p) => p.events.some((e) => e["event"] === "reply"), 30_000, "the reply");
    expect(handlingDictation(survivor)).toBe(true);
    const events = chat.events;
    const reply = events.find((e) => e["event"] === "reply");
    expect(reply).toMatchObject({ agent: "dictation", content: "word1 word2 word3 word4 word5 word6 word7 word8 done." });
    const deltas = events.filter((e) => e["event"] === "delta");
    const attempts = deltas.map((d) => d["attempt"]);
    // The first worker's parts, then the second's, never mixed; the second's alone are the answer.
    expect(attempts[0]).toBe(1);
    expect(attempts).toEqual([...attempts].sort());
    expect(new Set(attempts).size).toBe(2);
    const retried = deltas.filter((d) => d["attempt"] === attempts.at(-1)).map((d) => String(d["text"])).join("");
    expect(retried).toBe(reply?.["content"]);
    expect(deltas.every((d) => d["turn"] === reply?.["turn"])).toBe(true);
    await survivor.stop("SIGTERM");
  });

  it("hands a turn still running back after SB_DRAIN_TIMEOUT_MS when its worker is stopped", async () => {
    const module = fileURLToPath(new URL("../fixtures/modules/slow-stream.mjs", import.meta.url));
    const settings = { LOG_LEVEL: "debug", SB_DRAIN_TIMEOUT_MS: "500" };
    const a = await start(["worker", "--module", module, "--id", "w-drain-a"], settings);
    const b = await start(["worker", "--module", module, "--id", "w-drain-b"], settings);
    const chat = runCli(["chat", "--user", "dora", "--json", "--stream"], env());
    procs.push(chat);
    chat.write("please dictate a memo");
    await chat.waitFor((p) => p.events.some((e) => e["event"] === "delta"), 20_000, "the first part of the answer");
    const [stopping, survivor] = handlingDictation(a) ? [a, b] : [b, a];
    const stoppedAt = Date.now();
    expect(await stopping.stop("SIGTERM")).toBe(0);
    // The turn needs about 2.7 s; the worker gave it half a second.
    expect(Date.now() - stoppedAt).toBeLessThan(2_500);
    expect(stopping.stderr).toMatch(/"event":"worker.drain_timeout"[^\n]*"timeoutMs":500/);
    await chat.waitFor((p) => p.events.some((e) => e["event"] === "reply"), 30_000, "the reply");
    expect(chat.events.find((e) => e["event"] === "reply")).toMatchObject({ agent: "dictation", content: "word1 word2 word3 word4 word5 word6 word7 word8 done." });
    expect(handlingDictation(survivor)).toBe(true);
    await survivor.stop("SIGTERM");
  });

  it("shows one reply and counts the turn once when the worker dies after publishing its reply and before acking", async () => {
    // Only the holding worker serves finance when the message arrives, so it is the one to take it.
    for (const p of procs) if (p.args.includes("finance")) expect(await p.stop("SIGTERM")).not.toBe(1);
    const script = fileURLToPath(new URL("../helpers/hold-ack-worker.ts", import.meta.url));
    const holder = new CliProcess(["hold-ack-worker"], spawn(process.execPath, ["--import", "tsx", script, "w-holding"], { env: { ...process.env, ...env() }, stdio: ["pipe", "pipe", "pipe"] }));
    procs.push(holder);
    await holder.waitFor((p) => p.lines.includes("ready"), 30_000, "holding worker ready");
    const chat = await openChat(sys, "bob", 20_000);
    const wire = await watchResponses(await sys.connect(), "bob");

    const turn = chat.send("I need help with my budget");
    await holder.waitFor((p) => p.lines.some((l) => l.startsWith("published ")), 20_000, "reply published by the holding worker");
    const survivor = await start(["worker", "--agents", "finance", "--id", "w-finance-c"], { LOG_LEVEL: "debug" });
    await holder.stop("SIGKILL");

    const events = await turn;
    expect(events.at(-1)).toMatchObject({ event: "reply", agent: "finance", content: "Hello from finance_agent! You said: I need help with my budget" });
    // The survivor handled the redelivered message: its reply carried the same id and was stored once.
    await survivor.waitFor((p) => /"event":"message.handling"[^\n]*"deliveryCount":2/.test(p.stderr), 20_000, "redelivery handled by the survivor");
    await new Promise((r) => setTimeout(r, 1_000));
    expect(wire.filter((e) => isMessage(e.message, AgentReplySchema))).toHaveLength(1);

    const next = await chat.send("and the forecast?");
    expect(next.map((e) => e.event)).toEqual(["reply"]);
    await eventually(() => wire.filter((e) => isMessage(e.message, AgentReplySchema)).length === 2, 5_000, "second reply");
    const turns = wire.flatMap((e) => (isMessage(e.message, AgentReplySchema) ? [e.message.turn] : []));
    expect(turns).toEqual([1, 2]);
  });
});
