import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, closeSync, constants, mkdirSync, openSync, readFileSync, writeSync } from "node:fs";
import { delimiter, join } from "node:path";
import { sleep } from "../core/sleep.js";
import type { Notice } from "./chat-notices.js";
import { LOG_DIR } from "./paths.js";

/** A process `switchboard up` started, with its output going to a log file. */
export interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  readonly logFile: string;
  readonly exited: Promise<number | null>;
}

export interface ChildSpec {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Whether the log is pino JSON lines (the run marker is then one too). */
  readonly jsonLog?: boolean;
}

/**
 * A line that starts a run in a log file that is appended to across runs, so that a reader (and
 * `switchboard logs`) can tell this run's lines from the previous ones.
 */
export function runMarker(name: string, json: boolean, now = new Date()): string {
  const msg = `──── ${name} started by switchboard up (pid ${process.pid}) at ${now.toISOString()} ────`;
  return json ? JSON.stringify({ level: 30, time: now.toISOString(), event: "run.start", name, msg }) : msg;
}

export const RUN_MARKER_TEXT = "──── ";

export function startChild(name: string, command: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; jsonLog?: boolean } = {}): Child {
  mkdirSync(LOG_DIR, { recursive: true });
  const logFile = join(LOG_DIR, `${name}.log`);
  const fd = openSync(logFile, "a");
  writeSync(fd, `${runMarker(name, options.jsonLog ?? false)}\n`);
  const child = spawn(command, [...args], { cwd: options.cwd, env: options.env ?? process.env, stdio: ["ignore", fd, fd],
    // Its own process group: a Ctrl-C in the chat must not reach it before `up` stops it in order.
    detached: true,
  });
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => resolve(code));
    child.once("error", () => resolve(null));
  });
  return { name, process: child, logFile, exited };
}

export function isRunning(child: Child): boolean {
  return child.process.exitCode === null && child.process.signalCode === null && child.process.pid !== undefined;
}

/** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
export async function stopChild(child: Child, graceMs: number): Promise<void> {
  if (!isRunning(child)) return;
  child.process.kill("SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      child.process.kill("SIGKILL");
      resolve();
    }, graceMs);
  });
  await Promise.race([child.exited, killed]);
  clearTimeout(timer);
}

/** The last `count` lines of a log file (for saying why a process keeps stopping). */
export function lastLines(file: string, count: number): string[] {
  try {
    const lines = readFileSync(file, "utf8").trimEnd().split("\n");
    return lines.slice(-count);
  } catch {
    return [];
  }
}

/** How many times a child may be restarted within {@link RESTART_WINDOW_MS} before `up` gives up on it. */
export const MAX_RESTARTS = 3;
const RESTART_WINDOW_MS = 60_000;
const RESTART_DELAY_MS = 500;
/**
 * How long `up` lets each child finish gracefully when the demo ends. A worker killed after that
 * loses nothing: what it held is delivered again to the next worker.
 */
export const STOP_GRACE_MS = 5_000;

/**
 * The processes `switchboard up` started. It owns them: once `watch` is on, one that stops on its
 * own is reported and started again (a bounded number of times, then its log's last lines are
 * shown); `stopAll` stops them in reverse order; and `killAllNow` is the last resort on any exit of
 * `up` itself — a crash included — so that nothing it started outlives it.
 */
export class Supervisor {
  private readonly entries: { spec: ChildSpec; child: Child; restarts: number[] }[] = [];
  private stopping = false;
  private notify: ((notice: Notice) => void) | undefined;
  private onBack: ((name: string) => Promise<void>) | undefined;
  private readonly exitHook = () => this.killAllNow();

  constructor() {
    process.on("exit", this.exitHook);
  }

  get children(): readonly Child[] {
    return this.entries.map((e) => e.child);
  }

  start(spec: ChildSpec): Child {
    const child = startChild(spec.name, spec.command, spec.args, { ...(spec.cwd ? { cwd: spec.cwd } : {}), ...(spec.env ? { env: spec.env } : {}), jsonLog: spec.jsonLog ?? false });
    const entry = { spec, child, restarts: [] as number[] };
    this.entries.push(entry);
    this.follow(entry);
    return child;
  }

  /**
   * From now on a child that stops is reported through `notify` and restarted; `whenBack` (if
   * given) resolves once a restarted child is doing its job again.
   */
  watch(notify: (notice: Notice) => void, whenBack?: (name: string) => Promise<void>): void {
    this.notify = notify;
    this.onBack = whenBack;
  }

  private follow(entry: { spec: ChildSpec; child: Child; restarts: number[] }): void {
    void entry.child.exited.then(() => this.restart(entry));
  }

  private async restart(entry: { spec: ChildSpec; child: Child; restarts: number[] }): Promise<void> {
    const notify = this.notify;
    if (this.stopping || !notify) return;
    const { name } = entry.spec;
    const how = entry.child.process.signalCode ? `killed by ${entry.child.process.signalCode}` : `exit code ${entry.child.process.exitCode ?? "unknown"}`;
    const now = Date.now();
    entry.restarts = entry.restarts.filter((t) => now - t < RESTART_WINDOW_MS);
    if (entry.restarts.length >= MAX_RESTARTS) {
      const tail = lastLines(entry.child.logFile, 8).map((l) => `  ${l.slice(0, 200)}`).join("\n");
      notify({ level: "error", text: `The ${name} stopped again (${how}), ${MAX_RESTARTS + 1} times within a minute; not restarting it. Last lines of ${entry.child.logFile}:\n${tail}` });
      return;
    }
    entry.restarts.push(now);
    notify({ level: "warn", text: `The ${name} stopped (${how}); restarting it (${entry.restarts.length} of ${MAX_RESTARTS}).` });
    await sleep(RESTART_DELAY_MS);
    if (this.stopping) return;
    entry.child = startChild(name, entry.spec.command, entry.spec.args, { ...(entry.spec.cwd ? { cwd: entry.spec.cwd } : {}), ...(entry.spec.env ? { env: entry.spec.env } : {}), jsonLog: entry.spec.jsonLog ?? false });
    this.follow(entry);
    try {
      await this.onBack?.(name);
      if (!this.stopping && isRunning(entry.child)) notify({ level: "success", text: `The ${name} is back (pid ${entry.child.process.pid ?? "?"}).` });
    } catch (err) {
      if (!this.stopping) notify({ level: "error", text: `The restarted ${name} is not working yet: ${err instanceof Error ? err.message : String(err)}` });
    }
  }

  /** Stops every child, the last started first (workers deregister before the server goes). */
  async stopAll(graceMs = STOP_GRACE_MS): Promise<void> {
    this.stopping = true;
    for (const entry of [...this.entries].reverse()) await stopChild(entry.child, graceMs);
    process.off("exit", this.exitHook);
  }

  /** Synchronous: asks every child that still runs to stop (for `process.on("exit")`). */
  killAllNow(): void {
    this.stopping = true;
    for (const entry of this.entries) {
      if (!isRunning(entry.child)) continue;
      try {
        entry.child.process.kill("SIGTERM");
      } catch {
        // gone meanwhile
      }
    }
  }
}

/** Finds an executable on PATH (and in sbin directories, where Debian puts nats-server). */
export function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env["PATH"] ?? "").split(delimiter), "/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/usr/bin"];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
