import {
  createRegistry,
  fromBinary,
  toBinary,
  type DescMessage,
  type Message,
  type MessageShape,
} from "@bufbuild/protobuf";
import { headers as natsHeaders, type MsgHdrs } from "@nats-io/transport-node";
import { file_switchboard_v1_conversation } from "../gen/switchboard/v1/conversation_pb.js";
import { file_switchboard_v1_registry } from "../gen/switchboard/v1/registry_pb.js";
import { file_switchboard_v1_routing } from "../gen/switchboard/v1/routing_pb.js";
import { file_switchboard_v1_agents } from "../gen/switchboard/v1/agents_pb.js";
import { DecodeError, ErrorCode } from "./errors.js";
import { newId } from "./ids.js";
import { injectTraceContext } from "./telemetry/tracing.js";

/** Every message type that may travel on the bus, looked up by `ce-type`. */
export const wireRegistry = createRegistry(file_switchboard_v1_conversation, file_switchboard_v1_registry, file_switchboard_v1_agents, file_switchboard_v1_routing);

export const CloudEventHeader = {
  SpecVersion: "ce-specversion",
  Id: "ce-id",
  Source: "ce-source",
  Type: "ce-type",
  Time: "ce-time",
  DataContentType: "ce-datacontenttype",
} as const;

/** JetStream de-duplication header: retried publishes with the same id are stored once. */
export const MSG_ID_HEADER = "Nats-Msg-Id";
export const ERROR_CODE_HEADER = "sb-error-code";

/** Headers a dead-lettered message carries besides its original ones. */
export const DeadLetterHeader = {
  Subject: "sb-dl-subject",
  AgentType: "sb-dl-agent-type",
  Deliveries: "sb-dl-deliveries",
  Error: "sb-dl-error",
} as const;
export const ERROR_MESSAGE_HEADER = "sb-error-message";
export const PROTOBUF_CONTENT_TYPE = "application/protobuf";

/** CloudEvents attributes of an event (binary content mode: one `ce-` header each). */
export interface EventAttributes {
  readonly id: string;
  readonly source: string;
  readonly type: string;
  readonly time: string;
}

export interface EncodeOptions {
  /** Event id, also used as `Nats-Msg-Id`; deterministic ids make retries and redeliveries idempotent. */
  readonly id?: string;
  /** Who produced the event, for example `switchboard/worker/<id>/finance`. */
  readonly source: string;
}

export interface EncodedEvent {
  readonly headers: MsgHdrs;
  readonly data: Uint8Array;
  readonly id: string;
}

export function encodeEvent<Desc extends DescMessage>(
  schema: Desc,
  message: MessageShape<Desc>,
  options: EncodeOptions,
): EncodedEvent {
  const id = options.id ?? newId();
  const h = natsHeaders();
  h.set(CloudEventHeader.SpecVersion, "1.0");
  h.set(CloudEventHeader.Id, id);
  h.set(CloudEventHeader.Source, options.source);
  h.set(CloudEventHeader.Type, schema.typeName);
  h.set(CloudEventHeader.Time, new Date().toISOString());
  h.set(CloudEventHeader.DataContentType, PROTOBUF_CONTENT_TYPE);
  h.set(MSG_ID_HEADER, id);
  // ce-traceparent / ce-tracestate of the span publishing it, when tracing is on.
  injectTraceContext(h);
  return { headers: h, data: toBinary(schema, message), id };
}

export interface DecodedEvent {
  readonly attributes: EventAttributes;
  readonly message: Message;
}

interface RawMessage {
  readonly headers?: MsgHdrs | undefined;
  readonly data: Uint8Array;
}

/** CloudEvents `specversion` this binding speaks; events naming another are refused. */
export const CLOUDEVENTS_SPEC_VERSION = "1.0";

/** Longest `ce-id`, `ce-source` or `ce-type` accepted. */
const MAX_ATTRIBUTE_CHARS = 256;
/** Printable, without spaces: what an id, a URI reference or a type name looks like. */
const ATTRIBUTE = /^[\x21-\x7e]+$/;
const TYPE_NAME = /^[A-Za-z_][A-Za-z0-9_.]*$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})$/;

/**
 * The CloudEvents attributes of an event, checked: every required header present and well formed,
 * each failure with its own code so a client can tell which header to fix.
 */
