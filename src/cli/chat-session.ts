import { create, isMessage, type Message } from "@bufbuild/protobuf";
import { jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { decodeEvent } from "../core/codec.js";
import { CancelledError, ErrorCode, errorMessage, PermissionDeniedError, SwitchboardError } from "../core/errors.js";
import { isValidToken, newId, validateToken } from "../core/ids.js";
import { containsEndWord } from "../agents/end-word.js";
import type { Logger } from "../core/logging.js";
import { publishEvent, PublishFailedError } from "../core/publish.js";
import { sleep } from "../core/sleep.js";
import { TopicType, type Subjects } from "../core/subjects.js";
import { recordReceipt, SpanAttribute, SpanKind, SpanName, startSpan } from "../core/telemetry/tracing.js";
import {
  AgentReplyDeltaSchema,
  AgentReplySchema,
  EndReason,
  ErrorEventSchema,
  NoAgentSchema,
  RoutedSchema,
  SessionEndedSchema,
  UserMessageSchema,
} from "../gen/switchboard/v1/conversation_pb.js";
import { ClarifyAnswerSchema, ClarifySchema } from "../gen/switchboard/v1/routing_pb.js";
import { ReplyAssembler } from "./reply-deltas.js";

/** One agent the user may choose after a `clarify` event. */
export interface ClarifyChoice {
  readonly agent: string;
  readonly description: string;
  readonly score: number;
}

/**
 * Where an event belongs: when the chat received it (`ts`, ISO 8601), the turn — one user message
 * and what answers it — it is part of, and `late` when it answers a turn that had already timed
 * out. The session stamps these on every event it hands out.
 */
export interface ChatEventContext {
  readonly ts?: string;
  readonly turn?: string;
  readonly late?: true;
}

/** What the user sees, one value per event. This is also the `--json` line format. */
export type ChatEvent = ChatEventContext & (
  /** `from` is set when an agent handed the session over to another (or back to itself). */
  | { readonly event: "routed"; readonly session: string; readonly agent: string; readonly intent: string; readonly score: number; readonly from?: string }
  /** Several agents fit; the turn waits for {@link ChatSession.answerClarification}. */
  | { readonly event: "clarify"; readonly session: string; readonly question: string; readonly options: readonly ClarifyChoice[] }
  | { readonly event: "reply"; readonly session: string; readonly agent: string; readonly name: string; readonly content: string }
  | { readonly event: "no_agent"; readonly session: string; readonly message: string; readonly available: readonly string[] }
  | { readonly event: "ended"; readonly session: string; readonly agent: string; readonly reason: string; readonly content: string }
  | { readonly event: "error"; readonly session: string; readonly agent?: string; readonly code: string; readonly message: string }
  /** Nobody serves the recipient right now; the message waits durably and the turn goes on. */
  | { readonly event: "queued"; readonly session: string; readonly agent: string | null; readonly message: string }
  /** `text` is (the start of) the user's message that went unanswered. */
  | { readonly event: "timeout"; readonly session: string; readonly agent: string | null; readonly message: string; readonly text?: string }
  /**
   * Text of a reply in progress, in order, only with {@link ChatSessionOptions.streamReplies}. The
   * `reply` event that follows carries the whole answer. `attempt` is 1, or more when the user's
   * message was redelivered after its worker stopped mid-answer: the answer is then written again
   * from its start, and the text of earlier attempts is not part of it.
   */
  | { readonly event: "delta"; readonly session: string; readonly agent: string; readonly text: string; readonly attempt: number }
);

/** Events after which a turn is complete and the user may type again. */
const FINAL_EVENTS: ReadonlySet<ChatEvent["event"]> = new Set(["reply", "no_agent", "ended", "error", "timeout", "clarify"]);

/** An answer to a clarification that names none of the options. */
export class InvalidChoiceError extends SwitchboardError {
  override name = "InvalidChoiceError";
  constructor(
    readonly answer: string,
    readonly options: readonly ClarifyChoice[],
    /** The turn the clarification belongs to. */
    readonly turnId: string,
  ) {
    const valid = options.map((o, i) => `${i + 1} or ${o.agent}`).join(", ");
    super(ErrorCode.InvalidChoice, `${JSON.stringify(answer.slice(0, 80))} is not one of the options; answer ${valid}`);
  }
}

/** The clarification the session is waiting on: the message it concerns and the choices. */
interface PendingClarification {
  readonly turnId: string;
  readonly text: string;
  readonly options: readonly ClarifyChoice[];
}

/** Longest message accepted from the user, in characters. */
export const MAX_MESSAGE_CHARS = 16_000;

export interface ChatSessionOptions {
  readonly nc: NatsConnection;
  readonly subjects: Subjects;
  readonly user: string;
  readonly logger: Logger;
  /** How long to wait for the answer to one message. */
  readonly replyTimeoutMs: number;
  /** Emit `delta` events with the text of replies in progress. Default false. */
  readonly streamReplies?: boolean;
  /**
   * Receives the answer to a turn that had already timed out, when it arrives (marked `late`). The
   * turn's session may no longer be the current one; the answer never counts for a newer turn.
   */
  readonly onLateEvent?: (event: ChatEvent) => void;
}

/** A turn that timed out and may still be answered. */
interface LateTurn {
  readonly session: string;
  readonly text: string;
}

interface PendingTurn {
  readonly turnId: string;
  readonly onEvent: (event: ChatEvent) => void;
  readonly finish: (event: ChatEvent) => void;
  /** Part of the answer arrived: the turn's time-out counts from now. */
  readonly progress: () => void;
}

/** Timed-out turns whose answers are still shown when they come; older ones are forgotten. */
const MAX_LATE_TURNS = 100;
/** How much of the user's message a `timeout` event repeats. */
const TIMEOUT_TEXT_CHARS = 80;

/** How often a turn still waiting for its answer looks for it in the stream. */
const RECHECK_INTERVAL_MS = 3_000;
/**
 * How long the next message waits after a `rate_limited` error: long enough for a worker's
 * limit, and its notices to this user (one a second), to have room again.
 */
const RATE_LIMITED_PAUSE_MS = 1_000;
const END_REASONS: Record<number, string> = { [EndReason.USER_REQUEST]: "user_request", [EndReason.AGENT_FINISHED]: "agent_finished", [EndReason.UNSPECIFIED]: "unspecified" };

/**
 * One user's conversation with Switchboard, without any rendering: the chat front-ends (Clack and
 * JSON lines) drive it. The first message of a session goes to the router; once routed, messages go
 * straight to the assigned agent's topic; after END a new session starts.
 */
export class ChatSession {
  readonly user: string;
  private readonly nc: NatsConnection;
  private readonly js: JetStreamClient;
  private readonly subjects: Subjects;
  private readonly logger: Logger;
  private sub: Subscription | undefined;
  private pending: PendingTurn | undefined;
  private readonly seen = new Set<string>();
  private sessionIdValue = newId("s");
  private agentValue: string | undefined;
  private stopStatus: (() => void) | undefined;
  private statusLoop: Promise<void> | undefined;
  private clarification: PendingClarification | undefined;
  private unsent = 0;
  private slowDownUntil = 0;
  private deltaSub: Subscription | undefined;
  private readonly assembler = new ReplyAssembler();
  private readonly lateTurns = new Map<string, LateTurn>();

  constructor(private readonly options: ChatSessionOptions) {
    this.user = validateToken("user name", options.user);
    this.nc = options.nc;
    this.js = jetstream(this.nc);
    this.subjects = options.subjects;
    this.logger = options.logger.child({ component: "chat", user: this.user });
  }

  get sessionId(): string {
    return this.sessionIdValue;
  }

  /** The agent type this session is assigned to, if any. */
  get agent(): string | undefined {
    return this.agentValue;
  }

  /** The choices of the last `clarify` event while it awaits an answer. */
  get pendingClarification(): readonly ClarifyChoice[] | undefined {
    return this.clarification?.options;
  }

  /** Subscribes to this user's responses. Call before the first send. */
  async start(): Promise<void> {
    // One subscription over all of the user's sessions: NATS permissions can confine a user to it.
    const subject = this.subjects.userTopics(TopicType.Response, this.user);
    let refused: Error | undefined;
    let starting = true;
    this.sub = this.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) {
          // Refused while starting: start() throws, saying what to do; later, worth a warning.
          if (starting) refused ??= err;
          else this.logger.warn({ event: "chat.subscription_error", err: errorMessage(err) }, "response subscription error");
          return;
        }
        this.receive(msg.subject, msg);
      },
    });
    // The server refuses a subscription before it answers the flush.
    await this.nc.flush();
    starting = false;
    if (refused) {
      throw new PermissionDeniedError("subscribe", subject, `the credentials in use are not user "${this.user}"'s (each user may read only its own answers); chat with that user's credentials (--creds FILE)`, { cause: refused });
    }
    // Followed even when not shown: an answer still arriving keeps its turn from timing out.
    await this.subscribeToDeltas();
    this.statusLoop = this.watchConnection();
  }

  /**
   * Reply deltas come over core NATS on their own subject. They are an extra: a server whose
   * permissions predate them refuses the subscription, and the chat goes on without streaming.
   */
  private async subscribeToDeltas(): Promise<void> {
    const subject = this.subjects.userReplyDeltas(this.user);
    let warned = false;
    this.deltaSub = this.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) {
          if (!warned && this.options.streamReplies) this.logger.warn({ event: "chat.delta_subscription_error", err: errorMessage(err) }, "replies will not stream; whole answers still arrive");
          warned = true;
          return;
        }
        this.receiveDelta(msg);
      },
    });
    await this.nc.flush();
  }

  private receiveDelta(raw: Parameters<typeof decodeEvent>[0]): void {
    let decoded;
    try {
      decoded = decodeEvent(raw);
    } catch (err) {
      this.logger.debug({ event: "chat.bad_delta", err: errorMessage(err) }, "ignored an unreadable reply delta");
      return;
    }
    const delta = decoded.message;
    if (!isMessage(delta, AgentReplyDeltaSchema) || delta.sessionId !== this.sessionIdValue || delta.user !== this.user) return;
    const pending = this.pending;
    if (!pending || delta.turnId !== pending.turnId) return;
    pending.progress();
    if (!this.options.streamReplies) return;
    const text = this.assembler.accept({ turnId: delta.turnId, sequence: delta.sequence, text: delta.text, attempt: delta.attempt });
    if (text !== "") pending.onEvent({ event: "delta", session: this.sessionIdValue, agent: delta.agentType, text, attempt: this.assembler.attempt, ...stamp(pending.turnId) });
  }

  /**
   * An answer published while this client was reconnecting never reaches the subscription, but
   * it is in the stream: after a reconnect, read the session's latest response event from there.
   * The final event of a turn is always the latest one, and duplicates are dropped by `ce-id`.
   */
  private async watchConnection(): Promise<void> {
    // nats.js returns a queued iterator; its stop() ends the loop (an async generator's
    // return() would wait for the next status event, which may never come).
    const status = this.nc.status() as AsyncIterable<{ type: string }> & { stop?: () => void };
    this.stopStatus = () => status.stop?.();
    for await (const s of status) {
      if (s.type === "reconnect") await this.catchUp();
    }
  }

  private async catchUp(): Promise<void> {
    for (const session of new Set([...this.lateTurns.values()].map((t) => t.session))) await this.readLatestResponse(session);
    const pending = this.pending;
    if (!pending) return;
    for (let attempt = 0; attempt < 10 && this.pending === pending; attempt++) {
      // JetStream may still be recovering right after a server restart.
      if (await this.readLatestResponse()) return;
      await sleep(500);
    }
  }

  /**
   * Reads the session's latest response event from the stream and takes it as if it had arrived
   * on the subscription. False when the stream could not be read.
   */
  private async readLatestResponse(session = this.sessionIdValue): Promise<boolean> {
    const subject = this.subjects.topic({ type: TopicType.Response, source: { user: this.user, session } });
    try {
      // A direct get names the subject in the API subject: the one read a chat user may do.
      const jsm = await jetstreamManager(this.nc, { checkAPI: false });
      const stored = await jsm.direct.getMessage(this.subjects.eventStream, { last_by_subj: subject });
      if (stored) this.receive(stored.subject, { headers: stored.header, data: stored.data });
      return true;
    } catch (err) {
      this.logger.debug({ event: "chat.catch_up_retry", session, err: errorMessage(err) }, "could not read missed events yet");
      return false;
    }
  }

  private receive(subject: string, raw: Parameters<typeof decodeEvent>[0]): void {
    const topic = this.subjects.parseTopic(subject);
    if (!topic) return;
    const current = topic.source.session === this.sessionIdValue;
    if (!current && ![...this.lateTurns.values()].some((t) => t.session === topic.source.session)) return;
    let decoded;
    try {
      decoded = decodeEvent(raw);
    } catch (err) {
      this.logger.warn({ event: "chat.bad_event", session: topic.source.session, err: errorMessage(err) }, "ignored an unreadable event");
      return;
    }
    // At-least-once delivery below; exactly once on screen.
    if (this.seen.has(decoded.attributes.id)) return;
    this.seen.add(decoded.attributes.id);
    if (this.seen.size > 10_000) this.seen.clear();
    const pending = this.pending;
    const turnId = turnIdOf(decoded.message);
    if (turnId !== undefined && this.lateTurns.has(turnId)) {
      this.receiveLate(turnId, topic.source.session, decoded.message);
      return;
    }
    if (!current || !pending || turnId !== pending.turnId) return;
    recordReceipt(SpanName.ChatReceive, raw.headers, { [SpanAttribute.Session]: topic.source.session, [SpanAttribute.Turn]: turnId, [SpanAttribute.MessageType]: decoded.attributes.type });
    const event = this.toChatEvent(decoded.message);
    if (!event) return;
    if (FINAL_EVENTS.has(event.event)) pending.finish(event);
    else pending.onEvent(event);
  }

  /**
   * An answer to a turn that timed out: shown for what it is, never taken as the answer to the
   * turn in progress. A late routing still tells where the session's follow-ups go.
   */
  private receiveLate(turnId: string, session: string, message: Message): void {
    const late = this.lateTurns.get(turnId);
    if (!late || late.session !== session) return;
    const event = this.toChatEvent(message, session);
    if (!event) return;
    if (event.event === "routed") {
      if (session === this.sessionIdValue && !this.pending) this.agentValue = event.agent;
      return;
    }
    // Still waiting in a queue, or a question nobody is there to answer any more.
    if (!FINAL_EVENTS.has(event.event) || event.event === "clarify") return;
    if (event.event === "ended" && session === this.sessionIdValue && !this.pending) this.newSession();
    this.logger.debug({ event: "chat.late_answer", session, turn: turnId }, "an answer came after the turn timed out");
    this.options.onLateEvent?.({ ...event, ...stamp(turnId), late: true });
    this.lateTurns.delete(turnId);
  }

  /** Turns that timed out and whose answers would still be shown. */
  get unansweredTurns(): number {
    return this.lateTurns.size;
  }

  /** Messages the server would not take (`publish_failed`) or a worker dropped (`rate_limited`): they reached no agent. */
  get unsentMessages(): number {
    return this.unsent;
  }

  private toChatEvent(message: Message, session = this.sessionIdValue): ChatEvent | undefined {
    if (isMessage(message, RoutedSchema)) {
      // Follow-ups go to the agent's topic: a name that cannot be a subject token cannot be followed.
      if (!isValidToken(message.agentType)) return { event: "error", session, code: ErrorCode.InvalidId, message: "the router named an invalid agent type" };
      const from = this.agentValue;
      return { event: "routed", session, agent: message.agentType, intent: message.intent, score: message.score, ...(from ? { from } : {}) };
    }
    if (isMessage(message, ClarifySchema)) {
      const options = message.options.map((o) => ({ agent: o.agentType, description: o.description, score: o.score }));
      return { event: "clarify", session, question: message.question, options };
    }
    if (isMessage(message, AgentReplySchema)) {
      return { event: "reply", session, agent: message.agentType, name: message.agentName, content: message.content };
    }
    if (isMessage(message, NoAgentSchema)) {
      return { event: "no_agent", session, message: message.message, available: message.availableAgentTypes };
    }
    if (isMessage(message, SessionEndedSchema)) {
      return { event: "ended", session, agent: message.agentType, reason: END_REASONS[message.reason] ?? String(message.reason), content: message.finalResult };
    }
    if (isMessage(message, ErrorEventSchema)) {
      if (message.code === ErrorCode.AgentUnavailable) return { event: "queued", session, agent: message.agentType || (this.agentValue ?? null), message: message.message };
      return { event: "error", session, ...(message.agentType ? { agent: message.agentType } : {}), code: message.code, message: message.message };
    }
    return undefined;
  }

  /**
   * Sends one user message and resolves with every event of the turn, the last one final
   * (reply, no_agent, ended, error, timeout, or clarify — then answer with
   * {@link answerClarification}). `onEvent` sees each event as it arrives. Sending a new message
   * while a clarification is pending drops it: the user said something else instead.
   */
  async send(text: string, onEvent: (event: ChatEvent) => void = () => undefined, signal?: AbortSignal): Promise<ChatEvent[]> {
    if (!this.sub) throw new Error("ChatSession.start() must be called before send()");
    if (this.pending) throw new Error("one message at a time: wait for the previous answer");
    const session = this.sessionIdValue;
    const turnId = newId("t");
    // END alone before any agent has the conversation would go to the router as a request, and
    // come back as "no agent fits".
    if (this.agentValue === undefined && !this.clarification && isOnlyEndWord(text)) {
      const event: ChatEvent = { event: "error", session, code: ErrorCode.NoConversation, message: "there is no conversation to end; say what you need to start one", ...stamp(turnId) };
      onEvent(event);
      return [event];
    }
    if (text.length > MAX_MESSAGE_CHARS) {
      const event: ChatEvent = { event: "error", session, code: ErrorCode.InvalidMessage, message: `message too long (${text.length} characters, at most ${MAX_MESSAGE_CHARS})`, ...stamp(turnId) };
      onEvent(event);
      return [event];
    }
    this.clarification = undefined;
    const recipient = this.agentValue ?? TopicType.Default;
    const message = create(UserMessageSchema, { sessionId: session, user: this.user, turnId, text });
    return this.runTurn(turnId, text, () => this.publish(message, recipient, `${session}-${turnId}`), onEvent, signal);
  }

  /**
   * Answers the pending clarification with an agent type name or a 1-based option number, and
   * resolves with the events of the clarified turn (routed, then the agent's answer). Throws
   * {@link InvalidChoiceError} for an answer that names no option; the clarification stays
   * pending so the caller can ask again.
   */
  async answerClarification(answer: string, onEvent: (event: ChatEvent) => void = () => undefined, signal?: AbortSignal): Promise<ChatEvent[]> {
    const pending = this.clarification;
    if (!pending) throw new Error("no clarification is pending");
    if (this.pending) throw new Error("one message at a time: wait for the previous answer");
    const choice = resolveChoice(answer, pending.options);
    if (!choice) throw new InvalidChoiceError(answer, pending.options, pending.turnId);
    this.clarification = undefined;
    const session = this.sessionIdValue;
    const message = create(ClarifyAnswerSchema, { sessionId: session, user: this.user, turnId: pending.turnId, agentType: choice, originalText: pending.text });
    // A turn may be clarified more than once (the chosen agent went away meanwhile), so each answer gets its own id.
    return this.runTurn(pending.turnId, pending.text, () => this.publish(message, TopicType.Default, `${session}-${pending.turnId}-${newId("a")}`), onEvent, signal);
  }

  private async publish(message: Message, recipient: string, id: string): Promise<void> {
    const source = { user: this.user, session: this.sessionIdValue };
    await publishEvent(this.js, this.subjects, message, { type: recipient, source }, { source: `switchboard/chat/${this.user}`, id });
  }

  /** Waits for the events of one turn after `publish`, until a final one, the deadline or `signal`. */
  private async runTurn(turnId: string, text: string, publish: () => Promise<void>, onEvent: (event: ChatEvent) => void, signal: AbortSignal | undefined): Promise<ChatEvent[]> {
    const events: ChatEvent[] = [];
    const session = this.sessionIdValue;
    // A worker said this user sends too fast: the next message waits, or it would be dropped
    // unanswered once the worker's notices run out too.
    const pause = this.slowDownUntil - Date.now();
    if (pause > 0) await sleep(pause, signal, "waiting before sending");
    let timer: NodeJS.Timeout | undefined;
    let armTimeout: (() => void) | undefined;
    const final = new Promise<ChatEvent>((resolve) => {
      this.pending = {
        turnId,
        onEvent: (received) => {
          const event: ChatEvent = { ...received, ...stamp(turnId) };
          events.push(event);
          if (event.event === "routed") this.agentValue = event.agent;
          onEvent(event);
        },
        finish: resolve,
        // An answer still arriving is an answer: the time-out counts from its latest part.
        progress: () => armTimeout?.(),
      };
    });
    let recheck: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    // The root of the turn's trace: what the chat publishes carries it to every hop.
    const span = startSpan(SpanName.ChatTurn, { [SpanAttribute.Session]: session, [SpanAttribute.Turn]: turnId }, SpanKind.PRODUCER);
    let outcome = "cancelled";
    try {
      const timeout = new Promise<ChatEvent>((resolve) => {
        const timedOut = (): ChatEvent => ({
          event: "timeout",
          session,
          agent: this.agentValue ?? null,
          message: `no answer from ${this.agentValue ? `the ${this.agentValue} agent` : "the router"} within ${seconds(this.options.replyTimeoutMs)} s: it may still be working, or no worker may be running (switchboard admin workers). The answer is shown if it still comes.`,
          text: text.length > TIMEOUT_TEXT_CHARS ? `${text.slice(0, TIMEOUT_TEXT_CHARS - 1)}…` : text,
        });
        armTimeout = () => {
          clearTimeout(timer);
          timer = setTimeout(() => resolve(timedOut()), this.options.replyTimeoutMs);
        };
        armTimeout();
      });
      const aborted = new Promise<never>((_, reject) => {
        onAbort = () => reject(new CancelledError("waiting for an answer"));
        signal?.addEventListener("abort", onAbort, { once: true });
      });
      try {
        await Promise.race([span.run(publish), aborted]);
      } catch (err) {
        if (!(err instanceof PublishFailedError)) throw err;
        // The server would not store the message (out of storage, say, or unreachable past the
        // retries): this turn failed, the chat goes on.
        const event: ChatEvent = {
          event: "error",
          session,
          code: ErrorCode.PublishFailed,
          message: `your message was not sent: ${errorMessage(err.cause)}. Send it again; if this keeps happening, the NATS server may be out of storage or unreachable`,
          ...stamp(turnId),
        };
        outcome = event.event;
        this.unsent++;
        events.push(event);
        onEvent(event);
        return events;
      }
      // A live delivery can be missed without a reconnect of this client (a cluster node that
      // held the subscription's interest died, or interest had not yet reached the node the
      // answer was published on); the answer is in the stream all the same.
      let reading = false;
      recheck = setInterval(() => {
        if (reading) return;
        reading = true;
        void this.readLatestResponse().finally(() => (reading = false));
      }, RECHECK_INTERVAL_MS);
      const event: ChatEvent = { ...(await Promise.race([final, timeout, aborted])), ...stamp(turnId) };
      outcome = event.event;
      this.applyFinal(event, turnId, text);
      events.push(event);
      onEvent(event);
      return events;
    } finally {
      clearTimeout(timer);
      clearInterval(recheck);
      if (onAbort) signal?.removeEventListener("abort", onAbort);
      this.pending = undefined;
      span.end({ [SpanAttribute.TurnOutcome]: outcome });
    }
  }

  private applyFinal(event: ChatEvent, turnId: string, text: string): void {
    if (event.event === "error" && event.code === ErrorCode.RateLimited) {
      this.slowDownUntil = Date.now() + RATE_LIMITED_PAUSE_MS;
      // The worker dropped it: it reached no agent, like a message the server would not take.
      this.unsent++;
    }
    if (event.event === "timeout") this.rememberUnanswered(turnId, text);
    // An END that timed out may still end the session: the next conversation must not join it.
    if (event.event === "ended" || (event.event === "timeout" && containsEndWord(text))) this.newSession();
    else if (event.event === "no_agent") this.agentValue = undefined;
    else if (event.event === "clarify") {
      // The router forwarded nothing: the session is unassigned until the user chooses.
      this.agentValue = undefined;
      this.clarification = { turnId, text, options: event.options };
    }
  }

  private rememberUnanswered(turnId: string, text: string): void {
    this.lateTurns.set(turnId, { session: this.sessionIdValue, text });
    for (const oldest of this.lateTurns.keys()) {
      if (this.lateTurns.size <= MAX_LATE_TURNS) break;
      this.lateTurns.delete(oldest);
    }
  }

  /** The message of a timed-out turn, for saying what a late answer answers. */
  unansweredText(turnId: string): string | undefined {
    return this.lateTurns.get(turnId)?.text;
  }

  /** Leaves the current session; the next message starts a new one at the router. */
  newSession(): void {
    this.sessionIdValue = newId("s");
    this.agentValue = undefined;
    this.clarification = undefined;
  }

  async close(): Promise<void> {
    this.stopStatus?.();
    await this.statusLoop;
    if (this.sub && !this.sub.isClosed()) await this.sub.drain();
    if (this.deltaSub && !this.deltaSub.isClosed()) await this.deltaSub.drain();
  }
}

/** An agent type name (any case) or a 1-based option number. */
export function resolveChoice(answer: string, options: readonly ClarifyChoice[]): string | undefined {
  const trimmed = answer.trim();
  if (/^[0-9]+$/.test(trimmed)) return options[Number(trimmed) - 1]?.agent;
  return options.find((o) => o.agent.toLowerCase() === trimmed.toLowerCase())?.agent;
}

/** "30", "1.5": whole seconds when they are. */
function seconds(ms: number): string {
  return ms % 1000 === 0 ? String(ms / 1000) : (ms / 1000).toFixed(1);
}

/** When the chat received an event, and the turn it belongs to: every event a session hands out carries both. */
export function stamp(turn: string): { ts: string; turn: string } {
  return { ts: new Date().toISOString(), turn };
}

function turnIdOf(message: Message): string | undefined {
  return "turnId" in message && typeof message.turnId === "string" ? message.turnId : undefined;
}

/** A message that says END and nothing else ("END", "END.", "END!"). */
function isOnlyEndWord(text: string): boolean {
  return /^[\s\p{P}]*END[\s\p{P}]*$/u.test(text);
}
