import { create, isMessage } from "@bufbuild/protobuf";
import { jetstreamManager } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { CancelledError, NoRespondersError, RemoteError, TimeoutError } from "../../src/core/errors.js";
import { AgentReplySchema, UserMessageSchema } from "../../src/gen/switchboard/v1/conversation_pb.js";
import { ProbeAgentType } from "../helpers/probe-agent.js";
import { eventually, subjects, withHostedSystem, TestSystem } from "../helpers/system.js";

const msg = (text: string, session = "s1", user = "alice") => create(UserMessageSchema, { sessionId: session, user, turnId: `t-${text.replace(/\W/g, "")}`, text });
const topic = (type: string, session = "s1", user = "alice") => ({ type, source: { user, session } });

describe("worker runtime on a real nats-server", () => {
  let sys: TestSystem;
  withHostedSystem((s) => (sys = s));

  it("delivers a published event once to every agent type subscribed to the topic type, and to no other", async () => {
    const a = new ProbeAgentType("alpha", { subscriptions: ["news"] });
    const b = new ProbeAgentType("beta", { subscriptions: ["news"] });
    const c = new ProbeAgentType("gamma", { subscriptions: ["other"] });
    const worker = await sys.startWorker([a, b, c]);
    await worker.runtime.publish(msg("hello"), topic("news"));
    await eventually(() => a.handled.length === 1 && b.handled.length === 1, 5_000, "both subscribers");
    await new Promise((r) => setTimeout(r, 300));
    expect(a.handled).toHaveLength(1);
    expect(b.handled).toHaveLength(1);
    expect(c.handled).toHaveLength(0);
    expect(a.handled[0]).toMatchObject({ key: "alice.s1", text: "hello", topicType: "news" });
  });

  it("creates one instance per key, lazily, and reuses it", async () => {
    const probe = new ProbeAgentType("alpha");
    const worker = await sys.startWorker([probe]);
    expect(probe.created).toEqual([]);
    for (const [text, session] of [["one", "s1"], ["two", "s2"], ["three", "s1"]] as const) {
      await worker.runtime.publish(msg(text, session), topic("alpha", session));
    }
    await eventually(() => probe.handled.length === 3, 5_000, "three messages");
    expect(probe.created.sort()).toEqual(["alice.s1", "alice.s2"]);
  });

  it("acks a message only after its handler finished", async () => {
    const probe = new ProbeAgentType("slow", { delayMs: 1_000 });
    const worker = await sys.startWorker([probe]);
    const jsm = await jetstreamManager(await sys.connect());
    await worker.runtime.publish(msg("take your time"), topic("slow"));
    await eventually(() => probe.active === 1, 5_000, "handler running");
    const during = await jsm.consumers.info(subjects.eventStream, subjects.consumer("slow", "slow"));
    expect(during.num_ack_pending).toBe(1);
    await eventually(() => probe.handled.length === 1, 5_000, "handler done");
    await eventually(async () => (await jsm.consumers.info(subjects.eventStream, subjects.consumer("slow", "slow"))).num_ack_pending === 0, 5_000, "ack");
  });

  it("spreads one type's messages across its workers through the shared durable consumer", async () => {
    const one = new ProbeAgentType("shared", { workerTag: "one", delayMs: 20 });
    const two = new ProbeAgentType("shared", { workerTag: "two", delayMs: 20 });
    const w1 = await sys.startWorker([one]);
    await sys.startWorker([two]);
    for (let i = 0; i < 40; i++) await w1.runtime.publish(msg(`m${i}`, `s${i}`), topic("shared", `s${i}`));
    await eventually(() => one.handled.length + two.handled.length === 40, 10_000, "all messages");
    expect(one.handled.length).toBeGreaterThan(0);
    expect(two.handled.length).toBeGreaterThan(0);
  });

  it("answers send() with the agent's response", async () => {
    const probe = new ProbeAgentType("echo");
    const worker = await sys.startWorker([probe]);
    const reply = await worker.runtime.send(msg("ping"), { type: "echo", key: "alice.s1" }, { timeoutMs: 5_000 });
    expect(isMessage(reply, AgentReplySchema) && reply.content).toBe("echo: ping");
  });

  it("fails send() at once with NoRespondersError when nobody serves the type", async () => {
    const worker = await sys.startWorker([new ProbeAgentType("echo")]);
    const started = Date.now();
    await expect(worker.runtime.send(msg("ping"), { type: "nobody", key: "k" }, { timeoutMs: 5_000 })).rejects.toBeInstanceOf(NoRespondersError);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("fails send() with TimeoutError when the agent is too slow, and CancelledError when the caller gives up", async () => {
    const worker = await sys.startWorker([new ProbeAgentType("sloth", { delayMs: 2_000 })]);
    await expect(worker.runtime.send(msg("ping"), { type: "sloth", key: "k1" }, { timeoutMs: 300 })).rejects.toBeInstanceOf(TimeoutError);
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 100);
    await expect(worker.runtime.send(msg("ping"), { type: "sloth", key: "k2" }, { timeoutMs: 5_000, signal: abort.signal })).rejects.toBeInstanceOf(CancelledError);
  });

  it("turns a handler's exception into a RemoteError for the caller", async () => {
    const worker = await sys.startWorker([new ProbeAgentType("fragile", { failOn: "boom" })]);
    await expect(worker.runtime.send(msg("boom"), { type: "fragile", key: "k" }, { timeoutMs: 5_000 })).rejects.toBeInstanceOf(RemoteError);
  });

  it("finishes in-flight messages on close() before it resolves", async () => {
    const probe = new ProbeAgentType("slow", { delayMs: 800 });
    const worker = await sys.startWorker([probe]);
    await worker.runtime.publish(msg("almost done"), topic("slow"));
    await eventually(() => probe.active === 1, 5_000, "handler running");
    await worker.close();
    expect(probe.handled).toHaveLength(1);
    const jsm = await jetstreamManager(await sys.connect());
    const info = await jsm.consumers.info(subjects.eventStream, subjects.consumer("slow", "slow"));
    expect(info.num_ack_pending).toBe(0);
    expect(info.num_pending).toBe(0);
  });
});
