import { spawn, type ChildProcess } from "node:child_process";
import { openSync, closeSync, readFileSync } from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat times; 100 on every Linux we run on. */
const CLOCK_TICKS = 100;

export interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves with the exit code (or signal) once the process has exited. */
  readonly exited: Promise<string>;
}

export interface SpawnSpec {
  readonly name: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly logFile: string;
  /** Resolve the spawn only once the child prints this line on stdout. */
  readonly readyLine?: string;
  readonly readyTimeoutMs?: number;
}

/**
 * Every process the benchmark starts, so that all of them are stopped on the way out, whatever
 * the way out is (normal end, error, Ctrl-C).
 */
export class ProcessGroup {
  private readonly children = new Map<number, Child>();

  async spawn(spec: SpawnSpec): Promise<Child> {
    // Logs go to a file: a pipe nobody reads would block a process that logs synchronously.
    const fd = openSync(spec.logFile, "a");
    const proc = spawn(process.execPath, [...spec.args], {
      env: { ...process.env, ...spec.env },
      stdio: ["ignore", spec.readyLine ? "pipe" : fd, fd],
    });
    closeSync(fd);
    if (proc.pid === undefined) throw new Error(`could not start ${spec.name}`);
    const exited = new Promise<string>((resolve) => proc.once("exit", (code, signal) => resolve(signal ?? String(code))));
    const child: Child = { name: spec.name, proc, pid: proc.pid, logFile: spec.logFile, exited };
    this.children.set(child.pid, child);
    void exited.then(() => this.children.delete(child.pid));
    if (spec.readyLine) await waitForLine(child, spec.readyLine, spec.readyTimeoutMs ?? 20_000);
    return child;
  }

  list(): Child[] {
    return [...this.children.values()];
  }

  /** SIGTERM (graceful), then SIGKILL after `graceMs`. */
  async stop(child: Child, graceMs = 10_000): Promise<string> {
    if (child.proc.exitCode === null && child.proc.signalCode === null) {
      child.proc.kill("SIGTERM");
      const timer = setTimeout(() => child.proc.kill("SIGKILL"), graceMs);
      const how = await child.exited;
      clearTimeout(timer);
      return how;
    }
    return child.exited;
  }

  async stopAll(graceMs = 5_000): Promise<void> {
    await Promise.all(this.list().map((c) => this.stop(c, graceMs)));
  }

  /** Last resort from a synchronous `exit` handler: nothing may outlive the benchmark. */
  killAllNow(): void {
    for (const c of this.children.values()) {
      try {
        c.proc.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
  }
}

function waitForLine(child: Child, line: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let buffer = "";
    const timer = setTimeout(() => reject(new Error(`${child.name} did not report "${line}" within ${timeoutMs} ms; see ${child.logFile}`)), timeoutMs);
    child.proc.stdout?.on("data", (d: Buffer) => {
      buffer += d.toString();
      if (buffer.split("\n").some((l) => l.trim() === line)) {
        clearTimeout(timer);
        resolve();
      }
    });
    void child.exited.then((how) => {
      clearTimeout(timer);
      reject(new Error(`${child.name} exited (${how}) before it was ready; see ${child.logFile}`));
    });
  });
}

/** User + system CPU time of a process so far, in milliseconds (0 if it is gone). */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may hold spaces; fields are counted after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return ((utime + stime) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** Resident set size of a process, in bytes (0 if it is gone). */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}
