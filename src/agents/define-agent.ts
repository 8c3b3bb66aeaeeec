import { ConfigError, ErrorCode, SwitchboardError } from "../core/errors.js";
import { isValidToken } from "../core/ids.js";

/**
 * Marks a value as made by {@link defineAgent}. `Symbol.for` so that a definition made by one
 * installed copy of the package is recognised by another (a global CLI loading a user's module).
 */
export const AGENT_DEFINITION_BRAND = Symbol.for("switchboard.agent");
const AGENT_ERROR_BRAND = Symbol.for("switchboard.agent-error");
/** Layout of the definition object; the runtime keeps reading older layouts after a major release. */
export const AGENT_DEFINITION_FORMAT = 1;

/** JSON-serialisable per-session state, kept between turns by the runtime. */
export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { readonly [key: string]: JsonValue | undefined };

/** One earlier message of the conversation, as the agent saw it. */
export interface HistoryEntry {
  /** `"user"` for what the user typed, `"agent"` for what this agent answered. */
  readonly role: "user" | "agent";
  readonly text: string;
  /** The turn the message belongs to. */
  readonly turnId: string;
}

/** A logger bound to the agent type, session and turn; objects are structured fields. */
export interface AgentLogger {
  debug(message: string, fields?: Readonly<Record<string, unknown>>): void;
  info(message: string, fields?: Readonly<Record<string, unknown>>): void;
  warn(message: string, fields?: Readonly<Record<string, unknown>>): void;
  error(message: string, fields?: Readonly<Record<string, unknown>>): void;
}

/**
 * One user message to answer, created by the runtime for each call of `reply`. New fields may be
 * added in minor releases; none is removed or renamed before a major one.
 */
export interface Turn<State extends JsonValue = JsonValue> {
  /** What the user wrote. */
  readonly text: string;
  /** Who wrote it (an id already checked against the subject it arrived on). */
  readonly user: string;
  /** The conversation (session) the message belongs to. */
  readonly sessionId: string;
  /** The same on every redelivery of this message: use it as the idempotency key of side effects. */
  readonly turnId: string;
  /** 1-based count of this agent's answers in the conversation, this one included. */
  readonly turn: number;
  /** How many times this message has been delivered: 1 the first time. */
  readonly attempt: number;
  /** The agent type answering. */
  readonly agentType: string;
  /** Earlier messages of the conversation with this agent, oldest first, at most `historyLimit`. */
  readonly history: readonly HistoryEntry[];
  /**
   * This conversation's state: `initialState` on the first turn, then whatever the previous turn
   * left here. Mutate it or assign a new value; it is saved (as JSON) once the reply is published.
   */
  state: State;
  /** Bound to `{ agentType, sessionId, turnId }`. Never log the user's text above debug level. */
  readonly logger: AgentLogger;
  /**
   * Aborted when the turn's deadline passes, when the worker gives up on in-flight work, and when
   * the turn is over. Pass it to `fetch`, model clients and timers.
   */
  readonly signal: AbortSignal;
  /** Ends the conversation with this reply, which becomes its final result; the user's next message starts a new one. */
  end(): void;
}

/** What `reply` may return: the whole text, a promise of it, or chunks to stream as they come. */
export type ReplyResult = string | Promise<string> | AsyncIterable<string> | Iterable<string>;

/** The input of {@link defineAgent}. */
export interface AgentOptions<State extends JsonValue = JsonValue> {
  /** Agent type: 1-64 characters from `A-Z a-z 0-9 _ -`. Also the topic the agent listens on. */
  readonly type: string;
  /** What the agent handles, in a sentence or two: the router compares user messages with it. */
  readonly description: string;
  /** Words that, when a message contains them, route it to this agent. Default: none. */
  readonly keywords?: readonly string[] | undefined;
  /** Messages this agent should receive, for the router's similarity matching. At least one. */
  readonly examples: readonly string[];
  /** The name shown with replies. Default: `<type>_agent`. */
  readonly displayName?: string | undefined;
  /** The state of a conversation before its first turn. Default: `null`. */
  readonly initialState?: (() => State) | undefined;
  /** Earlier messages handed to `reply` in `turn.history`. Default: 20. */
  readonly historyLimit?: number | undefined;
  /**
   * Longest a reply may take, in milliseconds; then `turn.signal` aborts and the user gets a
   * `timeout` error. Default: 120000.
   */
  readonly timeoutMs?: number | undefined;
  /**
   * Answers one user message. Return the text, or `yield` it in pieces (an `async *reply`) to
   * stream it to the user as it is produced. Throw {@link AgentError} to show the user a message
   * and not retry; any other throw is retried a few times, then the user is told the agent failed.
   */
  reply(turn: Turn<State>): ReplyResult;
}

/** What {@link defineAgent} returns: a frozen description the worker knows how to run. */
export interface AgentDefinition<State extends JsonValue = JsonValue> {
  /** Always {@link AGENT_DEFINITION_FORMAT} for definitions made by this version. */
  readonly format: 1;
  readonly type: string;
  readonly description: string;
  readonly keywords: readonly string[];
  readonly examples: readonly string[];
  readonly displayName: string;
  readonly historyLimit: number;
  readonly timeoutMs: number;
  readonly initialState: () => State;
  reply(turn: Turn<State>): ReplyResult;
}

