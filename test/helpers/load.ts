import { isMessage } from "@bufbuild/protobuf";
import { DeliverPolicy, jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { decodeEvent } from "../../src/core/codec.js";
import { AgentReplySchema, UserMessageSchema } from "../../src/gen/switchboard/v1/conversation_pb.js";
import { runCli, type CliProcess } from "./cli.js";
import { watchResponses, type SeenEvent } from "./responses.js";
import { subjects } from "./system.js";

/** What one scenario measured: the figures docs/RELIABILITY.md reports. */
export interface LoadFigures {
  readonly scenario: string;
  /** Messages the chats sent. */
  readonly sent: number;
  /** Messages whose reply a chat showed, exactly once. */
  readonly answered: number;
  /** Messages with no reply shown. */
  readonly lost: number;
  /** Replies beyond the first, for one message: shown by a chat, on the wire (distinct ids), or in the stream. */
  readonly duplicated: number;
  /** Messages with exactly one reply stored in the stream. */
  readonly stored: number;
  /** The longest time from a message being stored to its reply being stored, in seconds. */
  readonly longestStallS: number;
  /** Events other than routing and replies that the chats showed, by kind (timeouts, errors, ...). */
  readonly otherEvents: Readonly<Record<string, number>>;
}

export interface LoadOptions {
  readonly scenario: string;
  readonly url: string;
  readonly users: number;
  readonly messagesPerUser: number;
  /** Extra environment for the chat processes. */
  readonly env?: Record<string, string>;
  /** Runs while the chats talk; resolves when the disruption is over. */
  readonly during: (progress: () => number) => Promise<void>;
  readonly timeoutMs: number;
}

const text = (user: string, i: number) => (i === 0 ? `I need help with my budget, ${user} here` : `question ${i} from ${user}`);

/**
 * Concurrent chats (JSON chat processes, each message after the previous answer) while `during`
 * disrupts the system, then every message counted three ways: in what the chats showed, on the
 * wire (response subjects, duplicates included), and in the event stream.
 */
export async function runLoad(nc: NatsConnection, options: LoadOptions): Promise<LoadFigures> {
  const users = Array.from({ length: options.users }, (_, i) => `${options.scenario}-u${i}`);
  const wire = new Map<string, SeenEvent[]>();
  for (const user of users) wire.set(user, await watchResponses(nc, user));
  const chats: CliProcess[] = users.map((user) => runCli(["chat", "--json", "--user", user], { NATS_URL: options.url, LOG_LEVEL: "warn", ...options.env }));
  for (const [u, chat] of chats.entries()) {
    for (let i = 0; i < options.messagesPerUser; i++) chat.write(text(users[u]!, i));
    chat.endInput();
  }
  const shownReplies = () => chats.reduce((n, c) => n + c.events.filter((e) => e.event === "reply").length, 0);
  const disruption = options.during(shownReplies);
  const deadline = setTimeout(() => {
    for (const c of chats) c.proc.kill("SIGKILL");
  }, options.timeoutMs);
  const codes = await Promise.all(chats.map((c) => c.exited));
  clearTimeout(deadline);
  await disruption;
  // Let the wire subscriptions see anything published late.
  await new Promise((r) => setTimeout(r, 1_000));

  let answered = 0;
  let duplicated = 0;
  const otherEvents: Record<string, number> = {};
  for (const [u, chat] of chats.entries()) {
    if (codes[u] !== 0) otherEvents[`chat_exit_${String(codes[u])}`] = (otherEvents[`chat_exit_${String(codes[u])}`] ?? 0) + 1;
    const replies = chat.events.filter((e) => e.event === "reply").map((e) => String(e["content"]));
    for (let i = 0; i < options.messagesPerUser; i++) {
      const shown = replies.filter((c) => c.endsWith(`You said: ${text(users[u]!, i)}`)).length;
      if (shown >= 1) answered++;
      duplicated += Math.max(0, shown - 1);
    }
    for (const e of chat.events) {
      const kind = String(e.event);
      if (kind !== "reply" && kind !== "routed") otherEvents[kind] = (otherEvents[kind] ?? 0) + 1;
    }
  }
  for (const seen of wire.values()) {
    // Distinct replies: a publish retried after a reconnect carries the same id and reaches plain
    // subscribers again (the stream keeps it once), and every client drops a repeated id.
    const perTurn = new Map<string, Set<string>>();
    for (const e of seen) if (isMessage(e.message, AgentReplySchema)) perTurn.set(e.message.turnId, (perTurn.get(e.message.turnId) ?? new Set()).add(e.id));
    for (const ids of perTurn.values()) duplicated += ids.size - 1;
  }
  const stream = await readStream(nc, users);
  duplicated += stream.duplicated;
  const sent = options.users * options.messagesPerUser;
  return { scenario: options.scenario, sent, answered, lost: sent - answered, duplicated, stored: stream.stored, longestStallS: stream.longestStallS, otherEvents };
}

/** Every event of these users in the stream: one reply per message, and how long each took. */
async function readStream(nc: NatsConnection, users: readonly string[]): Promise<{ stored: number; duplicated: number; longestStallS: number }> {
  const js = jetstream(nc);
  // One filter subject (nats-server 2.9 takes no more); other users' events are skipped here.
  const consumer = await js.consumers.get(subjects.eventStream, { filter_subjects: subjects.allTopics, deliver_policy: DeliverPolicy.All });
  const ours = new Set(users);
  const asked = new Map<string, number>();
  const answered = new Map<string, { count: number; atMs: number }>();
  for (;;) {
    const msg = await consumer.next({ expires: 2_000 });
    if (!msg) break;
    const atMs = msg.info.timestampNanos / 1e6;
    const topic = subjects.parseTopic(msg.subject);
    if (!topic || !ours.has(topic.source.user)) {
      if (msg.info.pending === 0) break;
      continue;
    }
    const { message } = decodeEvent(msg);
    if (isMessage(message, UserMessageSchema) && topic?.type !== "response") {
      asked.set(message.turnId, Math.min(asked.get(message.turnId) ?? Infinity, atMs));
    } else if (isMessage(message, AgentReplySchema) && topic?.type === "response") {
      const prior = answered.get(message.turnId);
      answered.set(message.turnId, { count: (prior?.count ?? 0) + 1, atMs: prior?.atMs ?? atMs });
    }
    if (msg.info.pending === 0) break;
  }
  let stored = 0;
  let duplicated = 0;
  let longestMs = 0;
  for (const [turnId, at] of asked) {
    const reply = answered.get(turnId);
    if (!reply) continue;
    if (reply.count === 1) stored++;
    duplicated += reply.count - 1;
    longestMs = Math.max(longestMs, reply.atMs - at);
  }
  return { stored, duplicated, longestStallS: Math.round(longestMs / 100) / 10 };
}
