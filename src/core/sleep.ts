import { setMaxListeners } from "node:events";
import { CancelledError } from "./errors.js";

/** Waits `ms`; rejects with {@link CancelledError} naming `what` as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal, what = "waiting"): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new CancelledError(what));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new CancelledError(what));
    };
    const timer = setTimeout(() => {
      // Removed as soon as the wait is over: a signal shared by many waits holds only live ones.
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * An AbortController whose signal may have any number of listeners without Node's
 * `MaxListenersExceededWarning`: for a signal handed to every message in flight, where one
 * listener per concurrent message is the design rather than a leak.
 */
export function unboundedAbortController(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}
