import { create, isMessage, type Message } from "@bufbuild/protobuf";
import { ErrorCode, errorMessage } from "../core/errors.js";
import { namesAnotherSource } from "../core/event-source.js";
import type { Logger } from "../core/logging.js";
import { TopicType } from "../core/subjects.js";
import { ErrorEventSchema, UserMessageSchema } from "../gen/switchboard/v1/conversation_pb.js";
import { ClarifyAnswerSchema } from "../gen/switchboard/v1/routing_pb.js";
import type { Agent, AgentContext, AgentEnvironment, AgentTypeDefinition, MessageContext } from "./agent.js";
import { TokenBuckets, type RateLimitOptions } from "./rate-limit.js";

export interface InboundGuardOptions {
  /** Per-user limit on the messages users send to this agent type; none when undefined. */
  readonly rateLimit?: RateLimitOptions | undefined;
  readonly logger: Logger;
}

/** Longest text accepted from a user, in characters; the chat refuses longer ones before sending. */
export const MAX_USER_TEXT_CHARS = 16_000;

/** Notices about dropped messages, per user: a flood must not turn into a flood of answers. */
const NOTICES: RateLimitOptions = { perSecond: 1, burst: 3 };

/** What a user typed (a message, or the answer to a clarification), as opposed to agent output. */
function isFromUser(message: Message): boolean {
  return isMessage(message, UserMessageSchema) || isMessage(message, ClarifyAnswerSchema);
}

function userText(message: Message): string {
  if (isMessage(message, UserMessageSchema)) return message.text;
  if (isMessage(message, ClarifyAnswerSchema)) return message.originalText;
  return "";
}

function turnOf(message: Message): string {
  return "turnId" in message && typeof message.turnId === "string" ? message.turnId : "";
}

/**
 * Checks every event an agent type receives on a topic before its handler sees it:
 *
 * - The user and session named in the body must be those of the subject. NATS permissions confine
 *   a chat user to subjects of its own sessions, but agents answer to the user and session in the
 *   body; without this check Alice could publish, on her own topic, a message naming Bob's session
 *   and have the router answer into it.
 * - Text from users is at most {@link MAX_USER_TEXT_CHARS} characters (a client other than the
 *   chat may send up to the server's 1 MB; the answer echoing it would not fit).
 * - Messages from users are rate limited per user (a token bucket per agent type, in this worker),
 *   so that one user's flood does not occupy the agents everyone shares.
 *
 * A rejected message is acked and dropped, and its sender is told why on its own response topic
 * (`invalid_message` or `rate_limited`).
 */
export class InboundGuard {
  private readonly limiter: TokenBuckets | undefined;
  private readonly notices = new TokenBuckets(NOTICES);
  private readonly logger: Logger;

  constructor(
    readonly agentType: string,
    options: InboundGuardOptions,
  ) {
    this.limiter = options.rateLimit ? new TokenBuckets(options.rateLimit) : undefined;
    this.logger = options.logger.child({ component: "inbound-guard", agentType });
  }

  /** Undefined when the message may be handled; otherwise the error to tell its sender. */
  check(message: Message, ctx: MessageContext): { code: string; text: string } | undefined {
    const topic = ctx.topic;
    // Direct sends come from other workers, which NATS permissions already restrict to services.
    if (!topic) return undefined;
    if (namesAnotherSource(message, topic.source)) {
      this.logger.warn({ event: "message.rejected", reason: "identity_mismatch", user: topic.source.user, session: topic.source.session }, "message names another user or session than its subject; dropped");
      return { code: ErrorCode.InvalidMessage, text: `a message on user ${topic.source.user}'s session ${topic.source.session} must name that user and session; it was dropped` };
    }
    const text = userText(message);
    if (text.length > MAX_USER_TEXT_CHARS) {
      this.logger.warn({ event: "message.rejected", reason: "too_long", user: topic.source.user, session: topic.source.session, chars: text.length }, "user message too long; dropped");
      return { code: ErrorCode.InvalidMessage, text: `message too long (${text.length} characters, at most ${MAX_USER_TEXT_CHARS}); it was dropped` };
    }
    // A redelivery was admitted the first time; charging it again would punish our own retries.
    if (this.limiter && isFromUser(message) && ctx.deliveryCount <= 1 && !this.limiter.take(topic.source.user)) {
      this.logger.warn({ event: "message.rate_limited", user: topic.source.user, session: topic.source.session }, "user is over the rate limit; message dropped");
      const { perSecond, burst } = this.limiter.options;
      return { code: ErrorCode.RateLimited, text: `slow down: you sent more than ${burst} messages at once or ${perSecond} per second to ${this.agentType}; wait a moment and send this one again` };
    }
    return undefined;
  }

  /** Tells the sender why its message was dropped, unless it has been told often enough lately. */
  async reject(context: AgentContext, message: Message, ctx: MessageContext, error: { code: string; text: string }): Promise<void> {
    const topic = ctx.topic;
    if (!topic || !this.notices.take(topic.source.user)) return;
    try {
      await context.runtime.publish(
        create(ErrorEventSchema, { sessionId: topic.source.session, user: topic.source.user, turnId: turnOf(message), code: error.code, message: error.text }),
        { type: TopicType.Response, source: topic.source },
        { id: `${ctx.eventId}-${this.agentType}-${error.code}` },
      );
    } catch (err) {
      this.logger.warn({ event: "error_event.failed", session: topic.source.session, err: errorMessage(err) }, "could not tell the user about a dropped message");
    }
  }
}

class GuardedAgent implements Agent {
  constructor(
    private readonly inner: Agent,
    private readonly context: AgentContext,
    private readonly guard: InboundGuard,
  ) {}

  async onMessage(message: Message, ctx: MessageContext): Promise<Message | undefined> {
    const error = this.guard.check(message, ctx);
    if (!error) return this.inner.onMessage(message, ctx);
    await this.guard.reject(this.context, message, ctx, error);
    return undefined;
  }
}

/** The same agent type, with {@link InboundGuard} in front of every instance. */
export function guardAgentType(definition: AgentTypeDefinition, options: InboundGuardOptions): AgentTypeDefinition {
  const guard = new InboundGuard(definition.spec.type, options);
  const guarded: AgentTypeDefinition = {
    spec: definition.spec,
    create: (context: AgentContext) => new GuardedAgent(definition.create(context), context, guard),
    ...(definition.stateless !== undefined ? { stateless: definition.stateless } : {}),
    ...(definition.open ? { open: (env: AgentEnvironment) => definition.open?.(env) ?? Promise.resolve() } : {}),
    ...(definition.close ? { close: () => definition.close?.() ?? Promise.resolve() } : {}),
  };
  return guarded;
}
