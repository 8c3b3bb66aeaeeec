import { once } from "node:events";
import { create, isMessage, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { MsgHdrs, NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatSession } from "../src/cli/chat-session.js";
import { encodeEvent } from "../src/core/codec.js";
import { Role } from "../src/core/roles.js";
import { ErrorEventSchema, RoutedSchema, UserMessageSchema, type ErrorEvent } from "../src/gen/switchboard/v1/conversation_pb.js";
import { ClarifyAnswerSchema, HandoffSchema } from "../src/gen/switchboard/v1/routing_pb.js";
import { CliProcess, runCli } from "./helpers/cli.js";
import { watchResponses, type SeenEvent } from "./helpers/responses.js";
import { SecureTestServer } from "./helpers/secure-server.js";
import { eventually, subjects, testLogger } from "./helpers/system.js";

const errorsOf = (seen: readonly SeenEvent[], session?: string) =>
  seen.flatMap((e) => (isMessage(e.message, ErrorEventSchema) && (session === undefined || e.session === session) ? [e.message as ErrorEvent] : []));

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? 0;
}

/**
 * The shipped nats.conf, a host and a worker with every built-in agent as separate processes (the
 * worker with its default rate limit and the hybrid router), and users who publish what they like
 * with their own credentials, as an attacker with a NATS client would.
 */
