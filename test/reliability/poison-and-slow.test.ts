import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ErrorEventSchema, UserMessageSchema, type ErrorEvent } from "../../src/gen/switchboard/v1/conversation_pb.js";
import { ProbeAgentType } from "../helpers/probe-agent.js";
import { watchResponses } from "../helpers/responses.js";
import { eventually, withHostedSystem, TestSystem } from "../helpers/system.js";

const msg = (text: string, session: string) => create(UserMessageSchema, { sessionId: session, user: "alice", turnId: `t-${session}`, text });
const topic = (type: string, session: string) => ({ type, source: { user: "alice", session } });

describe("poison and slow messages", () => {
  let sys: TestSystem;
  withHostedSystem((s) => (sys = s));

  it("dead-letters a message whose handler keeps failing, tells the user, and replays it on request", async () => {
    const probe = new ProbeAgentType("fragile", { failOn: "boom" });
    const worker = await sys.startWorker([probe], { consumer: { maxDeliver: 3, ackWaitMs: 2_000 } });
    const wire = await watchResponses(await sys.connect(), "alice");
    await worker.runtime.publish(msg("boom", "s1"), topic("fragile", "s1"));

    await eventually(() => wire.some((e) => e.message.$typeName === ErrorEventSchema.typeName), 10_000, "error event");
    const error = wire.find((e) => e.message.$typeName === ErrorEventSchema.typeName)!.message as ErrorEvent;
    expect(error).toMatchObject({ code: "handler_failed", sessionId: "s1", turnId: "t-s1" });
    expect(error.message).toMatch(/fragile agent failed/);

    const admin = await sys.hostClient();
    const [letter] = await eventually(async () => {
      const letters = await admin.deadLetters();
      return letters.length > 0 ? letters : undefined;
    }, 5_000, "dead letter");
    expect(letter).toMatchObject({ agentType: "fragile", topicType: "fragile", user: "alice", sessionId: "s1", deliveries: 3, eventType: UserMessageSchema.typeName });
    expect(letter?.error).toMatch(/probe failure/);
    // Other messages still flow.
    await worker.runtime.publish(msg("fine", "s2"), topic("fragile", "s2"));
    await eventually(() => probe.handled.some((h) => h.text === "fine"), 5_000, "healthy message");

    // Once the cause is fixed, the message can be replayed.
    probe.failOn = undefined;
    const replayed = await admin.replayDeadLetter(Number(letter!.seq));
    expect(replayed.subject).toBe("sb.topic.fragile.alice.s1");
    await eventually(() => probe.handled.some((h) => h.text === "boom"), 5_000, "replayed message handled");
    expect(await admin.deadLetters()).toHaveLength(0);
    await expect(admin.replayDeadLetter(Number(letter!.seq))).rejects.toThrow(/no dead letter/);
  });

  it("keeps a slow handler's message (in-progress acks) instead of redelivering it to another worker", async () => {
    const one = new ProbeAgentType("slow", { delayMs: 3_000, workerTag: "one" });
    const two = new ProbeAgentType("slow", { delayMs: 3_000, workerTag: "two" });
    await sys.startWorker([one], { consumer: { ackWaitMs: 1_000 } });
    const w2 = await sys.startWorker([two], { consumer: { ackWaitMs: 1_000 } });
    await w2.runtime.publish(msg("long job", "s1"), topic("slow", "s1"));
    await eventually(() => one.handled.length + two.handled.length === 1, 10_000, "handled");
    await new Promise((r) => setTimeout(r, 1_500));
    // Three times the ack wait, handled exactly once.
    expect(one.handled.length + two.handled.length).toBe(1);
    expect(one.active + two.active).toBe(0);
  });
});
