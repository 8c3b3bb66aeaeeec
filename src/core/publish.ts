import type { Message } from "@bufbuild/protobuf";
import type { JetStreamClient } from "@nats-io/jetstream";
import { encodeEvent, wireRegistry } from "./codec.js";
import { ErrorCode, SwitchboardError } from "./errors.js";
import type { TopicId } from "./ids.js";
import type { Subjects } from "./subjects.js";

export interface PublishEventOptions {
  /** `ce-source` of the event. */
  readonly source: string;
  /**
   * Event id (`ce-id`, also `Nats-Msg-Id`). Derive it from the input being handled so that a
   * redelivered input republishes under the same id and JetStream stores it once.
   */
  readonly id?: string | undefined;
}

/** The generated schema of a switchboard.v1 message. */
export function schemaOf(message: Message) {
  const schema = wireRegistry.getMessage(message.$typeName);
  if (!schema) throw new SwitchboardError(ErrorCode.UnknownType, `${message.$typeName} is not a switchboard.v1 message`);
  return schema;
}

/** Publishes an event to a topic through JetStream and waits for the stream's acknowledgement. */
export async function publishEvent(js: JetStreamClient, subjects: Subjects, message: Message, topic: TopicId, options: PublishEventOptions): Promise<string> {
  const subject = subjects.topic(topic);
  const event = encodeEvent(schemaOf(message), message, { source: options.source, ...(options.id ? { id: options.id } : {}) });
  // The message id makes the client's retries (reconnect, leader election) safe.
  await js.publish(subject, event.data, { headers: event.headers, msgID: event.id, retries: 5 });
  return event.id;
}