describe("one guard for everything a user can publish, against the shipped configuration", () => {
  let server: SecureTestServer;
  let env: Record<string, string>;
  let host: CliProcess;
  let worker: CliProcess;
  let mallory: NatsConnection;
  const logger = testLogger();
  const opened: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    server = await SecureTestServer.start({ users: ["alice", "mallory", "trudy", "oscar", "carol"] });
    env = server.env({ SB_HEARTBEAT_MS: "500", SB_WORKER_TTL_MS: "5000" });
    host = runCli(["host"], env);
    await host.waitFor((p) => p.stderr.includes('"event":"host.started"'), 20_000, "host start");
    worker = runCli(["worker"], env);
    await worker.waitFor((p) => p.stderr.includes('"event":"worker.started"'), 30_000, "worker start");
    mallory = await as("mallory");
  }, 60_000);

  afterAll(async () => {
    for (const close of opened.reverse()) await close().catch(() => undefined);
    await worker?.stop("SIGKILL");
    await host?.stop("SIGKILL");
    await server?.stop();
  });

  async function as(user: string): Promise<NatsConnection> {
    const nc = await server.connectAs(Role.Client, user);
    opened.push(() => nc.close());
    return nc;
  }

  async function chatAs(user: string): Promise<ChatSession> {
    const chat = new ChatSession({ nc: await as(user), subjects, user, logger, replyTimeoutMs: 20_000 });
    await chat.start();
    opened.push(() => chat.close());
    return chat;
  }

  /** Publishes an event of any type to one of `user`'s topics, as a client with its own NATS library would. */
  async function publish<Desc extends DescMessage>(nc: NatsConnection, topicType: string, user: string, session: string, schema: Desc, body: MessageShape<Desc>, edit?: (h: MsgHdrs) => void): Promise<void> {
    const event = encodeEvent(schema, body, { source: `switchboard/chat/${user}` });
    edit?.(event.headers);
    await jetstream(nc).publish(subjects.topic({ type: topicType, source: { user, session } }), event.data, { headers: event.headers, timeout: 10_000 });
  }

  /** Runs a command to its end and returns all of its output, however long. */
  async function runToEnd(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const p = runCli(args, env);
    const chunks: Buffer[] = [];
    p.proc.stdout.on("data", (c: Buffer) => chunks.push(c));
    p.endInput();
    const [code] = await Promise.all([p.exited, once(p.proc.stdout, "close")]);
    return { code, stdout: Buffer.concat(chunks).toString("utf8"), stderr: p.stderr };
  }

  const ids = (user: string, session: string, turn = `t-${session}`) => ({ sessionId: session, user, turnId: turn });

  it("refuses an over-long Handoff, a type users may not send, and bad ids, each with an error event", async () => {
    const seen = await watchResponses(mallory, "mallory");
    const attempts: [string, () => Promise<void>][] = [
      ["h-long", () => publish(mallory, "default", "mallory", "h-long", HandoffSchema, create(HandoffSchema, { ...ids("mallory", "h-long"), fromAgentType: "finance", text: `budget ${"x".repeat(200_000)}`, reason: "keyword" }))],
      ["h-reason", () => publish(mallory, "default", "mallory", "h-reason", HandoffSchema, create(HandoffSchema, { ...ids("mallory", "h-reason"), fromAgentType: "finance", text: "budget", reason: "r".repeat(20_000) }))],
      ["h-routed", () => publish(mallory, "default", "mallory", "h-routed", RoutedSchema, create(RoutedSchema, { ...ids("mallory", "h-routed"), agentType: "finance", intent: "forged", score: 1 }))],
      ["h-topic", () => publish(mallory, "finance", "mallory", "h-topic", HandoffSchema, create(HandoffSchema, { ...ids("mallory", "h-topic"), text: "budget" }))],
      ["h-turn", () => publish(mallory, "default", "mallory", "h-turn", ClarifyAnswerSchema, create(ClarifyAnswerSchema, { ...ids("mallory", "h-turn", "t.*>"), agentType: "finance", originalText: "budget" }))],
    ];
    for (const [session, attempt] of attempts) {
      await attempt();
      await eventually(() => errorsOf(seen, session).length > 0, 20_000, `the refusal of ${session}`);
      // Refusal notices are themselves limited to about one a second per user.
      await new Promise((r) => setTimeout(r, 1_100));
    }
    const codes = Object.fromEntries(errorsOf(seen).map((e) => [e.sessionId, e.code]));
    expect(codes).toEqual({ "h-long": "invalid_message", "h-reason": "invalid_message", "h-routed": "type_not_allowed", "h-topic": "type_not_allowed", "h-turn": "invalid_message" });
    expect(errorsOf(seen, "h-long")[0]?.message).toMatch(/too long \(200007 characters, at most 16000\)/);
    // None of them was routed.
    expect(seen.filter((e) => isMessage(e.message, RoutedSchema))).toEqual([]);
  });

  it("rate-limits Handoffs like any other message from a user", async () => {
    const trudy = await as("trudy");
    const seen = await watchResponses(trudy, "trudy");
    await Promise.all(Array.from({ length: 60 }, (_, i) => publish(trudy, "default", "trudy", `burst${i}`, HandoffSchema, create(HandoffSchema, { ...ids("trudy", `burst${i}`), fromAgentType: "hr", text: "I need help with my budget", reason: "keyword" }))));
    await eventually(() => errorsOf(seen).some((e) => e.code === "rate_limited"), 20_000, "a rate_limited error");
    await new Promise((r) => setTimeout(r, 1_000));
    // The default burst is 20; a few more trickle in while the burst is read.
    expect(seen.filter((e) => isMessage(e.message, RoutedSchema)).length).toBeLessThan(40);
  });

  it("enforces every required CloudEvents header, one error code each", async () => {
    const oscar = await as("oscar");
    const seen = await watchResponses(oscar, "oscar");
    const cases: [string, (h: MsgHdrs) => void, string][] = [
      ["ce-nospec", (h) => h.delete("ce-specversion"), "invalid_specversion"],
      ["ce-spec03", (h) => h.set("ce-specversion", "0.3"), "invalid_specversion"],
      ["ce-nosource", (h) => h.delete("ce-source"), "invalid_source"],
      ["ce-badsource", (h) => h.set("ce-source", "switchboard chat"), "invalid_source"],
      ["ce-notime", (h) => h.delete("ce-time"), "invalid_time"],
      ["ce-badtime", (h) => h.set("ce-time", "yesterday"), "invalid_time"],
      ["ce-noid", (h) => h.delete("ce-id"), "invalid_event_id"],
      ["ce-notype", (h) => h.delete("ce-type"), "invalid_event_type"],
      ["ce-json", (h) => h.set("ce-datacontenttype", "application/json"), "unsupported_content_type"],
    ];
    for (const [session, edit] of cases) {
      await publish(oscar, "default", "oscar", session, UserMessageSchema, create(UserMessageSchema, { ...ids("oscar", session), text: "I need help with my budget" }), edit);
    }
    // A message with every header as the protocol describes it is answered.
    await publish(oscar, "default", "oscar", "ce-good", UserMessageSchema, create(UserMessageSchema, { ...ids("oscar", "ce-good"), text: "I need help with my budget" }));
    await eventually(() => errorsOf(seen).length >= cases.length && seen.some((e) => e.session === "ce-good" && isMessage(e.message, RoutedSchema)), 20_000, "every refusal and the good answer");
    const codes = Object.fromEntries(errorsOf(seen).map((e) => [e.sessionId, e.code]));
    expect(codes).toEqual(Object.fromEntries(cases.map(([session, , code]) => [session, code])));
    expect(seen.filter((e) => isMessage(e.message, RoutedSchema)).map((e) => e.session)).toEqual(["ce-good"]);
  });

  it("keeps another user's turns under 1 s at p99 while one user floods every publishable type and long words", async () => {
    const alice = await chatAs("alice");
    expect((await alice.send("I need help with my budget")).map((e) => e.event)).toEqual(["routed", "reply"]);
    const longWord = "y".repeat(16_000);
    const mixedWord = "abcdefghijklmnopqrstuvwxyz".repeat(616).slice(0, 16_000);
    let stop = false;
    let sent = 0;
    const flood = (async () => {
      for (let round = 0; !stop; round++) {
        const s = `fl${round}`;
        await Promise.all([
          publish(mallory, "default", "mallory", s, UserMessageSchema, create(UserMessageSchema, { ...ids("mallory", s), text: longWord })),
          publish(mallory, "default", "mallory", `${s}b`, UserMessageSchema, create(UserMessageSchema, { ...ids("mallory", `${s}b`), text: mixedWord })),
          publish(mallory, "finance", "mallory", `${s}c`, UserMessageSchema, create(UserMessageSchema, { ...ids("mallory", `${s}c`), text: `budget ${mixedWord.slice(0, 200)}` })),
          publish(mallory, "default", "mallory", `${s}d`, HandoffSchema, create(HandoffSchema, { ...ids("mallory", `${s}d`), fromAgentType: "hr", text: longWord, reason: "keyword" })),
          publish(mallory, "default", "mallory", `${s}e`, ClarifyAnswerSchema, create(ClarifyAnswerSchema, { ...ids("mallory", `${s}e`), agentType: "finance", originalText: `budget ${mixedWord.slice(0, 200)}` })),
          publish(mallory, "default", "mallory", `${s}f`, RoutedSchema, create(RoutedSchema, { ...ids("mallory", `${s}f`), agentType: "finance" })),
        ]);
        sent += 6;
      }
    })();
    const turns: number[] = [];
    try {
      // Let the flood fill the queues first.
      await new Promise((r) => setTimeout(r, 1_000));
      for (let i = 0; i < 100; i++) {
        const started = performance.now();
        const events = await alice.send(`how much budget is left for project ${i}?`);
        turns.push(performance.now() - started);
        // Alice stays within her own rate limit (10 a second).
        await new Promise((r) => setTimeout(r, Math.max(0, 150 - (performance.now() - started))));
        expect(events.map((e) => e.event)).toContain("reply");
      }
    } finally {
      stop = true;
      await flood;
    }
    expect(sent).toBeGreaterThan(100);
    expect(percentile(turns, 0.99)).toBeLessThan(1_000);
  }, 120_000);

  it("stores no more than the limits in session records, pages admin sessions, and shows bidi controls escaped", async () => {
    const carol = await as("carol");
    // Two sessions with one 600 KB message each, one with two, and enough long multi-byte ones to need several pages.
    const huge = "x".repeat(600_000);
    await publish(carol, "default", "carol", "big1", UserMessageSchema, create(UserMessageSchema, { ...ids("carol", "big1"), text: huge }));
    await publish(carol, "default", "carol", "big2", UserMessageSchema, create(UserMessageSchema, { ...ids("carol", "big2"), text: huge }));
    await publish(carol, "default", "carol", "big3", UserMessageSchema, create(UserMessageSchema, { ...ids("carol", "big3", "ta"), text: huge }));
    await publish(carol, "finance", "carol", "big3", UserMessageSchema, create(UserMessageSchema, { ...ids("carol", "big3", "tb"), text: huge }));
    for (let i = 0; i < 24; i++) {
      await publish(carol, "default", "carol", `euro${i}`, UserMessageSchema, create(UserMessageSchema, { ...ids("carol", `euro${i}`), text: "€".repeat(16_000) }));
    }
    await publish(carol, "default", "carol", "bidi", UserMessageSchema, create(UserMessageSchema, { ...ids("carol", "bidi"), text: "invoice \u202etxt.exe\u202c \u2066x\u2069 \u200f \u061c" }));
    // The projector moved past all of them: a later session shows up.
    const alice = await chatAs("alice");
    await alice.send("I need help with my budget");
    // 24 records of 48 KB are more than one 1 MB reply can hold.
    const admin = ["admin", "sessions", "--json", "--limit", "40"];
    const listed = await eventually(async () => {
      const run = await runToEnd(admin);
      if (run.code !== 0) throw new Error(run.stderr.slice(-500));
      const sessions = JSON.parse(run.stdout) as { sessionId: string; user: string; transcript?: { text: string }[] }[];
      return sessions.some((s) => s.sessionId === alice.sessionId) && sessions.filter((s) => s.user === "carol").length >= 28 ? { sessions, stdout: run.stdout } : undefined;
    }, 40_000, "every session listed");
    const big3 = listed.sessions.find((s) => s.sessionId === "big3");
    const typed = (big3?.transcript ?? []).filter((e) => e.text.startsWith("x"));
    expect(typed).toHaveLength(2);
    for (const entry of typed) expect(entry.text).toMatch(/^x{16000} … \[584000 more characters not kept\]$/);
    // JSON output escapes bidi controls, and reads back unchanged.
    expect(listed.stdout).not.toMatch(/[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/);
    expect(listed.stdout).toContain("\\u202e");
    expect(listed.sessions.find((s) => s.sessionId === "bidi")?.transcript?.[0]?.text).toContain("\u202etxt.exe");
    // The projector never got stuck on a session it could not write.
    expect(host.stderr).not.toContain('"event":"session.apply_failed"');
  }, 120_000);

  it("dead-letters a session that cannot be applied once, and keeps projecting the others", async () => {
    const oscar = await as("oscar");
    await publish(oscar, "default", "oscar", "dl-corrupt", UserMessageSchema, create(UserMessageSchema, { ...ids("oscar", "dl-corrupt"), text: "first" }));
    const hostNc = await server.connectAs(Role.Host);
    opened.push(() => hostNc.close());
    const sessions = await new Kvm(hostNc).open(subjects.sessionsBucket);
    await eventually(async () => (await sessions.get("dl-corrupt"))?.operation === "PUT", 20_000, "the session recorded");
    // A record that no longer decodes (as a stray write into the bucket would leave it).
    await sessions.put("dl-corrupt", new TextEncoder().encode('{"stream":"SB_EVENTS","seq":1}'));
    await publish(oscar, "default", "oscar", "dl-corrupt", UserMessageSchema, create(UserMessageSchema, { ...ids("oscar", "dl-corrupt", "t2"), text: "second" }));
    await host.waitFor((p) => p.stderr.includes('"event":"session.dead_lettered"'), 30_000, "the session dead-lettered");
    const alice = await chatAs("alice");
    await alice.send("I need help with my budget");
    await eventually(async () => (await sessions.get(alice.sessionId))?.operation === "PUT", 20_000, "a later session recorded");
    await new Promise((r) => setTimeout(r, 3_000));
    const lines = host.stderr.split("\n");
    expect(lines.filter((l) => l.includes('"event":"session.dead_lettered"') && l.includes("dl-corrupt"))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('"event":"session.apply_failed"') && l.includes("dl-corrupt")).length).toBeLessThanOrEqual(2);
  }, 90_000);
});