export const DEFAULT_HISTORY_LIMIT = 20;
export const DEFAULT_REPLY_TIMEOUT_MS = 120_000;
/** Most history entries an agent may ask for: the state record of a session stays small. */
const MAX_HISTORY_LIMIT = 200;

/**
 * Fails the current turn with a message for the user, without retrying. Throw it from `reply`
 * when the answer is known to be "no" (a backend refused, the request is invalid).
 */
export class AgentError extends SwitchboardError {
  override name = "AgentError";
  constructor(
    /** Shown to the user as the text of the `error` event. */
    readonly userText: string,
    options?: ErrorOptions,
  ) {
    super(ErrorCode.AgentFailed, userText, options);
    Object.defineProperty(this, AGENT_ERROR_BRAND, { value: true });
  }

  /**
   * `instanceof AgentError` holds for one thrown by another installed copy of the package too
   * (an agent module with its own `switchboard` run by a global CLI). Subclasses keep the
   * ordinary check.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this !== AgentError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[AGENT_ERROR_BRAND] === true;
  }
}

function nonEmptyStrings(what: string, type: string, values: readonly string[] | undefined): string[] {
  if (values !== undefined && !Array.isArray(values)) throw new ConfigError(`agent "${type}": ${what} must be an array of strings`);
  const list = (values ?? []).map((v) => {
    if (typeof v !== "string") throw new ConfigError(`agent "${type}": ${what} must be strings, got ${JSON.stringify(v)}`);
    return v.trim();
  });
  return list.filter((v) => v !== "");
}

function positiveInteger(type: string, name: string, value: number | undefined, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0 || value > max) throw new ConfigError(`agent "${type}": ${name} must be an integer from 0 to ${max}, got ${String(value)}`);
  return value;
}

/**
 * Defines a task agent: its routing profile and how it answers. The worker does the rest (ending
 * on END, turn counting, hand-off when the user changes subject, streaming, retries, errors).
 * Invalid options throw a {@link ConfigError} at once.
 *
 * @example
 * ```ts
 * import { defineAgent } from "switchboard";
 *
 * export default defineAgent({
 *   type: "travel",
 *   description: "Business travel: flights, hotels, visas and the travel policy.",
 *   keywords: ["travel", "flight", "hotel"],
 *   examples: ["Book me a flight to Munich next Tuesday"],
 *   async *reply(turn) {
 *     yield `Looking at ${turn.history.length} earlier messages… `;
 *     yield await callMyBackend(turn.text, { signal: turn.signal });
 *   },
 * });
 * ```
 */
export function defineAgent<State extends JsonValue = JsonValue>(options: AgentOptions<State>): AgentDefinition<State> {
  if (typeof options !== "object" || options === null) throw new ConfigError("defineAgent needs an options object");
  const type = options.type;
  if (typeof type !== "string" || !isValidToken(type)) {
    throw new ConfigError(`agent type ${JSON.stringify(type)} is invalid: use 1-64 characters from A-Z, a-z, 0-9, '_' and '-'`);
  }
  if (typeof options.description !== "string" || options.description.trim() === "") throw new ConfigError(`agent "${type}": description must say what the agent handles`);
  const examples = nonEmptyStrings("examples", type, options.examples);
  if (examples.length === 0) throw new ConfigError(`agent "${type}": give at least one example message, so the router can recognise what the agent handles`);
  if (typeof options.reply !== "function") throw new ConfigError(`agent "${type}": reply must be a function`);
  if (options.initialState !== undefined && typeof options.initialState !== "function") throw new ConfigError(`agent "${type}": initialState must be a function returning the state`);
  const initialState = options.initialState ?? (() => null as State);
  const definition: AgentDefinition<State> = {
    format: AGENT_DEFINITION_FORMAT,
    type,
    description: options.description.trim(),
    keywords: Object.freeze(nonEmptyStrings("keywords", type, options.keywords)),
    examples: Object.freeze(examples),
    displayName: options.displayName?.trim() || `${type}_agent`,
    historyLimit: positiveInteger(type, "historyLimit", options.historyLimit, DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT),
    timeoutMs: positiveInteger(type, "timeoutMs", options.timeoutMs, DEFAULT_REPLY_TIMEOUT_MS) || DEFAULT_REPLY_TIMEOUT_MS,
    initialState,
    reply: options.reply.bind(options),
  };
  Object.defineProperty(definition, AGENT_DEFINITION_BRAND, { value: AGENT_DEFINITION_FORMAT, enumerable: false });
  return Object.freeze(definition);
}

/** Whether a value was made by `defineAgent` (of this or another installed copy of the package). */
export function isAgentDefinition(value: unknown): value is AgentDefinition {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[AGENT_DEFINITION_BRAND] === AGENT_DEFINITION_FORMAT;
}
