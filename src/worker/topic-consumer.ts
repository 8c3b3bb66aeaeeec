import { DeliverPolicy, type Consumer, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import { create } from "@bufbuild/protobuf";
import { errors as natsErrors } from "@nats-io/transport-node";
import { decodeEvent } from "../core/codec.js";
import { DEFAULT_CONFIG } from "../core/config.js";
import { ensureDurableConsumer } from "../core/durable-consumer.js";
import { DecodeError, ErrorCode, errorMessage } from "../core/errors.js";
import type { TopicId } from "../core/ids.js";
import type { Logger } from "../core/logging.js";
import { describeDelivery, observeDelivery } from "../core/telemetry/delivery.js";
import type { AgentTypeMeter } from "../core/telemetry/metrics.js";
import { sleep, unboundedAbortController } from "../core/sleep.js";
import { TopicType, type Subjects } from "../core/subjects.js";
import { ErrorEventSchema } from "../gen/switchboard/v1/conversation_pb.js";
import { deadLetterHeaders, deadLetterId } from "../host/dead-letters.js";
import type { AgentRuntime } from "./agent.js";
import type { AgentInstances } from "./instances.js";

export interface TopicConsumerOptions {
  /** Messages handled at once by this worker for this subscription (`SB_CONCURRENCY`). */
  readonly concurrency: number;
  /** Deliveries before a failing message is given up on. */
  readonly maxDeliver: number;
  /** How long the server waits for an ack before redelivering to another worker. */
  readonly ackWaitMs: number;
  /** Counts deliveries, latency and dead letters of the agent type. */
  readonly meter?: AgentTypeMeter | undefined;
}

/** How long one pull request waits for messages; also the longest close() waits for it. */
const PULL_EXPIRES_MS = 1_000;
/**
 * A batch still open this long after its request expired is ended here. nats-server 2.9 can drop
 * an expiring request without telling the client when a message arrives at that very moment;
 * waiting for nats.js to notice the missing heartbeats instead held the consumer's messages for
 * about two seconds. The server is done with the request by then, so nothing handed to it is lost.
 */
const PULL_GRACE_MS = 500;
/**
 * A stopping worker gives back what reaches it with this delay. Its last pull request may still be
 * open on the server for up to {@link PULL_EXPIRES_MS}: a message given back at once would be
 * delivered into that same request again, and again, burning every delivery in milliseconds.
 * After the delay the request is gone and another worker takes the message.
 */
const HAND_BACK_DELAY_MS = PULL_EXPIRES_MS + PULL_GRACE_MS + 500;
/** How often a closing consumer asks whether everything has been delivered. */
const CATCH_UP_POLL_MS = 50;
/** nats.js ends a batch with this error when the server's idle heartbeats stop. */
const HEARTBEATS_MISSED = "heartbeats missed";

function closedConnection(err: unknown): boolean {
  return err instanceof natsErrors.ClosedConnectionError || (err instanceof Error && err.cause instanceof natsErrors.ClosedConnectionError);
}

export const DEFAULT_TOPIC_CONSUMER_OPTIONS: TopicConsumerOptions = {
  concurrency: DEFAULT_CONFIG.concurrency,
  maxDeliver: 5,
  ackWaitMs: 10_000,
};

/**
 * Binds one (agent type, topic type) subscription to its durable JetStream consumer. The consumer
 * is shared by every worker serving the type, so load spreads across them and a message whose
 * worker died is redelivered to another. A message is acked only after its handler finished.
 */
export class TopicConsumer {
  private loop: Promise<void> | undefined;
  /** Messages whose handler is running. */
  private readonly working = new Set<JsMsg>();
  private keepAlive: NodeJS.Timeout | undefined;
  private readonly inflight = new Set<Promise<void>>();
  private stopping = false;
  /** While stopping, handle what this worker has pulled rather than hand it back (see closeAfterCatchingUp). */
  private finishPulled = false;
  /**
   * Shared by every in-flight handler, each of which may listen to it (a sleep, a request): as many
   * listeners as messages in flight is expected, not a leak, so Node's warning past 10 is off.
   */
  private readonly abort = unboundedAbortController();

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly subjects: Subjects,
    private readonly instances: AgentInstances,
    readonly topicType: string,
    private readonly runtime: AgentRuntime,
    private readonly logger: Logger,
    private readonly options: TopicConsumerOptions = DEFAULT_TOPIC_CONSUMER_OPTIONS,
  ) {}

  get agentType(): string {
    return this.instances.type;
  }

  get durableName(): string {
    return this.subjects.consumer(this.instances.type, this.topicType);
  }

  async start(): Promise<void> {
    // In-progress acks keep a slow handler's message from being redelivered to another worker;
    // one timer for all of them rather than one per message.
    this.keepAlive = setInterval(() => {
      for (const msg of this.working) msg.working();
    }, Math.max(100, this.options.ackWaitMs / 3));
    const stream = this.subjects.eventStream;
    // Every worker of the type asks for the same durable consumer; the newest settings win.
    const replaced = await ensureDurableConsumer(this.jsm, {
      stream,
      name: this.durableName,
      filterSubject: this.subjects.topicFilter(this.topicType),
      deliverPolicy: DeliverPolicy.New,
      tunables: { ack_wait: this.options.ackWaitMs * 1_000_000, max_deliver: this.options.maxDeliver, max_ack_pending: 10_000 },
    });
    if (replaced.length > 0) {
      // ack_wait is in nanoseconds on the wire.
      const shown = (name: string, v: unknown) => (name === "ack_wait" && typeof v === "number" ? `${v / 1_000_000} ms` : String(v));
      const changes = replaced.map((r) => `${r.name} ${shown(r.name, r.was)} → ${shown(r.name, r.now)}`).join(", ");
      this.logger.warn(
        { event: "consumer.settings_changed", consumer: this.durableName, changes: replaced },
        `changed the consumer ${this.durableName}, shared by every worker of ${this.instances.type}: ${changes} (SB_ACK_WAIT_MS, SB_MAX_DELIVER); the others now work with these too`,
      );
    }
    const consumer = await this.js.consumers.get(stream, this.durableName);
    this.loop = this.run(consumer);
  }

  /**
   * Pulls in bounded batches rather than with an open-ended `consume()`: a batch request ends by
   * itself (filled or expired), so on shutdown every message the server handed to this worker
   * is seen and given back, instead of waiting out the ack wait on a closed subscription.
   */
  private async run(consumer: Consumer): Promise<void> {
    while (!this.stopping) {
      while (this.inflight.size >= this.options.concurrency) await Promise.race(this.inflight);
      let watchdog: NodeJS.Timeout | undefined;
      try {
        const batch: ConsumerMessages = await consumer.fetch({ max_messages: this.options.concurrency - this.inflight.size, expires: PULL_EXPIRES_MS });
        // A pull request the server forgot (it restarted, the consumer moved to another node, or
        // it dropped the request as it expired) would never end; a healthy one ends within its
        // expiry.
        watchdog = setTimeout(() => batch.stop(), PULL_EXPIRES_MS + PULL_GRACE_MS);
        for await (const msg of batch) {
          if (this.stopping && !this.finishPulled) {
            // Pulled but not started: hand it back for another worker, after this pull has ended.
            msg.nak(HAND_BACK_DELAY_MS);
            continue;
          }
          const task = this.handle(msg).finally(() => this.inflight.delete(task));
          this.inflight.add(task);
        }
      } catch (err) {
        if (this.stopping) break;
        if (closedConnection(err)) {
          // Closed by its owner (a stop without a server closes it before this consumer's turn):
          // nothing can be pulled any more, and nothing is wrong.
          this.logger.debug({ event: "consumer.connection_closed", consumer: this.durableName }, "connection closed; no more pulls");
          break;
        }
        if (errorMessage(err) === HEARTBEATS_MISSED) {
          // The request is gone but the connection is fine: ask again at once.
          this.logger.debug({ event: "consumer.pull_lost", consumer: this.durableName }, "pull request lost; pulling again");
          continue;
        }
        // The server is restarting or the consumer is moving to another node: try again shortly.
        this.logger.warn({ event: "consumer.pull_failed", consumer: this.durableName, err: errorMessage(err) }, "pull failed; retrying");
        await sleep(500);
      } finally {
        clearTimeout(watchdog);
      }
    }
  }

  private async handle(msg: JsMsg): Promise<void> {
    const topic = this.subjects.parseTopic(msg.subject);
    const log = this.logger;
    const at = { topicType: this.topicType, seq: msg.info.streamSequence };
    if (!topic) {
      log.warn({ event: "message.rejected", ...at, subject: msg.subject, reason: ErrorCode.InvalidId }, "message on a subject with invalid ids; dropped");
      // No reason string: nats-server 2.9 does not recognise "+TERM <reason>" and would redeliver.
      msg.term();
      return;
    }
    let decoded;
    try {
      decoded = decodeEvent(msg);
    } catch (err) {
      const code = err instanceof DecodeError ? err.code : ErrorCode.InvalidMessage;
      log.warn({ event: "message.rejected", ...at, reason: code, session: topic.source.session, err: errorMessage(err) }, "undecodable message; dropped");
      msg.term();
      await this.tellUser(topic, "", code, `your message could not be read (${errorMessage(err)})`, `${msg.info.streamSequence}`);
      return;
    }
    if (log.isLevelEnabled("debug")) log.debug({ event: "message.handling", ...at, session: topic.source.session, deliveryCount: msg.info.deliveryCount }, "handling message");
    this.working.add(msg);
    try {
      const delivery = describeDelivery(msg, decoded, topic.source.session, this.instances.type, this.topicType, this.durableName);
      let failedTurn = false;
      await observeDelivery(
        this.options.meter,
        delivery,
        () =>
          this.instances.deliver(`${topic.source.user}.${topic.source.session}`, decoded.message, {
            topic,
            eventId: decoded.attributes.id,
            deliveryCount: msg.info.deliveryCount,
            signal: this.abort.signal,
            turnFailed: () => (failedTurn = true),
          }),
        () => failedTurn,
      );
      msg.ack();
    } catch (err) {
      if (this.abort.signal.aborted) {
        // Given up on at shutdown, not failed: another worker takes it once this pull has ended.
        log.info({ event: "message.abandoned", ...at, session: topic.source.session }, "stopping; message handed back unfinished");
        msg.nak(HAND_BACK_DELAY_MS);
        return;
      }
      const exhausted = msg.info.deliveryCount >= this.options.maxDeliver;
      log.warn(
        { event: exhausted ? "message.failed" : "message.retry", ...at, session: topic.source.session, deliveryCount: msg.info.deliveryCount, err: errorMessage(err) },
        exhausted ? "handler kept failing; giving up on the message" : "handler failed; message will be redelivered",
      );
      if (exhausted) {
        this.options.meter?.deadLettered();
        await this.deadLetter(msg, topic, errorMessage(err));
        msg.term();
        const turnId = "turnId" in decoded.message && typeof decoded.message.turnId === "string" ? decoded.message.turnId : "";
        await this.tellUser(topic, turnId, ErrorCode.HandlerFailed, `the ${this.instances.type} agent failed to handle your message`, decoded.attributes.id);
      } else {
        msg.nak(Math.min(5_000, 250 * 2 ** msg.info.deliveryCount));
      }
    } finally {
      this.working.delete(msg);
    }
  }

  /** Keeps a message that kept failing in the dead-letter stream, for inspection and replay. */
  private async deadLetter(msg: JsMsg, topic: TopicId, error: string): Promise<void> {
    const h = deadLetterHeaders(msg.headers, { subject: msg.subject, agentType: this.instances.type, deliveries: msg.info.deliveryCount, error });
    try {
      await this.js.publish(this.subjects.deadLetter(this.instances.type, topic), msg.data, { headers: h, msgID: deadLetterId(this.durableName, msg.info.streamSequence) });
      this.logger.warn({ event: "message.dead_lettered", session: topic.source.session, seq: msg.info.streamSequence }, "message moved to the dead-letter stream");
    } catch (err) {
      this.logger.error({ event: "dead_letter.failed", session: topic.source.session, err: errorMessage(err) }, "could not dead-letter a failed message");
    }
  }

  /** Publishes an ErrorEvent to the user waiting on this session, if the ids allow it. */
  private async tellUser(topic: TopicId, turnId: string, code: string, message: string, causeId: string): Promise<void> {
    try {
      await this.runtime.publish(
        create(ErrorEventSchema, { sessionId: topic.source.session, user: topic.source.user, turnId, code, message, agentType: this.instances.type }),
        { type: TopicType.Response, source: topic.source },
        { id: `${causeId}-${this.instances.type}-error` },
      );
    } catch (err) {
      this.logger.warn({ event: "error_event.failed", session: topic.source.session, err: errorMessage(err) }, "could not tell the user about a failed message");
    }
  }

  /**
   * Closes once the durable consumer has nothing left undelivered (or after `withinMs`), handling
   * what reaches this worker meanwhile instead of handing it back. For output on its way to users,
   * closed after everything else: the replies that the stopping worker's own handlers just
   * published are then delivered now, not when another worker of the type next runs.
   */
  async closeAfterCatchingUp(withinMs: number): Promise<void> {
    this.finishPulled = true;
    const deadline = Date.now() + withinMs;
    while (Date.now() < deadline) {
      try {
        const info = await this.jsm.consumers.info(this.subjects.eventStream, this.durableName);
        if (info.num_pending === 0) break;
      } catch {
        // No server to ask: nothing more can be pulled either.
        break;
      }
      await sleep(CATCH_UP_POLL_MS);
    }
    await this.close();
  }

  /** Stops pulling, then waits for in-flight handlers (they are acked as they finish). */
  async close(): Promise<void> {
    this.stopping = true;
    await this.loop;
    await Promise.allSettled(this.inflight);
    clearInterval(this.keepAlive);
  }

  /** Gives up on in-flight handlers: their messages are redelivered elsewhere. */
  abortInflight(): void {
    clearInterval(this.keepAlive);
    this.abort.abort();
  }
}
