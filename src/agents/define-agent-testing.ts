import type { AgentDefinition, AgentLogger, HistoryEntry, JsonValue, Turn } from "./define-agent.js";
import { replyChunks } from "./define-agent-runtime.js";

/** What a test sets on a {@link Turn}; everything else gets a plain default. */
export interface TurnInit<State extends JsonValue = JsonValue> {
  readonly text: string;
  /** Default: `"test-user"`. */
  readonly user?: string | undefined;
  /** Default: `"test-session"`. */
  readonly sessionId?: string | undefined;
  /** Default: `"test-turn"`. */
  readonly turnId?: string | undefined;
  /** Default: `history.length / 2 + 1`. */
  readonly turn?: number | undefined;
  /** Default: 1. */
  readonly attempt?: number | undefined;
  /** Default: `"test"`. */
  readonly agentType?: string | undefined;
  /** Default: none. */
  readonly history?: readonly HistoryEntry[] | undefined;
  /** Default: `null`, or the definition's initial state in {@link runReply}. */
  readonly state?: State | undefined;
  /** Default: a logger that drops everything. */
  readonly logger?: AgentLogger | undefined;
  /** Default: a signal that never aborts. */
  readonly signal?: AbortSignal | undefined;
}

const SILENT: AgentLogger = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * A {@link Turn} for unit-testing a `reply` function without a bus. `ended()` says whether the
 * reply called `turn.end()`.
 */
export function createTurn<State extends JsonValue = JsonValue>(init: TurnInit<State>): Turn<State> & { ended(): boolean } {
  let ended = false;
  const history = init.history ?? [];
  return {
    text: init.text,
    user: init.user ?? "test-user",
    sessionId: init.sessionId ?? "test-session",
    turnId: init.turnId ?? "test-turn",
    turn: init.turn ?? Math.floor(history.length / 2) + 1,
    attempt: init.attempt ?? 1,
    agentType: init.agentType ?? "test",
    history,
    state: (init.state ?? null) as State,
    logger: init.logger ?? SILENT,
    signal: init.signal ?? new AbortController().signal,
    end: () => {
      ended = true;
    },
    ended: () => ended,
  };
}

/** What one call of an agent's `reply` produced. */
export interface ReplyRun<State extends JsonValue = JsonValue> {
  /** The whole reply, as the user's chat would show it. */
  readonly text: string;
  /** The pieces it was streamed in (one for a reply returned whole). */
  readonly chunks: readonly string[];
  /** The conversation state the turn left, as the runtime would save it. */
  readonly state: State;
  /** Whether the reply ended the conversation. */
  readonly ended: boolean;
}

/**
 * Runs a defined agent's `reply` for one message, as the worker would but without a bus: for
 * unit tests of agents.
 *
 * @example
 * ```ts
 * const run = await runReply(travel, { text: "Book a flight to Munich" });
 * assert.match(run.text, /Munich/);
 * ```
 */
export async function runReply<State extends JsonValue>(definition: AgentDefinition<State>, init: TurnInit<State>): Promise<ReplyRun<State>> {
  const turn = createTurn<State>({ agentType: definition.type, ...init, state: init.state ?? definition.initialState() });
  const chunks: string[] = [];
  for await (const chunk of replyChunks(definition.reply(turn))) if (chunk !== "") chunks.push(chunk);
  return { text: chunks.join(""), chunks, state: turn.state, ended: turn.ended() };
}
