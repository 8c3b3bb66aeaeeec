import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { BIN } from "./cli.js";

/** Cursor moves, colours and other CSI sequences, dropped so that tests read the words. */
const CSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

export const Keys = {
  Enter: "\r",
  Down: "\x1b[B",
  CtrlC: "\x03",
  Esc: "\x1b",
} as const;

/**
 * A `switchboard` command in a real pseudo-terminal (util-linux `script`), so that it runs its
 * interactive front-end exactly as it does for a person: raw keystrokes in, the rendered screen out.
 */
export class TerminalCli {
  private raw = "";
  readonly exited: Promise<number | null>;

  private constructor(
    readonly args: readonly string[],
    private readonly proc: ChildProcessWithoutNullStreams,
  ) {
    const collect = (d: Buffer) => {
      this.raw += d.toString();
    };
    proc.stdout.on("data", collect);
    proc.stderr.on("data", collect);
    this.exited = new Promise((resolve) => {
      proc.once("exit", (code) => resolve(code));
      proc.once("error", (err) => {
        this.raw += `could not start util-linux \`script\` for a pseudo-terminal (Debian: apt-get install bsdutils): ${err.message}`;
        resolve(null);
      });
    });
  }

  static start(args: readonly string[], env: Record<string, string>): TerminalCli {
    const quoted = [process.execPath, BIN, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
    const proc = spawn("script", ["-qfec", `stty cols 120 rows 40; exec ${quoted}`, "/dev/null"], {
      env: { ...process.env, TERM: "xterm-256color", LOG_LEVEL: "warn", ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    return new TerminalCli(args, proc);
  }

  /** The pid of `script`, whose child runs the command. */
  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** Everything written to the terminal so far, escape sequences included. */
  get output(): string {
    return this.raw;
  }

  /** Everything shown so far, without escape sequences. */
  get screen(): string {
    return this.raw.replace(CSI, "");
  }

  /** Waits until `text` has been shown `times` times in all. */
  async waitFor(text: string, times = 1, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.screen.split(text).length - 1 < times) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${JSON.stringify(text)} (x${times}) from switchboard ${this.args.join(" ")}; the screen so far:\n${this.screen.slice(-3000)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  type(keys: string): void {
    this.proc.stdin.write(keys);
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill("SIGKILL");
    await this.exited;
  }
}
