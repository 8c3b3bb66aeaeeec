import { isMessage, type DescMessage, type Message, type MessageShape } from "@bufbuild/protobuf";
import { UserMessageSchema } from "../gen/switchboard/v1/conversation_pb.js";
import { ClarifyAnswerSchema, HandoffSchema } from "../gen/switchboard/v1/routing_pb.js";
import { TopicType } from "./subjects.js";

/** Longest text field accepted from a user, in characters; the chat refuses longer ones before sending. */
export const MAX_USER_TEXT_CHARS = 16_000;

/** Where a user-publishable type may be sent: the router's topic, or an agent type's topic. */
export const UserTopic = {
  /** `default`: read by the router. */
  Default: "default",
  /** `<agentType>`: read by that agent type. */
  Agent: "agent",
} as const;
export type UserTopic = (typeof UserTopic)[keyof typeof UserTopic];

/** What may arrive from a user in one message type, and which of its fields hold what. */
export interface UserPublishable {
  readonly typeName: string;
  readonly topics: readonly UserTopic[];
  /** Free text fields: each at most {@link MAX_USER_TEXT_CHARS}. */
  readonly texts: (message: Message) => readonly string[];
  /** Fields that are ids (`[A-Za-z0-9_-]{1,64}`), by name; an empty optional one passes. */
  readonly ids: (message: Message) => readonly { readonly field: string; readonly value: string; readonly required: boolean }[];
}

function declare<Desc extends DescMessage>(
  schema: Desc,
  topics: readonly UserTopic[],
  texts: (m: MessageShape<Desc>) => readonly string[],
  ids: (m: MessageShape<Desc>) => readonly { readonly field: string; readonly value: string; readonly required: boolean }[],
): UserPublishable {
  const own = (m: Message): MessageShape<Desc> => {
    if (!isMessage(m, schema)) throw new TypeError(`expected ${schema.typeName}, got ${m.$typeName}`);
    return m;
  };
  return { typeName: schema.typeName, topics, texts: (m) => texts(own(m)), ids: (m) => ids(own(m)) };
}

/**
 * Every message type that may be published on a topic a chat user can write to, where, and with
 * which text and id fields. NATS permissions let a user publish any bytes to its own `default` and
 * agent-type topics, and services publish the same types there (the router forwards `UserMessage`
 * to an agent's topic, agents publish `Handoff` to `default`), so the subject cannot tell who sent
 * one: all of them are held to the same limits. A type not listed here is refused on those topics;
 * a new type users or agents send there must be added.
 */
export const USER_PUBLISHABLE: readonly UserPublishable[] = [
  declare(UserMessageSchema, [UserTopic.Default, UserTopic.Agent], (m) => [m.text], (m) => [{ field: "turn_id", value: m.turnId, required: true }]),
  declare(ClarifyAnswerSchema, [UserTopic.Default], (m) => [m.originalText], (m) => [
    { field: "turn_id", value: m.turnId, required: true },
    { field: "agent_type", value: m.agentType, required: true },
  ]),
  declare(HandoffSchema, [UserTopic.Default], (m) => [m.text, m.reason], (m) => [
    { field: "turn_id", value: m.turnId, required: true },
    { field: "from_agent_type", value: m.fromAgentType, required: false },
  ]),
];

const BY_TYPE = new Map(USER_PUBLISHABLE.map((d) => [d.typeName, d]));

/**
 * Whether a chat user may publish to topics of this type. Mirrors the client role in roles.ts:
 * every topic type of its own sessions except `response` and `user_proxy`.
 */
export function isUserWritableTopic(topicType: string): boolean {
  return topicType !== TopicType.Response && topicType !== TopicType.UserProxy;
}

/** The kind of a user-writable topic type. */
export function userTopicOf(topicType: string): UserTopic {
  return topicType === TopicType.Default ? UserTopic.Default : UserTopic.Agent;
}

/** The declaration of a type that may arrive on a user-writable topic of this type, if it may. */
export function userPublishable(typeName: string, topicType: string): UserPublishable | undefined {
  const declared = BY_TYPE.get(typeName);
  return declared && declared.topics.includes(userTopicOf(topicType)) ? declared : undefined;
}
