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
  /** The attempt being streamed (see the `delta` event): a later one starts the answer again. */
  private attempt = 1;
  private atLineStart = true;
  private endedShown = false;
  /** Text written on the current line after the gutter, in characters. */
  private column = 0;
  /** The word being streamed, not yet written. */
  private word = "";

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
      } else if (event.attempt > this.attempt) {
        // What streamed so far will not be the answer: say so, and show the new attempt below.
        this.endLine();
        this.output.write(`${gutter()}  ${styleText("dim", "(the worker answering stopped; another one is answering from the start:)")}\n`);
        this.streamed = "";
      }
      this.attempt = Math.max(this.attempt, event.attempt);
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
   * Prints whole lines (a notice) in the middle of a streaming answer: the answer's line is ended
   * first, and its text goes on below, in the gutter.
   */
  interject(write: () => void): void {
    this.endLine();
    write();
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

  /**
   * Writes streamed text word by word, wrapped to the terminal inside the gutter: a word is
   * written once it is complete (the text after it has come), so that a line is never broken
   * inside one.
   */
  private write(text: string): void {
    let out = "";
    for (const ch of sanitizeForTerminal(text)) {
      if (ch === "\n") {
        out += this.takeWord();
        out += "\n";
        this.atLineStart = true;
        this.column = 0;
      } else if (ch === " " || ch === "\t") {
        out += this.takeWord();
        // A space at the end of a line is where it wraps; it is not carried to the next one.
        if (!this.atLineStart && this.column < this.width()) {
          out += " ";
          this.column++;
        }
      } else {
        this.word += ch;
        if (this.word.length >= this.width()) out += this.takeWord();
      }
    }
    this.output.write(out);
  }

  /** The word held back, after a line break if it does not fit on the current line. */
  private takeWord(): string {
    if (this.word === "") return "";
    let out = "";
    if (!this.atLineStart && this.column + this.word.length > this.width()) {
      out += "\n";
      this.atLineStart = true;
      this.column = 0;
    }
    // The gutter goes in front of each line's first text, not after a newline: a reply that
    // ends its last line leaves no dangling gutter.
    if (this.atLineStart) out += `${gutter()}  `;
    out += this.word;
    this.column += this.word.length;
    this.word = "";
    this.atLineStart = false;
    return out;
  }

  /** Columns for text after the gutter. */
  private width(): number {
    const columns = (this.output as { columns?: number }).columns;
    return Math.max(20, (columns ?? 80) - 4);
  }

  private endLine(): void {
    const rest = this.takeWord();
    if (rest !== "") this.output.write(rest);
    if (!this.atLineStart) this.output.write("\n");
    this.atLineStart = true;
    this.column = 0;
  }
}

function gutter(): string {
  return styleText("gray", S_BAR);
}
