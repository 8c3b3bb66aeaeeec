import { create, isMessage } from "@bufbuild/protobuf";
import { DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { decodeEvent } from "../core/codec.js";
import { ensureDurableConsumer } from "../core/durable-consumer.js";
import { ErrorCode, errorMessage } from "../core/errors.js";
import { CachedRecords } from "../core/kv-records.js";
import type { Logger } from "../core/logging.js";
import { publishEvent } from "../core/publish.js";
import { TopicType, type Subjects } from "../core/subjects.js";
import { EndReason, ErrorEventSchema, UserMessageSchema, type UserMessage } from "../gen/switchboard/v1/conversation_pb.js";
import { SessionRecordSchema } from "../gen/switchboard/v1/registry_pb.js";
import { KeyedQueue } from "../core/keyed-queue.js";
import type { RegistryView } from "./registry-view.js";
import { affectsSession, applyEvent, type Applied } from "./session-state.js";

const CONCURRENCY = 64;
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
  private readonly queue = new KeyedQueue();
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
      while (this.inflight.size >= CONCURRENCY) await Promise.race(this.inflight);
      const topic = this.subjects.parseTopic(msg.subject);
      // Events of one session are applied in stream order; sessions proceed in parallel.
      const task = this.queue
        .run(topic?.source.session ?? "", () => this.handle(msg))
        .catch((err: unknown) => {
          this.logger.warn({ event: "session.apply_failed", seq: msg.info.streamSequence, err: errorMessage(err) }, "could not apply event; will retry");
          msg.nak(1_000);
        })
        .finally(() => this.inflight.delete(task));
      this.inflight.add(task);
    }
  }

  private async handle(msg: JsMsg): Promise<void> {
    const topic = this.subjects.parseTopic(msg.subject);
    const seq = msg.info.streamSequence;
    if (!topic) {
      this.logger.warn({ event: "event.rejected", seq, reason: ErrorCode.InvalidId }, "event on a subject with invalid ids; ignored");
      msg.ack();
      return;
    }
    let decoded;
    try {
      decoded = decodeEvent(msg);
    } catch (err) {
      this.logger.warn({ event: "event.rejected", seq, session: topic.source.session, err: errorMessage(err) }, "undecodable event; ignored");
      msg.ack();
      return;
    }
    let applied: Applied | undefined;
    if (!affectsSession(decoded.message, topic)) {
      msg.ack();
      return;
    }
    await this.records.update(topic.source.session, (current) => {
      if (current && current.user !== topic.source.user) return undefined;
      applied = applyEvent(current, decoded.message, { seq: BigInt(seq), topic, atMs: Math.floor(msg.info.timestampNanos / 1_000_000) });
      return applied?.record;
    });
    if (applied) this.logChanges(applied);
    if (isMessage(decoded.message, UserMessageSchema)) await this.checkRecipient(decoded.message, topic.type, decoded.attributes.id);
    msg.ack();
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
