import { disconnectedForMs, type NatsConnection } from "../core/connection.js";
import type { Logger } from "../core/logging.js";
import { sleep } from "../core/sleep.js";

/** Signals that stop a long-running command gracefully; SIGHUP is its terminal going away. */
const SHUTDOWN_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

/**
 * Resolves on the first SIGINT, SIGTERM or SIGHUP (or when `signal` aborts, or `switchboard up`,
 * which started the process, is gone), so a long-running command can shut down gracefully; a
 * second signal exits at once.
 */
export function untilShutdown(signal?: AbortSignal): Promise<string> {
  return new Promise((resolve) => {
    const onSignal = (name: string) => {
      for (const s of SHUTDOWN_SIGNALS) process.removeAllListeners(s);
      const force = () => process.exit(130);
      for (const s of SHUTDOWN_SIGNALS) process.once(s, force);
      resolve(name);
    };
    for (const s of SHUTDOWN_SIGNALS) process.once(s, () => onSignal(s));
    signal?.addEventListener("abort", () => onSignal("abort"), { once: true });
    // Started by `switchboard up` with an IPC channel: the channel closes when `up` dies, even by
    // SIGKILL, which leaves it no time to stop its children.
    if (process.channel) {
      process.channel.unref();
      process.once("disconnect", () => onSignal("parent exited"));
    }
  });
}

/** How long a graceful stop goes on without a server before it gives up on handing anything back. */
const STOP_WHILE_DISCONNECTED_MS = 1_000;
/** How long draining the connection may take once everything else has stopped. */
const DRAIN_TIMEOUT_MS = 3_000;

/**
 * Runs a long-running command's graceful stop (`close`), then drains the connection. While the
 * server is unreachable nothing can be acknowledged or handed back, so the stop does not wait for a
 * reconnect: after a second without a server it closes the connection and returns, and the
 * server redelivers whatever was in flight after the ack wait.
 */
export async function stopGracefully(nc: NatsConnection, close: () => Promise<void>, logger: Logger): Promise<void> {
  let done = false;
  const stopping = (async () => {
    try {
      await close();
    } catch (err) {
      logger.warn({ event: "shutdown.incomplete", err: String(err) }, "graceful stop did not complete");
    }
    await drainConnection(nc);
  })().finally(() => (done = true));
  while (!done) {
    if (disconnectedForMs(nc) >= STOP_WHILE_DISCONNECTED_MS) {
      // Expected, and documented as the way a stop without a server goes: the connection has
      // already warned that the server is away.
      logger.info({ event: "shutdown.disconnected" }, "no NATS server to finish the stop with; closing now (in-flight messages are redelivered after the ack wait)");
      await nc.close().catch(() => undefined);
      return;
    }
    await sleep(100);
  }
  await stopping;
}

/** Drains the connection, closing it outright if the server does not confirm in time. */
export async function drainConnection(nc: NatsConnection): Promise<void> {
  if (nc.isClosed()) return;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, DRAIN_TIMEOUT_MS)));
  await Promise.race([nc.drain().catch(() => undefined), timedOut]);
  clearTimeout(timer);
  if (!nc.isClosed()) await nc.close().catch(() => undefined);
}
