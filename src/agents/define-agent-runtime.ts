import { create, isMessage, type Message } from "@bufbuild/protobuf";
import { CancelledError, ErrorCode, errorMessage } from "../core/errors.js";
import type { Logger } from "../core/logging.js";
import { TopicType } from "../core/subjects.js";
import { DefinedAgentStateSchema, HistoryEntrySchema, type DefinedAgentState } from "../gen/switchboard/v1/agents_pb.js";
import {
  AgentReplyDeltaSchema,
  AgentReplySchema,
  EndReason,
  ErrorEventSchema,
  TerminationSchema,
  UserMessageSchema,
  type UserMessage,
} from "../gen/switchboard/v1/conversation_pb.js";
import type { Agent, AgentContext, AgentTypeDefinition, MessageContext } from "../worker/agent.js";
import { AgentError, isAgentDefinition, type AgentDefinition, type AgentLogger, type HistoryEntry, type JsonValue, type ReplyResult, type Turn } from "./define-agent.js";
import { RoutableAgentType } from "./routable-agent-type.js";

/** Serialised state beyond this is refused (a session's saved record must stay under the server's 1 MB messages). */
export const MAX_STATE_BYTES = 256 * 1024;

/** A `reply` that returned or yielded something other than text: a bug, not a passing failure. */
class InvalidReplyError extends TypeError {
  override name = "InvalidReplyError";
}

/** Chunks of a reply, whatever shape `reply` returned it in; strings are tested first. */
export async function* replyChunks(result: ReplyResult): AsyncGenerator<string, void, undefined> {
  if (typeof result === "string") {
    yield result;
    return;
  }
  if (result instanceof Promise || (typeof result === "object" && result !== null && "then" in result && typeof result.then === "function")) {
    const value: unknown = await result;
    if (typeof value !== "string") throw new InvalidReplyError(`reply's promise resolved to a ${typeof value}; resolve to a string`);
    yield value;
    return;
  }
  if (typeof result === "object" && result !== null && (Symbol.asyncIterator in result || Symbol.iterator in result)) {
    // `yield*` calls the source's return() when the consumer stops early, so its finally blocks run.
    for await (const chunk of result as AsyncIterable<unknown>) {
      if (typeof chunk !== "string") throw new InvalidReplyError(`reply yielded a ${typeof chunk}; yield strings`);
      yield chunk;
    }
    return;
  }
  throw new InvalidReplyError(`reply returned a ${typeof result}; return a string, a promise of one, or yield strings`);
}

/**
 * The chunks of `source` until `signal` aborts, then its reason is thrown at once, even if the
 * agent ignores the signal: a deadline must reach the user, not wait for a stuck backend.
 */
export async function* untilAborted<T>(source: AsyncGenerator<T, void, undefined>, signal: AbortSignal): AsyncGenerator<T, void, undefined> {
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
  aborted.catch(() => undefined);
  let finished = false;
  try {
    for (;;) {
      const next = await Promise.race([source.next(), aborted]);
      if (next.done) {
        finished = true;
        return;
      }
      yield next.value;
    }
  } finally {
    if (onAbort) signal.removeEventListener("abort", onAbort);
    // Lets the agent's own finally blocks run; not awaited, as a stuck agent would hold the turn.
    if (!finished) source.return(undefined).catch(() => undefined);
  }
}

/** Adapts pino to the small logger interface agents see, so pino's types stay out of the API. */
export function agentLogger(logger: Logger): AgentLogger {
  return {
    debug: (message, fields) => logger.debug({ ...fields }, message),
    info: (message, fields) => logger.info({ ...fields }, message),
    warn: (message, fields) => logger.warn({ ...fields }, message),
    error: (message, fields) => logger.error({ ...fields }, message),
  };
}

function parseState<State extends JsonValue>(json: string, initial: () => State): State {
  return json === "" ? initial() : (JSON.parse(json) as State);
}

const duration = (ms: number): string => (ms < 1_000 ? `${ms} ms` : `${Math.round(ms / 1_000)} s`);

/** Why a turn's signal aborted, when it was not the worker giving up. */
class TurnDeadline extends Error {}

/**
 * Runs an {@link AgentDefinition} on the low-level agent interface: every conversation rule a task
 * agent must follow lives here, once, instead of in each agent.
 */
export class DefinedAgentType<State extends JsonValue = JsonValue> extends RoutableAgentType {
  constructor(readonly definition: AgentDefinition<State>) {
    super(definition);
  }

