import { create, isMessage, type Message } from "@bufbuild/protobuf";
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { decodeEvent } from "../core/codec.js";
import { CancelledError, ErrorCode, errorMessage } from "../core/errors.js";
import { newId, validateToken } from "../core/ids.js";
import type { Logger } from "../core/logging.js";
import { publishEvent } from "../core/publish.js";
import { TopicType, type Subjects } from "../core/subjects.js";
import {
  AgentReplySchema,
  EndReason,
  ErrorEventSchema,
  NoAgentSchema,
  RoutedSchema,
  SessionEndedSchema,
  UserMessageSchema,
} from "../gen/switchboard/v1/conversation_pb.js";

/** What the user sees, one value per event. This is also the `--json` line format. */
export type ChatEvent =
  | { readonly event: "routed"; readonly session: string; readonly agent: string; readonly intent: string; readonly score: number }
  | { readonly event: "reply"; readonly session: string; readonly agent: string; readonly name: string; readonly content: string }
  | { readonly event: "no_agent"; readonly session: string; readonly message: string; readonly available: readonly string[] }
  | { readonly event: "ended"; readonly session: string; readonly agent: string; readonly reason: string; readonly content: string }
  | { readonly event: "error"; readonly session: string; readonly code: string; readonly message: string }
  /** Nobody serves the recipient right now; the message waits durably and the turn goes on. */
  | { readonly event: "queued"; readonly session: string; readonly agent: string | null; readonly message: string }
  | { readonly event: "timeout"; readonly session: string; readonly agent: string | null; readonly message: string };

/** Events after which a turn is complete and the user may type again. */
const FINAL_EVENTS: ReadonlySet<ChatEvent["event"]> = new Set(["reply", "no_agent", "ended", "error", "timeout"]);

/** Longest message accepted from the user, in characters. */
export const MAX_MESSAGE_CHARS = 16_000;

export interface ChatSessionOptions {
  readonly nc: NatsConnection;
  readonly subjects: Subjects;
  readonly user: string;
  readonly logger: Logger;
  /** How long to wait for the answer to one message. */
  readonly replyTimeoutMs: number;
}

interface PendingTurn {
  readonly turnId: string;
  readonly onEvent: (event: ChatEvent) => void;
  readonly finish: (event: ChatEvent) => void;
}

const END_REASONS: Record<number, string> = { [EndReason.USER_REQUEST]: "user_request", [EndReason.UNSPECIFIED]: "unspecified" };

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

  /** Subscribes to this user's responses. Call before the first send. */
  async start(): Promise<void> {
    // One subscription over all of the user's sessions: NATS permissions can confine a user to it.
    const subject = this.subjects.userTopics(TopicType.Response, this.user);
    this.sub = this.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) {
          this.logger.warn({ event: "chat.subscription_error", err: errorMessage(err) }, "response subscription error");
          return;
        }
        this.receive(msg.subject, msg);
      },
    });
    await this.nc.flush();
  }

  private receive(subject: string, raw: Parameters<typeof decodeEvent>[0]): void {
    const topic = this.subjects.parseTopic(subject);
    if (!topic || topic.source.session !== this.sessionIdValue) return;
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
    if (!pending || turnId !== pending.turnId) return;
    const event = this.toChatEvent(decoded.message);
    if (!event) return;
    if (FINAL_EVENTS.has(event.event)) pending.finish(event);
    else pending.onEvent(event);
  }

  private toChatEvent(message: Message): ChatEvent | undefined {
    const session = this.sessionIdValue;
    if (isMessage(message, RoutedSchema)) {
      return { event: "routed", session, agent: message.agentType, intent: message.intent, score: message.score };
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
      if (message.code === ErrorCode.AgentUnavailable) return { event: "queued", session, agent: this.agentValue ?? null, message: message.message };
      return { event: "error", session, code: message.code, message: message.message };
    }
    return undefined;
  }

  /**
   * Sends one user message and resolves with every event of the turn, the last one final
   * (reply, no_agent, ended, error or timeout). `onEvent` sees each event as it arrives.
   */
  async send(text: string, onEvent: (event: ChatEvent) => void = () => undefined, signal?: AbortSignal): Promise<ChatEvent[]> {
    if (!this.sub) throw new Error("ChatSession.start() must be called before send()");
    if (this.pending) throw new Error("one message at a time: wait for the previous answer");
    const events: ChatEvent[] = [];
    const session = this.sessionIdValue;
    if (text.length > MAX_MESSAGE_CHARS) {
      const event: ChatEvent = { event: "error", session, code: ErrorCode.InvalidMessage, message: `message too long (${text.length} characters, at most ${MAX_MESSAGE_CHARS})` };
      onEvent(event);
      return [event];
    }
    const turnId = newId("t");
    const recipient = this.agentValue ?? TopicType.Default;
    const final = new Promise<ChatEvent>((resolve) => {
      this.pending = {
        turnId,
        onEvent: (event) => {
          events.push(event);
          if (event.event === "routed") this.agentValue = event.agent;
          onEvent(event);
        },
        finish: resolve,
      };
    });
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      const message = create(UserMessageSchema, { sessionId: session, user: this.user, turnId, text });
      const timeout = new Promise<ChatEvent>((resolve) => {
        timer = setTimeout(
          () =>
            resolve({
              event: "timeout",
              session,
              agent: this.agentValue ?? null,
              message: `no answer from ${this.agentValue ? `the ${this.agentValue} agent` : "the router"} within ${Math.round(this.options.replyTimeoutMs / 1000)} s; is a worker running? (switchboard admin workers)`,
            }),
          this.options.replyTimeoutMs,
        );
      });
      const aborted = new Promise<never>((_, reject) => {
        onAbort = () => reject(new CancelledError("waiting for an answer"));
        signal?.addEventListener("abort", onAbort, { once: true });
      });
      await Promise.race([
        publishEvent(this.js, this.subjects, message, { type: recipient, source: { user: this.user, session } }, { source: `switchboard/chat/${this.user}`, id: `${session}-${turnId}` }),
        aborted,
      ]);
      const event = await Promise.race([final, timeout, aborted]);
      this.applyFinal(event);
      events.push(event);
      onEvent(event);
      return events;
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener("abort", onAbort);
      this.pending = undefined;
    }
  }

  private applyFinal(event: ChatEvent): void {
    if (event.event === "ended") this.newSession();
    else if (event.event === "no_agent") this.agentValue = undefined;
  }

  /** Leaves the current session; the next message starts a new one at the router. */
  newSession(): void {
    this.sessionIdValue = newId("s");
    this.agentValue = undefined;
  }

  async close(): Promise<void> {
    if (this.sub && !this.sub.isClosed()) await this.sub.drain();
  }
}

function turnIdOf(message: Message): string | undefined {
  return "turnId" in message && typeof message.turnId === "string" ? message.turnId : undefined;
}
