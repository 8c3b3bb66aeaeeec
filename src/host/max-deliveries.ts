import { create } from "@bufbuild/protobuf";
import type { JetStreamClient, JetStreamManager, StoredMsg } from "@nats-io/jetstream";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { decodeEvent } from "../core/codec.js";
import { ErrorCode, errorMessage } from "../core/errors.js";
import type { TopicId } from "../core/ids.js";
import type { Logger } from "../core/logging.js";
import { publishEvent } from "../core/publish.js";
import { TopicType, type Subjects } from "../core/subjects.js";
import { ErrorEventSchema } from "../gen/switchboard/v1/conversation_pb.js";
import { deadLetterHeaders, deadLetterId } from "./dead-letters.js";

/** The fields of JetStream's `io.nats.jetstream.advisory.v1.max_deliver` advisory that matter here. */
interface MaxDeliveriesAdvisory {
  readonly stream: string;
  readonly consumer: string;
  readonly stream_seq: number;
  readonly deliveries: number;
}

function parseAdvisory(data: Uint8Array): MaxDeliveriesAdvisory | undefined {
  try {
    const a = JSON.parse(new TextDecoder().decode(data)) as Partial<MaxDeliveriesAdvisory>;
    if (typeof a.stream !== "string" || typeof a.consumer !== "string" || typeof a.stream_seq !== "number") return undefined;
    return { stream: a.stream, consumer: a.consumer, stream_seq: a.stream_seq, deliveries: typeof a.deliveries === "number" ? a.deliveries : 0 };
  } catch {
    return undefined;
  }
}

/**
 * Turns every message that a worker consumer gave up on into a dead letter and an error for the
 * user, whatever the reason it ran out of deliveries: a handler that kept failing is handled by
 * its worker, but a message whose workers kept dying, or kept handing it back while stopping,
 * reaches the limit without any handler seeing the last delivery. Without this it would vanish.
 *
 * Hosts listen in their queue group, so one of them handles each advisory; the dead letter and the
 * error event have the ids the worker itself would use, so the streams keep each once even when
 * both act.
 */
export class MaxDeliveriesWatch {
  private sub: Subscription | undefined;
  private readonly inflight = new Set<Promise<void>>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly subjects: Subjects,
    private readonly logger: Logger,
    private readonly source: string,
  ) {}

  start(): void {
    this.sub = this.nc.subscribe(this.subjects.maxDeliveriesAdvisories, {
      queue: this.subjects.hostQueue,
      callback: (err, msg) => {
        if (err) {
          this.logger.warn({ event: "advisory.subscription_error", err: errorMessage(err) }, "max-deliveries advisory subscription error");
          return;
        }
        const task = this.handle(msg).finally(() => this.inflight.delete(task));
        this.inflight.add(task);
      },
    });
  }

  private async handle(msg: Msg): Promise<void> {
    const advisory = parseAdvisory(msg.data);
    if (!advisory || advisory.stream !== this.subjects.eventStream) return;
    const seq = advisory.stream_seq;
    let stored: StoredMsg | null;
    try {
      stored = await this.jsm.streams.getMessage(this.subjects.eventStream, { seq });
    } catch (err) {
      this.logger.error({ event: "dead_letter.failed", seq, consumer: advisory.consumer, err: errorMessage(err) }, "a message reached its maximum deliveries and could not be read back");
      return;
    }
    const topic = stored ? this.subjects.parseTopic(stored.subject) : undefined;
    const agentType = topic ? this.subjects.agentTypeOfConsumer(advisory.consumer, topic.type) : undefined;
    if (!stored || !topic || !agentType) {
      this.logger.error({ event: "dead_letter.failed", seq, consumer: advisory.consumer }, "a message reached its maximum deliveries but is not a conversation event of an agent consumer");
      return;
    }
    const error = `delivered ${advisory.deliveries} times without being acknowledged (its workers died or stopped while holding it)`;
    try {
      const headers = deadLetterHeaders(stored.header, { subject: stored.subject, agentType, deliveries: advisory.deliveries, error });
      await this.js.publish(this.subjects.deadLetter(agentType, topic), stored.data, { headers, msgID: deadLetterId(advisory.consumer, seq) });
    } catch (err) {
      this.logger.error({ event: "dead_letter.failed", seq, agentType, session: topic.source.session, err: errorMessage(err) }, "could not dead-letter a message that reached its maximum deliveries");
      return;
    }
    this.logger.warn({ event: "message.dead_lettered", seq, agentType, session: topic.source.session, deliveries: advisory.deliveries, reason: "max_deliveries" }, "a message reached its maximum deliveries; moved to the dead-letter stream");
    await this.tellUser(stored, topic, agentType, advisory.deliveries);
  }

  /** The user waiting for the turn gets an error instead of a silent time-out. */
  private async tellUser(stored: StoredMsg, topic: TopicId, agentType: string, deliveries: number): Promise<void> {
    let eventId: string;
    let turnId = "";
    try {
      const decoded = decodeEvent({ headers: stored.header, data: stored.data });
      eventId = decoded.attributes.id;
      const message = decoded.message as { turnId?: unknown };
      if (typeof message.turnId === "string") turnId = message.turnId;
    } catch {
      return;
    }
    try {
      await publishEvent(
        this.js,
        this.subjects,
        create(ErrorEventSchema, {
          sessionId: topic.source.session,
          user: topic.source.user,
          turnId,
          code: ErrorCode.HandlerFailed,
          agentType,
          message: `the ${agentType} agent could not answer your message: it was delivered ${deliveries === 1 ? "once" : `${deliveries} times`} and never finished (its workers stopped or died while holding it); it is kept as a dead letter`,
        }),
        { type: TopicType.Response, source: topic.source },
        { source: this.source, id: `${eventId}-${agentType}-error` },
      );
    } catch (err) {
      this.logger.warn({ event: "error_event.failed", session: topic.source.session, err: errorMessage(err) }, "could not tell the user about a dead-lettered message");
    }
  }

  async close(): Promise<void> {
    if (this.sub && !this.sub.isClosed()) await this.sub.drain();
    await Promise.allSettled(this.inflight);
  }
}
