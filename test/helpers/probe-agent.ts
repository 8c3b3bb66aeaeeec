import { create, isMessage, type Message } from "@bufbuild/protobuf";
import { AgentReplySchema, UserMessageSchema } from "../../src/gen/switchboard/v1/conversation_pb.js";
import { AgentTypeSpecSchema } from "../../src/gen/switchboard/v1/registry_pb.js";
import type { Agent, AgentContext, AgentTypeDefinition, MessageContext } from "../../src/worker/agent.js";

export interface ProbeRecord {
  readonly key: string;
  readonly text: string;
  readonly topicType: string | undefined;
  readonly workerTag: string;
}

export interface ProbeOptions {
  readonly subscriptions?: readonly string[];
  /** Milliseconds each message takes. */
  readonly delayMs?: number;
  /** Throw for messages whose text contains this. */
  readonly failOn?: string;
  readonly workerTag?: string;
}

/**
 * A test agent type that records what it handled, answers RPCs with an AgentReply, and can be made
 * slow or failing.
 */
export class ProbeAgentType implements AgentTypeDefinition {
  readonly spec;
  readonly handled: ProbeRecord[] = [];
  readonly created: string[] = [];
  active = 0;
  /** Messages containing this text make the handler throw; clear it to "fix" the agent. */
  failOn: string | undefined;

  constructor(
    type: string,
    private readonly options: ProbeOptions = {},
  ) {
    this.failOn = options.failOn;
    this.spec = create(AgentTypeSpecSchema, { type, description: `probe ${type}`, subscriptions: [...(options.subscriptions ?? [type])], routable: false });
  }

  create(context: AgentContext): Agent {
    this.created.push(context.id.key);
    const type = this;
    return {
      async onMessage(message: Message, ctx: MessageContext): Promise<Message | undefined> {
        if (!isMessage(message, UserMessageSchema)) return undefined;
        type.active++;
        try {
          if (type.options.delayMs) await new Promise((r) => setTimeout(r, type.options.delayMs));
          if (type.failOn && message.text.includes(type.failOn)) throw new Error("probe failure");
          type.handled.push({ key: context.id.key, text: message.text, topicType: ctx.topic?.type, workerTag: type.options.workerTag ?? "" });
          return create(AgentReplySchema, { sessionId: message.sessionId, user: message.user, turnId: message.turnId, agentType: type.spec.type, content: `echo: ${message.text}` });
        } finally {
          type.active--;
        }
      },
    };
  }
}
