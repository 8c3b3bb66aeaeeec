import { existsSync, readFileSync } from "node:fs";
import { errorMessage } from "../core/errors.js";

export type ReloadOutcome = { readonly reloaded: true; readonly pid: number } | { readonly reloaded: false; readonly reason: string };

/** Whether the process is a nats-server, where the system can tell (Linux's /proc). */
function looksLikeNatsServer(pid: number): boolean {
  const comm = `/proc/${pid}/comm`;
  if (!existsSync("/proc/self/comm")) return true;
  try {
    return readFileSync(comm, "utf8").trim().startsWith("nats-server");
  } catch {
    return false;
  }
}

/**
 * Makes the nats-server whose pid file is `pidFile` re-read its configuration (SIGHUP, what
 * `nats-server --signal reload=<pid file>` sends). Changed users take effect at once; the
 * connections of removed users are closed by the server.
 */
export function reloadNatsServer(pidFile: string): ReloadOutcome {
  if (!existsSync(pidFile)) return { reloaded: false, reason: `no pid file at ${pidFile} (is nats-server running with nats.conf?)` };
  const pid = Number(readFileSync(pidFile, "utf8").trim());
  if (!Number.isInteger(pid) || pid <= 0) return { reloaded: false, reason: `${pidFile} holds no process id` };
  try {
    process.kill(pid, 0);
  } catch {
    return { reloaded: false, reason: `nats-server ${pid} from ${pidFile} is not running` };
  }
  // A stale pid file may name an unrelated process by now; never signal that.
  if (!looksLikeNatsServer(pid)) return { reloaded: false, reason: `process ${pid} from ${pidFile} is not a nats-server` };
  try {
    process.kill(pid, "SIGHUP");
    return { reloaded: true, pid };
  } catch (err) {
    return { reloaded: false, reason: `could not signal nats-server ${pid}: ${errorMessage(err)}` };
  }
}
