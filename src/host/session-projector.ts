import { create, isMessage, type Message } from "@bufbuild/protobuf";
import { DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { decodeEvent } from "../core/codec.js";
import { namesAnotherSource } from "../core/event-source.js";
import { ensureDurableConsumer } from "../core/durable-consumer.js";
import { ErrorCode, errorMessage } from "../core/errors.js";
import { CachedRecords } from "../core/kv-records.js";
import type { TopicId } from "../core/ids.js";
import type { Logger } from "../core/logging.js";
import { publishEvent } from "../core/publish.js";
import { TopicType, type Subjects } from "../core/subjects.js";
import { EndReason, ErrorEventSchema, UserMessageSchema, type UserMessage } from "../gen/switchboard/v1/conversation_pb.js";
import { SessionRecordSchema } from "../gen/switchboard/v1/registry_pb.js";
import type { RegistryView } from "./registry-view.js";
import { affectsSession, applyEvent, type Applied } from "./session-state.js";

const CONCURRENCY = 64;

interface PendingEvent {
  readonly msg: JsMsg;
  readonly topic: TopicId;
  readonly message: Message;
  readonly eventId: string;
}
const PROJECTOR_ACK_WAIT_MS = 3_000;

/**
 * Keeps the `sessions` bucket by folding the event stream into one record per session. Hosts share
 * one durable consumer, so each event is applied once (at least once, and idempotently), and a
 * host that was down catches up from where the consumer stopped. Not on the message path.
 */
export class SessionProjector {
  private messages: ConsumerMessages | undefined;
  private loop: Promise<void> | undefined;
  private readonly inflight = new Set<Promise<void>>();
  /** Events waiting for their session's next write; a key exists while a write is under way. */
  private readonly pending = new Map<string, PendingEvent[]>();
  private readonly records: CachedRecords<typeof SessionRecordSchema>;

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly subjects: Subjects,
    private readonly sessions: KV,
    private readonly directory: RegistryView,
    private readonly logger: Logger,
    private readonly source: string,
  ) {
    this.records = new CachedRecords(sessions, SessionRecordSchema);
  }

  async start(): Promise<void> {
    await ensureDurableConsumer(this.jsm, {
      stream: this.subjects.eventStream,
      name: this.subjects.sessionsConsumer,
      filterSubject: this.subjects.allTopics,
      deliverPolicy: DeliverPolicy.All,
      // Short ack wait: applying is idempotent, and a host that died holding events should not
      // delay session state for long.
      tunables: { ack_wait: PROJECTOR_ACK_WAIT_MS * 1_000_000, max_ack_pending: 10_000 },
    });
    const consumer = await this.js.consumers.get(this.subjects.eventStream, this.subjects.sessionsConsumer);
    this.messages = await consumer.consume({ max_messages: CONCURRENCY * 4 });
    this.loop = this.run(this.messages);
  }

  private async run(messages: ConsumerMessages): Promise<void> {
    for await (const msg of messages) {
      const event = this.accept(msg);
      if (!event) continue;
      const session = event.topic.source.session;
      const queued = this.pending.get(session);
      if (queued) {
        // A write for this session is under way: this event joins the next one.
        queued.push(event);
        continue;
      }
      while (this.inflight.size >= CONCURRENCY) await Promise.race(this.inflight);
      this.pending.set(session, [event]);
      const task = this.flush(session).finally(() => this.inflight.delete(task));
      this.inflight.add(task);
    }
  }

  /** Decodes an event worth applying; acks and drops the others. */
  private accept(msg: JsMsg): PendingEvent | undefined {
    const topic = this.subjects.parseTopic(msg.subject);
    const seq = msg.info.streamSequence;
    if (!topic) {
      this.logger.warn({ event: "event.rejected", seq, reason: ErrorCode.InvalidId }, "event on a subject with invalid ids; ignored");
      msg.ack();
      return undefined;
    }
    let decoded;
    try {
      decoded = decodeEvent(msg);
    } catch (err) {
      this.logger.warn({ event: "event.rejected", seq, session: topic.source.session, err: errorMessage(err) }, "undecodable event; ignored");
      msg.ack();
      return undefined;
    }
    if (namesAnotherSource(decoded.message, topic.source)) {
      // Subject permissions vouch for the subject only: a body naming another user or session
      // must not steer notices (or state) there.
      this.logger.warn({ event: "event.rejected", seq, reason: "identity_mismatch" }, "body names another user or session; ignored");
      msg.ack();
      return undefined;
    }
    if (!affectsSession(decoded.message, topic)) {
      msg.ack();
      return undefined;
    }
    return { msg, topic, message: decoded.message, eventId: decoded.attributes.id };
  }

  /**
   * Applies a session's queued events in stream order with one compare-and-set write per batch:
   * events of a turn arrive close together, so most turns cost one write, not one per event.
   */
  private async flush(session: string): Promise<void> {
    for (;;) {
      const batch = this.pending.get(session) ?? [];
      if (batch.length === 0) {
        this.pending.delete(session);
        return;
      }
      this.pending.set(session, []);
      let changes: Applied[] = [];
      try {
        await this.records.update(session, (current) => {
          changes = [];
          let record = current;
          for (const { msg, topic, message } of batch) {
            if (record && record.user !== topic.source.user) continue;
            const applied = applyEvent(record, message, { seq: BigInt(msg.info.streamSequence), topic, atMs: Math.floor(msg.info.timestampNanos / 1_000_000) });
            if (!applied) continue;
            changes.push(applied);
            record = applied.record;
          }
          return changes.length > 0 ? record : undefined;
        });
      } catch (err) {
        this.logger.warn({ event: "session.apply_failed", session, events: batch.length, err: errorMessage(err) }, "could not apply events; will retry");
        for (const { msg } of batch) msg.nak(1_000);
        continue;
      }
      for (const applied of changes) this.logChanges(applied);
      for (const { msg, topic, message, eventId } of batch) {
        if (isMessage(message, UserMessageSchema)) await this.checkRecipient(message, topic.type, eventId);
        msg.ack();
      }
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
   * in the stream (its consumer, if any, keeps it), and the waiting user is told at once.
   */
  private async checkRecipient(message: UserMessage, topicType: string, eventId: string): Promise<void> {
    if (topicType === TopicType.Response || this.directory.hasLiveSubscriber(topicType)) return;
    const known = topicType === TopicType.Default || this.directory.isKnown(topicType);
    const who = topicType === TopicType.Default ? "the router" : `the ${topicType} agent`;
    const text = known
      ? `${who} has no running worker right now; your message is queued and will be answered when one starts`
      : `there is no agent type "${topicType}"`;
    this.logger.warn({ event: "message.undeliverable", topicType, session: message.sessionId, known }, "user message for a topic nobody serves");
    await publishEvent(
      this.js,
      this.subjects,
      create(ErrorEventSchema, { sessionId: message.sessionId, user: message.user, turnId: message.turnId, code: known ? ErrorCode.AgentUnavailable : ErrorCode.UnknownAgent, message: text }),
      { type: TopicType.Response, source: { user: message.user, session: message.sessionId } },
      { source: this.source, id: `${eventId}-unavailable` },
    );
  }

  async close(): Promise<void> {
    await this.messages?.close();
    await this.loop;
    await Promise.allSettled(this.inflight);
  }

}
