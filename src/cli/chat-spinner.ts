import { emitKeypressEvents } from "node:readline";
import { styleText } from "node:util";

const FRAMES = ["◒", "◐", "◓", "◑"];
const FRAME_MS = 120;
/** After this long without an answer the spinner says the system is still working on it. */
export const STILL_WORKING_AFTER_MS = 5_000;

interface Key {
  readonly name?: string;
  readonly ctrl?: boolean;
}

/**
 * The wait indicator of the chat, in Clack's style, with the elapsed time. Unlike Clack's own
 * spinner it never exits the process on a key: Ctrl-C calls `onInterrupt`, so whoever started the
 * chat (`switchboard up`) can still stop what it started; other keys are swallowed. Lines can be
 * printed above it while it spins.
 */
export class WaitIndicator {
  private text = "";
  private started = 0;
  private frame = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly onKey = (_: string | undefined, key: Key | undefined) => {
    if (key?.ctrl === true && key.name === "c") this.onInterrupt?.();
  };
  private onInterrupt: (() => void) | undefined;
  private wasRaw = false;

  constructor(
    private readonly output: NodeJS.WriteStream = process.stdout,
    private readonly input: NodeJS.ReadStream = process.stdin,
  ) {}

  get active(): boolean {
    return this.timer !== undefined;
  }

  start(text: string, onInterrupt?: () => void): void {
    if (this.active) this.stop(this.text);
    this.text = text;
    this.started = Date.now();
    this.onInterrupt = onInterrupt;
    if (this.input.isTTY) {
      emitKeypressEvents(this.input);
      this.wasRaw = this.input.isRaw;
      this.input.setRawMode(true);
      this.input.on("keypress", this.onKey);
      this.input.resume();
    }
    this.output.write(`${styleText("gray", "│")}\n\x1b[?25l`);
    this.timer = setInterval(() => this.draw(), FRAME_MS);
    this.draw();
  }

  message(text: string): void {
    this.text = text;
    if (this.active) this.draw();
  }

  /** Prints above the spinner: `write` outputs whole lines. */
  interject(write: () => void): void {
    if (!this.active) {
      write();
      return;
    }
    // Over the spinner and the border line above it: what is written starts with its own.
    this.output.write("\r\x1b[2K\x1b[1A\x1b[2K");
    write();
    this.output.write(`${styleText("gray", "│")}\n`);
    this.draw();
  }

  stop(text: string, failed = false): void {
    if (!this.active) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.onInterrupt = undefined;
    if (this.input.isTTY) {
      this.input.off("keypress", this.onKey);
      // Whoever had the keyboard before (the chat, keeping what is typed for the next prompt) keeps it.
      if (!this.wasRaw) {
        this.input.setRawMode(false);
        this.input.pause();
      }
    }
    const symbol = failed ? styleText("red", "■") : styleText("green", "◇");
    this.output.write(`\r\x1b[2K${symbol}  ${this.fit(text)}\n\x1b[?25h`);
  }

  private draw(): void {
    const elapsedMs = Date.now() - this.started;
    const still = elapsedMs >= STILL_WORKING_AFTER_MS ? " · still working" : "";
    const frame = styleText("magenta", FRAMES[this.frame++ % FRAMES.length] ?? "");
    this.output.write(`\r\x1b[2K${frame}  ${this.fit(`${this.text} [${formatElapsed(elapsedMs)}]${still}`)}`);
  }

  /** One line: a wrapped spinner line could not be redrawn in place. */
  private fit(text: string): string {
    const width = Math.max(20, (this.output.columns || 80) - 4);
    return text.length > width ? `${text.slice(0, width - 1)}…` : text;
  }
}

/** "7s", "1m 05s". */
export function formatElapsed(ms: number): string {
  const s = Math.floor(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
}
