import { createInterface } from "node:readline";
import { userInfo } from "node:os";
import * as clack from "@clack/prompts";
import { connectNats, type NatsConnection } from "../../core/connection.js";
import { CancelledError, ConfigError } from "../../core/errors.js";
import { readCredentialsFile, type NatsCredentials } from "../../core/credentials.js";
import { Role } from "../../core/roles.js";
import { createLogger, type Logger } from "../../core/logging.js";
import { Subjects } from "../../core/subjects.js";
import type { SwitchboardConfig } from "../../core/config.js";
import { ChatSession, InvalidChoiceError, type ChatEvent } from "../chat-session.js";
import { COMMON_HELP, configFrom, parse, warnOnStderr } from "../options.js";
import { StreamedReplyPrinter } from "../streamed-reply.js";
import { jsonLine, sanitizeForTerminal } from "../terminal.js";

export const CHAT_HELP = `Usage: switchboard chat [--user NAME] [--json] [options]

Chat with Switchboard. The first message of a conversation is routed to the agent that fits it;
later messages go straight to that agent. A message containing the word END ends the
conversation, and the next message starts a new one.

In a terminal it is interactive. Otherwise (or with --json) every stdin line is one message and
every event is one JSON line on stdout, for example
  {"event":"routed","agent":"finance",...}  {"event":"reply","agent":"finance","content":...}
  {"event":"no_agent",...}  {"event":"ended","reason":...}  {"event":"error",...}  {"event":"timeout",...}
  {"event":"queued",...} (no worker serves the agent now; the message waits and the answer may follow)
  {"event":"clarify","question":...,"options":[{"agent":"finance","description":...,"score":...},...]}
waiting for each answer before reading the next line, and exiting 0 at the end of input.
After a "clarify" event the next line is the answer: an agent type from the options or its
1-based number. An invalid answer prints an "error" event (code invalid_choice) and the
"clarify" event again, and the line after that is read as the answer.
A "routed" event with "from" means the agent holding the conversation handed it over.
With --stream, an agent that streams its answer also gives {"event":"delta","agent":...,"text":...}
lines with the answer's text as it is produced, in order; the "reply" that follows carries all of it.

Options:
  --user <name>       who is chatting (default: the user of --creds, else your login name) [A-Za-z0-9_-]
                      On a server that requires credentials, a user may chat only as itself: with
                      its own file (--creds FILE, or data/auth/users/NAME.nk on this machine).
  --json              JSON lines mode even in a terminal
  --stream            in JSON lines mode, also "delta" events with replies in progress (the
                      interactive chat always shows replies as they are produced)
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

/**
 * Who chats, and with which credentials: `--creds` names its user, and a `--user` that differs
 * is refused here rather than by the server's permissions halfway through a conversation.
 */
export function chatIdentity(config: SwitchboardConfig, userFlag: string | undefined): { user: string; credentials?: NatsCredentials } {
  if (config.credsFile === "") return { user: userFlag ?? defaultUser() };
  const credentials = readCredentialsFile(config.credsFile);
  const user = userFlag ?? credentials.user ?? defaultUser();
  if (credentials.role === Role.Client && credentials.user !== user) {
    throw new ConfigError(`${config.credsFile} holds the credentials of user "${credentials.user}", who may not chat as "${user}"; drop --user or use ${user}'s credentials`);
  }
  return { user, credentials };
}

export async function chatCommand(args: readonly string[]): Promise<number> {
  const { values } = parse("chat", args, { user: { type: "string" }, json: { type: "boolean" }, timeout: { type: "string" }, stream: { type: "boolean" } });
  if (values.help) {
    console.log(CHAT_HELP);
    return 0;
  }
  const config = configFrom(values, { replyTimeoutMs: values.timeout });
  const { user, credentials } = chatIdentity(config, values.user);
  const json = values.json === true || !process.stdin.isTTY || !process.stdout.isTTY;
  // Diagnostics go to stderr and stay quiet unless asked for: stdout belongs to the conversation.
  const logger = createLogger("switchboard-chat", { level: values["log-level"] ?? "warn" });
  const nc = await connectNats(config, { name: `switchboard-chat-${user}`, role: Role.Client, user, ...(credentials ? { credentials } : {}), warn: warnOnStderr });
  try {
    return json ? await runJsonChat(nc, config, user, logger, { stream: values.stream === true }) : await runInteractiveChat(nc, config, user, logger);
  } finally {
    await nc.drain();
  }
}

