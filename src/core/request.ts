import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { errors as natsErrors, type Msg, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import { decodeBody, encodeBody, ERROR_CODE_HEADER, ERROR_MESSAGE_HEADER } from "./codec.js";
import { CancelledError, NoRespondersError, PermissionDeniedError, RemoteError, TimeoutError } from "./errors.js";

export interface RequestOptions {
  /** Deadline for the answer. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
  readonly headers?: MsgHdrs | undefined;
  /** Names the request in errors, for example "registering with the host". */
  readonly what: string;
  /** What to tell a person when nobody serves the subject. */
  readonly noRespondersHint: string;
  /** What to tell a person when the credentials in use may not send this request. */
  readonly permissionHint?: string;
}

const PERMISSION_HINT = "the credentials in use may not send it (see docs/SECURITY.md for what each role may do; --creds / SB_CREDS choose others)";

/**
 * A NATS request that never hangs: the answer, or a typed error for time-out, no responders,
 * cancellation and error answers (`sb-error-code`).
 */
export async function requestRaw(nc: NatsConnection, subject: string, data: Uint8Array, options: RequestOptions): Promise<Msg> {
  if (options.signal?.aborted) throw new CancelledError(options.what);
  const pending = nc.request(subject, data, {
    timeout: options.timeoutMs,
    ...(options.headers ? { headers: options.headers } : {}),
  });
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new CancelledError(options.what));
    options.signal?.addEventListener("abort", onAbort, { once: true });
  });
  let msg: Msg;
  try {
    msg = await Promise.race([pending, aborted]);
  } catch (err) {
    if (err instanceof CancelledError) {
      // The request itself cannot be withdrawn; its late answer is ignored.
      pending.catch(() => undefined);
      throw err;
    }
    throw translateRequestError(err, subject, options);
  } finally {
    if (onAbort) options.signal?.removeEventListener("abort", onAbort);
  }
  const code = msg.headers?.get(ERROR_CODE_HEADER);
  if (code) throw new RemoteError(code, `${options.what}: ${msg.headers?.get(ERROR_MESSAGE_HEADER) || code}`);
  return msg;
}

/** The server's permission error behind a failed request or publish, however the client wrapped it. */
export function permissionViolation(err: unknown): InstanceType<typeof natsErrors.PermissionViolationError> | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if (e instanceof natsErrors.PermissionViolationError) return e;
  }
  return undefined;
}

function translateRequestError(err: unknown, subject: string, options: RequestOptions): unknown {
  const denied = permissionViolation(err);
  if (denied) return new PermissionDeniedError("request", subject, options.permissionHint ?? PERMISSION_HINT, { cause: denied });
  if (err instanceof natsErrors.RequestError && err.isNoResponders()) return new NoRespondersError(subject, options.noRespondersHint);
  if (err instanceof natsErrors.NoRespondersError) return new NoRespondersError(subject, options.noRespondersHint);
  if (err instanceof natsErrors.TimeoutError || (err instanceof Error && err.cause instanceof natsErrors.TimeoutError)) {
    return new TimeoutError(options.what, options.timeoutMs);
  }
  return err;
}

/** {@link requestRaw} with protobuf request and response bodies. */
export async function requestProto<Req extends DescMessage, Res extends DescMessage>(
  nc: NatsConnection,
  subject: string,
  requestSchema: Req,
  request: MessageShape<Req>,
  responseSchema: Res,
  options: RequestOptions,
): Promise<MessageShape<Res>> {
  const msg = await requestRaw(nc, subject, encodeBody(requestSchema, request), options);
  return decodeBody(responseSchema, msg.data);
}
