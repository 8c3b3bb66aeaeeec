import { create, isMessage } from "@bufbuild/protobuf";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatSession } from "../src/cli/chat-session.js";
import { jsonLine, sanitizeForTerminal } from "../src/cli/terminal.js";
import { encodeEvent } from "../src/core/codec.js";
import { InvalidIdError } from "../src/core/errors.js";
import { ErrorEventSchema, RoutedSchema, UserMessageSchema, type ErrorEvent } from "../src/gen/switchboard/v1/conversation_pb.js";
import { TokenBuckets } from "../src/worker/rate-limit.js";
import { openChat } from "./helpers/chat.js";
import { runCliToEnd } from "./helpers/cli.js";
import { watchResponses, type SeenEvent } from "./helpers/responses.js";
import { eventually, subjects, TestSystem } from "./helpers/system.js";

const errorsOf = (seen: readonly SeenEvent[]) => seen.flatMap((e) => (isMessage(e.message, ErrorEventSchema) ? [e.message as ErrorEvent] : []));

describe("hostile input against a running system", () => {
  let sys: TestSystem;
  let mallory: NatsConnection;

  beforeAll(async () => {
    sys = await TestSystem.start();
    await sys.startHost();
    await sys.startWorker(["router", "user_proxy", "hr", "finance"], { rateLimit: { perSecond: 2, burst: 5 } });
    mallory = await sys.connect("mallory");
  });
  afterAll(async () => {
    await sys.close();
  });

  async function publishAs(user: string, session: string, text: string, topicType = "default", bodyUser = user, bodySession = session): Promise<void> {
    const event = encodeEvent(UserMessageSchema, create(UserMessageSchema, { sessionId: bodySession, user: bodyUser, turnId: `t-${session}`, text }), { source: "test" });
    await jetstream(mallory).publish(`sb.topic.${topicType}.${user}.${session}`, event.data, { headers: event.headers });
  }

  it("slows down a user who floods, with a rate_limited error, while other users are served as usual", async () => {
    const seen = await watchResponses(mallory, "mallory");
    const flood = Array.from({ length: 40 }, (_, i) => publishAs("mallory", `f${i}`, "I need help with my budget"));
    const alice = await openChat(sys, "alice", 10_000);
    const started = Date.now();
    const answer = await alice.send("I need help with my budget");
    await Promise.all(flood);
    expect(answer.map((e) => e.event)).toEqual(["routed", "reply"]);
    expect(Date.now() - started).toBeLessThan(5_000);
    await eventually(() => errorsOf(seen).some((e) => e.code === "rate_limited"), 5_000, "a rate_limited error");
    const limited = errorsOf(seen).find((e) => e.code === "rate_limited");
    expect(limited?.message).toMatch(/^slow down: /);
    // The router handled the burst and no more (plus what trickled back in meanwhile).
    await new Promise((r) => setTimeout(r, 500));
    const routed = seen.filter((e) => isMessage(e.message, RoutedSchema)).length;
    expect(routed).toBeGreaterThanOrEqual(5);
    expect(routed).toBeLessThan(15);
    // Telling the flooder is itself bounded: far fewer notices than dropped messages.
    expect(errorsOf(seen).filter((e) => e.code === "rate_limited").length).toBeLessThan(10);
  });

  it("drops a message whose body names another user's session, and tells its sender", async () => {
    const bob = await sys.connect("bob");
    const bobSees = await watchResponses(bob, "bob");
    // Another sender than the flooder above, whose notices are spent for the moment.
    const malSees = await watchResponses(mallory, "trudy");
    await publishAs("trudy", "s-forge", "I need help with my budget", "default", "bob", "s-bob");
    await publishAs("trudy", "s-forge2", "I need help with my budget", "finance", "bob", "s-bob");
    await eventually(() => errorsOf(malSees).length >= 2, 5_000, "two rejections");
    expect(errorsOf(malSees).map((e) => [e.sessionId, e.code]).sort()).toEqual([
      ["s-forge", "invalid_message"],
      ["s-forge2", "invalid_message"],
    ]);
    await new Promise((r) => setTimeout(r, 300));
    expect(bobSees).toEqual([]);
  });

  it("refuses text longer than a chat would send, from any client", async () => {
    const seen = await watchResponses(mallory, "oscar");
    await publishAs("oscar", "s-long", "x".repeat(100_000));
    const [error] = await eventually(() => (errorsOf(seen).length > 0 ? errorsOf(seen) : undefined), 5_000, "a rejection");
    expect(error).toMatchObject({ sessionId: "s-long", code: "invalid_message" });
    expect(error?.message).toMatch(/too long \(100000 characters, at most 16000\)/);
  });

  it("refuses messages over the server's 1 MB limit before they are sent, and keeps serving", async () => {
    await expect(publishAs("mallory", "s-huge", "x".repeat(1_100_000))).rejects.toThrow(/max_payload|payload/i);
    const chat = await openChat(sys, "carol");
    expect((await chat.send("Talk to HR please"))[0]).toMatchObject({ event: "routed", agent: "hr" });
  });

  it("refuses user names that are not subject-safe, before anything is sent", async () => {
    const nc = await sys.connect("names");
    for (const user of ["a.b", "a*", "a>", "a b", "", "x".repeat(65), "al\u001b[2Jice"]) {
      expect(() => new ChatSession({ nc, subjects, user, logger: sys.logger, replyTimeoutMs: 1_000 })).toThrow(InvalidIdError);
    }
    const cli = await runCliToEnd(["chat", "--user", "bad.name", "--nats", sys.url]);
    // A name given on the command line that cannot be one is wrong usage.
    expect(cli.code).toBe(2);
    expect(cli.stderr).toMatch(/invalid user name "bad.name": use 1-64 characters/);
  });
});

