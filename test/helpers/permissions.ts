import { errors, type NatsConnection } from "@nats-io/transport-node";
import { PermissionDeniedError } from "../../src/core/errors.js";

/** Whether an error (or one it wraps) is the server refusing an operation for these credentials. */
export function isPermissionError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 6; e = e.cause, depth++) {
    if (e instanceof errors.PermissionViolationError || e instanceof PermissionDeniedError) return true;
    if (/permissions violation|authorization violation/i.test(e.message)) return true;
  }
  return false;
}

/** The operation was attempted and the server refused it with a permission error. */
export async function expectDenied(operation: Promise<unknown>): Promise<unknown> {
  let outcome: unknown;
  try {
    outcome = await operation;
  } catch (err) {
    if (isPermissionError(err)) return err;
    throw new Error(`expected a permission error, got: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`, { cause: err });
  }
  throw new Error(`expected a permission error, but the operation succeeded (${String(outcome).slice(0, 200)})`);
}

/** Subscribes and waits for the server's verdict: the permission error, or none within a second. */
export async function subscribeOutcome(nc: NatsConnection, subject: string, queue?: string): Promise<Error | undefined> {
  let failure: Error | undefined;
  const sub = nc.subscribe(subject, {
    ...(queue ? { queue } : {}),
    callback: (err) => {
      if (err) failure = err;
    },
  });
  await nc.flush();
  // The server answers a refused SUB with -ERR before the PONG of the flush.
  if (!failure) await new Promise((r) => setTimeout(r, 100));
  if (!sub.isClosed()) sub.unsubscribe();
  return failure;
}

export async function expectSubscribeDenied(nc: NatsConnection, subject: string, queue?: string): Promise<void> {
  const failure = await subscribeOutcome(nc, subject, queue);
  if (!failure || !isPermissionError(failure)) throw new Error(`expected subscribing to ${subject} to be denied, got ${failure ? failure.message : "no error"}`);
}

/** The server's refusals (`-ERR 'Permissions Violation …'`) reported on a connection, as they arrive. */
export function collectRefusals(nc: NatsConnection): string[] {
  const refusals: string[] = [];
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "error" && isPermissionError(s.error)) refusals.push(s.error.message);
    }
  })();
  return refusals;
}
