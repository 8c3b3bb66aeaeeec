import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { JetStreamClient, JetStreamManager, StoredMsg } from "@nats-io/jetstream";
import { headers as natsHeaders, type MsgHdrs } from "@nats-io/transport-node";
import { CloudEventHeader, DeadLetterHeader, MSG_ID_HEADER } from "../core/codec.js";
import { ErrorCode, SwitchboardError } from "../core/errors.js";
import type { Subjects } from "../core/subjects.js";
import { DeadLetterSchema, type DeadLetter } from "../gen/switchboard/v1/registry_pb.js";

/** What a dead letter records about the message it keeps. */
export interface DeadLetterFacts {
  readonly subject: string;
  readonly agentType: string;
  readonly deliveries: number;
  readonly error: string;
}

/**
 * The headers of a dead letter: the original event's (without its message id, which belongs to the
 * event stream's de-duplication) plus what happened to it.
 */
export function deadLetterHeaders(original: MsgHdrs | undefined, facts: DeadLetterFacts): MsgHdrs {
  const h = natsHeaders();
  for (const [key, values] of original ?? []) for (const v of values) if (key !== MSG_ID_HEADER) h.append(key, v);
  h.set(DeadLetterHeader.Subject, facts.subject);
  h.set(DeadLetterHeader.AgentType, facts.agentType);
  h.set(DeadLetterHeader.Deliveries, String(facts.deliveries));
  h.set(DeadLetterHeader.Error, facts.error.replace(/[\r\n]+/g, " ").slice(0, 500));
  return h;
}

/**
 * The message id of the dead letter of one stored event for one consumer: the worker that gave up
 * and every host that saw the advisory use the same, so the dead-letter stream keeps it once.
 */
export function deadLetterId(consumer: string, streamSeq: number): string {
  return `dl-${consumer}-${streamSeq}`;
}

/** Messages whose handler kept failing: listed for a person, and replayed on request. */
export class DeadLetters {
  constructor(
    private readonly jsm: JetStreamManager,
    private readonly js: JetStreamClient,
    private readonly subjects: Subjects,
  ) {}

  /** The newest dead letters first. */
  async list(limit: number): Promise<DeadLetter[]> {
    const stream = this.subjects.deadLetterStream;
    const { state } = await this.jsm.streams.info(stream);
    const out: DeadLetter[] = [];
    for (let seq = state.last_seq; seq >= state.first_seq && seq > 0 && out.length < limit; seq--) {
      const stored = await this.get(seq);
      if (stored) out.push(this.describe(stored));
    }
    return out;
  }

  /** Publishes the message again where it was first published, then removes the dead letter. */
  async replay(seq: number): Promise<{ eventId: string; subject: string }> {
    const stored = await this.get(seq);
    if (!stored) throw new SwitchboardError(ErrorCode.NotFound, `no dead letter ${seq} (see \`switchboard admin dead-letters\`)`);
    const subject = stored.header.get(DeadLetterHeader.Subject);
    if (!this.subjects.parseTopic(subject)) throw new SwitchboardError(ErrorCode.InvalidMessage, `dead letter ${seq} has no valid original subject`);
    const h = natsHeaders();
    for (const [key, values] of stored.header) {
      if (key.startsWith("sb-dl-") || key === MSG_ID_HEADER || key === CloudEventHeader.Id) continue;
      for (const v of values) h.append(key, v);
    }
    // A fresh id: the outputs of a successful replay must not be mistaken for duplicates.
    const eventId = `${stored.header.get(CloudEventHeader.Id) || "event"}-replay${seq}`;
    h.set(CloudEventHeader.Id, eventId);
    await this.js.publish(subject, stored.data, { headers: h, msgID: eventId });
    await this.jsm.streams.deleteMessage(this.subjects.deadLetterStream, seq);
    return { eventId, subject };
  }

  private async get(seq: number): Promise<StoredMsg | undefined> {
    try {
      return (await this.jsm.streams.getMessage(this.subjects.deadLetterStream, { seq })) ?? undefined;
    } catch {
      // Deleted (replayed) or aged out.
      return undefined;
    }
  }

  private describe(stored: StoredMsg): DeadLetter {
    const subject = stored.header.get(DeadLetterHeader.Subject);
    const topic = this.subjects.parseTopic(subject);
    return create(DeadLetterSchema, {
      seq: BigInt(stored.seq),
      subject,
      agentType: stored.header.get(DeadLetterHeader.AgentType),
      topicType: topic?.type ?? "",
      user: topic?.source.user ?? "",
      sessionId: topic?.source.session ?? "",
      eventType: stored.header.get(CloudEventHeader.Type),
      eventId: stored.header.get(CloudEventHeader.Id),
      deliveries: Number(stored.header.get(DeadLetterHeader.Deliveries)) || 0,
      error: stored.header.get(DeadLetterHeader.Error),
      failedAt: timestampFromDate(stored.time),
    });
  }
}
