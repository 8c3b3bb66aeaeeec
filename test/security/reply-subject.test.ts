import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { builtinAgents } from "../../src/agents/builtin.js";
import { ChatSession } from "../../src/cli/chat-session.js";
import { encodeEvent } from "../../src/core/codec.js";
import { openBucket } from "../../src/core/kv-records.js";
import { Role } from "../../src/core/roles.js";
import { HostVerb } from "../../src/core/subjects.js";
import { UserMessageSchema } from "../../src/gen/switchboard/v1/conversation_pb.js";
import { SessionRecordSchema } from "../../src/gen/switchboard/v1/registry_pb.js";
import { HostClient } from "../../src/host/client.js";
import { runCliToEnd } from "../helpers/cli.js";
import { collectRefusals } from "../helpers/permissions.js";
import { SecureTestServer } from "../helpers/secure-server.js";
import { eventually, subjects, testLogger } from "../helpers/system.js";

/** Everything on the bus the attacks could damage, read with the services' own credentials. */
interface Snapshot {
  readonly streams: Map<string, { firstSeq: number; lastSeq: number; messages: number; subjects: string[] }>;
  readonly consumers: string[];
  /** Key → revision, for every key of every bucket. */
  readonly keys: Map<string, number>;
  /** Messages stored on alice's subjects. */
  readonly aliceEvents: number;
}

/**
 * As the attacker would: mallory, a chat user made with `switchboard users add`, names the
 * subjects the server itself must not write to as the reply subject of what she may send — her
 * own events (answered by the stream's acknowledgement) and the direct get of her own last
 * answer (answered with a stored event) — against the shipped configuration with a host, a
 * worker and alice chatting. Afterwards the stream, the consumers, every bucket and alice's
 * session are as they were, and alice received nothing of mallory's.
 */
