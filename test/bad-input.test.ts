import { create, toBinary } from "@bufbuild/protobuf";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { decodeEvent, encodeEvent } from "../src/core/codec.js";
import { RemoteError } from "../src/core/errors.js";
import { ErrorEventSchema, UserMessageSchema, type ErrorEvent } from "../src/gen/switchboard/v1/conversation_pb.js";
import type { Worker } from "../src/worker/worker.js";
import { openChat } from "./helpers/chat.js";
import { eventually, subjects, TestSystem } from "./helpers/system.js";

const userMessage = (session: string, text = "budget please", user = "mallory") => create(UserMessageSchema, { sessionId: session, user, turnId: `t-${session}`, text });

/** Collects the ErrorEvents delivered to one user. */
async function errorsFor(nc: NatsConnection, user: string): Promise<ErrorEvent[]> {
  const seen: ErrorEvent[] = [];
  nc.subscribe(subjects.userTopics("response", user), {
    callback: (_err, msg) => {
      try {
        const decoded = decodeEvent(msg);
        if (decoded.message.$typeName === ErrorEventSchema.typeName) seen.push(decoded.message as ErrorEvent);
      } catch {
        // not ours to judge
      }
    },
  });
  await nc.flush();
  return seen;
}

describe("bad input", () => {
  let sys: TestSystem;
  let worker: Worker;
  let nc: NatsConnection;
  beforeEach(async () => {
    sys = await TestSystem.start();
    await sys.startHost();
    worker = await sys.startWorker(["router", "user_proxy", "hr", "finance"]);
    nc = await sys.connect("mallory");
  });
  afterEach(async () => {
    await sys.close();
  });

  async function publishRaw(subject: string, data: Uint8Array, h = natsHeaders()): Promise<void> {
    await jetstream(nc).publish(subject, data, { headers: h });
  }

  it("answers malformed protobuf, an unknown ce-type and missing headers with an error event, and keeps serving", async () => {
    const errors = await errorsFor(nc, "mallory");
    const good = encodeEvent(UserMessageSchema, userMessage("s1"), { source: "test" });

    const garbage = encodeEvent(UserMessageSchema, userMessage("s1"), { source: "test" });
    await publishRaw("sb.topic.default.mallory.s1", new Uint8Array([0x0a, 0xff, 0xff, 0xff]), garbage.headers);

    const wrongType = natsHeaders();
    for (const [k, v] of good.headers) wrongType.set(k, v[0] ?? "");
    wrongType.set("ce-id", "x1");
    wrongType.set("Nats-Msg-Id", "x1");
    wrongType.set("ce-type", "switchboard.v1.NoSuchThing");
    await publishRaw("sb.topic.default.mallory.s2", good.data, wrongType);

    await publishRaw("sb.topic.default.mallory.s3", good.data);

    await eventually(() => errors.length >= 3, 5_000, "three error events");
    expect(errors.map((e) => [e.sessionId, e.code]).sort()).toEqual([
      ["s1", "invalid_message"],
      ["s2", "unknown_type"],
      ["s3", "invalid_specversion"],
    ]);
    // Nothing crashed and other users are served as usual.
    const chat = await openChat(sys, "alice");
    expect((await chat.send("I need help with my budget")).map((e) => e.event)).toEqual(["routed", "reply"]);
  });

  it("drops events whose subject carries ids that are not subject-safe", async () => {
    const event = encodeEvent(UserMessageSchema, userMessage("s1"), { source: "test" });
    await publishRaw("sb.topic.default.mall@ry.s1", event.data, event.headers);
    await publishRaw(`sb.topic.default.${"x".repeat(80)}.s1`, event.data, event.headers);
    const jsm = await jetstreamManager(nc);
    await eventually(async () => {
      const info = await jsm.consumers.info(subjects.eventStream, subjects.consumer("router", "default"));
      return info.num_pending === 0 && info.num_ack_pending === 0;
    }, 5_000, "both events consumed");
    const chat = await openChat(sys, "alice");
    expect((await chat.send("Talk to HR please"))[0]).toMatchObject({ event: "routed", agent: "hr" });
  });

  it("tells the user at once when a message goes to an agent type nobody serves", async () => {
    const errors = await errorsFor(nc, "mallory");
    const unknown = encodeEvent(UserMessageSchema, userMessage("s9", "hello"), { source: "test" });
    await publishRaw("sb.topic.payroll.mallory.s9", unknown.data, unknown.headers);
    await eventually(() => errors.length === 1, 5_000, "unknown agent error");
    expect(errors[0]).toMatchObject({ code: "unknown_agent", sessionId: "s9" });
    expect(errors[0]?.message).toMatch(/no agent type "payroll"/);
  });

  it("says the message is queued when its agent type has no live worker, and answers it when one starts", async () => {
    const chat = await openChat(sys, "alice", 8_000);
    expect((await chat.send("budget please"))[0]).toMatchObject({ event: "routed", agent: "finance" });
    await worker.close();
    const replacement = sys.startWorker(["router", "user_proxy"]).then(async () => {
      await new Promise((r) => setTimeout(r, 1_000));
      return sys.startWorker(["finance"]);
    });
    const events = await chat.send("are you still there?");
    await replacement;
    expect(events.map((e) => e.event)).toEqual(["queued", "reply"]);
    expect(events[0]).toMatchObject({ agent: "finance" });
    expect(events[1]).toMatchObject({ content: "Hello from finance_agent! You said: are you still there?" });
  });

  it("rejects RPCs with malformed bodies or keys, with a typed error", async () => {
    const rpc = subjects.rpc({ type: "hr", key: "alice.s1" });
    const h = encodeEvent(UserMessageSchema, userMessage("s1"), { source: "test", id: "r1" }).headers;
    const reply = await nc.request(rpc, new Uint8Array([0xff, 0xff]), { headers: h, timeout: 5_000 });
    expect(reply.headers?.get("sb-error-code")).toBe("invalid_message");
    const badKey = await nc.request("sb.rpc.hr.al@ce.s1", toBinary(UserMessageSchema, userMessage("s1")), { headers: h, timeout: 5_000 });
    expect(badKey.headers?.get("sb-error-code")).toBe("invalid_id");
    await expect(worker.runtime.send(create(ErrorEventSchema, {}), { type: "hr", key: "alice.s1" }, { timeoutMs: 5_000 })).rejects.toBeInstanceOf(RemoteError);
  });

  it("refuses an oversized chat message before it reaches the bus", async () => {
    const chat = await openChat(sys, "alice");
    const [event] = await chat.send("x".repeat(20_000));
    expect(event).toMatchObject({ event: "error", code: "invalid_message" });
    expect((await chat.send("budget please"))[0]).toMatchObject({ event: "routed" });
  });
});
