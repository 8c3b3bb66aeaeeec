import { create, isMessage, type Message } from "@bufbuild/protobuf";
import { TopicType } from "../core/subjects.js";
import { AgentReplySchema, SessionEndedSchema, TerminationSchema } from "../gen/switchboard/v1/conversation_pb.js";
import { AgentTypeSpecSchema } from "../gen/switchboard/v1/registry_pb.js";
import type { Agent, AgentContext, AgentTypeDefinition, MessageContext } from "../worker/agent.js";

export const USER_PROXY_AGENT_TYPE = "user_proxy";

/**
 * The user's proxy inside the system: it receives agent output on topic `user_proxy` and exposes it
 * to the user on topic `response`; a termination becomes the session's final result.
 */
export class UserProxyAgentType implements AgentTypeDefinition {
  readonly stateless = true;
  readonly spec = create(AgentTypeSpecSchema, {
    type: USER_PROXY_AGENT_TYPE,
    description: "Relays agent output to the user and closes sessions.",
    subscriptions: [TopicType.UserProxy],
    routable: false,
  });

  create(context: AgentContext): Agent {
    return new UserProxyAgent(context);
  }
}

class UserProxyAgent implements Agent {
  constructor(private readonly context: AgentContext) {}

  async onMessage(message: Message, ctx: MessageContext): Promise<Message | undefined> {
    if (!ctx.topic) return undefined;
    const topic = { type: TopicType.Response, source: ctx.topic.source };
    const id = `${ctx.eventId}-out`;
    if (isMessage(message, AgentReplySchema)) {
      await this.context.runtime.publish(message, topic, { id });
    } else if (isMessage(message, TerminationSchema)) {
      const ended = create(SessionEndedSchema, {
        sessionId: message.sessionId,
        user: message.user,
        turnId: message.turnId,
        agentType: message.agentType,
        reason: message.reason,
        finalResult: message.content,
      });
      await this.context.runtime.publish(ended, topic, { id });
    }
    return undefined;
  }
}
