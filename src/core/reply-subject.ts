import type { Msg } from "@nats-io/transport-node";
import type { Logger } from "./logging.js";

/** Longer reply subjects are not inboxes any client library makes. */
const MAX_REPLY_LENGTH = 256;

/**
 * Whether a service may answer a request at its reply subject: an inbox (`_INBOX.…`, or a role's
 * `_INBOX_<role>.…`), literal and of reasonable length. A service publishes its answer with its
 * own permissions, which reach the JetStream API and the buckets; answering wherever a requester
 * pointed would let any identity that may send it a request write there in its name (an empty
 * answer to `$JS.API.STREAM.DELETE.<stream>` deletes the stream).
 */
export function isAnswerableReply(reply: string): boolean {
  if (reply.length === 0 || reply.length > MAX_REPLY_LENGTH) return false;
  const tokens = reply.split(".");
  const first = tokens[0] ?? "";
  if (first !== "_INBOX" && !/^_INBOX_[A-Za-z0-9_-]+$/.test(first)) return false;
  return tokens.length > 1 && tokens.every((t) => t !== "" && t !== "*" && t !== ">" && !/[\s\u0000-\u001f\u007f]/.test(t));
}

/**
 * Passes a request on when its reply subject may be answered (or it has none); otherwise drops it
 * unanswered, before any work is done for it, and logs who sent it where.
 */
export function guardReply(msg: Msg, logger: Logger, handle: (msg: Msg) => void): void {
  if (msg.reply && !isAnswerableReply(msg.reply)) {
    logger.warn({ event: "request.reply_refused", subject: msg.subject, reply: msg.reply.slice(0, 120) }, "dropped a request whose reply subject is not an inbox");
    return;
  }
  handle(msg);
}
