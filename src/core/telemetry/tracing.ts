import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
} from "@opentelemetry/api";
import type { MsgHdrs } from "@nats-io/transport-node";

/**
 * W3C trace context travels in the CloudEvents distributed-tracing extension: in the NATS binding
 * each attribute is a `ce-` header, so `traceparent` becomes `ce-traceparent`.
 */
export const TraceHeader = {
  TraceParent: "ce-traceparent",
  TraceState: "ce-tracestate",
} as const;

const CE_PREFIX = "ce-";

/** Attribute names of Switchboard's spans. Ids only: no span carries what a user wrote. */
export const SpanAttribute = {
  AgentType: "switchboard.agent.type",
  TopicType: "switchboard.topic.type",
  Session: "switchboard.session.id",
  Turn: "switchboard.turn.id",
  WorkerId: "switchboard.worker.id",
  DeliveryCount: "switchboard.delivery.count",
  RoutingDecision: "switchboard.routing.decision",
  RoutedAgentType: "switchboard.routing.agent_type",
  RoutingScore: "switchboard.routing.score",
  TurnOutcome: "switchboard.turn.outcome",
  MessageId: "messaging.message.id",
  MessageType: "cloudevents.event_type",
  Destination: "messaging.destination.name",
  MessagingSystem: "messaging.system",
  ErrorType: "error.type",
} as const;

/** Span names, one per hop of a turn. */
export const SpanName = {
  ChatTurn: "chat turn",
  ChatReceive: "chat receive",
  AgentHandle: "agent handle",
  RouterClassify: "router classify",
} as const;

/**
 * An id a sender chose (`ce-id`), or "" when it does not look like one: ids may go into spans,
 * free text may not.
 */
export function spanSafeId(id: string): string {
  return /^[A-Za-z0-9_.:-]{1,200}$/.test(id) ? id : "";
}

/** Set once the SDK is running; until then tracing costs one boolean test per hook. */
let enabled = false;

export function setTracingEnabled(on: boolean): void {
  enabled = on;
}

export function tracingEnabled(): boolean {
  return enabled;
}

const tracer = trace.getTracer("switchboard");

const headerSetter: TextMapSetter<MsgHdrs> = {
  set(carrier, key, value) {
    carrier.set(CE_PREFIX + key, value);
  },
};

const headerGetter: TextMapGetter<MsgHdrs | undefined> = {
  keys(carrier) {
    return carrier ? carrier.keys().filter((k) => k.startsWith(CE_PREFIX)).map((k) => k.slice(CE_PREFIX.length)) : [];
  },
  get(carrier, key) {
    return carrier?.get(CE_PREFIX + key) || undefined;
  },
};

/** Adds `ce-traceparent`/`ce-tracestate` of the active span to an outgoing event's headers. */
export function injectTraceContext(headers: MsgHdrs): void {
  if (enabled) propagation.inject(context.active(), headers, headerSetter);
}

/** The remote span an incoming event continues, if its headers carry one. */
export function extractTraceContext(headers: MsgHdrs | undefined): Context {
  return propagation.extract(ROOT_CONTEXT, headers, headerGetter);
}

function markFailed(span: Span, err: unknown): void {
  // The error's class, not its message: messages may quote what the user wrote.
  span.setAttribute(SpanAttribute.ErrorType, err instanceof Error ? err.name : typeof err);
  span.setStatus({ code: SpanStatusCode.ERROR });
}

/**
 * Runs `fn` inside a span (a child of the active one); events published inside carry its context.
 * `fn` may add attributes to the span it is given.
 */
export async function inSpan<T>(name: string, attributes: Attributes, fn: (span: Span | undefined) => Promise<T>, kind: SpanKind = SpanKind.INTERNAL, parent?: Context): Promise<T> {
  if (!enabled) return fn(undefined);
  const span = tracer.startSpan(name, { kind, attributes }, parent ?? context.active());
  try {
    return await context.with(trace.setSpan(parent ?? context.active(), span), () => fn(span));
  } catch (err) {
    markFailed(span, err);
    throw err;
  } finally {
    span.end();
  }
}

/**
 * Handles one delivered event in a consumer span that continues the trace its headers carry. A
 * span event records which delivery this is, so redeliveries show in the same trace.
 */
export function inHandleSpan<T>(headers: MsgHdrs | undefined, attributes: Attributes, deliveryCount: number, fn: () => Promise<T>): Promise<T> {
  if (!enabled) return fn();
  return inSpan(
    SpanName.AgentHandle,
    attributes,
    (span) => {
      span?.addEvent(deliveryCount > 1 ? "redelivery" : "delivery", { [SpanAttribute.DeliveryCount]: deliveryCount });
      return fn();
    },
    SpanKind.CONSUMER,
    extractTraceContext(headers),
  );
}

/** Adds attributes to the span of the code running now (the routing decision to `agent handle`). */
export function annotateActiveSpan(attributes: Attributes): void {
  if (enabled) trace.getActiveSpan()?.setAttributes(attributes);
}

/** A span the caller ends: the chat's turn spans the wait for its answer. */
export interface OpenSpan {
  /** Runs `fn` with this span active, so what it publishes carries the span's context. */
  run<T>(fn: () => Promise<T>): Promise<T>;
  end(attributes?: Attributes): void;
}

const NO_SPAN: OpenSpan = { run: (fn) => fn(), end: () => undefined };

export function startSpan(name: string, attributes: Attributes, kind: SpanKind = SpanKind.INTERNAL): OpenSpan {
  if (!enabled) return NO_SPAN;
  const span = tracer.startSpan(name, { kind, attributes });
  const ctx = trace.setSpan(context.active(), span);
  return {
    run: (fn) => context.with(ctx, fn),
    end: (more) => {
      if (more) span.setAttributes(more);
      span.end();
    },
  };
}

/** Records the arrival of an event as a span that continues the trace its headers carry. */
export function recordReceipt(name: string, headers: MsgHdrs | undefined, attributes: Attributes): void {
  if (!enabled) return;
  tracer.startSpan(name, { kind: SpanKind.CONSUMER, attributes }, extractTraceContext(headers)).end();
}

export { SpanKind };