describe("a chat user's reply subject is not a write primitive", () => {
  const logger = testLogger();
  let server: SecureTestServer;
  let jsm: JetStreamManager;
  let workerJsm: JetStreamManager;
  let buckets: Map<string, KV>;
  let alice: ChatSession;
  let aliceSession: string;
  let aliceReceived: string[];
  let mallory: NatsConnection;
  let mallorySession: string;
  let malloryRefusals: string[];

  async function snapshot(): Promise<Snapshot> {
    const streams = new Map<string, { firstSeq: number; lastSeq: number; messages: number; subjects: string[] }>();
    const names = [subjects.eventStream, subjects.deadLetterStream, ...[...buckets.keys()].map((b) => `KV_${b}`)];
    for (const name of names) {
      const { state } = await jsm.streams.info(name, { subjects_filter: ">" });
      streams.set(name, { firstSeq: state.first_seq, lastSeq: state.last_seq, messages: state.messages, subjects: Object.keys(state.subjects ?? {}).sort() });
    }
    // The workers' durable consumers, looked up with a worker's credentials (no role may list them).
    const consumers: string[] = [];
    const types = ["router", "user_proxy", "hr", "finance"];
    for (const name of types.flatMap((agent) => ["default", ...types].map((topic) => subjects.consumer(agent, topic)))) {
      if (await workerJsm.consumers.info(subjects.eventStream, name).then(() => true, () => false)) consumers.push(name);
    }
    const keys = new Map<string, number>();
    for (const [bucket, kv] of buckets) {
      for (const subject of streams.get(`KV_${bucket}`)?.subjects ?? []) {
        const key = subject.slice(`$KV.${bucket}.`.length);
        const entry = await kv.get(key);
        keys.set(`${bucket}/${key}`, entry?.revision ?? 0);
      }
    }
    const { state } = await jsm.streams.info(subjects.eventStream, { subjects_filter: "sb.topic.*.alice.*" });
    return { streams, consumers: consumers.sort(), keys, aliceEvents: Object.values(state.subjects ?? {}).reduce((a, b) => a + b, 0) };
  }

  /** The reply subjects mallory names: the server's APIs, every bucket's keys, alice's subjects, the host's. */
  function targets(before: Snapshot): string[] {
    const out: string[] = [];
    for (const stream of before.streams.keys()) out.push(`$JS.API.STREAM.PURGE.${stream}`, `$JS.API.STREAM.DELETE.${stream}`);
    for (const consumer of before.consumers) out.push(`$JS.API.CONSUMER.DELETE.${subjects.eventStream}.${consumer}`);
    for (const key of before.keys.keys()) out.push(`$KV.${key.replace("/", ".")}`);
    for (const bucket of buckets.keys()) out.push(`$KV.${bucket}.finance`);
    for (const type of ["response", "default", "finance", "user_proxy"]) out.push(subjects.topic({ type, source: { user: "alice", session: aliceSession } }));
    out.push(subjects.replyDelta("alice", aliceSession));
    // Her own subjects, under both of their names: the answer comes back into her account there
    // and may be passed on to her import, which must neither loop nor break the server.
    for (const user of ["mallory", "alice"]) out.push(`sb.topic.default.${user}.sloop`, `sb.inbound.default.${user}.sloop`, `sb.topic.response.${user}.sloop`);
    out.push(`$JS.API.DIRECT.GET.${subjects.eventStream}.sb.topic.response.mallory.${mallorySession}`, `$JS.API.DIRECT.GET.${subjects.eventStream}.sb.topic.response.alice.${aliceSession}`);
    for (const verb of Object.values(HostVerb)) out.push(subjects.host(verb));
    return out;
  }

  /** Waits until `count` more events of mallory's are stored: every acknowledgement has been sent by then. */
  async function waitForMalloryEvents(count: number, from: number): Promise<void> {
    await eventually(async () => {
      const { state } = await jsm.streams.info(subjects.eventStream, { subjects_filter: "sb.topic.*.mallory.*" });
      return Object.values(state.subjects ?? {}).reduce((a, b) => a + b, 0) >= from + count;
    }, 15_000, `${count} events of mallory's stored`);
  }

  async function malloryEvents(): Promise<number> {
    const { state } = await jsm.streams.info(subjects.eventStream, { subjects_filter: "sb.topic.*.mallory.*" });
    return Object.values(state.subjects ?? {}).reduce((a, b) => a + b, 0);
  }

  function expectUntouched(before: Snapshot, after: Snapshot): void {
    for (const [name, was] of before.streams) {
      const now = after.streams.get(name);
      expect(now, name).toBeDefined();
      // Nothing purged or deleted: the first message is the same (a bucket keeps one revision per
      // key, so there it moves with every update), no subject disappeared.
      if (!name.startsWith("KV_")) expect(now?.firstSeq, `${name} first sequence`).toBe(was.firstSeq);
      expect(now?.messages, `${name} messages`).toBeGreaterThanOrEqual(was.messages);
      expect(now?.subjects, `${name} subjects`).toEqual(expect.arrayContaining(was.subjects));
    }
    expect(before.consumers.length).toBeGreaterThanOrEqual(4);
    expect(after.consumers).toEqual(before.consumers);
    for (const [key, revision] of before.keys) {
      // Every key is still there. The registry's and alice's do not move; the others legitimately
      // do (heartbeats, the projector's checkpoint, mallory's own sessions being answered).
      expect(after.keys.get(key), key).toBeGreaterThanOrEqual(revision);
      if (key.startsWith(`${subjects.agentsBucket}/`) || key.includes(aliceSession)) expect(after.keys.get(key), key).toBe(revision);
    }
    expect(after.aliceEvents).toBe(before.aliceEvents);
  }

  beforeAll(async () => {
    server = await SecureTestServer.start({ users: ["alice"] });
    const added = await runCliToEnd(["users", "add", "mallory", "--pid-file", server.pidFile], server.env());
    expect(added.code, added.stderr).toBe(0);
    const hostNc = await server.open(Role.Host);
    await server.startHost({ nc: hostNc, workerTtlMs: 5_000 });
    await server.startWorker(builtinAgents(["router", "user_proxy", "hr", "finance"]), { consumer: { maxDeliver: 2, ackWaitMs: 2_000 } });
    jsm = await jetstreamManager(hostNc);
    const workerNc = await server.open(Role.Worker);
    workerJsm = await jetstreamManager(workerNc);
    buckets = new Map([
      [subjects.agentsBucket, await openBucket(hostNc, subjects.agentsBucket)],
      [subjects.workersBucket, await openBucket(hostNc, subjects.workersBucket)],
      [subjects.sessionsBucket, await openBucket(hostNc, subjects.sessionsBucket)],
      [subjects.agentStateBucket, await openBucket(workerNc, subjects.agentStateBucket)],
    ]);

    const aliceNc = await server.open(Role.Client, "alice");
    aliceReceived = [];
    aliceNc.subscribe("sb.topic.response.alice.*", { callback: (_e, m) => void aliceReceived.push(m.subject) });
    aliceNc.subscribe("sb.delta.alice.*", { callback: (_e, m) => void aliceReceived.push(m.subject) });
    alice = new ChatSession({ nc: aliceNc, subjects, user: "alice", logger, replyTimeoutMs: 10_000 });
    await alice.start();
    expect((await alice.send("I need help with my budget")).map((e) => e.event)).toEqual(["routed", "reply"]);
    aliceSession = alice.sessionId;

    // Mallory chats too, so that she has an answer of her own to read back.
    mallory = await eventually(() => server.open(Role.Client, "mallory"), 10_000, "mallory connected");
    malloryRefusals = collectRefusals(mallory);
    const malloryChat = new ChatSession({ nc: mallory, subjects, user: "mallory", logger, replyTimeoutMs: 10_000 });
    await malloryChat.start();
    expect((await malloryChat.send("Talk to HR please")).map((e) => e.event)).toEqual(["routed", "reply"]);
    mallorySession = malloryChat.sessionId;

    // Alice's session is fully recorded before anything is compared with it.
    const admin = new HostClient(await server.open(Role.Admin), subjects);
    await eventually(async () => ((await admin.session(aliceSession))?.transcript.length ?? 0) >= 2, 10_000, "alice's session recorded");
  });

  afterAll(async () => {
    await server?.stop();
  });

  it("the stream's acknowledgement of her events goes back to her, whatever reply subject she names", async () => {
    const before = await snapshot();
    const receivedBefore = aliceReceived.length;
    const stored = await malloryEvents();
    const list = targets(before);
    for (const [i, reply] of list.entries()) {
      const message = create(UserMessageSchema, { sessionId: `sa${i}`, user: "mallory", turnId: `t${i}`, text: "hello" });
      const event = encodeEvent(UserMessageSchema, message, { source: "mallory" });
      mallory.publish(subjects.topic({ type: "hr", source: { user: "mallory", session: `sa${i}` } }), event.data, { reply, headers: event.headers });
      // The same under the name her account gives it internally, which she may use too.
      mallory.publish(`sb.inbound.hr.mallory.sb${i}`, event.data, { reply, headers: event.headers });
    }
    await mallory.flush();
    await waitForMalloryEvents(2 * list.length, stored);
    expectUntouched(before, await snapshot());
    expect(aliceReceived.slice(receivedBefore)).toEqual([]);
    expect(malloryRefusals).toEqual([]);
  });

  it("the direct get of her last answer goes back to her, whatever reply subject she names", async () => {
    const before = await snapshot();
    const receivedBefore = aliceReceived.length;
    const stored = await malloryEvents();
    const list = targets(before);
    for (const reply of list) {
      // An answer that exists (a whole stored event) and one that does not (a 404 with an empty body).
      mallory.publish(`$JS.API.DIRECT.GET.${subjects.eventStream}.${subjects.topic({ type: "response", source: { user: "mallory", session: mallorySession } })}`, new Uint8Array(0), { reply });
      mallory.publish(`$JS.API.DIRECT.GET.${subjects.eventStream}.${subjects.topic({ type: "response", source: { user: "mallory", session: "nosuch" } })}`, new Uint8Array(0), { reply });
    }
    // Then one event of her own, acknowledged on her inbox: by the time it is, every direct get is answered.
    const marker = encodeEvent(UserMessageSchema, create(UserMessageSchema, { sessionId: "smark", user: "mallory", turnId: "t", text: "hi" }), { source: "mallory" });
    const ack = await mallory.request(subjects.topic({ type: "hr", source: { user: "mallory", session: "smark" } }), marker.data, { headers: marker.headers, timeout: 5_000 });
    expect(JSON.parse(ack.string())).toMatchObject({ stream: subjects.eventStream, seq: expect.any(Number) });
    await waitForMalloryEvents(1, stored);
    expectUntouched(before, await snapshot());
    expect(aliceReceived.slice(receivedBefore)).toEqual([]);
    expect(malloryRefusals).toEqual([]);
  });

  it("reply subjects the server keeps for itself are refused", async () => {
    const stored = await malloryEvents();
    const event = encodeEvent(UserMessageSchema, create(UserMessageSchema, { sessionId: "sr", user: "mallory", turnId: "t", text: "hi" }), { source: "mallory" });
    const subject = subjects.topic({ type: "hr", source: { user: "mallory", session: "sr" } });
    // A consumer's acknowledgement subject would otherwise acknowledge someone else's message.
    for (const reply of [`$JS.ACK.${subjects.eventStream}.router__default.1.${stored + 1}.1.0.0`, "_R_.abc.def"]) {
      mallory.publish(subject, event.data, { reply, headers: event.headers });
    }
    await eventually(() => malloryRefusals.length >= 2, 5_000, "both refused");
    expect(malloryRefusals).toEqual([expect.stringMatching(/Reply of "\$JS\.ACK\./), expect.stringMatching(/Reply of "_R_\./)]);
    expect(await malloryEvents()).toBe(stored);
    malloryRefusals.length = 0;
  });

  it("a '*' or '>' token in her subjects is refused by the server before anything is stored", async () => {
    const stored = await malloryEvents();
    const event = encodeEvent(UserMessageSchema, create(UserMessageSchema, { sessionId: "sw", user: "mallory", turnId: "t", text: "hi" }), { source: "mallory" });
    const wild = ["sb.topic.*.mallory.sw", "sb.topic.>.mallory.sw", "sb.topic.default.mallory.*", "sb.topic.default.mallory.>", "sb.topic.default.*.sw", "sb.topic.a*b.mallory.sw"];
    // Under the internal name as well, which she may publish to directly. A `>` token there is
    // mapped nowhere, so no stream captures it: it is not refused, and nothing is stored.
    const internal = wild.map((w) => w.replace("sb.topic.", "sb.inbound."));
    for (const subject of [...wild, ...internal]) mallory.publish(subject, event.data, { reply: "_INBOX_u_mallory.w", headers: event.headers });
    const refused = wild.length + internal.filter((w) => !w.split(".").includes(">")).length;
    await eventually(() => malloryRefusals.length >= refused, 5_000, "every wildcard publish refused");
    expect(malloryRefusals.every((r) => /Permissions Violation for Publish to/.test(r))).toBe(true);
    // Her next event is stored after all of those were handled.
    const marker = encodeEvent(UserMessageSchema, create(UserMessageSchema, { sessionId: "swm", user: "mallory", turnId: "t", text: "hi" }), { source: "mallory" });
    await mallory.request(subjects.topic({ type: "hr", source: { user: "mallory", session: "swm" } }), marker.data, { headers: marker.headers, timeout: 5_000 });
    const { state } = await jsm.streams.info(subjects.eventStream, { subjects_filter: ">" });
    expect(Object.keys(state.subjects ?? {}).filter((s) => s.split(".").some((t) => t === "*" || t === ">" || t.includes("*")))).toEqual([]);
    expect(await malloryEvents()).toBe(stored + 1);
    malloryRefusals.length = 0;
  });

  it("an answer arriving in a user's account is stored once, not sent back through the user's import", async () => {
    const hostNc = await server.open(Role.Host);
    const subject = subjects.topic({ type: "response", source: { user: "alice", session: "sloop" } });
    const receivedBefore = aliceReceived.length;
    // No message id: the stream would store a copy coming back, not discard it as a duplicate.
    hostNc.publish(subject, toBinary(UserMessageSchema, create(UserMessageSchema, { text: "x" })));
    hostNc.publish(subjects.topic({ type: "response", source: { user: "alice", session: "sloop2" } }), new Uint8Array(1));
    await hostNc.flush();
    await eventually(() => aliceReceived.length >= receivedBefore + 2, 5_000, "alice received both");
    await eventually(async () => {
      const { state } = await jsm.streams.info(subjects.eventStream, { subjects_filter: "sb.topic.response.alice.sloop2" });
      return (state.subjects?.["sb.topic.response.alice.sloop2"] ?? 0) >= 1;
    }, 5_000, "the second stored");
    const { state } = await jsm.streams.info(subjects.eventStream, { subjects_filter: subject });
    expect(state.subjects?.[subject]).toBe(1);
    expect(aliceReceived.slice(receivedBefore).sort()).toEqual([subject, "sb.topic.response.alice.sloop2"]);
  });

  it("a service answers only at an inbox: no identity that may ask it can point its permissions elsewhere", async () => {
    const before = await snapshot();
    const receivedBefore = aliceReceived.length;
    const loot = subjects.topic({ type: "response", source: { user: "mallory", session: "loot" } });
    const looted: string[] = [];
    mallory.subscribe(loot, { callback: (_e, m) => void looted.push(m.subject) });
    await mallory.flush();
    const list = [...targets(before), loot];
    // Two holders of the worker's credentials, one answering what the other sends it, at the
    // subjects a worker may not write to itself (it answers every user, keeps agent state and
    // learns routing, so topics, deltas and those buckets are its to write anyway).
    const workersOwn = /^(sb\.(topic|inbound|delta)\.|\$KV\.(agent_state|routing)\.|sb\.host\.(register|heartbeat|deregister)$)/;
    const [asker, answerer] = [await server.open(Role.Worker), await server.open(Role.Worker)];
    const answererRefusals = collectRefusals(answerer);
    answerer.subscribe("sb.rpc.zz.me.x", { callback: (_e, m) => void m.respond(new Uint8Array(0)) });
    await answerer.flush();
    for (const reply of list.filter((r) => !workersOwn.test(r))) asker.publish("sb.rpc.zz.me.x", new Uint8Array(0), { reply });
    const admin = await server.open(Role.Admin);
    for (const reply of list) {
      // The host answers workers' registrations and heartbeats, and admin queries; every service
      // answers micro discovery, which admin may ask.
      for (const verb of [HostVerb.Register, HostVerb.Heartbeat, HostVerb.Deregister]) asker.publish(subjects.host(verb), new Uint8Array(0), { reply });
      for (const verb of [HostVerb.ListAgents, HostVerb.ListWorkers, HostVerb.ListSessions, HostVerb.GetSession, HostVerb.ListDeadLetters]) admin.publish(subjects.host(verb), new Uint8Array(0), { reply });
      for (const verb of ["PING", "INFO", "STATS"]) admin.publish(`$SRV.${verb}`, new Uint8Array(0), { reply });
    }
    await Promise.all([asker.flush(), admin.flush()]);
    // Answered in order: once these are, every request before them has been handled.
    await new HostClient(admin, subjects).agents();
    await new Promise((r) => setTimeout(r, 500));
    expectUntouched(before, await snapshot());
    expect(aliceReceived.slice(receivedBefore)).toEqual([]);
    expect(looted).toEqual([]);
    expect(answererRefusals.length).toBeGreaterThan(0);
    expect(answererRefusals.every((r) => /Permissions Violation for Publish/.test(r))).toBe(true);
  });

  it("a reply subject ending in a wildcard leaves the server running", async () => {
    const event = encodeEvent(UserMessageSchema, create(UserMessageSchema, { sessionId: "swr", user: "mallory", turnId: "t", text: "hi" }), { source: "mallory" });
    for (const reply of [">", "*", "_INBOX_u_mallory.>", "_INBOX_u_mallory.*", "sb.topic.response.mallory.*"]) {
      mallory.publish(subjects.topic({ type: "hr", source: { user: "mallory", session: "swr" } }), event.data, { reply, headers: event.headers });
    }
    await mallory.flush();
    // nats-server before 2.9.15 recursed without end here and died (nats-io/nats-server#3862).
    await new Promise((r) => setTimeout(r, 1_000));
    expect(server.running).toBe(true);
    malloryRefusals.length = 0;
  });

  it("afterwards alice still converses and the registry still reads", async () => {
    expect((await alice.send("and the travel costs?")).map((e) => e.event)).toEqual(["reply"]);
    const admin = new HostClient(await server.open(Role.Admin), subjects);
    expect((await admin.agents()).map((a) => a.spec?.type)).toEqual(expect.arrayContaining(["finance", "hr", "router"]));
    const record = await eventually(async () => {
      const entry = await buckets.get(subjects.sessionsBucket)?.get(aliceSession);
      const value = entry?.value ? fromBinary(SessionRecordSchema, entry.value) : undefined;
      return value?.turns === 2 ? value : undefined;
    }, 10_000, "alice's second turn recorded");
    expect(record.user).toBe("alice");
  });
});
