import { create, isMessage, type Message } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { decodeEvent, encodeBody } from "../core/codec.js";
import { namesAnotherSource } from "../core/event-source.js";
import { DecodeError, ErrorCode, errorMessage } from "../core/errors.js";
import { CachedRecords, readRecord } from "../core/kv-records.js";
import type { TopicId } from "../core/ids.js";
import type { Logger } from "../core/logging.js";
import { publishEvent } from "../core/publish.js";
import { TopicType, type Subjects } from "../core/subjects.js";
import { isUserWritableTopic, userPublishable } from "../core/user-input.js";
import { EndReason, ErrorEventSchema, UserMessageSchema, type UserMessage } from "../gen/switchboard/v1/conversation_pb.js";
import { ProjectorCheckpointSchema, SessionRecordSchema } from "../gen/switchboard/v1/registry_pb.js";
import type { RegistryView } from "./registry-view.js";
import { affectsSession, applyEvent, type Applied } from "./session-state.js";

/**
 * Events are applied in rounds, at most this often: the events of one session within a round
 * cost one KV write, however many there are.
 */
const ROUND_INTERVAL_MS = 100;
/** A round starts at once when this many events wait (catching up on a backlog). */
const ROUND_MAX_EVENTS = 4_000;
/** Session writes of one round in flight at once. */
const WRITE_CONCURRENCY = 64;
/** The pause before applying again after a round in which a session's write failed. */
const RETRY_INTERVAL_MS = 1_000;
/** How often the checkpoint is written while events flow. */
const CHECKPOINT_INTERVAL_MS = 250;
/** Rounds a session whose write fails for a reason that will not go away is tried before it is given up. */
const PERMANENT_FAILURE_ATTEMPTS = 3;

/**
 * A write that fails the same way however often it is tried: the stored record does not decode,
 * or the new one is larger than the server accepts. Anything else (time-outs, a bucket without a
 * leader) may pass, and is retried for as long as it takes.
 */
function isPermanentFailure(err: unknown): boolean {
  return err instanceof DecodeError || /max_payload|maximum payload|message size exceeds|exceeds maximum/i.test(errorMessage(err));
}

interface PendingEvent {
  readonly seq: number;
  readonly atMs: number;
  readonly topic: TopicId;
  readonly message: Message;
  readonly eventId: string;
}

/**
 * Keeps the `sessions` bucket by folding the event stream into one record per session.
 *
 * Each host reads the whole stream through its own ordered push consumer (no acknowledgements:
 * the cheapest way to read a stream) from the shared checkpoint, applies what it read in rounds with
 * one compare-and-set write per session, and then moves the checkpoint. Applying is idempotent
 * (records remember the sequences they applied), so several hosts may apply the same events, and
 * a host that stopped anywhere resumes from the checkpoint, replaying at most the last moments.
 * Not on the message path.
 */
