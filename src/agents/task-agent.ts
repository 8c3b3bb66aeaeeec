import { create, isMessage, type Message } from "@bufbuild/protobuf";
import { AgentReplySchema, UserMessageSchema } from "../gen/switchboard/v1/conversation_pb.js";
import type { RoutingProfile } from "../router/classifier.js";
import type { Agent, AgentContext, MessageContext } from "../worker/agent.js";
import { RoutableAgentType } from "./routable-agent-type.js";
import { TaskAgentStateSchema } from "../gen/switchboard/v1/agents_pb.js";
import { sleep } from "../core/sleep.js";

/**
 * A task-specific agent as in the reference scenario: it answers every message by naming itself and
 * echoing the user, and releases the session when the user says END. Real agents replace the
 * reply; the conversation contract stays the same.
 */
export interface TaskAgentOptions {
  /** Simulated work per message, for demos and failure tests. */
  readonly delayMs?: number;
}

export class TaskAgentType extends RoutableAgentType {
  /** Display name used in replies, for example `finance_agent`. */
  readonly name: string;

  constructor(
    profile: RoutingProfile,
    readonly options: TaskAgentOptions = {},
  ) {
    super(profile);
    this.name = `${profile.type}_agent`;
  }

  create(context: AgentContext): Agent {
    return new TaskAgent(this, context);
  }
}

class TaskAgent implements Agent {
  constructor(
    private readonly type: TaskAgentType,
    private readonly context: AgentContext,
  ) {}

  async onMessage(message: Message, ctx: MessageContext): Promise<Message | undefined> {
    if (!isMessage(message, UserMessageSchema)) return undefined;
    if (this.type.options.delayMs) await sleep(this.type.options.delayMs, ctx.signal, "simulated work");
    const turn = await this.countTurn(message.turnId);
    const settled = await this.type.endOrHandOff(message, ctx, this.context.runtime, this.type.name);
    if (settled) return settled.output;
    const reply = create(AgentReplySchema, {
      sessionId: message.sessionId,
      user: message.user,
      turnId: message.turnId,
      agentType: this.type.spec.type,
      agentName: this.type.name,
      content: `Hello from ${this.type.name}! You said: ${message.text}`,
      turn,
    });
    if (ctx.topic) await this.type.forwardToUserProxy(this.context.runtime, reply, message, ctx, "reply");
    return reply;
  }

  /**
   * Counts the turn in the session's shared state; a redelivered message (same turn id) is not
   * counted again, whichever worker handled it first.
   */
  private async countTurn(turnId: string): Promise<number> {
    let turns = 0;
    await this.context.state.update(TaskAgentStateSchema, (current) => {
      turns = current?.turns ?? 0;
      if (current?.lastTurnId === turnId) return undefined;
      turns += 1;
      return create(TaskAgentStateSchema, { turns, lastTurnId: turnId });
    });
    return turns;
  }
}
