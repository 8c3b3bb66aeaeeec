import { styleText } from "node:util";
import { S_BAR } from "@clack/prompts";
import type { ChatEvent } from "./chat-session.js";
import { remainderAfterStream } from "./reply-deltas.js";
import { sanitizeForTerminal } from "./terminal.js";

/** The part of a Clack spinner the printer uses. */
interface Spinner {
  stop(message: string): void;
}

/**
 * Prints a reply in the interactive chat as its deltas arrive, in the same gutter as Clack's log
 * messages, and then only what the final reply adds: the answer is never shown twice. One printer
 * serves one turn.
 */
export class StreamedReplyPrinter {
  /** What has been written for the current reply, as the agent sent it (before sanitizing). */
  private streamed = "";
  private atLineStart = true;
  private endedShown = false;

  constructor(private readonly output: NodeJS.WritableStream = process.stdout) {}

  /** True while a reply is being streamed. */
  get active(): boolean {
    return this.streamed !== "";
  }

  /**
   * Takes the events this printer shows: deltas, and the reply or other final event that ends a
   * streamed answer. False for events it leaves to the caller's rendering.
   */
  handle(event: ChatEvent, spin: Spinner): boolean {
    if (event.event === "delta") {
      if (!this.active) {
        spin.stop(sanitizeForTerminal(event.agent));
        this.output.write(`${gutter()}\n`);
      }
      this.write(event.text);
      this.streamed += event.text;
      return true;
    }
    if (!this.active) return false;
    if (event.event === "ended") {
      // The agent ended the conversation with this answer: finish it here; the caller says it ended.
      this.finish(event.content);
      this.endedShown = true;
      return false;
    }
    if (event.event !== "reply") {
      // The answer broke off (an error, a time-out): end its line so the next message starts clean.
      this.endLine();
      this.streamed = "";
      return false;
    }
    this.finish(event.content);
    return true;
  }

  /**
   * Whether the answer an `ended` event carries was already shown as it streamed (true once,
   * for that event): the caller then says only that the conversation ended.
   */
  takeEndedShown(): boolean {
    const shown = this.endedShown;
    this.endedShown = false;
    return shown;
  }

  /** Prints what the whole answer adds to what streamed (or all of it, if it differs). */
  private finish(content: string): void {
    const { text, restarted } = remainderAfterStream(this.streamed, content);
    if (restarted) {
      this.endLine();
      this.output.write(`${gutter()}  ${styleText("dim", "(the answer as delivered:)")}\n`);
    }
    this.write(text);
    this.endLine();
    this.streamed = "";
  }

  private write(text: string): void {
    let out = "";
    sanitizeForTerminal(text)
      .split("\n")
      .forEach((part, i) => {
        if (i > 0) {
          out += "\n";
          this.atLineStart = true;
        }
        if (part === "") return;
        // The gutter goes in front of each line's first text, not after a newline: a reply that
        // ends its last line leaves no dangling gutter.
        if (this.atLineStart) out += `${gutter()}  `;
        out += part;
        this.atLineStart = false;
      });
    this.output.write(out);
  }

  private endLine(): void {
    if (!this.atLineStart) this.output.write("\n");
    this.atLineStart = true;
  }
}

function gutter(): string {
  return styleText("gray", S_BAR);
}
