import type { Message } from "@bufbuild/protobuf";
import type { JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { decodeEvent, encodeEvent } from "../core/codec.js";
import { publishEvent, schemaOf } from "../core/publish.js";
import type { AgentId, TopicId } from "../core/ids.js";
import { requestRaw } from "../core/request.js";
import type { Subjects } from "../core/subjects.js";
import { AgentReplyDeltaSchema, type AgentReplyDelta } from "../gen/switchboard/v1/conversation_pb.js";
import type { AgentRuntime, PublishOptions, SendOptions } from "./agent.js";

export const DEFAULT_SEND_TIMEOUT_MS = 10_000;

/** Publishes and sends through NATS on behalf of the agents of one worker. */
export class NatsAgentRuntime implements AgentRuntime {
  constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly subjects: Subjects,
    /** `ce-source` of everything this runtime emits. */
    private readonly source: string,
  ) {}

  async publish(message: Message, topic: TopicId, options: PublishOptions = {}): Promise<void> {
    await publishEvent(this.js, this.subjects, message, topic, { source: this.source, id: options.id });
  }

  publishDelta(delta: AgentReplyDelta): void {
    const event = encodeEvent(AgentReplyDeltaSchema, delta, { source: this.source });
    this.nc.publish(this.subjects.replyDelta(delta.user, delta.sessionId), event.data, { headers: event.headers });
  }

  async send(message: Message, recipient: AgentId, options: SendOptions = {}): Promise<Message> {
    const subject = this.subjects.rpc(recipient);
    const event = encodeEvent(schemaOf(message), message, { source: this.source });
    const reply = await requestRaw(this.nc, subject, event.data, {
      timeoutMs: options.timeoutMs ?? DEFAULT_SEND_TIMEOUT_MS,
      signal: options.signal,
      headers: event.headers,
      what: `send to ${recipient.type}/${recipient.key}`,
      noRespondersHint: `no live worker serves agent type "${recipient.type}"`,
    });
    return decodeEvent(reply).message;
  }
}
