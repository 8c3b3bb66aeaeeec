import { styleText } from "node:util";
import { TextPrompt } from "@clack/core";
import { sanitizeForTerminal } from "./terminal.js";

/**
 * How a text prompt ended. Esc and Ctrl-C both cancel a Clack prompt; the chat treats them
 * differently (Esc clears the input, Ctrl-C may leave), so the key is told apart here.
 * `paused` means the caller's signal interrupted the prompt (something to show), with what had
 * been typed so far, to ask again with it.
 */
export type PromptOutcome =
  | { readonly kind: "submit"; readonly value: string }
  | { readonly kind: "escape" }
  | { readonly kind: "interrupt"; readonly value: string }
  | { readonly kind: "paused"; readonly value: string };

export interface AskOptions {
  readonly message: string;
  readonly placeholder?: string;
  readonly initialValue?: string;
  /** Interrupts the prompt; the outcome is then `paused`. */
  readonly signal?: AbortSignal;
  readonly input?: NodeJS.ReadStream;
  readonly output?: NodeJS.WriteStream;
}

/** Longest input echoed whole once sent; longer input is shown by its start and its length. */
const ECHO_CHARS = 60;

/** A sent message as the chat repeats it: short, on one line. */
export function shortEcho(text: string): string {
  const flat = sanitizeForTerminal(text).replace(/\s+/g, " ").trim();
  return flat.length <= ECHO_CHARS ? flat : `${flat.slice(0, ECHO_CHARS - 1)}… (${text.length.toLocaleString("en-US")} characters)`;
}

/**
 * Clack's text prompt, drawn on one line whatever the length of the input (a prompt that wraps
 * cannot be redrawn in place, and showed long input twice) and echoed short once sent.
 */
export async function ask(options: AskOptions): Promise<PromptOutcome> {
  const output = options.output ?? process.stdout;
  let lastKey: { name?: string | undefined } | undefined;
  let paused = false;
  let lastFrame = "";
  const bar = (colour: "cyan" | "gray" | "yellow") => styleText(colour, "│");
  const prompt = new TextPrompt({
    ...(options.initialValue ? { initialValue: options.initialValue } : {}),
    ...(options.placeholder !== undefined ? { placeholder: options.placeholder } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    input: options.input ?? process.stdin,
    output,
    validate: (v) => (v === undefined || v.trim() === "" ? "Type a message (Esc clears it, Ctrl-C twice leaves)." : undefined),
    render(this: TextPrompt) {
      lastFrame = frame.call(this);
      return lastFrame;
    },
  });
  function frame(this: TextPrompt): string {
    const header = `${bar("gray")}\n${symbolFor(this.state, paused)}  ${options.message}\n`;
    const width = Math.max(20, (output.columns || 80) - 6);
    switch (this.state) {
      case "submit":
        return `${header}${bar("gray")}  ${styleText("dim", shortEcho(this.value ?? ""))}`;
      case "cancel":
        return paused ? `${header}${bar("gray")}` : `${header}${bar("gray")}  ${styleText(["strikethrough", "dim"], shortEcho(this.userInput))}`;
      case "error":
        return `${header}${bar("yellow")}  ${oneLine(this.userInputWithCursor, width)}\n${styleText("yellow", "└")}  ${styleText("yellow", this.error)}\n`;
      default: {
        const shown = this.userInput
          ? oneLine(this.userInputWithCursor, width)
          : options.placeholder
            ? styleText("inverse", options.placeholder.slice(0, 1)) + styleText("dim", options.placeholder.slice(1))
            : styleText(["inverse", "hidden"], "_");
        return `${header}${bar("cyan")}  ${shown}\n${styleText("cyan", "└")}\n`;
      }
    }
  }
  prompt.on("key", (_char, key) => {
    lastKey = key;
  });
  options.signal?.addEventListener("abort", () => (paused = true), { once: true });
  const result = await prompt.prompt();
  if (typeof result === "string") return { kind: "submit", value: result };
  const typed = prompt.userInput ?? "";
  if (paused || options.signal?.aborted) {
    // Clack closes an aborted prompt without drawing it again: take its last frame off the screen
    // (and the line break it adds on closing), so the prompt can come back below what is shown.
    output.write(`\x1b[${lastFrame.split("\n").length}A\r\x1b[J`);
    return { kind: "paused", value: typed };
  }
  if (lastKey?.name === "escape") return { kind: "escape" };
  return { kind: "interrupt", value: typed };
}

function symbolFor(state: string, paused: boolean): string {
  if (state === "submit") return styleText("green", "◇");
  if (state === "cancel") return paused ? styleText("gray", "◇") : styleText("red", "■");
  if (state === "error") return styleText("yellow", "▲");
  return styleText("cyan", "◆");
}

/** The end of a long input (where the cursor usually is), so it fits on one line. */
function oneLine(text: string, width: number): string {
  const flat = text.replace(/\n/g, " ");
  return flat.length <= width ? flat : `…${flat.slice(flat.length - width + 1)}`;
}
