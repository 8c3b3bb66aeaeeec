import { create, isMessage, type Message } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { TopicId } from "../core/ids.js";
import { TopicType } from "../core/subjects.js";
import { MAX_USER_TEXT_CHARS } from "../core/user-input.js";
import {
  AgentReplySchema,
  ErrorEventSchema,
  NoAgentSchema,
  RoutedSchema,
  SessionEndedSchema,
  UserMessageSchema,
} from "../gen/switchboard/v1/conversation_pb.js";
import {
  SessionRecordSchema,
  SessionState,
  TranscriptEntrySchema,
  TranscriptRole,
  type SessionRecord,
  type TranscriptEntry,
} from "../gen/switchboard/v1/registry_pb.js";

/** Transcript entries kept per session; older ones are dropped. */
export const TRANSCRIPT_LIMIT = 50;
/** Applied stream sequences remembered per session, to skip redelivered events. */
const APPLIED_LIMIT = 200;
/**
 * Longest transcript text kept per entry, in characters; the rest is replaced by a marker. The
 * workers refuse longer user text, but the stream holds whatever a client published.
 */
export const MAX_ENTRY_CHARS = MAX_USER_TEXT_CHARS;
/**
 * UTF-8 bytes of transcript text kept per session; the oldest entries are dropped beyond it. With
 * the ids and sequences around them a record stays far below the server's 1 MB `max_payload`, and
 * a page of `admin sessions` holds at least one whole record.
 */
export const MAX_TRANSCRIPT_BYTES = 256 * 1024;
/** Longest id-like field (turn id, author) kept in a transcript entry. */
const MAX_ENTRY_ID_CHARS = 64;

export interface EventPosition {
  /** Stream sequence of the event. */
  readonly seq: bigint;
  readonly topic: TopicId;
  readonly atMs: number;
}

/** What applying one event changed, for logging. */
export type SessionChange = "opened" | "routed" | "turn" | "ended" | "noted";

export interface Applied {
  readonly record: SessionRecord;
  readonly changes: readonly SessionChange[];
}

/**
 * Whether an event can change a session record at all; the others are not worth a KV round trip.
 * Mirrors what {@link applyEvent} looks at.
 */
export function affectsSession(message: Message, topic: TopicId): boolean {
  if (isMessage(message, UserMessageSchema) || isMessage(message, RoutedSchema)) return true;
  if (topic.type !== TopicType.Response) return false;
  return isMessage(message, AgentReplySchema) || isMessage(message, SessionEndedSchema) || isMessage(message, NoAgentSchema) || isMessage(message, ErrorEventSchema);
}

/**
 * Folds one conversation event into a session record. Pure and idempotent: an event already
 * applied (same stream sequence) or irrelevant to session state returns undefined. Order-tolerant:
 * transcript entries are placed by sequence, and a routing decision only replaces an older one.
 */
export function applyEvent(current: SessionRecord | undefined, message: Message, at: EventPosition): Applied | undefined {
  if (current?.appliedSeqs.includes(at.seq)) return undefined;
  const entry = toTranscriptEntry(message, at);
  const routed = isMessage(message, RoutedSchema) ? message : undefined;
  const ended = isMessage(message, SessionEndedSchema) && at.topic.type === TopicType.Response ? message : undefined;
  if (!entry && !routed) return undefined;

  const changes: SessionChange[] = [];
  const now = timestampFromMs(at.atMs);
  const record =
    current ??
    create(SessionRecordSchema, {
      sessionId: at.topic.source.session,
      user: at.topic.source.user,
      state: SessionState.OPEN,
      createdAt: now,
    });
  if (!current) changes.push("opened");
  const next: SessionRecord = { ...record, transcript: [...record.transcript], appliedSeqs: [...record.appliedSeqs, at.seq].slice(-APPLIED_LIMIT), updatedAt: now };

  if (entry && !next.transcript.some((e) => e.turnId === entry.turnId && e.role === entry.role && e.text === entry.text)) {
    const index = next.transcript.findIndex((e) => e.seq > entry.seq);
    next.transcript.splice(index === -1 ? next.transcript.length : index, 0, entry);
    if (next.transcript.length > TRANSCRIPT_LIMIT) next.transcript.splice(0, next.transcript.length - TRANSCRIPT_LIMIT);
    trimTranscript(next.transcript);
    if (entry.role === TranscriptRole.USER) {
      next.turns += 1;
      changes.push("turn");
    } else {
      changes.push("noted");
    }
  }
  if (routed && at.seq > next.routedSeq) {
    next.agentType = routed.agentType;
    next.intent = routed.intent;
    next.score = routed.score;
    next.routedSeq = at.seq;
    if (next.state !== SessionState.ENDED) next.state = SessionState.ROUTED;
    changes.push("routed");
  }
  if (ended && next.state !== SessionState.ENDED) {
    next.state = SessionState.ENDED;
    next.endReason = ended.reason;
    next.endedAt = now;
    if (ended.agentType) next.agentType = ended.agentType;
    changes.push("ended");
  }
  return { record: next, changes };
}

/** Text cut to {@link MAX_ENTRY_CHARS}, with a marker saying how much was left out. */
function truncatedText(text: string): string {
  if (text.length <= MAX_ENTRY_CHARS) return text;
  return `${text.slice(0, MAX_ENTRY_CHARS)} … [${text.length - MAX_ENTRY_CHARS} more characters not kept]`;
}

function entry(turnId: string, role: TranscriptRole, author: string, text: string, at: EventPosition) {
  return create(TranscriptEntrySchema, {
    turnId: turnId.slice(0, MAX_ENTRY_ID_CHARS),
    role,
    author: author.slice(0, MAX_ENTRY_ID_CHARS),
    text: truncatedText(text),
    at: timestampFromMs(at.atMs),
    seq: at.seq,
  });
}

/** Drops the oldest entries until the transcript's text fits {@link MAX_TRANSCRIPT_BYTES}; keeps the newest. */
function trimTranscript(transcript: TranscriptEntry[]): void {
  let bytes = 0;
  for (let i = transcript.length - 1; i >= 0; i--) {
    bytes += Buffer.byteLength(transcript[i]!.text, "utf8");
    if (bytes > MAX_TRANSCRIPT_BYTES && i < transcript.length - 1) {
      transcript.splice(0, i + 1);
      return;
    }
  }
}

/**
 * The transcript line an event contributes. User messages count wherever they are published (the
 * router forwards the same turn, deduplicated by turn id); agent output counts once, as delivered
 * to the user on the response topic.
 */
function toTranscriptEntry(message: Message, at: EventPosition) {
  const toUser = at.topic.type === TopicType.Response;
  if (isMessage(message, UserMessageSchema)) return entry(message.turnId, TranscriptRole.USER, message.user, message.text, at);
  if (!toUser) return undefined;
  if (isMessage(message, AgentReplySchema)) return entry(message.turnId, TranscriptRole.AGENT, message.agentType, message.content, at);
  if (isMessage(message, SessionEndedSchema)) return entry(message.turnId, TranscriptRole.SYSTEM, message.agentType, message.finalResult, at);
  if (isMessage(message, NoAgentSchema)) return entry(message.turnId, TranscriptRole.SYSTEM, "router", message.message, at);
  if (isMessage(message, ErrorEventSchema)) return entry(message.turnId, TranscriptRole.SYSTEM, "switchboard", `${message.code}: ${message.message}`, at);
  return undefined;
}
