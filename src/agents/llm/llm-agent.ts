import { create, isMessage, type Message } from "@bufbuild/protobuf";
import { errorMessage, SwitchboardError, CancelledError } from "../../core/errors.js";
import { TopicType } from "../../core/subjects.js";
import { LlmAgentStateSchema, LlmHistoryEntrySchema, LlmRole, type LlmAgentState, type LlmHistoryEntry } from "../../gen/switchboard/v1/agents_pb.js";
import { AgentReplyDeltaSchema, AgentReplySchema, EndReason, ErrorEventSchema, TerminationSchema, UserMessageSchema, type UserMessage } from "../../gen/switchboard/v1/conversation_pb.js";
import { AgentTypeSpecSchema, type AgentTypeSpec } from "../../gen/switchboard/v1/registry_pb.js";
import type { Agent, AgentContext, AgentEnvironment, AgentTypeDefinition, MessageContext } from "../../worker/agent.js";
import { containsEndWord } from "../end-word.js";
import { HandoffPolicy } from "../handoff-policy.js";
import type { LlmAgentConfig } from "./agents-file.js";
import { streamChatCompletion, type ChatMessage } from "./chat-completions.js";

/**
 * An agent that answers with a language model behind an OpenAI-compatible chat-completions API,
 * configured in an agents file rather than in code. It keeps the conversation in the session's
 * agent state and sends it with the system prompt on every turn; each streamed chunk goes to the
 * chat as a reply delta, and the whole answer as the durable reply. A model that is unreachable,
 * too slow or failing gives the user an `error` event with `model_unreachable`, `model_timeout`
 * or `model_error` instead of an answer.
 */
export class LlmAgentType implements AgentTypeDefinition {
  readonly spec: AgentTypeSpec;
  /** Gives follow-ups that name another agent type back to the router; set by open(). */
  handoff: HandoffPolicy | undefined;

  constructor(readonly config: LlmAgentConfig) {
    this.spec = create(AgentTypeSpecSchema, {
      type: config.type,
      description: config.description,
      keywords: [...config.keywords],
      examples: [...config.examples],
      subscriptions: [config.type],
      routable: true,
    });
  }

  async open(env: AgentEnvironment): Promise<void> {
    this.handoff = await HandoffPolicy.open(env, this.spec);
    // Where the model is, never how to authenticate to it.
    env.logger.info({ event: "llm_agent.configured", agentType: this.config.type, model: this.config.model.model, apiKeyEnv: this.config.model.apiKeyEnv ?? null }, "LLM agent ready");
  }

  create(context: AgentContext): Agent {
    return new LlmAgent(this, context);
  }

  async close(): Promise<void> {
    await this.handoff?.close();
  }
}

class LlmAgent implements Agent {
  constructor(
    private readonly type: LlmAgentType,
    private readonly context: AgentContext,
  ) {}

  private get agentType(): string {
    return this.type.config.type;
  }

  async onMessage(message: Message, ctx: MessageContext): Promise<Message | undefined> {
    if (!isMessage(message, UserMessageSchema)) return undefined;
    const common = { sessionId: message.sessionId, user: message.user, turnId: message.turnId, agentType: this.agentType };
    if (containsEndWord(message.text)) {
      const termination = create(TerminationSchema, { ...common, reason: EndReason.USER_REQUEST, content: `Session ended. Thank you for contacting ${this.type.config.name}.` });
      if (ctx.topic) await this.forward(termination, message, ctx, "end");
      return termination;
    }
    const target = ctx.topic ? this.type.handoff?.decide(message) : undefined;
    if (target && this.type.handoff) {
      await this.type.handoff.handOff(this.context.runtime, message, target, ctx);
      return undefined;
    }
    const state = await this.context.state.load(LlmAgentStateSchema);
    let content: string;
    try {
      content = await this.ask(message, state, ctx);
    } catch (err) {
      if (err instanceof CancelledError || ctx.signal.aborted) throw err;
      if (!(err instanceof SwitchboardError)) throw err;
      this.context.logger.warn({ event: "llm_agent.model_failed", agentType: this.agentType, session: message.sessionId, code: err.code, err: err.message }, "the model did not answer");
      const error = create(ErrorEventSchema, { sessionId: message.sessionId, user: message.user, turnId: message.turnId, code: err.code, message: err.message });
      // Straight to the user: the user proxy relays replies and endings, not errors.
      if (ctx.topic) await this.context.runtime.publish(error, { type: TopicType.Response, source: ctx.topic.source }, { id: `${ctx.eventId}-${this.agentType}-error` });
      return error;
    }
    const turn = await this.remember(message, content);
    const reply = create(AgentReplySchema, { ...common, agentName: this.type.config.name, content, turn });
    if (ctx.topic) await this.forward(reply, message, ctx, "reply");
    return reply;
  }

