import { create, isMessage } from "@bufbuild/protobuf";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { builtinAgents } from "../../src/agents/builtin.js";
import { encodeEvent } from "../../src/core/codec.js";
import { Role } from "../../src/core/roles.js";
import { AgentReplySchema, ErrorEventSchema, RoutedSchema, UserMessageSchema, type ErrorEvent } from "../../src/gen/switchboard/v1/conversation_pb.js";
import { createWorker, type Worker } from "../../src/worker/embedded-worker.js";
import { failsOnce } from "../helpers/fails-once-agent.js";
import { watchResponses, type SeenEvent } from "../helpers/responses.js";
import { SecureTestServer } from "../helpers/secure-server.js";
import { eventually, subjects } from "../helpers/system.js";

const errorsOf = (seen: readonly SeenEvent[]) => seen.flatMap((e) => (isMessage(e.message, ErrorEventSchema) ? [e.message as ErrorEvent] : []));

/**
 * The shipped nats.conf with per-user credentials and a worker embedded with nothing but its
 * defaults: the per-user rate limit must be on without being asked for.
 */
describe("the per-user rate limit with credentials and default settings", () => {
  let server: SecureTestServer;
  let worker: Worker;

  /** Publishes a user's message straight to one of their topics, as any NATS client may. */
  async function publish(nc: NatsConnection, topicType: string, user: string, session: string, text: string): Promise<void> {
    const event = encodeEvent(UserMessageSchema, create(UserMessageSchema, { sessionId: session, user, turnId: `t-${session}`, text }), { source: `switchboard/chat/${user}` });
    await jetstream(nc).publish(subjects.topic({ type: topicType, source: { user, session } }), event.data, { headers: event.headers, timeout: 10_000 });
  }

  beforeAll(async () => {
    server = await SecureTestServer.start({ users: ["alice", "mallory", "carol"] });
    await server.startHost();
    worker = createWorker({ nc: await server.open(Role.Worker), agents: [...builtinAgents(["router", "user_proxy", "finance"]), failsOnce()], logLevel: "warn" });
    await worker.start();
  }, 30_000);

  afterAll(async () => {
    await worker?.close();
    await server?.stop();
  });

  it("slows down a user who floods with rate_limited, and still answers another user", async () => {
    const mallory = await server.open(Role.Client, "mallory");
    const seen = await watchResponses(mallory, "mallory");
    await Promise.all(Array.from({ length: 60 }, (_, i) => publish(mallory, "default", "mallory", `flood${i}`, "I need help with my budget")));
    await eventually(() => errorsOf(seen).some((e) => e.code === "rate_limited"), 20_000, "a rate_limited error");
    expect(errorsOf(seen).find((e) => e.code === "rate_limited")?.message).toMatch(/^slow down: /);

    const alice = await server.chatAs("alice", { replyTimeoutMs: 10_000 });
    expect((await alice.send("I need help with my budget")).map((e) => e.event)).toEqual(["routed", "reply"]);
    await alice.close();

    // The default burst is 20 at 10 a second: far fewer than the 60 were routed.
    expect(seen.filter((e) => isMessage(e.message, RoutedSchema)).length).toBeLessThan(50);
  });

  it("does not charge redeliveries: a full burst whose every message is retried is answered in full", async () => {
    const carol = await server.open(Role.Client, "carol");
    const seen = await watchResponses(carol, "carol");
    // Exactly the default burst; each message fails once and comes back about half a second later,
    // when the bucket has refilled only a few tokens.
    const sessions = Array.from({ length: 20 }, (_, i) => `retry${i}`);
    await Promise.all(sessions.map((s) => publish(carol, "flaky", "carol", s, "hello")));
    await eventually(
      () => errorsOf(seen).length > 0 || new Set(seen.filter((e) => isMessage(e.message, AgentReplySchema)).map((e) => e.session)).size === sessions.length,
      20_000,
      "every reply or an error",
    );
    expect(errorsOf(seen).map((e) => e.code)).toEqual([]);
    expect(new Set(seen.filter((e) => isMessage(e.message, AgentReplySchema)).map((e) => e.session))).toEqual(new Set(sessions));
  });
});
