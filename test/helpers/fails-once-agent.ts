import { create, isMessage, type Message } from "@bufbuild/protobuf";
import { AgentReplySchema, UserMessageSchema } from "../../src/gen/switchboard/v1/conversation_pb.js";
import { AgentTypeSpecSchema } from "../../src/gen/switchboard/v1/registry_pb.js";
import type { AgentContext, AgentTypeDefinition, MessageContext } from "../../src/worker/agent.js";

/** Fails the first delivery of every message, and answers the redelivery. */
export function failsOnce(): AgentTypeDefinition {
  return {
    spec: create(AgentTypeSpecSchema, { type: "flaky", description: "fails once", subscriptions: ["flaky"], routable: false }),
    create(context: AgentContext) {
      return {
        async onMessage(message: Message, ctx: MessageContext): Promise<Message | undefined> {
          if (!isMessage(message, UserMessageSchema) || !ctx.topic) return undefined;
          if (ctx.deliveryCount === 1) throw new Error("first attempt fails");
          const reply = create(AgentReplySchema, { sessionId: message.sessionId, user: message.user, turnId: message.turnId, agentType: "flaky", content: "done" });
          await context.runtime.publish(reply, { type: "response", source: ctx.topic.source }, { id: `${ctx.eventId}-flaky-reply` });
          return reply;
        },
      };
    },
  };
}
