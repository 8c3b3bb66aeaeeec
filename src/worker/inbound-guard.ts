import { create, type Message } from "@bufbuild/protobuf";
import { ErrorCode, errorMessage } from "../core/errors.js";
import { namesAnotherSource } from "../core/event-source.js";
import { isValidToken } from "../core/ids.js";
import type { Logger } from "../core/logging.js";
import { TopicType } from "../core/subjects.js";
import { isUserWritableTopic, MAX_USER_TEXT_CHARS, userPublishable } from "../core/user-input.js";
import { ErrorEventSchema } from "../gen/switchboard/v1/conversation_pb.js";
import type { Agent, AgentContext, AgentEnvironment, AgentTypeDefinition, MessageContext } from "./agent.js";
import { TokenBuckets, type RateLimitOptions } from "./rate-limit.js";

export { MAX_USER_TEXT_CHARS } from "../core/user-input.js";

export interface InboundGuardOptions {
  /** Per-user limit on the messages users send to this agent type; none when undefined. */
  readonly rateLimit?: RateLimitOptions | undefined;
  readonly logger: Logger;
}

/** Notices (and warnings logged) about dropped messages, per user: a flood must not turn into a flood of answers. */
const NOTICES: RateLimitOptions = { perSecond: 1, burst: 3 };

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
 * - On a topic a user can write to (every type but `response` and `user_proxy`), only the types
 *   declared in `USER_PUBLISHABLE` are accepted, each where it is declared (`type_not_allowed`
 *   otherwise). The subject cannot tell a user from a service, so whatever arrives there is held to
 *   the same limits: every text field at most {@link MAX_USER_TEXT_CHARS} characters (a client
 *   other than the chat may send up to the server's 1 MB; the answer echoing it would not fit), ids
 *   that are ids, and a rate limit per user (a token bucket per agent type, in this worker), so
 *   that one user's flood does not occupy the agents everyone shares.
 *
 * A rejected message is acked and dropped, and its sender is told why on its own response topic
 * (`invalid_message`, `type_not_allowed` or `rate_limited`).
 */
export class InboundGuard {
  private readonly limiter: TokenBuckets | undefined;
  private readonly notices = new TokenBuckets(NOTICES);
  private readonly warnings = new TokenBuckets(NOTICES);
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
    const ids = { user: topic.source.user, session: topic.source.session, topicType: topic.type, type: message.$typeName };
    const reject = (reason: string, code: string, text: string, extra: Record<string, unknown> = {}) => {
      this.log(topic.source.user, { event: "message.rejected", reason, ...ids, ...extra }, `message refused (${reason}); dropped`);
      return { code, text };
    };
    if (namesAnotherSource(message, topic.source)) {
      return reject("identity_mismatch", ErrorCode.InvalidMessage, `a message on user ${topic.source.user}'s session ${topic.source.session} must name that user and session; it was dropped`);
    }
    if (!isUserWritableTopic(topic.type)) return undefined;
    const declared = userPublishable(message.$typeName, topic.type);
    if (!declared) {
      return reject("type_not_allowed", ErrorCode.TypeNotAllowed, `${message.$typeName} may not be sent to topic ${topic.type === TopicType.Default ? TopicType.Default : `${topic.type} (an agent type's topic)`}; it was dropped`);
    }
    for (const { field, value, required } of declared.ids(message)) {
      if ((required || value !== "") && !isValidToken(value)) {
        return reject("invalid_id", ErrorCode.InvalidMessage, `${field} ${JSON.stringify(value.slice(0, 80))} is not a valid id (1-64 characters from A-Z, a-z, 0-9, '_' and '-'); the message was dropped`);
      }
    }
    const longest = Math.max(0, ...declared.texts(message).map((t) => t.length));
    if (longest > MAX_USER_TEXT_CHARS) {
      return reject("too_long", ErrorCode.InvalidMessage, `message too long (${longest} characters, at most ${MAX_USER_TEXT_CHARS}); it was dropped`, { chars: longest });
    }
    // A redelivery was admitted the first time; charging it again would punish our own retries.
    if (this.limiter && ctx.deliveryCount <= 1 && !this.limiter.take(topic.source.user)) {
      this.log(topic.source.user, { event: "message.rate_limited", ...ids }, "user is over the rate limit; message dropped");
      const { perSecond, burst } = this.limiter.options;
      return { code: ErrorCode.RateLimited, text: `slow down: you sent more than ${burst} messages at once or ${perSecond} per second to ${this.agentType}; wait a moment and send this one again` };
    }
    return undefined;
  }

  /**
   * Logs a refusal at warn level a few times a second per user, the rest at debug: a flood of
   * refused messages must not become a flood of log lines.
   */
  private log(user: string, fields: Record<string, unknown>, text: string): void {
    if (this.warnings.take(user)) this.logger.warn(fields, text);
    else if (this.logger.isLevelEnabled("debug")) this.logger.debug(fields, text);
  }

  /** Tells the sender why its message was dropped, unless it has been told often enough lately. */
  async reject(context: AgentContext, message: Message, ctx: MessageContext, error: { code: string; text: string }): Promise<void> {
    const topic = ctx.topic;
    if (!topic || !this.notices.take(topic.source.user)) return;
    try {
      await context.runtime.publish(
        create(ErrorEventSchema, { sessionId: topic.source.session, user: topic.source.user, turnId: turnOf(message), code: error.code, message: error.text, agentType: this.agentType }),
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