  /** Streams the model's answer, publishing each chunk as a delta, and resolves with all of it. */
  private async ask(message: UserMessage, state: LlmAgentState | undefined, ctx: MessageContext): Promise<string> {
    const settings = this.type.config.model;
    const started = Date.now();
    let content = "";
    let sequence = 0;
    for await (const text of streamChatCompletion(this.prompt(message, state), { ...settings, signal: ctx.signal })) {
      content += text;
      sequence += 1;
      if (ctx.topic) {
        this.context.runtime.publishDelta(create(AgentReplyDeltaSchema, { sessionId: message.sessionId, user: message.user, turnId: message.turnId, agentType: this.agentType, sequence, text }));
      }
    }
    this.context.logger.debug({ event: "llm_agent.answered", agentType: this.agentType, session: message.sessionId, chunks: sequence, ms: Date.now() - started }, "model answered");
    return content;
  }

  /** The system prompt, the conversation so far (without this turn, if it is a redelivery), and the message. */
  private prompt(message: UserMessage, state: LlmAgentState | undefined): ChatMessage[] {
    const settings = this.type.config.model;
    const earlier = (state?.history ?? []).filter((e) => e.turnId !== message.turnId).slice(-settings.historyMessages || Infinity);
    const history: ChatMessage[] = settings.historyMessages === 0 ? [] : earlier.map((e) => ({ role: e.role === LlmRole.ASSISTANT ? "assistant" : "user", content: e.content }));
    return [...(settings.systemPrompt ? [{ role: "system" as const, content: settings.systemPrompt }] : []), ...history, { role: "user", content: message.text }];
  }

  /** Counts the turn and keeps the exchange for the next one; a redelivered turn changes nothing. */
  private async remember(message: UserMessage, answer: string): Promise<number> {
    const limit = this.type.config.model.historyMessages;
    let turns = 0;
    try {
      await this.context.state.update(LlmAgentStateSchema, (current) => {
        turns = current?.turns ?? 0;
        if (current?.lastTurnId === message.turnId) return undefined;
        turns += 1;
        const entries: LlmHistoryEntry[] = [
          ...(current?.history ?? []),
          create(LlmHistoryEntrySchema, { role: LlmRole.USER, content: message.text, turnId: message.turnId }),
          create(LlmHistoryEntrySchema, { role: LlmRole.ASSISTANT, content: answer, turnId: message.turnId }),
        ];
        return create(LlmAgentStateSchema, { turns, lastTurnId: message.turnId, history: limit === 0 ? [] : entries.slice(-limit) });
      });
    } catch (err) {
      // The answer is worth more than the memory of it: reply, and the next turn has less context.
      this.context.logger.warn({ event: "llm_agent.state_failed", agentType: this.agentType, session: message.sessionId, err: errorMessage(err) }, "could not save the conversation");
    }
    return turns;
  }

  /** Agent output goes to the user proxy of the same session, as in the reference flow. */
  private async forward(output: Message, input: { user: string; sessionId: string }, ctx: MessageContext, kind: string): Promise<void> {
    await this.context.runtime.publish(output, { type: TopicType.UserProxy, source: { user: input.user, session: input.sessionId } }, { id: `${ctx.eventId}-${this.agentType}-${kind}` });
  }
}

/** The agent types of an agents file. */
export function llmAgents(configs: readonly LlmAgentConfig[]): LlmAgentType[] {
  return configs.map((c) => new LlmAgentType(c));
}