  create(context: AgentContext): Agent {
    return new DefinedAgent(this, context);
  }
}

class DefinedAgent<State extends JsonValue> implements Agent {
  constructor(
    private readonly type: DefinedAgentType<State>,
    private readonly context: AgentContext,
  ) {}

  private get definition(): AgentDefinition<State> {
    return this.type.definition;
  }

  async onMessage(message: Message, ctx: MessageContext): Promise<Message | undefined> {
    if (!isMessage(message, UserMessageSchema)) return undefined;
    const def = this.definition;
    const settled = await this.type.endOrHandOff(message, ctx, this.context.runtime, def.displayName);
    if (settled) return settled.output;
    const saved = await this.context.state.load(DefinedAgentStateSchema);
    // Saved state names this turn only once its answer was published: the ack alone was lost.
    if (saved?.lastTurnId === message.turnId && ctx.topic) return undefined;
    const outcome = await this.answer(message, ctx, saved);
    if (!outcome) return undefined;
    const stateJson = await this.serializeState(outcome.turn, message, ctx);
    if (stateJson === undefined) return undefined;
    const common = { sessionId: message.sessionId, user: message.user, turnId: message.turnId, agentType: def.type };
    // An agent that ends the conversation answers with the termination: its reply is the final
    // result, so the user sees one answer, not a reply followed by an unexplained end.
    const output = outcome.ended
      ? create(TerminationSchema, { ...common, reason: EndReason.AGENT_FINISHED, content: outcome.text })
      : create(AgentReplySchema, { ...common, agentName: def.displayName, content: outcome.text, turn: outcome.turn.turn });
    if (ctx.topic) await this.type.forwardToUserProxy(this.context.runtime, output, message, ctx, outcome.ended ? "end" : "reply");
    await this.save(saved, message, outcome.text, stateJson);
    return output;
  }

  /**
   * The turn's state as it will be saved, checked before anything is published: state that cannot
   * be saved (not JSON, or too large) fails the turn once, told to the user, instead of failing
   * the save after the answer went out, over and over on every redelivery.
   */
  private async serializeState(turn: Turn<State>, message: UserMessage, ctx: MessageContext): Promise<string | undefined> {
    let problem: string;
    try {
      // No state (a JavaScript agent may set undefined) is saved as none, as before.
      const json = turn.state === null || turn.state === undefined ? "" : JSON.stringify(turn.state);
      const bytes = Buffer.byteLength(json);
      if (bytes <= MAX_STATE_BYTES) return json;
      problem = `its state is ${bytes} bytes of JSON; at most ${MAX_STATE_BYTES} are kept`;
    } catch (err) {
      problem = `its state cannot be saved as JSON (${errorMessage(err)})`;
    }
    const code = ErrorCode.HandlerFailed;
    this.context.logger.warn({ event: "agent.state_invalid", sessionId: message.sessionId, turnId: message.turnId, code, err: problem }, "the turn's state cannot be saved; the turn failed and the user was told");
    await this.tellUser(message, ctx, code, this.failedText());
    return undefined;
  }

  /**
   * Calls `reply` and streams its chunks. Undefined when the turn failed in a way already told to
   * the user; throws when the message should be delivered again.
   */
  private async answer(message: UserMessage, ctx: MessageContext, saved: DefinedAgentState | undefined): Promise<{ text: string; turn: Turn<State>; ended: boolean } | undefined> {
    const def = this.definition;
    const controller = new AbortController();
    const onWorkerAbort = () => controller.abort(new CancelledError(`the ${def.type} agent's turn`));
    if (ctx.signal.aborted) onWorkerAbort();
    else ctx.signal.addEventListener("abort", onWorkerAbort, { once: true });
    const deadline = setTimeout(() => controller.abort(new TurnDeadline()), def.timeoutMs);
    let ended = false;
    const turn: Turn<State> = {
      text: message.text,
      user: message.user,
      sessionId: message.sessionId,
      turnId: message.turnId,
      turn: (saved?.turns ?? 0) + 1,
      attempt: ctx.deliveryCount,
      agentType: def.type,
      history: (saved?.history ?? []).map((e): HistoryEntry => ({ role: e.role === "agent" ? "agent" : "user", text: e.text, turnId: e.turnId })),
      state: parseState(saved?.stateJson ?? "", def.initialState),
      logger: agentLogger(this.context.logger.child({ sessionId: message.sessionId, turnId: message.turnId })),
      signal: controller.signal,
      end: () => {
        ended = true;
      },
    };
    let text = "";
    let sequence = 0;
    try {
      for await (const chunk of untilAborted(replyChunks(def.reply(turn)), controller.signal)) {
        if (chunk === "") continue;
        text += chunk;
        sequence++;
        if (ctx.topic) this.context.runtime.publishDelta(create(AgentReplyDeltaSchema, { sessionId: message.sessionId, user: message.user, turnId: message.turnId, agentType: def.type, sequence, text: chunk, attempt: ctx.deliveryCount }));
      }
      return { text, turn, ended };
    } catch (err) {
      if (ctx.signal.aborted) throw err; // the worker is stopping: another worker answers
      const failure = this.classify(err, controller.signal, sequence > 0);
      if (!failure) throw err;
      this.context.logger.warn({ event: "agent.turn_failed", sessionId: message.sessionId, turnId: message.turnId, code: failure.code, err: errorMessage(err) }, "turn failed; telling the user");
      await this.tellUser(message, ctx, failure.code, failure.text);
      return undefined;
    } finally {
      clearTimeout(deadline);
      ctx.signal.removeEventListener("abort", onWorkerAbort);
      // Whatever the agent started and forgot (a fetch, a timer) stops with the turn.
      controller.abort(new CancelledError(`the ${def.type} agent's turn`));
    }
  }

