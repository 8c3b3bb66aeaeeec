import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, chmodSync, closeSync, constants, fchmodSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
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
  /**
   * A Node.js child that gets an IPC channel to `up`: the channel closes when `up` dies, however it
   * dies (SIGKILL too), and the child then stops by itself (see `untilShutdown`).
   */
  readonly followsParent?: boolean;
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

export function startChild(
  name: string,
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; jsonLog?: boolean; followsParent?: boolean; logDir?: string } = {},
): Child {
  const logDir = options.logDir ?? LOG_DIR;
  // Logs name users and sessions: owner-only, like the credentials beside them.
  mkdirSync(logDir, { recursive: true, mode: 0o700 });
  chmodSync(logDir, 0o700);
  const logFile = join(logDir, `${name}.log`);
  const fd = openSync(logFile, "a", 0o600);
  fchmodSync(fd, 0o600);
  writeSync(fd, `${runMarker(name, options.jsonLog ?? false)}\n`);
  const child = spawn(command, [...args], { cwd: options.cwd, env: options.env ?? process.env, stdio: options.followsParent ? ["ignore", fd, fd, "ipc"] : ["ignore", fd, fd],
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

function childOptions(spec: ChildSpec) {
  return { ...(spec.cwd ? { cwd: spec.cwd } : {}), ...(spec.env ? { env: spec.env } : {}), jsonLog: spec.jsonLog ?? false, followsParent: spec.followsParent ?? false };
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
  private readonly exitHook = () => {
    this.killAllNow();
    this.removeRunFile();
  };

  /**
   * `runFile`, when given, lists `up`'s pid and its children's while they run, so that the next
   * `up` can stop what a killed one left behind ({@link stopLeftovers}).
   */
  constructor(
    private readonly runFile?: string,
    /** Where the children's logs go. */
    private readonly logDir: string = LOG_DIR,
  ) {
    process.on("exit", this.exitHook);
  }

  get children(): readonly Child[] {
    return this.entries.map((e) => e.child);
  }

  start(spec: ChildSpec): Child {
    const child = startChild(spec.name, spec.command, spec.args, { ...childOptions(spec), logDir: this.logDir });
    const entry = { spec, child, restarts: [] as number[] };
    this.entries.push(entry);
    this.follow(entry);
    this.writeRunFile();
    return child;
  }

  private writeRunFile(): void {
    if (!this.runFile) return;
    const run: RunFile = { pid: process.pid, children: this.entries.flatMap((e) => (e.child.process.pid ? [{ name: e.spec.name, pid: e.child.process.pid }] : [])) };
    writeFileSync(this.runFile, `${JSON.stringify(run)}\n`);
  }

  private removeRunFile(): void {
    if (this.runFile) rmSync(this.runFile, { force: true });
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
    entry.child = startChild(name, entry.spec.command, entry.spec.args, { ...childOptions(entry.spec), logDir: this.logDir });
    this.writeRunFile();
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
    this.removeRunFile();
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

interface RunFile {
  readonly pid: number;
  readonly children: readonly { readonly name: string; readonly pid: number }[];
}

/** Whether a process with this id exists and may be signalled by us (signal 0 only checks). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // gone already
  }
}

/** The command line of a process, where the system shows it (Linux's /proc); undefined elsewhere. */
function commandLine(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return undefined;
  }
}

/**
 * The run files of every `up` on `port` in `dir`: one per `up` process (`up-<port>-<pid>.json`,
 * and `up-<port>.json` as earlier versions named it), so that a second `up` beside a running one
 * does not overwrite the first's and leave what it started unaccounted for.
 */
export function runFilesFor(dir: string, port: number): string[] {
  const own = new RegExp(`^up-${port}(?:-\\d+)?\\.json$`);
  try {
    return readdirSync(dir)
      .filter((f) => own.test(f))
      .map((f) => join(dir, f));
  } catch {
    return [];
  }
}

/**
 * Stops the processes an `up` that was killed (SIGKILL leaves it no time to stop them) left behind,
 * as its run file lists them; its Node.js children stop by themselves, its nats-server does not.
 * Only processes whose command line shows they are what the file says are signalled, never one
 * that reused a pid. Returns what was stopped, as "name (pid N)".
 */
export async function stopLeftovers(runFile: string, graceMs = STOP_GRACE_MS): Promise<string[]> {
  let run: RunFile;
  try {
    run = JSON.parse(readFileSync(runFile, "utf8")) as RunFile;
  } catch {
    return [];
  }
  // The `up` that wrote it still runs: what it started is its own.
  if (alive(run.pid)) return [];
  const stopped: string[] = [];
  for (const { name, pid } of [...run.children].reverse()) {
    const command = alive(pid) ? commandLine(pid) : undefined;
    const expected = name === "nats-server" ? "nats-server" : "switchboard";
    if (!command?.includes(expected)) continue;
    // It may exit by itself between the check and the signal.
    signal(pid, "SIGTERM");
    const deadline = Date.now() + graceMs;
    while (alive(pid) && Date.now() < deadline) await sleep(100);
    if (alive(pid)) signal(pid, "SIGKILL");
    stopped.push(`${name} (pid ${pid})`);
  }
  rmSync(runFile, { force: true });
  return stopped;
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