describe("text from the network reaching a terminal", () => {
  const hostile = "ok\u001b[2J\u001b[H\u001b]0;pwned\u0007\u001b]8;;http://evil\u001b\\link\u001b]8;;\u001b\\\u009b31m\u0007\r\u0008done\u001bPq\u001b\\";

  it("keeps no escape sequence or control character that could repaint or retitle the terminal", () => {
    const safe = sanitizeForTerminal(hostile);
    expect(safe).toBe("oklinkdone");
    expect(sanitizeForTerminal("line one\nline\ttwo")).toBe("line one\nline\ttwo");
  });

  it("writes JSON lines with every control character escaped, C1 included", () => {
    const line = jsonLine({ event: "reply", content: hostile });
    expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    expect(JSON.parse(line)).toEqual({ event: "reply", content: hostile });
  });

  it("escapes bidirectional controls in JSON and removes them from terminal text", () => {
    const bidi = "invoice\u202etxt.exe\u202c \u2066a\u2069 \u200eb\u200f \u061cc \u202a\u202b\u202d\u2067\u2068";
    const line = jsonLine({ content: bidi });
    expect(line).not.toMatch(/[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/);
    expect(line).toContain("\\u202e");
    expect(JSON.parse(line)).toEqual({ content: bidi });
    expect(sanitizeForTerminal(bidi)).toBe("invoicetxt.exe a b c ");
  });
});

describe("the per-user token bucket", () => {
  it("allows a burst, then the rate, per key, and forgets the least recently seen keys", () => {
    let now = 0;
    const buckets = new TokenBuckets({ perSecond: 2, burst: 3, maxKeys: 2 }, () => now);
    expect([1, 2, 3, 4].map(() => buckets.take("a"))).toEqual([true, true, true, false]);
    expect(buckets.take("b")).toBe(true);
    now += 500;
    expect(buckets.take("a")).toBe(true);
    expect(buckets.take("a")).toBe(false);
    buckets.take("c");
    expect(buckets.size).toBe(2);
  });
});
