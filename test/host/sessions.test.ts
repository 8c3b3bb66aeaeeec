import { create, toBinary } from "@bufbuild/protobuf";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AgentReplySchema, RoutedSchema, UserMessageSchema } from "../../src/gen/switchboard/v1/conversation_pb.js";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { readRecord } from "../../src/core/kv-records.js";
import { ProjectorCheckpointSchema, SessionState, TranscriptRole } from "../../src/gen/switchboard/v1/registry_pb.js";
import type { Host } from "../../src/host/host.js";
import { applyEvent } from "../../src/host/session-state.js";
import { openChat } from "../helpers/chat.js";
import { eventually, subjects, TestSystem } from "../helpers/system.js";

const at = (seq: number, type: string) => ({ seq: BigInt(seq), topic: { type, source: { user: "alice", session: "s1" } }, atMs: 1_000 + seq });
const user = (turnId: string, text: string) => create(UserMessageSchema, { sessionId: "s1", user: "alice", turnId, text });

describe("session state folding", () => {
  it("opens on the first message, routes, counts turns once per user message and ignores replays", () => {
    const opened = applyEvent(undefined, user("t1", "budget"), at(1, "default"));
    expect(opened?.changes).toEqual(["opened", "turn"]);
    // The router forwards the same turn to the agent's topic: not a second turn.
    const forwarded = applyEvent(opened!.record, user("t1", "budget"), at(3, "finance"));
    const routed = applyEvent(forwarded!.record, create(RoutedSchema, { turnId: "t1", agentType: "finance", intent: "keyword:budget", score: 1 }), at(2, "response"));
    expect(routed?.record).toMatchObject({ state: SessionState.ROUTED, agentType: "finance", intent: "keyword:budget", turns: 1 });
    expect(applyEvent(routed!.record, user("t1", "budget"), at(3, "finance"))).toBeUndefined();
  });

  it("keeps the transcript in stream order whatever order events are applied in", () => {
    let record = applyEvent(undefined, create(AgentReplySchema, { turnId: "t1", agentType: "hr", content: "hi" }), at(5, "response"))!.record;
    record = applyEvent(record, user("t1", "hello"), at(2, "default"))!.record;
    expect(record.transcript.map((e) => e.role)).toEqual([TranscriptRole.USER, TranscriptRole.AGENT]);
  });

  it("ignores agent output on its way to the user proxy (it is recorded once, from the response topic)", () => {
    expect(applyEvent(undefined, create(AgentReplySchema, { turnId: "t1", content: "hi" }), at(1, "user_proxy"))).toBeUndefined();
  });
});

describe("session state kept by the host", () => {
  let sys: TestSystem;
  let host: Host;
  beforeEach(async () => {
    sys = await TestSystem.start();
    host = await sys.startHost();
    await sys.startWorker(["router", "user_proxy", "hr", "finance"]);
  });
  afterEach(async () => {
    await sys.close();
  });

  it("records routing, every turn and the end of a session", async () => {
    const chat = await openChat(sys);
    await chat.send("I need help with my budget");
    const sessionId = chat.sessionId;
    await chat.send("and the forecast too");
    await chat.send("thanks, END");
    const admin = await sys.hostClient();
    const session = await eventually(async () => {
      const s = await admin.session(sessionId);
      return s?.state === SessionState.ENDED ? s : undefined;
    }, 5_000, "ended session");
    expect(session).toMatchObject({ user: "alice", agentType: "finance", intent: "keyword:budget", turns: 3 });
    expect(session.transcript.map((e) => [e.role, e.text])).toEqual([
      [TranscriptRole.USER, "I need help with my budget"],
      [TranscriptRole.AGENT, "Hello from finance_agent! You said: I need help with my budget"],
      [TranscriptRole.USER, "and the forecast too"],
      [TranscriptRole.AGENT, "Hello from finance_agent! You said: and the forecast too"],
      [TranscriptRole.USER, "thanks, END"],
      [TranscriptRole.SYSTEM, "Session ended. Thank you for contacting finance_agent."],
    ]);
    const listed = await admin.sessions();
    expect(listed.map((s) => s.sessionId)).toContain(sessionId);
    expect(await admin.session("s-does-not-exist")).toBeUndefined();
  });

  it("catches up on events published while no host was running", async () => {
    const chat = await openChat(sys, "bob");
    // Stop the only host: the conversation does not need one.
    await host.close();
    const events = await chat.send("Talk to HR please");
    expect(events.at(-1)).toMatchObject({ event: "reply", agent: "hr" });
    const sessionId = chat.sessionId;
    await sys.startHost();
    const admin = await sys.hostClient();
    const session = await eventually(async () => {
      const s = await admin.session(sessionId);
      return s && s.turns === 1 && s.transcript.length === 2 ? s : undefined;
    }, 5_000, "caught-up session");
    expect(session.agentType).toBe("hr");
  });

  it("keeps a checkpoint at the end of the stream, resumes from it, and never lists it as a session", async () => {
    const chat = await openChat(sys, "cat");
    await chat.send("I need help with my budget");
    const nc = await sys.connect();
    const jsm = await jetstreamManager(nc);
    const sessions = await new Kvm(nc).open(subjects.sessionsBucket);
    const checkpoint = async () => Number((await readRecord(sessions, subjects.projectorCheckpointKey, ProjectorCheckpointSchema))?.value.seq ?? 0n);
    const lastSeq = async () => (await jsm.streams.info(subjects.eventStream)).state.last_seq;
    await eventually(async () => (await checkpoint()) === (await lastSeq()), 5_000, "checkpoint at the end of the stream");

    // A host that starts later reads from the checkpoint: it finds nothing to replay.
    await host.close();
    const end = await lastSeq();
    const restarted = await sys.startHost();
    const consumers = await jsm.consumers.list(subjects.eventStream).next();
    const projector = consumers.find((c) => c.name.startsWith(subjects.projectorConsumerName(restarted.id)));
    expect(projector?.config.opt_start_seq).toBe(end + 1);
    await chat.send("and the forecast?");
    await eventually(async () => (await checkpoint()) === (await lastSeq()), 5_000, "checkpoint after the restart");
    expect(await lastSeq()).toBeGreaterThan(end);

    const listed = await (await sys.hostClient()).sessions();
    expect(listed.length).toBeGreaterThan(0);
    expect(listed.every((s) => s.sessionId !== "" && !s.sessionId.includes("."))).toBe(true);
  });

  it("reads the stream from the start when the checkpoint is beyond its end (the stream was recreated)", async () => {
    await host.close();
    const nc = await sys.connect();
    const sessions = await new Kvm(nc).open(subjects.sessionsBucket);
    await sessions.put(subjects.projectorCheckpointKey, toBinary(ProjectorCheckpointSchema, create(ProjectorCheckpointSchema, { seq: 1_000_000n, hostId: "gone" })));
    const chat = await openChat(sys, "dan");
    await chat.send("Talk to HR please");
    await sys.startHost();
    const admin = await sys.hostClient();
    const session = await eventually(async () => {
      const s = await admin.session(chat.sessionId);
      return s && s.turns === 1 ? s : undefined;
    }, 5_000, "session recorded despite the stale checkpoint");
    expect(session.agentType).toBe("hr");
  });
});
