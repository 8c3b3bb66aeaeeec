import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

export const BIN = fileURLToPath(new URL("../../bin/switchboard.js", import.meta.url));

/** A `switchboard` command running as its own process. */
export class CliProcess {
  readonly lines: string[] = [];
  stderr = "";
  readonly exited: Promise<number | null>;
  private waiters: (() => void)[] = [];

  constructor(
    readonly args: readonly string[],
    readonly proc: ChildProcessWithoutNullStreams,
  ) {
    createInterface({ input: proc.stdout }).on("line", (line) => {
      this.lines.push(line);
      for (const w of this.waiters.splice(0)) w();
    });
    proc.stderr.on("data", (d: Buffer) => {
      this.stderr += d.toString();
      for (const w of this.waiters.splice(0)) w();
    });
    this.exited = new Promise((resolve) => proc.once("exit", (code) => resolve(code)));
  }

  /** stdout lines parsed as JSON (the chat's --json format). */
  get events(): Record<string, unknown>[] {
    return this.lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /** Waits until `check` is true of the output so far. */
  async waitFor(check: (p: CliProcess) => boolean, timeoutMs = 15_000, what = "output"): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check(this)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} from switchboard ${this.args.join(" ")}\nstdout:\n${this.lines.join("\n")}\nstderr:\n${this.stderr.slice(-3000)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 200);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  write(line: string): void {
    this.proc.stdin.write(`${line}\n`);
  }

  endInput(): void {
    this.proc.stdin.end();
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    return this.exited;
  }
}

export function runCli(args: readonly string[], env: Record<string, string> = {}): CliProcess {
  const proc = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, LOG_LEVEL: "info", ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  return new CliProcess(args, proc);
}

/** Runs a command to completion and returns its exit code and output. */
export async function runCliToEnd(args: readonly string[], env: Record<string, string> = {}, timeoutMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = runCli(args, env);
  p.endInput();
  const timer = setTimeout(() => p.proc.kill("SIGKILL"), timeoutMs);
  const code = await p.exited;
  clearTimeout(timer);
  // Let the line reader catch up with the last chunk.
  await new Promise((r) => setImmediate(r));
  return { code, stdout: p.lines.join("\n"), stderr: p.stderr };
}
