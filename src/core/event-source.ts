import type { Message } from "@bufbuild/protobuf";
import type { TopicSource } from "./ids.js";

/** The user and session a conversation message's body claims to belong to, if it names them. */
export function claimedSource(message: Message): TopicSource | undefined {
  if (!("user" in message) || !("sessionId" in message)) return undefined;
  const { user, sessionId } = message;
  return typeof user === "string" && typeof sessionId === "string" ? { user, session: sessionId } : undefined;
}

/**
 * Whether an event's body names another user or session than the subject it was published on.
 * NATS permissions vouch for the subject only, so whoever acts on a body's user or session must
 * check this first. Events that name none pass.
 */
export function namesAnotherSource(message: Message, source: TopicSource): boolean {
  const claimed = claimedSource(message);
  return claimed !== undefined && (claimed.user !== source.user || claimed.session !== source.session);
}
