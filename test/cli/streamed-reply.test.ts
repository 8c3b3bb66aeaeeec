import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { StreamedReplyPrinter } from "../../src/cli/streamed-reply.js";

/** The printed text without colours, and the spinner's last message. */
function harness() {
  const out = new PassThrough();
  let printed = "";
  out.on("data", (d: Buffer) => (printed += d.toString()));
  const spin = { stopped: [] as string[], stop: (m?: string) => void spin.stopped.push(m ?? "") };
  const printer = new StreamedReplyPrinter(out);
  return { printer, spin, text: () => printed.replace(/\x1b\[[0-9;]*m/g, "") };
}

const session = "s-1";
const delta = (text: string, attempt = 1) => ({ event: "delta" as const, session, agent: "hr", text, attempt });
const reply = (content: string) => ({ event: "reply" as const, session, agent: "hr", name: "hr_agent", content });

describe("printing a streamed reply in the terminal", () => {
  it("prints deltas as they come, then only what the reply adds, in the chat's gutter", () => {
    const { printer, spin, text } = harness();
    expect(printer.handle(delta("Hello, "), spin)).toBe(true);
    expect(spin.stopped).toEqual(["hr"]);
    expect(printer.handle(delta("wor"), spin)).toBe(true);
    // A word is written once it is complete.
    expect(text()).toBe("│\n│  Hello, ");
    expect(printer.handle(reply("Hello, world\nSecond line"), spin)).toBe(true);
    expect(text()).toBe("│\n│  Hello, world\n│  Second line\n");
    expect(printer.active).toBe(false);
  });

  it("finishes an answer the agent ended the conversation with, and says the answer was shown, once", () => {
    const { printer, spin, text } = harness();
    printer.handle(delta("Ticket INC-1 "), spin);
    const ended = { event: "ended" as const, session, agent: "hr", reason: "agent_finished", content: "Ticket INC-1 opened. Bye!" };
    expect(printer.handle(ended, spin)).toBe(false);
    expect(text()).toBe("│\n│  Ticket INC-1 opened. Bye!\n");
    expect(printer.takeEndedShown()).toBe(true);
    expect(printer.takeEndedShown()).toBe(false);
    // An END the user typed: nothing streamed, the chat shows the agent's goodbye itself.
    expect(printer.handle({ ...ended, content: "Session ended." }, spin)).toBe(false);
    expect(printer.takeEndedShown()).toBe(false);
  });

  it("ends the answer's line before a notice, and goes on below it in the gutter", () => {
    const { printer, spin, text } = harness();
    printer.handle(delta("Working on it "), spin);
    printer.interject(() => undefined);
    const before = text();
    expect(before).toBe("│\n│  Working on it \n");
    printer.handle(delta("still "), spin);
    expect(text()).toBe(`${before}│  still `);
  });

  it("leaves replies that did not stream, and other events, to the chat's rendering", () => {
    const { printer, spin } = harness();
    expect(printer.handle(reply("whole"), spin)).toBe(false);
    expect(printer.handle({ event: "routed", session, agent: "hr", intent: "x", score: 1 }, spin)).toBe(false);
  });

  it("shows the delivered reply whole when the stream diverged from it", () => {
    const { printer, spin, text } = harness();
    printer.handle(delta("Helo"), spin);
    printer.handle(reply("Hello"), spin);
    expect(text()).toBe("│\n│  Helo\n│  (the answer as delivered:)\n│  Hello\n");
  });

  it("says so when another worker starts the answer again, and shows the new attempt from its start", () => {
    const { printer, spin, text } = harness();
    printer.handle(delta("The first worker "), spin);
    printer.handle(delta("The answer ", 2), spin);
    printer.handle(delta("again", 2), spin);
    printer.handle(reply("The answer again."), spin);
    expect(text()).toBe("│\n│  The first worker \n│  (the worker answering stopped; another one is answering from the start:)\n│  The answer again.\n");
  });

  it("ends the broken-off line before an error is shown", () => {
    const { printer, spin, text } = harness();
    printer.handle(delta("Half an ans"), spin);
    expect(printer.handle({ event: "error", session, code: "model_error", message: "boom" }, spin)).toBe(false);
    expect(text()).toBe("│\n│  Half an ans\n");
  });

  it("strips escape sequences from streamed text", () => {
    const { printer, spin, text } = harness();
    printer.handle(delta("ok\u001b[2J\u001b]0;pwned\u0007 done"), spin);
    expect(text()).toBe("│\n│  ok ");
  });

  it("wraps streamed text at word boundaries inside the gutter", () => {
    const { printer, spin, text } = harness();
    const words = Array.from({ length: 30 }, (_, i) => `word${i}`);
    for (const w of words) printer.handle(delta(`${w} `), spin);
    printer.handle(reply(words.map((w) => `${w} `).join("")), spin);
    const lines = text().split("\n").filter((l) => l !== "");
    // 76 columns after the gutter: every line starts with it, none is longer, no word is split.
    expect(lines.every((l) => l.startsWith("│") && l.length <= 80)).toBe(true);
    expect(lines.length).toBeGreaterThan(2);
    expect(lines.slice(1).map((l) => l.slice(3).trim()).join(" ")).toBe(words.join(" "));
  });
});
