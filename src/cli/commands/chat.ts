import { createInterface } from "node:readline";
import { userInfo } from "node:os";
import * as clack from "@clack/prompts";
import { connectNats, type NatsConnection } from "../../core/connection.js";
import { CancelledError } from "../../core/errors.js";
import { createLogger, type Logger } from "../../core/logging.js";
import { Subjects } from "../../core/subjects.js";
import type { SwitchboardConfig } from "../../core/config.js";
import { ChatSession, type ChatEvent } from "../chat-session.js";
import { COMMON_HELP, configFrom, parse } from "../options.js";
import { sanitizeForTerminal } from "../terminal.js";

export const CHAT_HELP = `Usage: switchboard chat [--user NAME] [--json] [options]

Chat with Switchboard. The first message of a conversation is routed to the agent that fits it;
later messages go straight to that agent. A message containing the word END ends the
conversation, and the next message starts a new one.

In a terminal it is interactive. Otherwise (or with --json) every stdin line is one message and
every event is one JSON line on stdout, for example
  {"event":"routed","agent":"finance",...}  {"event":"reply","agent":"finance","content":...}
  {"event":"no_agent",...}  {"event":"ended","reason":...}  {"event":"error",...}  {"event":"timeout",...}
  {"event":"queued",...} (no worker serves the agent now; the message waits and the answer may follow)
waiting for each answer before reading the next line, and exiting 0 at the end of input.

Options:
  --user <name>       who is chatting (default: your login name) [A-Za-z0-9_-]
  --json              JSON lines mode even in a terminal
  --timeout <ms>      how long to wait for an answer (env SB_REPLY_TIMEOUT_MS, default 30000)
${COMMON_HELP}`;

export function defaultUser(): string {
  try {
    const name = userInfo().username.replace(/[^A-Za-z0-9_-]/g, "").slice(0, 64);
    return name || "user";
  } catch {
    return "user";
  }
}

export async function chatCommand(args: readonly string[]): Promise<number> {
  const { values } = parse("chat", args, { user: { type: "string" }, json: { type: "boolean" }, timeout: { type: "string" } });
  if (values.help) {
    console.log(CHAT_HELP);
    return 0;
  }
  const config = configFrom(values, { replyTimeoutMs: values.timeout });
  const user = values.user ?? defaultUser();
  const json = values.json === true || !process.stdin.isTTY || !process.stdout.isTTY;
  // Diagnostics go to stderr and stay quiet unless asked for: stdout belongs to the conversation.
  const logger = createLogger("switchboard-chat", { level: values["log-level"] ?? "warn" });
  const nc = await connectNats(config, { name: `switchboard-chat-${user}` });
  try {
    return json ? await runJsonChat(nc, config, user, logger) : await runInteractiveChat(nc, config, user, logger);
  } finally {
    await nc.drain();
  }
}

async function openSession(nc: NatsConnection, config: SwitchboardConfig, user: string, logger: Logger): Promise<ChatSession> {
  const session = new ChatSession({ nc, subjects: new Subjects(config.prefix), user, logger, replyTimeoutMs: config.replyTimeoutMs });
  await session.start();
  return session;
}

/** One stdin line in, one JSON line per event out. */
export async function runJsonChat(nc: NatsConnection, config: SwitchboardConfig, user: string, logger: Logger): Promise<number> {
  const session = await openSession(nc, config, user, logger);
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  const print = (event: ChatEvent) => process.stdout.write(`${JSON.stringify(event)}\n`);
  try {
    for await (const line of lines) {
      const text = line.trim();
      if (text === "") continue;
      await session.send(text, print);
    }
  } finally {
    lines.close();
    await session.close();
  }
  return 0;
}

/** The Clack front-end. */
export async function runInteractiveChat(nc: NatsConnection, config: SwitchboardConfig, user: string, logger: Logger): Promise<number> {
  const session = await openSession(nc, config, user, logger);
  clack.intro(`Switchboard — chatting as ${user}`);
  clack.log.info("Say what you need; you will be connected to the right agent. Type END to finish a conversation, Ctrl-C to leave.");
  try {
    for (;;) {
      const input = await clack.text({
        message: session.agent ? `You → ${session.agent}` : "You",
        placeholder: session.agent ? "" : "e.g. I need help with my budget",
        validate: (v) => (v === undefined || v.trim() === "" ? "Type a message, or press Ctrl-C to leave." : undefined),
      });
      if (clack.isCancel(input)) break;
      const abort = new AbortController();
      const onSigint = () => abort.abort();
      process.once("SIGINT", onSigint);
      const spin = clack.spinner();
      spin.start(session.agent ? `Waiting for ${session.agent}` : "Routing");
      try {
        await session.send(input.trim(), (event) => render(event, spin), abort.signal);
      } catch (err) {
        if (err instanceof CancelledError) {
          spin.stop("Cancelled");
          break;
        }
        spin.stop("Failed");
        throw err;
      } finally {
        process.removeListener("SIGINT", onSigint);
      }
    }
  } finally {
    await session.close();
  }
  clack.outro("Bye.");
  return 0;
}

function render(event: ChatEvent, spin: ReturnType<typeof clack.spinner>): void {
  const safe = sanitizeForTerminal;
  switch (event.event) {
    case "routed":
      spin.message(`Routed to ${safe(event.agent)} (${safe(event.intent)}); waiting for its answer`);
      return;
    case "reply":
      spin.stop(safe(event.name || event.agent));
      clack.log.message(safe(event.content));
      return;
    case "no_agent":
      spin.stop("No matching agent");
      clack.log.warn(safe(event.message));
      return;
    case "ended":
      spin.stop(`Conversation with ${safe(event.agent)} ended`);
      clack.log.success(safe(event.content));
      clack.log.step("New conversation — say what you need.");
      return;
    case "error":
      spin.stop("Error");
      clack.log.error(`${safe(event.message)} [${safe(event.code)}]`);
      return;
    case "queued":
      spin.message(`${safe(event.message)}; still waiting`);
      return;
    case "timeout":
      spin.stop("No answer");
      clack.log.error(safe(event.message));
      return;
  }
}
