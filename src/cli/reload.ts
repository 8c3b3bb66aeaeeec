import { existsSync, readFileSync } from "node:fs";
import { errorMessage } from "../core/errors.js";
import { sleep } from "../core/sleep.js";
import { alive } from "./children.js";

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
export async function reloadNatsServer(pidFile: string): Promise<ReloadOutcome> {
  if (!existsSync(pidFile)) {
    return { reloaded: false, reason: `no pid file at ${pidFile} (is nats-server running with nats.conf? For one \`switchboard up --port N\` started, pass --port N)` };
  }
  const pid = Number(readFileSync(pidFile, "utf8").trim());
  if (!Number.isInteger(pid) || pid <= 0) return { reloaded: false, reason: `${pidFile} holds no process id` };
  if (!alive(pid)) return { reloaded: false, reason: `nats-server ${pid} from ${pidFile} is not running` };
  // A stale pid file may name an unrelated process by now; never signal that.
  if (!looksLikeNatsServer(pid)) return { reloaded: false, reason: `process ${pid} from ${pidFile} is not a nats-server` };
  try {
    process.kill(pid, "SIGHUP");
  } catch (err) {
    return { reloaded: false, reason: `could not signal nats-server ${pid}: ${errorMessage(err)}` };
  }
  // nats-server 2.9 sets up the service imports of an account that a reload adds (a new chat
  // user's) only at the next reload; until then the user's publishes find no responders. A
  // second signal, once the server has taken the first, completes it.
  await sleep(SECOND_RELOAD_AFTER_MS);
  try {
    if (looksLikeNatsServer(pid)) process.kill(pid, "SIGHUP");
  } catch {
    // Gone since: a restart reads the whole configuration anyway.
  }
  return { reloaded: true, pid };
}

/** Long enough for the server to have taken the first signal (a second one meanwhile is lost). */
const SECOND_RELOAD_AFTER_MS = 300;
