import { performance } from "node:perf_hooks";
import type { Attributes } from "@opentelemetry/api";
import type { JsMsg } from "@nats-io/jetstream";
import type { MsgHdrs } from "@nats-io/transport-node";
import type { DecodedEvent } from "../codec.js";
import { isValidToken } from "../ids.js";
import type { AgentTypeMeter } from "./metrics.js";
import { inHandleSpan, SpanAttribute, spanSafeId, tracingEnabled } from "./tracing.js";

/** One message handed to an agent type's handler by its durable consumer. */
export interface Delivery {
  readonly headers: MsgHdrs | undefined;
  readonly agentType: string;
  readonly topicType: string;
  readonly session: string;
  readonly turn: string;
  readonly eventId: string;
  readonly eventType: string;
  readonly subject: string;
  readonly deliveryCount: number;
  readonly consumer: string;
  /** Messages still waiting in the consumer after this one, as the server said. */
  readonly pending: number;
}

/**
 * The delivery of a decoded event from an agent type's durable consumer. The session comes from
 * the subject (a checked id); the turn id from the body only when it is a well-formed id, since
 * the body is the sender's to fill and nothing it wrote freely may reach a span.
 */
export function describeDelivery(msg: JsMsg, decoded: DecodedEvent, session: string, agentType: string, topicType: string, consumer: string): Delivery {
  const m = decoded.message;
  const turn = "turnId" in m && typeof m.turnId === "string" && isValidToken(m.turnId) ? m.turnId : "";
  return {
    headers: msg.headers,
    agentType,
    topicType,
    session,
    turn,
    eventId: decoded.attributes.id,
    eventType: decoded.attributes.type,
    subject: msg.subject,
    deliveryCount: msg.info.deliveryCount,
    consumer,
    pending: msg.info.pending,
  };
}

/**
 * Runs a handler for `delivery` inside its `agent handle` span, counting it in `meter`: as a
 * failure when it throws, or when `failedAnyway` says the turn failed (the user was told).
 */
export async function observeDelivery<T>(meter: AgentTypeMeter | undefined, delivery: Delivery, handler: () => Promise<T>, failedAnyway?: () => boolean): Promise<T> {
  meter?.pending(delivery.consumer, delivery.pending);
  meter?.started(delivery.deliveryCount);
  const startedAt = performance.now();
  let ok = false;
  try {
    const result = tracingEnabled() ? await inHandleSpan(delivery.headers, spanAttributes(delivery), delivery.deliveryCount, handler) : await handler();
    ok = !(failedAnyway?.() ?? false);
    return result;
  } finally {
    meter?.finished(performance.now() - startedAt, ok);
  }
}

function spanAttributes(delivery: Delivery): Attributes {
  return {
    [SpanAttribute.AgentType]: delivery.agentType,
    [SpanAttribute.TopicType]: delivery.topicType,
    [SpanAttribute.Session]: delivery.session,
    [SpanAttribute.Turn]: delivery.turn,
    [SpanAttribute.DeliveryCount]: delivery.deliveryCount,
    [SpanAttribute.MessageId]: spanSafeId(delivery.eventId),
    [SpanAttribute.MessageType]: delivery.eventType,
    [SpanAttribute.Destination]: delivery.subject,
    [SpanAttribute.MessagingSystem]: "nats",
  };
}
