import type { Message } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/transport-node";
import type { AgentId, TopicId } from "../core/ids.js";
import type { Logger } from "../core/logging.js";
import type { Subjects } from "../core/subjects.js";
import type { AgentReplyDelta } from "../gen/switchboard/v1/conversation_pb.js";
import type { AgentTypeSpec } from "../gen/switchboard/v1/registry_pb.js";
import type { AgentState } from "./agent-state.js";

export type { AgentState } from "./agent-state.js";

export interface PublishOptions {
  /**
   * Event id (`ce-id`, also `Nats-Msg-Id`). Derive it from the input being handled so that a
   * redelivered input republishes under the same id and JetStream stores it once.
   */
  readonly id?: string;
}

export interface SendOptions {
  /** Deadline for the answer; default 10 s. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** What an agent can do with the bus. */
export interface AgentRuntime {
  /** Every agent type subscribed to `topic.type` gets the message once (durably, at least once). */
  publish(message: Message, topic: TopicId, options?: PublishOptions): Promise<void>;
  /**
   * Direct request to one agent instance; resolves with its response or rejects with a typed
   * error: TimeoutError, NoRespondersError (nobody serves the type), CancelledError, RemoteError.
   */
  send(message: Message, recipient: AgentId, options?: SendOptions): Promise<Message>;
  /**
   * Sends part of a reply in progress straight to the user's chat over core NATS: never stored,
   * not retried, so it costs no more than one publish. The durable `AgentReply` published
   * afterwards must still carry the whole content.
   */
  publishDelta(delta: AgentReplyDelta): void;
}

export interface MessageContext {
  /** The topic the message was published on; undefined for a direct `send`. */
  readonly topic: TopicId | undefined;
  /** `ce-id` of the message being handled. */
  readonly eventId: string;
  /** How many times this message has been delivered (1 the first time). */
  readonly deliveryCount: number;
  /** Aborted when the worker gives up on in-flight work. */
  readonly signal: AbortSignal;
  /**
   * Call when the turn failed and the user was told so (an `ErrorEvent`), though the handler
   * returns normally: the message is not redelivered, but stats and metrics count a failure.
   */
  readonly turnFailed?: ((code: string) => void) | undefined;
}

/** One agent instance: created on the first message for its (type, key), then reused. */
export interface Agent {
  /**
   * Handles one message. Messages for the same key arrive one at a time. For a direct `send` the
   * returned message is the response; for published events the return value is ignored. Throwing
   * makes a published event be redelivered (bounded) and a `send` fail with a RemoteError.
   */
  onMessage(message: Message, context: MessageContext): Promise<Message | undefined>;
}

export interface AgentContext {
  readonly id: AgentId;
  readonly runtime: AgentRuntime;
  readonly logger: Logger;
  /** This instance's durable state, shared by every worker of the type. */
  readonly state: AgentState;
}

/** Resources an agent type may need beyond the runtime (the router reads the registry). */
export interface AgentEnvironment {
  readonly nc: NatsConnection;
  readonly subjects: Subjects;
  readonly logger: Logger;
  readonly signal: AbortSignal;
}

/** An agent type a worker can host. */
export interface AgentTypeDefinition {
  /** Registered with the host: name, description, routing profile and topic subscriptions. */
  readonly spec: AgentTypeSpec;
  /**
   * Instances keep nothing between messages (everything they need is in the message): one
   * instance then serves every key, and the worker holds nothing per session for the type.
   */
  readonly stateless?: boolean;
  /** Called once when the worker starts, before any message is delivered. */
  open?(env: AgentEnvironment): Promise<void>;
  /**
   * Called once the worker has registered its agent types (`specs`), before its start resolves:
   * a type that follows the registry (the router) waits here until it sees them, so that the
   * worker's own agents are routable once it is started.
   */
  registered?(specs: readonly AgentTypeSpec[], signal: AbortSignal): Promise<void>;
  /** Creates the instance for one key. */
  create(context: AgentContext): Agent;
  /** Called once when the worker stops, after in-flight messages finished. */
  close?(): Promise<void>;
}
