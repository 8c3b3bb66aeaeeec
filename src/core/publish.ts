import type { Message } from "@bufbuild/protobuf";
import { JetStreamApiError, type JetStreamClient } from "@nats-io/jetstream";
import { errors as natsErrors } from "@nats-io/transport-node";
import { encodeEvent, wireRegistry } from "./codec.js";
import { CancelledError, ErrorCode, PermissionDeniedError, SwitchboardError, errorMessage } from "./errors.js";
import type { TopicId } from "./ids.js";
import { permissionViolation } from "./request.js";
import { sleep } from "./sleep.js";
import type { Subjects } from "./subjects.js";

export interface PublishEventOptions {
  /** `ce-source` of the event. */
  readonly source: string;
  /**
   * Event id (`ce-id`, also `Nats-Msg-Id`). Derive it from the input being handled so that a
   * redelivered input republishes under the same id and JetStream stores it once.
   */
  readonly id?: string | undefined;
  /** How long to keep retrying while the stream cannot be reached (reconnect, leader election). */
  readonly retryForMs?: number;
  readonly signal?: AbortSignal | undefined;
}

const DEFAULT_PUBLISH_RETRY_MS = 30_000;

/** The generated schema of a switchboard.v1 message. */
export function schemaOf(message: Message) {
  const schema = wireRegistry.getMessage(message.$typeName);
  if (!schema) throw new SwitchboardError(ErrorCode.UnknownType, `${message.$typeName} is not a switchboard.v1 message`);
  return schema;
}

export class PublishFailedError extends SwitchboardError {
  override name = "PublishFailedError";
  constructor(subject: string, cause: unknown) {
    super(ErrorCode.Connection, `could not publish to ${subject}: ${errorMessage(cause)}`, { cause });
  }
}

/** JetStream's "stream store failed" (limits reached, a write error) and "insufficient storage". */
const STORE_REFUSED_CODES: ReadonlySet<number> = new Set([10077, 10047]);

/**
 * Failures of a JetStream publish (an event, or a KV write) that pass: the server is restarting,
 * the client is reconnecting, or a stream leader is being elected (a few seconds on 2.9).
 * Anything else (permissions, bad subject, closed connection, a KV revision conflict) is final.
 */
function isTransientPublishFailure(err: unknown): boolean {
  if (err instanceof natsErrors.PermissionViolationError || err instanceof natsErrors.ClosedConnectionError) return false;
  if (err instanceof natsErrors.DrainingConnectionError || err instanceof natsErrors.InvalidSubjectError) return false;
  // Larger than the server's max_payload: it will be as large next time.
  if (err instanceof natsErrors.InvalidArgumentError) return false;
  // A store that refused the message (a full stream or disk) answers 503 as well; it does not
  // clear up within seconds, and whoever waits on the write should hear it now.
  if (err instanceof JetStreamApiError) return (err.status === 503 || err.code === 10008) && !STORE_REFUSED_CODES.has(err.code);
  return true;
}

export interface RetryTransientWriteOptions {
  /** How long to keep trying; {@link DEFAULT_PUBLISH_RETRY_MS} unless given. */
  readonly retryForMs?: number | undefined;
  /** Stops the retries: the failure that ended them is thrown as it is. */
  readonly signal?: AbortSignal | undefined;
  /** Failures the caller handles itself, never retried here even when they look transient. */
  readonly isFinal?: ((err: unknown) => boolean) | undefined;
}

/**
 * Runs a JetStream write (a publish, a KV write), trying it again with a growing pause while it
 * fails transiently: an election or a reconnect lasts seconds, and failing at once would make
 * whoever waits on the write fail or redeliver. The last failure is thrown unchanged once it is
 * final, the time is up, or `signal` has aborted.
 */
export async function retryTransientWrite<T>(write: () => Promise<T>, options: RetryTransientWriteOptions = {}): Promise<T> {
  const deadline = Date.now() + (options.retryForMs ?? DEFAULT_PUBLISH_RETRY_MS);
  for (let attempt = 0; ; attempt++) {
    try {
      return await write();
    } catch (err) {
      if (options.isFinal?.(err) || !isTransientPublishFailure(err) || Date.now() >= deadline || options.signal?.aborted) throw err;
    }
    await sleep(Math.min(1_000, 50 * 2 ** attempt));
  }
}

function publishHint(subjects: Subjects): string {
  return `the credentials in use may not publish there (a chat user may publish only into its own sessions, ${subjects.prefix}.topic.<type>.<user>.<session>, and not to the response or user_proxy topics); check --creds / SB_CREDS`;
}

/**
 * Publishes an event to a topic through JetStream and waits for the stream's acknowledgement.
 * Transient failures are retried with the same message id, so the stream stores the event once.
 */
export async function publishEvent(js: JetStreamClient, subjects: Subjects, message: Message, topic: TopicId, options: PublishEventOptions): Promise<string> {
  const subject = subjects.topic(topic);
  const event = encodeEvent(schemaOf(message), message, { source: options.source, ...(options.id ? { id: options.id } : {}) });
  if (options.signal?.aborted) throw new CancelledError(`publishing to ${subject}`);
  try {
    const write = () => js.publish(subject, event.data, { headers: event.headers, msgID: event.id, timeout: 5_000 });
    await retryTransientWrite(write, { retryForMs: options.retryForMs, signal: options.signal, isFinal: (err) => permissionViolation(err) !== undefined });
    return event.id;
  } catch (err) {
    const denied = permissionViolation(err);
    if (denied) throw new PermissionDeniedError("publish", subject, publishHint(subjects), { cause: denied });
    if (options.signal?.aborted) throw new CancelledError(`publishing to ${subject}`);
    throw new PublishFailedError(subject, err);
  }
}
