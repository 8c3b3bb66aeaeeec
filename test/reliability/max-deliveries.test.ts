import { create, isMessage } from "@bufbuild/protobuf";
import { jetstream } from "@nats-io/jetstream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { publishEvent } from "../../src/core/publish.js";
import { ErrorEventSchema, UserMessageSchema } from "../../src/gen/switchboard/v1/conversation_pb.js";
import { ProbeAgentType } from "../helpers/probe-agent.js";
import { watchResponses } from "../helpers/responses.js";
import { eventually, subjects, TestSystem } from "../helpers/system.js";

/**
 * A message can run out of deliveries without any handler failing: the workers holding it die,
 * or keep handing it back. JetStream then gives up on it with nothing but an advisory; the hosts
 * must turn that into a dead letter and an error for the user, once.
 */
describe("a message that reaches its maximum deliveries without failing in a handler", () => {
  let sys: TestSystem;
  beforeEach(async () => {
    sys = await TestSystem.start();
  });
  afterEach(async () => {
    await sys.close();
  });

  it("becomes one dead letter and one error event for its turn, even with two hosts", async () => {
    await sys.startHost();
    await sys.startHost();
    // A worker creates the consumer (two deliveries, 500 ms ack wait) and goes away.
    const worker = await sys.startWorker([new ProbeAgentType("legal")], { consumer: { maxDeliver: 2, ackWaitMs: 500 } });
    await worker.close();
    const nc = await sys.connect("dying-workers");
    const wire = await watchResponses(nc, "alice");
    const js = jetstream(nc);
    await publishEvent(
      js,
      subjects,
      create(UserMessageSchema, { sessionId: "s1", user: "alice", turnId: "t-1", text: "a contract question" }),
      { type: "legal", source: { user: "alice", session: "s1" } },
      { source: "test", id: "e-contract" },
    );

    // Workers that pull the message and die before acking, twice.
    const consumer = await js.consumers.get(subjects.eventStream, subjects.consumer("legal", "legal"));
    for (let delivery = 1; delivery <= 2; delivery++) {
      const msg = await eventually(async () => (await consumer.next({ expires: 1_000 })) ?? undefined, 10_000, `delivery ${delivery}`);
      expect(msg.info.deliveryCount).toBe(delivery);
    }
    // The server gives up on a pull consumer's message when it next looks for one to deliver: as
    // the other workers of the type, still pulling, would make it.
    await new Promise((r) => setTimeout(r, 700));
    expect(await consumer.next({ expires: 1_000 })).toBeNull();

    const admin = await sys.hostClient();
    const letters = await eventually(async () => {
      const l = await admin.deadLetters();
      return l.length > 0 ? l : undefined;
    }, 10_000, "dead letter");
    expect(letters[0]).toMatchObject({ agentType: "legal", topicType: "legal", user: "alice", sessionId: "s1", deliveries: 2, eventId: "e-contract" });
    expect(letters[0]?.error).toMatch(/without being acknowledged/);
    const errors = () => wire.filter((e) => isMessage(e.message, ErrorEventSchema) && e.message.code === "handler_failed");
    await eventually(() => errors().length > 0, 10_000, "error event");
    expect(errors()[0]?.message).toMatchObject({ turnId: "t-1", sessionId: "s1", agentType: "legal", message: expect.stringContaining("delivered 2 times and never finished") });
    // Both hosts saw nothing twice: one dead letter, one error.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await admin.deadLetters()).toHaveLength(1);
    expect(errors()).toHaveLength(1);
  });
});