async function openSession(nc: NatsConnection, config: SwitchboardConfig, user: string, logger: Logger, streamReplies = false): Promise<ChatSession> {
  const session = new ChatSession({ nc, subjects: new Subjects(config.prefix), user, logger, replyTimeoutMs: config.replyTimeoutMs, streamReplies });
  await session.start();
  return session;
}

/** One stdin line in, one JSON line per event out. */
export async function runJsonChat(nc: NatsConnection, config: SwitchboardConfig, user: string, logger: Logger, options: { readonly stream?: boolean } = {}): Promise<number> {
  const session = await openSession(nc, config, user, logger, options.stream === true);
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  const print = (event: ChatEvent) => process.stdout.write(`${jsonLine(event)}\n`);
  try {
    for await (const line of lines) {
      const text = line.trim();
      if (text === "") continue;
      if (session.pendingClarification) await answerJson(session, text, print);
      else await session.send(text, print);
    }
  } finally {
    lines.close();
    await session.close();
  }
  return 0;
}

/** A line read while a clarification is pending is the user's choice. */
async function answerJson(session: ChatSession, answer: string, print: (event: ChatEvent) => void): Promise<void> {
  try {
    await session.answerClarification(answer, print);
  } catch (err) {
    if (!(err instanceof InvalidChoiceError)) throw err;
    print({ event: "error", session: session.sessionId, code: err.code, message: err.message });
    // Ask again: the same choices, and the next line is read as the answer.
    print({ event: "clarify", session: session.sessionId, question: "Please choose one of these agents.", options: err.options });
  }
}

/** Lets the user pick an agent with a Clack select; false when they cancel. */
async function answerInteractive(session: ChatSession, spin: () => ReturnType<typeof clack.spinner>, signal: AbortSignal): Promise<boolean> {
  for (let options = session.pendingClarification; options; options = session.pendingClarification) {
    const choice = await clack.select({
      message: "Which agent should take it?",
      options: options.map((o) => ({ value: o.agent, label: sanitizeForTerminal(o.agent), hint: sanitizeForTerminal(o.description) })),
    });
    if (clack.isCancel(choice)) return false;
    const s = spin();
    s.start(`Connecting you to ${sanitizeForTerminal(choice)}`);
    const streamed = new StreamedReplyPrinter();
    await session.answerClarification(choice, (event) => streamed.handle(event, s) || render(event, s), signal);
  }
  return true;
}

/** The Clack front-end. */
export async function runInteractiveChat(nc: NatsConnection, config: SwitchboardConfig, user: string, logger: Logger): Promise<number> {
  const session = await openSession(nc, config, user, logger, true);
  clack.intro(`Switchboard — chatting as ${user}`);
  clack.log.info("Say what you need; you will be connected to the right agent. Type END to finish a conversation, Ctrl-C to leave.");
  try {
    for (;;) {
      const input = await clack.text({
        message: session.agent ? `You → ${sanitizeForTerminal(session.agent)}` : "You",
        placeholder: session.agent ? "" : "e.g. I need help with my budget",
        validate: (v) => (v === undefined || v.trim() === "" ? "Type a message, or press Ctrl-C to leave." : undefined),
      });
      if (clack.isCancel(input)) break;
      const abort = new AbortController();
      const onSigint = () => abort.abort();
      process.once("SIGINT", onSigint);
      const spin = clack.spinner();
      spin.start(session.agent ? `Waiting for ${sanitizeForTerminal(session.agent)}` : "Routing");
      try {
        const streamed = new StreamedReplyPrinter();
        await session.send(input.trim(), (event) => streamed.handle(event, spin) || render(event, spin), abort.signal);
        if (!(await answerInteractive(session, () => clack.spinner(), abort.signal))) break;
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
      if (event.from) spin.message(`${safe(event.from)} handed you over to ${safe(event.agent)} (${safe(event.intent)}); waiting for its answer`);
      else spin.message(`Routed to ${safe(event.agent)} (${safe(event.intent)}); waiting for its answer`);
      return;
    case "clarify":
      spin.stop("More than one agent fits");
      clack.log.info(safe(event.question));
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