  /** The error to show for a failed turn, or undefined when the message should be retried. */
  private classify(err: unknown, signal: AbortSignal, streamed: boolean): { code: string; text: string } | undefined {
    const name = this.definition.displayName;
    if (signal.reason instanceof TurnDeadline) return { code: ErrorCode.Timeout, text: `the ${name} did not answer within ${duration(this.definition.timeoutMs)}` };
    // Subclasses of AgentError may carry a more precise code (a model client's model_timeout, say).
    // What the user is not told (a model's URL and its server's error) is in the error's message,
    // which the caller logs.
    if (err instanceof AgentError) return { code: err.code, text: err.userText };
    // A reply of the wrong type is a bug in the agent: it fails the same way every time.
    if (err instanceof InvalidReplyError) return { code: ErrorCode.HandlerFailed, text: this.failedText() };
    // Part of the answer reached the user: a retry would show it twice.
    if (streamed) return { code: ErrorCode.HandlerFailed, text: this.failedText() };
    this.context.logger.warn({ event: "agent.reply_failed", err: errorMessage(err) }, "reply threw; the message will be retried");
    return undefined;
  }

  /** What the user is told when the turn failed for a reason that is the agent's, not theirs. */
  private failedText(): string {
    return `the ${this.definition.displayName} failed while answering your message`;
  }

  private async tellUser(message: UserMessage, ctx: MessageContext, code: string, text: string): Promise<void> {
    ctx.turnFailed?.(code);
    if (!ctx.topic) return;
    await this.context.runtime.publish(
      create(ErrorEventSchema, { sessionId: message.sessionId, user: message.user, turnId: message.turnId, code, message: text, agentType: this.definition.type }),
      { type: TopicType.Response, source: ctx.topic.source },
      { id: `${ctx.eventId}-${this.definition.type}-error` },
    );
  }

  /** Records the answered turn: count, bounded history and the agent's state. */
  private async save(saved: DefinedAgentState | undefined, message: UserMessage, text: string, stateJson: string): Promise<void> {
    const limit = this.definition.historyLimit;
    await this.context.state.update(DefinedAgentStateSchema, (current) => {
      if (current?.lastTurnId === message.turnId) return undefined;
      const history = [
        ...(current?.history ?? saved?.history ?? []),
        create(HistoryEntrySchema, { role: "user", text: message.text, turnId: message.turnId }),
        create(HistoryEntrySchema, { role: "agent", text, turnId: message.turnId }),
      ];
      return create(DefinedAgentStateSchema, { turns: (current?.turns ?? 0) + 1, lastTurnId: message.turnId, history: limit === 0 ? [] : history.slice(-limit), stateJson });
    });
  }
}

/** A worker's agent, whichever way it was written: {@link defineAgent} or the low-level interface. */
export type AnyAgentDefinition = AgentTypeDefinition | AgentDefinition;

/** The low-level form of an agent, which is what the worker runs. */
export function toAgentTypeDefinition(agent: AnyAgentDefinition): AgentTypeDefinition {
  return isAgentDefinition(agent) ? new DefinedAgentType(agent) : agent;
}
