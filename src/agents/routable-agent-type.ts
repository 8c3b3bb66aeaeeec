import { create, type Message } from "@bufbuild/protobuf";
import { TopicType } from "../core/subjects.js";
import { EndReason, TerminationSchema, type UserMessage } from "../gen/switchboard/v1/conversation_pb.js";
import { AgentTypeSpecSchema, type AgentTypeSpec } from "../gen/switchboard/v1/registry_pb.js";
import type { RoutingProfile } from "../router/classifier.js";
import type { Agent, AgentContext, AgentEnvironment, AgentRuntime, AgentTypeDefinition, MessageContext } from "../worker/agent.js";
import { containsEndWord } from "./end-word.js";
import { HandoffPolicy } from "./handoff-policy.js";

/**
 * A task agent type the router can send conversations to: its spec is its routing profile on a
 * topic of its own name, and follow-ups naming another agent go back to the router.
 */
export abstract class RoutableAgentType implements AgentTypeDefinition {
  readonly spec: AgentTypeSpec;
  /** Gives follow-ups that name another agent type back to the router; set by open(). */
  handoff: HandoffPolicy | undefined;

  constructor(profile: RoutingProfile) {
    this.spec = create(AgentTypeSpecSchema, {
      type: profile.type,
      description: profile.description,
      keywords: [...profile.keywords],
      examples: [...profile.examples],
      subscriptions: [profile.type],
      routable: true,
    });
  }

  async open(env: AgentEnvironment): Promise<void> {
    this.handoff = await HandoffPolicy.open(env, this.spec);
  }

  abstract create(context: AgentContext): Agent;

  /**
   * The conversation rules a task agent applies before answering: `END` ends the session, and a
   * follow-up that names another agent goes back to the router. When one applies, the result
   * holds what `onMessage` returns; undefined means the agent answers.
   */
  async endOrHandOff(message: UserMessage, ctx: MessageContext, runtime: AgentRuntime, displayName: string): Promise<{ readonly output: Message | undefined } | undefined> {
    if (containsEndWord(message.text)) {
      const termination = create(TerminationSchema, {
        sessionId: message.sessionId,
        user: message.user,
        turnId: message.turnId,
        agentType: this.spec.type,
        reason: EndReason.USER_REQUEST,
        content: `Session ended. Thank you for contacting ${displayName}.`,
      });
      if (ctx.topic) await this.forwardToUserProxy(runtime, termination, message, ctx, "end");
      return { output: termination };
    }
    const target = ctx.topic ? this.handoff?.decide(message) : undefined;
    if (target && this.handoff) {
      await this.handoff.handOff(runtime, message, target, ctx);
      return { output: undefined };
    }
    return undefined;
  }

  /** Agent output goes to the user proxy of the same session, with ids derived from the input's. */
  async forwardToUserProxy(runtime: AgentRuntime, output: Message, input: { user: string; sessionId: string }, ctx: MessageContext, kind: string): Promise<void> {
    await runtime.publish(output, { type: TopicType.UserProxy, source: { user: input.user, session: input.sessionId } }, { id: `${ctx.eventId}-${this.spec.type}-${kind}` });
  }

  async close(): Promise<void> {
    await this.handoff?.close();
  }
}
