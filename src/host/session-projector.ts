import { create, isMessage, type Message } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { AckPolicy, DeliverPolicy, JetStreamApiError, jetstreamManager, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type StoredMsg } from "@nats-io/jetstream";
import { createInbox, errors as natsErrors, nanos, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import type { KV } from "@nats-io/kv";
import { decodeEvent, encodeBody } from "../core/codec.js";
import { namesAnotherSource } from "../core/event-source.js";
import { DecodeError, ErrorCode, errorMessage } from "../core/errors.js";
import { CachedRecords, readRecord } from "../core/kv-records.js";
import type { TopicId } from "../core/ids.js";
import { intentKind, type Logger } from "../core/logging.js";
import { publishEvent } from "../core/publish.js";
import { sleep } from "../core/sleep.js";
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
/**
 * The pause before applying again after a round in which a session's write failed, doubling with
 * each failed round in a row up to {@link RETRY_MAX_INTERVAL_MS}. A replicated bucket electing a
 * leader refuses writes for seconds; the first write after it should follow within a fraction of one.
 */
const RETRY_INTERVAL_MS = 200;
const RETRY_MAX_INTERVAL_MS = 1_000;
/** How often the checkpoint is written while events flow. */
const CHECKPOINT_INTERVAL_MS = 250;
/** How often the projector checks that it is still receiving what the stream holds. */
const STALL_CHECK_MS = 1_000;
/**
 * Events stored this long ago and still not received mean the consumer is gone (its node died or
 * the server forgot it): the projector replaces it. A backstop for the heartbeats below.
 */
const STALL_AFTER_MS = 2_000;
/**
 * The consumer's idle heartbeat. Two missed in a row mean its node died (an R1 consumer dies with
 * it): the projector replaces it within about two seconds, without asking the stream anything,
 * which cannot answer while it elects a leader. nats.js's ordered consumer fixes 30 s.
 */
const IDLE_HEARTBEAT_MS = 1_000;
/**
 * Deadline of the projector's own JetStream requests (stream info, consumer create). While an
 * election is under way a request can go unanswered; asking again soon finds the new leader
 * sooner than waiting out the client's default 5 s.
 */
const RECOVERY_REQUEST_MS = 1_000;
/** Events read by direct gets between two attempts to create a consumer. */
const DIRECT_READ_BATCH = 1_000;
/** The pause before asking again for a consumer the stream did not create. */
const REPLACE_RETRY_MS = 200;
/** How long an abandoned consumer (its host gone or replaced it) lives on the server. */
const CONSUMER_INACTIVE_MS = 60_000;
/** Rounds a session whose write fails for a reason that will not go away is tried before it is given up. */
const PERMANENT_FAILURE_ATTEMPTS = 3;

/** JetStream API error codes of a message the stream refuses for its size. */
const MESSAGE_TOO_LARGE_CODES: ReadonlySet<number> = new Set([
  10054, // larger than the stream's (the bucket's) maximum message size
  10097, // headers larger than the 64 KiB the server allows
]);

/**
 * A write that fails the same way however often it is tried: the stored record does not decode,
 * or the new one is larger than the server accepts. Anything else (time-outs, a bucket without a
 * leader) may pass, and is retried for as long as it takes.
 */
function isPermanentFailure(err: unknown): boolean {
  if (err instanceof DecodeError) return true;
  // The client refuses, before sending it, a message larger than the server's max_payload.
  if (err instanceof natsErrors.InvalidArgumentError) return true;
  return err instanceof JetStreamApiError && MESSAGE_TOO_LARGE_CODES.has(err.code);
}

/** An event as read from the stream, through a consumer or by a direct get. */
interface StoredEvent {
  readonly subject: string;
  readonly seq: number;
  readonly headers: MsgHdrs | undefined;
  readonly data: Uint8Array;
  readonly atMs: number;
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
  /** Consumers replaced so far; names each new one apart from the old. */
  private generation = 0;
  /** The current consumer's last delivery sequence: deliveries are numbered without gaps. */
  private deliveredSeq = 0;
  /** When the current consumer was created: its heartbeats are judged from then on. */
  private openedAtMs = 0;
  /** Whether `loop` is reading (it ends when its consumer is closed or fails). */
  private reading = false;
  /** Applying a backlog: not reading on purpose, so not stalled. */
  private backPressure = false;
  private watchdog: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private replacing: Promise<void> | undefined;
  /** The sequence read when the stream was first seen ahead of it, and when. */
  private behind: { readSeq: number; sinceMs: number } | undefined;
  /** When the projector found itself stalled, until it reads again. */
  private stalledAtMs: number | undefined;
  /** Rounds in a row in which a session's write failed. */
  private failedRounds = 0;
  /** Sessions whose write failed for a permanent reason, with the rounds it failed in so far. */
  private readonly permanentFailures = new Map<string, number>();

  /**
   * For the requests that recovery depends on, with {@link RECOVERY_REQUEST_MS} deadlines. Made by
   * start() before the consumer and the watchdog exist, so whatever recovers finds it.
   */
  private recoveryJsm!: JetStreamManager;

  constructor(
    private readonly nc: NatsConnection,
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
    this.recoveryJsm = await jetstreamManager(this.nc, { timeout: RECOVERY_REQUEST_MS, checkAPI: false });
    this.messages = await this.openConsumer(this.jsm);
    this.logger.info({ event: "projector.started", fromSeq: this.appliedSeq + 1 }, "applying the event stream to session records");
    this.loop = this.run(this.messages);
    this.watchdog = setInterval(() => {
      this.checking ??= this.checkProgress().finally(() => (this.checking = undefined));
    }, STALL_CHECK_MS);
  }

  /**
   * A consumer delivering every event after the last one read to a fresh inbox of this host: an
   * ordered consumer (ephemeral, one replica, no acknowledgements, flow control) made by hand for
   * its short idle heartbeat. A push consumer delivers only while someone subscribes to its
   * subject, so nothing is sent before the subscription below exists; anything lost on the way
   * shows as a gap in the delivery sequence.
   */
  private async openConsumer(jsm: JetStreamManager): Promise<ConsumerMessages> {
    // nats.js sets the watcher prefix to the connection's inbox prefix, which the host may subscribe to.
    const deliverSubject = createInbox(this.js.getOptions().watcherPrefix);
    const idleHeartbeat = nanos(IDLE_HEARTBEAT_MS);
    await jsm.consumers.add(this.subjects.eventStream, {
      name: this.subjects.projectorConsumerName(this.hostId, this.generation),
      filter_subject: this.subjects.allTopics,
      deliver_subject: deliverSubject,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: this.readSeq + 1,
      ack_policy: AckPolicy.None,
      max_deliver: 1,
      flow_control: true,
      idle_heartbeat: idleHeartbeat,
      num_replicas: 1,
      inactive_threshold: nanos(CONSUMER_INACTIVE_MS),
    });
    const consumer = await this.js.consumers.getBoundPushConsumer({ deliver_subject: deliverSubject, idle_heartbeat: idleHeartbeat });
    const messages = await consumer.consume();
    this.deliveredSeq = 0;
    this.openedAtMs = Date.now();
    void this.watchStatus(messages);
    return messages;
  }

  /** Replaces the consumer once its heartbeats stop: its node is gone. */
  private async watchStatus(messages: ConsumerMessages): Promise<void> {
    for await (const status of messages.status()) {
      if (status.type !== "heartbeats_missed" || this.messages !== messages || this.backPressure || this.closed) continue;
      // Misses counted while the consumer was being created say nothing about it.
      if (Date.now() - this.openedAtMs < 2 * IDLE_HEARTBEAT_MS) continue;
      if (this.replacing) return;
      this.logger.warn({ event: "projector.stalled", readSeq: this.readSeq, missedHeartbeats: status.count }, "the event stream's consumer stopped sending heartbeats; replacing it");
      this.stalledAtMs ??= Date.now();
      this.behind = undefined;
      this.startReplacing();
      return;
    }
  }

  private async run(messages: ConsumerMessages): Promise<void> {
    this.reading = true;
    try {
      for await (const msg of messages) {
        if (msg.info.deliverySequence !== this.deliveredSeq + 1) {
          // Something between the consumer and this host was lost: read it again.
          this.logger.warn({ event: "projector.gap", readSeq: this.readSeq, expected: this.deliveredSeq + 1, delivered: msg.info.deliverySequence }, "the event stream's consumer skipped deliveries; replacing it");
          this.stalledAtMs ??= Date.now();
          this.startReplacing();
          break;
        }
        this.deliveredSeq = msg.info.deliverySequence;
        if (this.stalledAtMs !== undefined) {
          this.logger.info({ event: "projector.resumed", seq: msg.seq, stalledMs: Date.now() - this.stalledAtMs }, "reading the event stream again");
          this.stalledAtMs = undefined;
        }
        this.readSeq = msg.seq;
        const event = this.accept({ subject: msg.subject, seq: msg.seq, headers: msg.headers, data: msg.data, atMs: Math.floor(msg.info.timestampNanos / 1_000_000) });
        if (event) this.buffer.push(event);
        if (this.buffer.length >= ROUND_MAX_EVENTS) {
          // Back-pressure: stop reading until the waiting events are applied.
          this.backPressure = true;
          await this.round;
          this.startRound();
          await this.round;
          this.backPressure = false;
        } else {
          this.scheduleRound();
        }
      }
    } catch (err) {
      if (!this.closed) this.logger.warn({ event: "projector.consumer_failed", err: errorMessage(err) }, "the event stream's consumer failed; replacing it");
    } finally {
      this.reading = false;
      this.backPressure = false;
    }
  }

  /**
   * Replaces the consumer when the stream holds events it has not delivered for a while, or when it
   * ended. Costs a stream-info request per check only while nothing arrives.
   */
  private async checkProgress(): Promise<void> {
    if (this.closed || this.backPressure || this.replacing) return;
    if (this.reading) {
      let lastSeq: number;
      try {
        lastSeq = (await this.recoveryJsm.streams.info(this.subjects.eventStream)).state.last_seq;
      } catch {
        // The stream is electing a leader or the server is away: nothing to judge yet.
        return;
      }
      if (lastSeq <= this.readSeq || (this.behind && this.behind.readSeq !== this.readSeq)) {
        this.behind = lastSeq > this.readSeq ? { readSeq: this.readSeq, sinceMs: Date.now() } : undefined;
        return;
      }
      this.behind ??= { readSeq: this.readSeq, sinceMs: Date.now() };
      if (Date.now() - this.behind.sinceMs < STALL_AFTER_MS) return;
      this.logger.warn({ event: "projector.stalled", readSeq: this.readSeq, lastSeq, stalledMs: Date.now() - this.behind.sinceMs }, "the event stream's consumer stopped delivering; replacing it");
    }
    this.stalledAtMs ??= this.behind?.sinceMs ?? Date.now();
    this.behind = undefined;
    this.startReplacing();
    await this.replacing;
  }

  /** Replaces the consumer unless that is under way already. */
  private startReplacing(): void {
    this.replacing ??= this.replaceConsumer().finally(() => (this.replacing = undefined));
  }

  /**
   * Reads on from the last sequence read through a new consumer, asking until the stream answers
   * (it may be electing a leader). Each attempt has its own name: one that timed out may still
   * have been created, and is left to expire unread.
   */
  private async replaceConsumer(): Promise<void> {
    const old = this.messages;
    this.messages = undefined;
    await old?.close();
    await this.loop;
    for (let attempt = 1; !this.closed && !this.nc.isClosed(); attempt++) {
      await this.readDirectly();
      this.generation++;
      try {
        this.messages = await this.openConsumer(this.recoveryJsm);
      } catch (err) {
        const fields = { event: "projector.consumer_failed", attempt, err: errorMessage(err) };
        if (attempt === 1) this.logger.warn(fields, "could not create the event stream's consumer yet; retrying");
        else this.logger.debug(fields, "could not create the event stream's consumer yet; retrying");
        await sleep(REPLACE_RETRY_MS);
        continue;
      }
      this.logger.info({ event: "projector.consumer_replaced", fromSeq: this.readSeq + 1, generation: this.generation, attempts: attempt }, "reading the event stream through a new consumer");
      this.loop = this.run(this.messages);
      return;
    }
  }

  /**
   * Reads on, event by event, with direct gets, which any replica of the stream answers. A new
   * consumer is placed by JetStream's meta leader; when the node that died led the meta layer,
   * none can be created until another is elected (seconds on 2.9), while the stream itself still
   * serves reads. Stops at the end of the stream, after {@link DIRECT_READ_BATCH} events, while
   * a backlog waits to be applied, or at the first failure.
   */
  private async readDirectly(): Promise<void> {
    let read = 0;
    while (read < DIRECT_READ_BATCH && this.buffer.length < ROUND_MAX_EVENTS && !this.closed) {
      let stored: StoredMsg | null;
      try {
        stored = await this.recoveryJsm.direct.getMessage(this.subjects.eventStream, { seq: this.readSeq + 1, next_by_subj: this.subjects.allTopics });
      } catch (err) {
        this.logger.debug({ event: "projector.direct_read_failed", seq: this.readSeq + 1, err: errorMessage(err) }, "could not read the event stream directly");
        break;
      }
      if (!stored) break;
      read++;
      this.readSeq = stored.seq;
      const event = this.accept({ subject: stored.subject, seq: stored.seq, headers: stored.header, data: stored.data, atMs: stored.time.getTime() });
      if (event) this.buffer.push(event);
    }
    if (read === 0) return;
    this.logger.info({ event: "projector.read_directly", events: read, readSeq: this.readSeq }, "read on from the event stream's replicas while its consumer is replaced");
    this.scheduleRound();
  }

  /** Decodes an event worth applying; the others are only counted as read. */
  private accept(msg: StoredEvent): PendingEvent | undefined {
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
    return { seq, atMs: msg.atMs, topic, message: decoded.message, eventId: decoded.attributes.id };
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
      this.failedRounds = failures > 0 ? this.failedRounds + 1 : 0;
      const retryMs = Math.min(RETRY_MAX_INTERVAL_MS, RETRY_INTERVAL_MS * 2 ** (this.failedRounds - 1));
      if (this.buffer.length > 0 || this.readSeq > this.appliedSeq || this.appliedSeq > this.checkpointedSeq) this.scheduleRound(failures > 0 ? retryMs : ROUND_INTERVAL_MS);
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
      // Once per run of failed rounds at warn: retries follow each other closely.
      const fields = { event: "session.apply_failed", session, events: events.length, err: errorMessage(err) };
      if (this.failedRounds === 0) this.logger.warn(fields, "could not apply events; will retry");
      else this.logger.debug(fields, "could not apply events; will retry");
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
      else if (change === "routed") this.logger.info({ event: "session.routed", ...ids, agentType: record.agentType, intent: intentKind(record.intent), score: record.score }, `session routed to ${record.agentType}`);
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
        create(ErrorEventSchema, { sessionId: message.sessionId, user: message.user, turnId: message.turnId, code: known ? ErrorCode.AgentUnavailable : ErrorCode.UnknownAgent, message: text, agentType: topicType === TopicType.Default ? "" : topicType }),
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
    clearInterval(this.watchdog);
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.checking;
    await this.replacing;
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
