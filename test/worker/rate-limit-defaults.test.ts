import { create, isMessage } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { builtinAgents } from "../../src/agents/builtin.js";
import { ChatSession } from "../../src/cli/chat-session.js";
import { loadConfig } from "../../src/core/config.js";
import { AgentReplySchema, ErrorEventSchema, UserMessageSchema } from "../../src/gen/switchboard/v1/conversation_pb.js";
import { rateLimitFor } from "../../src/worker/rate-limit.js";
import { failsOnce } from "../helpers/fails-once-agent.js";
import { watchResponses } from "../helpers/responses.js";
import { eventually, subjects, withHostedSystem, type TestSystem } from "../helpers/system.js";

const server = (authRequired: boolean) => ({ info: { auth_required: authRequired } }) as unknown as NatsConnection;

describe("the per-user rate limit's default", () => {
  it("is on where users are authenticated, off on an open server, and off when set to 0", () => {
    expect(rateLimitFor(loadConfig({}, {}), server(true))).toEqual({ perSecond: 10, burst: 20 });
    expect(rateLimitFor(loadConfig({}, {}), server(false))).toBeUndefined();
    expect(rateLimitFor(loadConfig({}, { SB_RATE_LIMIT: "0" }), server(true))).toBeUndefined();
    expect(rateLimitFor(loadConfig({}, { SB_RATE_LIMIT: "3", SB_RATE_BURST: "4" }), server(false))).toEqual({ perSecond: 3, burst: 4 });
  });
});

describe("the per-user rate limit and redeliveries", () => {
  let sys: TestSystem;
  withHostedSystem((s) => (sys = s));

  it("does not charge a redelivered message again: our own retry is not the user's flood", async () => {
    // One message a second, no burst: a redelivery 0.5 s later would be over the limit if charged.
    const worker = await sys.startWorker([failsOnce()], { rateLimit: { perSecond: 1, burst: 1 }, consumer: { ackWaitMs: 5_000 } });
    const seen = await watchResponses(await sys.connect(), "alice");
    await worker.runtime.publish(create(UserMessageSchema, { sessionId: "s1", user: "alice", turnId: "t1", text: "hello" }), { type: "flaky", source: { user: "alice", session: "s1" } });
    await eventually(() => seen.some((e) => isMessage(e.message, AgentReplySchema)), 10_000, "the reply to the redelivered message");
    expect(seen.flatMap((e) => (isMessage(e.message, ErrorEventSchema) ? [e.message.code] : []))).toEqual([]);
  });

  it("answers every message of a client that sends as fast as it is answered: a reply or rate_limited, never silence", async () => {
    // The worker's notices to one user are limited too (one a second, bursts of three): without a
    // pause after rate_limited, a fast client's later messages were dropped without a word.
    await sys.startWorker(["router", "user_proxy"]);
    await sys.startWorker(builtinAgents(["finance"]), { rateLimit: { perSecond: 2, burst: 3 } });
    const chat = new ChatSession({ nc: await sys.connect("dora"), subjects, user: "dora", logger: sys.logger, replyTimeoutMs: 5_000 });
    await chat.start();
    sys.closers.push(() => chat.close());
    await chat.send("I need help with my budget");
    const outcomes: string[] = [];
    for (let i = 1; i <= 12; i++) {
      const last = (await chat.send(`budget question ${i}`)).at(-1);
      outcomes.push(last?.event === "error" ? last.code : (last?.event ?? "none"));
    }
    expect(outcomes).toContain("rate_limited");
    expect(outcomes.filter((o) => o !== "reply" && o !== "rate_limited")).toEqual([]);
    // Dropped messages reached no agent: the JSON chat's exit code says so.
    expect(chat.unsentMessages).toBe(outcomes.filter((o) => o === "rate_limited").length);
  });
});