function checkedAttributes(h: MsgHdrs | undefined): EventAttributes {
  // One value per attribute: with two, the guard and whoever reads the event next could each
  // take another.
  const get = (name: string, code: ErrorCode): string => {
    const values = h?.values(name) ?? [];
    if (values.length > 1) throw new DecodeError(code, `event has ${values.length} ${name} headers; send one`);
    return values[0] ?? "";
  };
  const quoted = (value: string): string => JSON.stringify(value.slice(0, 80));
  const specVersion = get(CloudEventHeader.SpecVersion, ErrorCode.InvalidSpecVersion);
  if (specVersion !== CLOUDEVENTS_SPEC_VERSION) {
    throw new DecodeError(ErrorCode.InvalidSpecVersion, specVersion === "" ? `event has no ${CloudEventHeader.SpecVersion} header (must be ${CLOUDEVENTS_SPEC_VERSION})` : `unsupported ${CloudEventHeader.SpecVersion} ${quoted(specVersion)}: only ${CLOUDEVENTS_SPEC_VERSION} is accepted`);
  }
  const attribute = (name: string, code: ErrorCode, what: string, shape = ATTRIBUTE): string => {
    const value = get(name, code);
    if (value === "") throw new DecodeError(code, `event has no ${name} header`);
    if (value.length > MAX_ATTRIBUTE_CHARS || !ATTRIBUTE.test(value) || !shape.test(value)) {
      throw new DecodeError(code, `malformed ${name} ${quoted(value)}: ${what}, at most ${MAX_ATTRIBUTE_CHARS} characters`);
    }
    return value;
  };
  const id = attribute(CloudEventHeader.Id, ErrorCode.InvalidEventId, "use printable characters without spaces");
  const source = attribute(CloudEventHeader.Source, ErrorCode.InvalidSource, "use a URI reference such as switchboard/chat/<user>");
  const type = attribute(CloudEventHeader.Type, ErrorCode.InvalidEventType, "use a full protobuf message name such as switchboard.v1.UserMessage", TYPE_NAME);
  const time = get(CloudEventHeader.Time, ErrorCode.InvalidTime);
  if (time === "") throw new DecodeError(ErrorCode.InvalidTime, `event has no ${CloudEventHeader.Time} header`);
  if (!RFC3339.test(time) || Number.isNaN(Date.parse(time))) {
    throw new DecodeError(ErrorCode.InvalidTime, `malformed ${CloudEventHeader.Time} ${quoted(time)}: use an RFC 3339 time such as 2026-01-01T12:00:00.000Z`);
  }
  const contentType = get(CloudEventHeader.DataContentType, ErrorCode.UnsupportedContentType) || PROTOBUF_CONTENT_TYPE;
  if (contentType !== PROTOBUF_CONTENT_TYPE) {
    throw new DecodeError(ErrorCode.UnsupportedContentType, `unsupported ${CloudEventHeader.DataContentType} ${quoted(contentType)}: only ${PROTOBUF_CONTENT_TYPE} is accepted`);
  }
  return { id, source, type, time };
}

/** Decodes a CloudEvents-over-NATS message; throws {@link DecodeError} on anything malformed. */
export function decodeEvent(msg: RawMessage): DecodedEvent {
  const attributes = checkedAttributes(msg.headers);
  const type = attributes.type;
  const schema = wireRegistry.getMessage(type);
  if (!schema) throw new DecodeError(ErrorCode.UnknownType, `unknown ce-type ${JSON.stringify(type.slice(0, 120))}`);
  let message: Message;
  try {
    message = fromBinary(schema, msg.data);
  } catch (err) {
    throw new DecodeError(ErrorCode.InvalidMessage, `malformed ${type} body (${msg.data.length} bytes)`, { cause: err });
  }
  return { attributes, message };
}

/** Encodes a plain protobuf body (request/reply payloads and KV values). */
export function encodeBody<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): Uint8Array {
  return toBinary(schema, message);
}

/** Decodes a plain protobuf body; throws {@link DecodeError} when it is malformed. */
export function decodeBody<Desc extends DescMessage>(schema: Desc, data: Uint8Array): MessageShape<Desc> {
  try {
    return fromBinary(schema, data);
  } catch (err) {
    throw new DecodeError(ErrorCode.InvalidMessage, `malformed ${schema.typeName} (${data.length} bytes)`, { cause: err });
  }
}

/** Headers for an error answer to a request. */
export function errorHeaders(code: string, message: string): MsgHdrs {
  const h = natsHeaders();
  h.set(ERROR_CODE_HEADER, code);
  // Header values cannot hold line breaks.
  h.set(ERROR_MESSAGE_HEADER, message.replace(/[\r\n]+/g, " ").slice(0, 500));
  return h;
}
