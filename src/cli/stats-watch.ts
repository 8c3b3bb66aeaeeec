import type { NatsConnection } from "@nats-io/transport-node";
import { CancelledError } from "../core/errors.js";
import { sleep } from "../core/sleep.js";
import { renderWatch } from "./stats-view.js";
import { readSystemStats, type SystemStats } from "./system-stats.js";

const HIDE_CURSOR = "\x1b[?25l";
const SHOW_CURSOR = "\x1b[?25h";
const CLEAR = "\x1b[H\x1b[2J";

/**
 * `switchboard admin watch`: reads every worker's and host's micro STATS each interval and
 * repaints one screen, until `signal` aborts (Ctrl-C). Rates are the change since the last reading.
 */
export async function watchStats(nc: NatsConnection, intervalMs: number, out: NodeJS.WritableStream, signal: AbortSignal): Promise<void> {
  let before: SystemStats | undefined;
  out.write(HIDE_CURSOR);
  try {
    while (!signal.aborted) {
      const now = await readSystemStats(nc);
      if (signal.aborted) break;
      out.write(`${CLEAR}${renderWatch(now, before, intervalMs).join("\n")}\n`);
      before = now;
      await sleep(intervalMs, signal).catch((err: unknown) => {
        if (!(err instanceof CancelledError)) throw err;
      });
    }
  } finally {
    out.write(`${SHOW_CURSOR}\n`);
  }
}