export class SessionProjector {
  private messages: ConsumerMessages | undefined;
  private loop: Promise<void> | undefined;
  private readonly records: CachedRecords<typeof SessionRecordSchema>;
  /** Events read and not yet applied, in stream order. */
  private buffer: PendingEvent[] = [];
  /** Highest stream sequence read. */
  private readSeq = 0;
  /** Every event up to this sequence has been applied. */
  private appliedSeq = 0;
  private checkpointedSeq = 0;
  private lastCheckpointAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> | undefined;
  private closed = false;
  /** Sessions whose write failed for a permanent reason, with the rounds it failed in so far. */
  private readonly permanentFailures = new Map<string, number>();

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly subjects: Subjects,
    private readonly sessions: KV,
    private readonly directory: RegistryView,
    private readonly logger: Logger,
    private readonly hostId: string,
  ) {
    this.records = new CachedRecords(sessions, SessionRecordSchema);
  }

  async start(): Promise<void> {
    const checkpoint = (await readRecord(this.sessions, this.subjects.projectorCheckpointKey, ProjectorCheckpointSchema))?.value;
    let from = Number(checkpoint?.seq ?? 0n);
    const lastSeq = (await this.jsm.streams.info(this.subjects.eventStream)).state.last_seq;
    if (from > lastSeq) {
      // The stream was deleted and created again: its sequences start over, and reading from the
      // old checkpoint would skip every event up to it.
      this.logger.warn({ event: "projector.checkpoint_reset", checkpoint: from, lastSeq }, "the event stream is behind the projection checkpoint (it was recreated); reading it from the start");
      from = 0;
    }
    this.appliedSeq = this.checkpointedSeq = this.readSeq = from;
    // A push consumer with flow control: the server streams the events to this host's inbox, and
    // the host needs no pull rights over the workers' consumers.
    const consumer = await this.js.consumers.getPushConsumer(this.subjects.eventStream, {
      name_prefix: this.subjects.projectorConsumerPrefix(this.hostId),
      filter_subjects: this.subjects.allTopics,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: this.appliedSeq + 1,
    });
    this.messages = await consumer.consume();
    this.logger.info({ event: "projector.started", fromSeq: this.appliedSeq + 1 }, "applying the event stream to session records");
    this.loop = this.run(this.messages);
  }

  private async run(messages: ConsumerMessages): Promise<void> {
    for await (const msg of messages) {
      this.readSeq = msg.seq;
      const event = this.accept(msg);
      if (event) this.buffer.push(event);
      if (this.buffer.length >= ROUND_MAX_EVENTS) {
        // Back-pressure: stop reading until the waiting events are applied.
        await this.round;
        this.startRound();
        await this.round;
      } else {
        this.scheduleRound();
      }
    }
  }

  /** Decodes an event worth applying; the others are only counted as read. */
  private accept(msg: JsMsg): PendingEvent | undefined {
    const topic = this.subjects.parseTopic(msg.subject);
    const seq = msg.seq;
    if (!topic) {
      this.logger.warn({ event: "event.rejected", seq, reason: ErrorCode.InvalidId }, "event on a subject with invalid ids; ignored");
      return undefined;
    }
    // Agent output on its way to the user proxy changes no session (it counts once delivered on
    // `response`): not worth decoding.
    if (topic.type === TopicType.UserProxy) return undefined;
    let decoded;
    try {
      decoded = decodeEvent(msg);
    } catch (err) {
      this.logger.warn({ event: "event.rejected", seq, session: topic.source.session, err: errorMessage(err) }, "undecodable event; ignored");
      return undefined;
    }
    if (isUserWritableTopic(topic.type) && !userPublishable(decoded.message.$typeName, topic.type)) {
      // The workers refused it (and logged it, a few times a second per user): it must not reach
      // the record either.
      if (this.logger.isLevelEnabled("debug")) this.logger.debug({ event: "event.rejected", seq, reason: ErrorCode.TypeNotAllowed, type: decoded.message.$typeName, topicType: topic.type }, "type not accepted on this topic; ignored");
      return undefined;
    }
    if (namesAnotherSource(decoded.message, topic.source)) {
      // Subject permissions vouch for the subject only: a body naming another user or session
      // must not steer notices (or state) there.
      this.logger.warn({ event: "event.rejected", seq, reason: "identity_mismatch" }, "body names another user or session; ignored");
      return undefined;
    }
    if (!affectsSession(decoded.message, topic)) return undefined;
    return { seq, atMs: Math.floor(msg.info.timestampNanos / 1_000_000), topic, message: decoded.message, eventId: decoded.attributes.id };
  }

  private scheduleRound(delayMs = ROUND_INTERVAL_MS): void {
    if (this.timer || this.round || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.startRound();
    }, delayMs);
  }

  private startRound(): void {
    if (this.round) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.round = this.applyRound().then((failures) => {
      this.round = undefined;
      // Also when only the checkpoint lags: a quiet stream must not leave it behind. After a
      // failed write, wait longer: the bucket may be unavailable for a while.
      if (this.buffer.length > 0 || this.readSeq > this.appliedSeq || this.appliedSeq > this.checkpointedSeq) this.scheduleRound(failures > 0 ? RETRY_INTERVAL_MS : ROUND_INTERVAL_MS);
    });
  }

  /**
   * Applies every waiting event, one write per session, then moves the checkpoint up to what is
   * applied. Never throws: a session whose write failed keeps its events for the next round, and
   * the checkpoint stays below them. Resolves with the number of sessions that failed.
   */
  private async applyRound(): Promise<number> {
    const batch = this.buffer;
    const readUpTo = this.readSeq;
    this.buffer = [];
    const bySession = new Map<string, PendingEvent[]>();
    for (const event of batch) {
      const list = bySession.get(event.topic.source.session);
      if (list) list.push(event);
      else bySession.set(event.topic.source.session, [event]);
    }
    const failed: PendingEvent[] = [];
    let failedSessions = 0;
    const queue = [...bySession.entries()];
    const writer = async (): Promise<void> => {
      for (let next = queue.pop(); next; next = queue.pop()) {
        const [session, events] = next;
        if (!(await this.applySession(session, events))) {
          failed.push(...events);
          failedSessions++;
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(WRITE_CONCURRENCY, queue.length) }, writer));
    } catch (err) {
      // Not expected (each session's failure is caught), but nothing read may be skipped.
      this.logger.error({ event: "projector.round_failed", err: errorMessage(err) }, "applying events failed; will retry");
      this.buffer = [...batch, ...this.buffer];
      return Math.max(1, bySession.size);
    }
    if (failed.length > 0) {
      failed.sort((a, b) => a.seq - b.seq);
      this.buffer = [...failed, ...this.buffer];
    }
    const firstWaiting = this.buffer[0]?.seq;
    this.appliedSeq = Math.max(this.appliedSeq, firstWaiting === undefined ? readUpTo : Math.min(readUpTo, firstWaiting - 1));
    if (this.closed || Date.now() - this.lastCheckpointAt >= CHECKPOINT_INTERVAL_MS) await this.writeCheckpoint();
    return failedSessions;
  }

  /** Applies one session's events in stream order with one compare-and-set write. */
  private async applySession(session: string, events: readonly PendingEvent[]): Promise<boolean> {
    let changes: Applied[] = [];
    try {
      await this.records.update(session, (current) => {
        changes = [];
        let record = current;
        for (const { seq, atMs, topic, message } of events) {
          if (record && record.user !== topic.source.user) continue;
          const applied = applyEvent(record, message, { seq: BigInt(seq), topic, atMs });
          if (!applied) continue;
          changes.push(applied);
          record = applied.record;
        }
        return changes.length > 0 ? record : undefined;
      });
    } catch (err) {
      if (isPermanentFailure(err)) {
        const attempts = (this.permanentFailures.get(session) ?? 0) + 1;
        this.permanentFailures.set(session, attempts);
        if (attempts >= PERMANENT_FAILURE_ATTEMPTS) {
          this.permanentFailures.delete(session);
          this.deadLetter(session, events, err);
          return true;
        }
      }
      this.logger.warn({ event: "session.apply_failed", session, events: events.length, err: errorMessage(err) }, "could not apply events; will retry");
      return false;
    }
    this.permanentFailures.delete(session);
    for (const applied of changes) this.logChanges(applied);
    for (const { topic, message, eventId } of events) {
      if (isMessage(message, UserMessageSchema)) await this.checkRecipient(message, topic.type, eventId);
    }
    return true;
  }

  /**
   * Gives up on a session's events that can never be applied, once, loudly: they stay in the event
   * stream (where `seqs` finds them), the record keeps what it had, and the checkpoint moves on so
   * that every other session keeps being projected.
   */
  private deadLetter(session: string, events: readonly PendingEvent[], err: unknown): void {
    const seqs = events.map((e) => e.seq);
    this.logger.error(
      { event: "session.dead_lettered", session, user: events[0]?.topic.source.user, events: events.length, firstSeq: seqs[0], lastSeq: seqs.at(-1), err: errorMessage(err) },
      `session ${session} cannot be updated; ${events.length} event(s) left out of its record`,
    );
  }

  private async writeCheckpoint(): Promise<void> {
    if (this.appliedSeq <= this.checkpointedSeq) return;
    const seq = this.appliedSeq;
    try {
      await this.sessions.put(this.subjects.projectorCheckpointKey, encodeCheckpoint(seq, this.hostId));
      this.checkpointedSeq = seq;
      this.lastCheckpointAt = Date.now();
    } catch (err) {
      this.logger.warn({ event: "projector.checkpoint_failed", seq, err: errorMessage(err) }, "could not save the projection checkpoint; will retry");
    }
  }

  private logChanges({ record, changes }: Applied): void {
    const ids = { session: record.sessionId, user: record.user };
    for (const change of changes) {
      if (change === "opened") this.logger.info({ event: "session.opened", ...ids }, "session opened");
      else if (change === "routed") this.logger.info({ event: "session.routed", ...ids, agentType: record.agentType, intent: record.intent, score: record.score }, `session routed to ${record.agentType}`);
      else if (change === "ended") this.logger.info({ event: "session.ended", ...ids, agentType: record.agentType, reason: EndReason[record.endReason], turns: record.turns }, "session ended");
      else if (change === "turn") this.logger.debug({ event: "session.turn", ...ids, turns: record.turns }, "user turn");
    }
  }

  /**
   * A user message addressed to an agent type that no live worker serves: the message stays queued
   * in the stream (its consumer, if any, keeps it), and the waiting user is told. Several hosts
   * send the same notice id, which the stream and the chat keep once.
   */
  private async checkRecipient(message: UserMessage, topicType: string, eventId: string): Promise<void> {
    if (topicType === TopicType.Response || this.directory.hasLiveSubscriber(topicType)) return;
    const known = topicType === TopicType.Default || this.directory.isKnown(topicType);
    const who = topicType === TopicType.Default ? "the router" : `the ${topicType} agent`;
    const text = known
      ? `${who} has no running worker right now; your message is queued and will be answered when one starts`
      : `there is no agent type "${topicType}"`;
    this.logger.warn({ event: "message.undeliverable", topicType, session: message.sessionId, known }, "user message for a topic nobody serves");
    try {
      await publishEvent(
        this.js,
        this.subjects,
        create(ErrorEventSchema, { sessionId: message.sessionId, user: message.user, turnId: message.turnId, code: known ? ErrorCode.AgentUnavailable : ErrorCode.UnknownAgent, message: text }),
        { type: TopicType.Response, source: { user: message.user, session: message.sessionId } },
        { source: `switchboard/host/${this.hostId}`, id: `${eventId}-unavailable` },
      );
    } catch (err) {
      // A notice is advice; the message itself is safe in the stream.
      this.logger.warn({ event: "notice.failed", session: message.sessionId, err: errorMessage(err) }, "could not tell the user that the message is queued");
    }
  }

  /** Stops reading, applies what was read, and saves the checkpoint. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.messages?.close();
    await this.loop;
    await this.round;
    if (this.buffer.length > 0 || this.readSeq > this.appliedSeq) {
      this.startRound();
      await this.round;
    }
    await this.writeCheckpoint();
  }
}

function encodeCheckpoint(seq: number, hostId: string): Uint8Array {
  return encodeBody(ProjectorCheckpointSchema, create(ProjectorCheckpointSchema, { seq: BigInt(seq), hostId, at: timestampNow() }));
}
