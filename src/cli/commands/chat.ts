import { createInterface, emitKeypressEvents } from "node:readline";
import { userInfo } from "node:os";
import { styleText } from "node:util";
import * as clack from "@clack/prompts";
import { wrapTextWithPrefix } from "@clack/core";
import { connectNats, ConnectionFailedError, type ConnectOptions, type NatsConnection } from "../../core/connection.js";
import { CancelledError, ConfigError, ErrorCode } from "../../core/errors.js";
import { readCredentialsFile, type NatsCredentials } from "../../core/credentials.js";
import { Role } from "../../core/roles.js";
import { createLogger, type Logger } from "../../core/logging.js";
import { Subjects } from "../../core/subjects.js";
import { ENV_NAMES, type SwitchboardConfig } from "../../core/config.js";
import { sleep } from "../../core/sleep.js";
import { ChatSession, InvalidChoiceError, stamp, type ChatEvent } from "../chat-session.js";
import { ask, shortEcho, type AskOptions, type PromptOutcome } from "../chat-prompt.js";
import { NoticeBoard, type Notice } from "../chat-notices.js";
import { WaitIndicator } from "../chat-spinner.js";
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
waiting for each answer before reading the next line, and exiting at the end of input: 0, or 1
when a message is still unanswered (its "timeout" event was the last word on it) or reached no
agent (an "error" event with code publish_failed or rate_limited: send it again). Every event
carries "ts" (when the chat received it) and "turn" (the message it belongs to); an answer that
comes after its "timeout" is printed when it comes, with "late": true.
After a "clarify" event the next line is the answer: an agent type from the options or its
1-based number, or "none" (or END) to choose none: it prints nothing, and the line after it is
a new message. An invalid
answer prints an "error" event (code invalid_choice) and the "clarify" event again, and the line
after that is read as the answer.
A "routed" event with "from" means the agent holding the conversation handed it over.
With --stream, an agent that streams its answer also gives {"event":"delta","agent":...,"text":...,
"attempt":N} lines with the answer's text as it is produced, in order; the "reply" that follows
carries all of it and is what counts. "attempt" is 1, or more when the worker answering stopped
mid-answer and another writes the answer again from its start: drop the earlier attempt's text.

In a terminal: Esc clears what you are typing (or closes the list of agents), Ctrl-C at an empty
prompt, twice, or while an answer is awaited leaves; what is typed while an answer comes is kept
for the next prompt. If no NATS server answers yet, the chat waits for one for up to 30 s. The
chat's own logs (stderr) default to warn, not info: the terminal belongs to the conversation.

Options:
  --user <name>       who is chatting (default: the user of --creds, else your login name) [A-Za-z0-9_-]
                      On a server that requires credentials, a user may chat only as itself: with
                      its own file (--creds FILE, or users/NAME.nk in the auth directory).
  --json              JSON lines mode even in a terminal
  --stream            in JSON lines mode, also "delta" events with replies in progress (the
                      interactive chat always shows replies as they are produced)
  --timeout <ms>      how long to wait for an answer, or for the next part of one that is
                      streaming (env SB_REPLY_TIMEOUT_MS, default 60000); after a rate_limited
                      error the next message waits a second
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
  if (values.timeout !== undefined && !/^[1-9][0-9]*$/.test(values.timeout.trim())) {
    throw new ConfigError(`--timeout must be a number of milliseconds (e.g. 60000), got ${JSON.stringify(values.timeout)}`);
  }
  // Diagnostics go to stderr and stay quiet unless asked for: stdout belongs to the conversation.
  const config = configFrom(values, { replyTimeoutMs: values.timeout, logLevel: values["log-level"] ?? process.env[ENV_NAMES.logLevel] ?? "warn" });
  const { user, credentials } = chatIdentity(config, values.user);
  const json = values.json === true || !process.stdin.isTTY || !process.stdout.isTTY;
  const logger = createLogger("switchboard-chat", { level: config.logLevel });
  const leave = leaveOnSignals();
  try {
    const nc = await connectWhenServerIsUp(config, { name: `switchboard-chat-${user}`, role: Role.Client, user, ...(credentials ? { credentials } : {}), warn: warnOnStderr }, leave.signal);
    if (!nc) return 0;
    try {
      return json ? await runJsonChat(nc, config, user, logger, { signal: leave.signal, stream: values.stream === true }) : await runInteractiveChat(nc, config, user, logger, { signal: leave.signal });
    } finally {
      // A stop request should not wait on a server that is gone.
      await Promise.race([nc.drain().catch(() => undefined), sleep(leave.signal.aborted ? 1_000 : 10_000)]);
    }
  } finally {
    leave.dispose();
  }
}

/** How long a chat started before its server waits for it. */
export const SERVER_WAIT_MS = 30_000;

/**
 * Connects, waiting (up to {@link SERVER_WAIT_MS}, saying so once) for a server that is not up
 * yet — started at the same moment, or restarting. Undefined when `signal` stops the wait.
 */
export async function connectWhenServerIsUp(config: SwitchboardConfig, options: ConnectOptions, signal: AbortSignal): Promise<NatsConnection | undefined> {
  const deadline = Date.now() + SERVER_WAIT_MS;
  let said = false;
  for (;;) {
    try {
      return await connectNats(config, options);
    } catch (err) {
      if (!(err instanceof ConnectionFailedError && nobodyListens(err)) || Date.now() >= deadline) throw err;
      if (!said) process.stderr.write(`switchboard: no NATS server answers at ${config.natsUrl} yet; waiting for one (up to ${SERVER_WAIT_MS / 1000} s, Ctrl-C to give up)\n`);
      said = true;
    }
    await sleep(500, signal).catch(() => undefined);
    if (signal.aborted) return undefined;
  }
}

/**
 * Whether nothing listens at the address yet (refused), as opposed to a server that is there and
 * fails the connection (TLS, protocol): only the first is worth waiting for.
 */
function nobodyListens(err: ConnectionFailedError): boolean {
  const natsError = err.cause as { cause?: { code?: unknown } } | undefined;
  return natsError?.cause?.code === "ECONNREFUSED";
}

/**
 * SIGINT, SIGTERM and SIGHUP (its terminal closed) end the chat gracefully (exit 0); a second one,
 * or a stop that hangs, ends it at once.
 */
const LEAVING_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

export function leaveOnSignals(): { readonly signal: AbortSignal; abort(): void; dispose(): void } {
  const controller = new AbortController();
  let force: NodeJS.Timeout | undefined;
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
    force = setTimeout(() => process.exit(0), 3_000);
    force.unref();
  };
  for (const name of LEAVING_SIGNALS) process.on(name, onSignal);
  return {
    signal: controller.signal,
    abort: () => controller.abort(),
    dispose: () => {
      clearTimeout(force);
      for (const name of LEAVING_SIGNALS) process.off(name, onSignal);
    },
  };
}

export interface ChatRunOptions {
  /** Ends the chat gracefully (the chat returns 0). */
  readonly signal?: AbortSignal;
  /** What happens around the chat (processes that `up` started), shown as it happens. */
  readonly notices?: NoticeBoard;
  /** JSON mode: also print `delta` events (the interactive chat always streams). */
  readonly stream?: boolean;
}

async function openSession(nc: NatsConnection, config: SwitchboardConfig, user: string, logger: Logger, streamReplies: boolean, onLateEvent?: (event: ChatEvent) => void): Promise<ChatSession> {
  const session = new ChatSession({ nc, subjects: new Subjects(config.prefix), user, logger, replyTimeoutMs: config.replyTimeoutMs, streamReplies, ...(onLateEvent ? { onLateEvent } : {}) });
  await session.start();
  return session;
}

/** One stdin line in, one JSON line per event out. */
export async function runJsonChat(nc: NatsConnection, config: SwitchboardConfig, user: string, logger: Logger, options: ChatRunOptions = {}): Promise<number> {
  const print = (event: ChatEvent) => process.stdout.write(`${jsonLine(event)}\n`);
  const session = await openSession(nc, config, user, logger, options.stream === true, print);
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  const stop = () => lines.close();
  options.signal?.addEventListener("abort", stop, { once: true });
  const unsubscribe = options.notices?.subscribe((n) => process.stderr.write(`switchboard: ${n.text}\n`));
  try {
    // "none" (or END) declines a "which one?" question: the next line is a new message.
    let declined = false;
    for await (const line of lines) {
      const text = line.trim();
      if (text === "") continue;
      if (session.pendingClarification && !declined && /^(none|end)$/i.test(text)) declined = true;
      else if (session.pendingClarification && !declined) await answerJson(session, text, print, options.signal);
      else {
        declined = false;
        await session.send(text, print, options.signal);
      }
    }
  } catch (err) {
    if (!(err instanceof CancelledError)) throw err;
    return 0;
  } finally {
    options.signal?.removeEventListener("abort", stop);
    unsubscribe?.();
    lines.close();
    await session.close();
  }
  if (options.signal?.aborted) return 0;
  // A message whose only answer was `timeout`, or that was never sent, is a failure a script must
  // be able to see.
  return session.unansweredTurns > 0 || session.unsentMessages > 0 ? 1 : 0;
}

/** A line read while a clarification is pending is the user's choice. */
async function answerJson(session: ChatSession, answer: string, print: (event: ChatEvent) => void, signal?: AbortSignal): Promise<void> {
  try {
    await session.answerClarification(answer, print, signal);
  } catch (err) {
    if (!(err instanceof InvalidChoiceError)) throw err;
    print({ event: "error", session: session.sessionId, code: err.code, message: err.message, ...stamp(err.turnId) });
    // Ask again: the same choices, and the next line is read as the answer.
    print({ event: "clarify", session: session.sessionId, question: "Please choose one of these agents.", options: err.options, ...stamp(err.turnId) });
  }
}

/** What the user did with the list of agents. */
type ChoiceOutcome = "chosen" | "dismissed" | "leave";

/** Lets the user pick an agent with a Clack select; Esc dismisses the list, Ctrl-C leaves. */
async function answerInteractive(session: ChatSession, screen: ChatScreen, signal: AbortSignal): Promise<ChoiceOutcome> {
  for (let options = session.pendingClarification; options; options = session.pendingClarification) {
    const { value: choice, key } = await screen.select(
      "Which agent should take it?",
      options.map((o) => ({ value: o.agent, label: sanitizeForTerminal(o.agent), hint: sanitizeForTerminal(o.description) })),
    );
    if (typeof choice !== "string") {
      if (key !== "escape" || signal.aborted) return "leave";
      clack.log.info("No agent chosen. Say it another way, or send it again to get the list back.");
      return "dismissed";
    }
    screen.wait(`Connecting you to ${sanitizeForTerminal(choice)}`);
    const streamed = screen.replyPrinter();
    await session.answerClarification(choice, (event) => streamed.handle(event, screen.spinner) || render(event, screen.spinner, streamed.takeEndedShown()), screen.turnSignal());
  }
  return "chosen";
}

/**
 * The terminal: a prompt or a spinner at a time, and notices (late answers, connection changes,
 * processes that stopped) shown when they come — above the spinner, or by setting the prompt
 * aside and asking again with what had been typed.
 */
class ChatScreen {
  readonly spinner = new WaitIndicator();
  private promptPause: AbortController | undefined;
  private turnAbort: AbortController | undefined;
  private readonly waiting: Notice[] = [];
  private lastKey: string | undefined;
  private printer: StreamedReplyPrinter | undefined;
  /** What the user types while an answer is awaited: the next prompt starts with it. */
  private typeAhead = "";
  /** Lines ended with Enter while an answer was awaited: sent in turn, as a terminal would. */
  private readonly typedLines: string[] = [];
  private capturing = false;

  constructor(private readonly leave: AbortSignal) {
    // Which key closed a Clack prompt: Esc and Ctrl-C both cancel one.
    emitKeypressEvents(process.stdin);
    process.stdin.on("keypress", this.onKey);
  }

  private readonly onKey = (_: string | undefined, key: { name?: string; ctrl?: boolean } | undefined) => {
    this.lastKey = key?.ctrl === true && key.name === "c" ? "ctrl-c" : key?.name;
  };

  /** The printer of the turn about to start, which notices must not cut into. */
  replyPrinter(): StreamedReplyPrinter {
    this.printer = new StreamedReplyPrinter();
    return this.printer;
  }

  show(notice: Notice): void {
    if (this.spinner.active) this.spinner.interject(() => printNotice(notice));
    else if (this.printer?.active) this.printer.interject(() => printNotice(notice));
    else if (this.promptPause) {
      this.waiting.push(notice);
      this.promptPause.abort();
    } else printNotice(notice);
  }

  /**
   * Keys typed while an answer is awaited (or streams) are kept, not echoed into the answer: the
   * terminal stays in raw mode for the whole turn, and Ctrl-C interrupts it.
   */
  private readonly onTypeAhead = (str: string | undefined, key: { name?: string; ctrl?: boolean; meta?: boolean } | undefined) => {
    if (key?.ctrl === true && key.name === "c") this.interrupt();
    else if (key?.name === "backspace") this.typeAhead = this.typeAhead.slice(0, -1);
    else if (key?.name === "return" || key?.name === "enter") {
      if (this.typeAhead.trim() !== "") this.typedLines.push(this.typeAhead);
      this.typeAhead = "";
    } else if (str !== undefined && key?.ctrl !== true && key?.meta !== true && /^[^\p{C}]$/u.test(str)) this.typeAhead += str;
  };

  private captureTypeAhead(): void {
    if (this.capturing || !process.stdin.isTTY) return;
    this.capturing = true;
    process.stdin.setRawMode(true);
    process.stdin.on("keypress", this.onTypeAhead);
    process.stdin.resume();
  }

  private releaseTypeAhead(): void {
    if (!this.capturing) return;
    this.capturing = false;
    process.stdin.off("keypress", this.onTypeAhead);
    process.stdin.setRawMode(false);
  }

  /** Asks for a line; notices that come meanwhile are shown and the prompt comes back as it was. */
  async ask(options: Omit<AskOptions, "signal" | "initialValue">): Promise<PromptOutcome> {
    this.releaseTypeAhead();
    const line = this.typedLines.shift();
    if (line !== undefined) {
      for (const notice of this.waiting.splice(0)) printNotice(notice);
      // Shown as a prompt answered at once, which is what it is.
      process.stdout.write(`${styleText("gray", clack.S_BAR)}\n${styleText("green", "◇")}  ${options.message}\n${styleText("gray", clack.S_BAR)}  ${styleText("dim", sanitizeForTerminal(line))}\n`);
      return { kind: "submit", value: line };
    }
    let typed = this.typeAhead;
    this.typeAhead = "";
    for (;;) {
      for (const notice of this.waiting.splice(0)) printNotice(notice);
      this.promptPause = new AbortController();
      const outcome = await ask({ ...options, initialValue: typed, signal: AbortSignal.any([this.promptPause.signal, this.leave]) });
      this.promptPause = undefined;
      if (outcome.kind !== "paused" || this.leave.aborted) return outcome;
      typed = outcome.value;
    }
  }

  async select<T extends string>(message: string, options: { value: T; label: string; hint: string }[]): Promise<{ value: T | symbol; key: string | undefined }> {
    this.releaseTypeAhead();
    this.lastKey = undefined;
    const value = await clack.select<T>({ message, options: options as Parameters<typeof clack.select<T>>[0]["options"], signal: this.leave });
    return { value, key: this.lastKey };
  }

  /** Shows that an answer is awaited; keys typed from now on wait for the next prompt. */
  wait(text: string): void {
    this.captureTypeAhead();
    this.spinner.start(text, () => this.interrupt());
  }

  /** A signal for the turn about to wait: Ctrl-C while it waits, or leaving. */
  turnSignal(): AbortSignal {
    this.turnAbort = new AbortController();
    return AbortSignal.any([this.turnAbort.signal, this.leave]);
  }

  interrupt(): void {
    this.turnAbort?.abort();
  }

  close(): void {
    this.releaseTypeAhead();
    process.stdin.off("keypress", this.onKey);
    this.spinner.stop("Stopped", true);
  }
}

function printNotice(notice: Notice): void {
  const text = wrapped(sanitizeForTerminal(notice.text));
  if (notice.level === "error") clack.log.error(text);
  else if (notice.level === "warn") clack.log.warn(text);
  else if (notice.level === "success") clack.log.success(text);
  else clack.log.info(text);
}

/** Text broken into lines that fit inside Clack's left border. */
function wrapped(text: string): string {
  return text
    .split("\n")
    .map((line) =>
      wrapTextWithPrefix(process.stdout, line, "   ")
        .split("\n")
        // The wrapped pieces after the first keep the space they were broken at.
        .map((piece, i) => (i === 0 ? piece.slice(3) : piece.slice(3).replace(/^ /, "")))
        .join("\n"),
    )
    .join("\n");
}

/** How a late answer reads: what it answers, then the answer. */
export function lateNotice(event: ChatEvent, asked: string | undefined): Notice {
  const to = asked === undefined ? "an earlier message" : `“${shortEcho(asked)}”`;
  switch (event.event) {
    case "reply":
      return { level: "info", text: `Late answer to ${to} from ${event.name || event.agent}:\n${event.content}` };
    case "ended":
      return { level: "success", text: `Late answer to ${to}: the conversation with ${event.agent} ended. ${event.content}` };
    case "no_agent":
      return { level: "warn", text: `Late answer to ${to}: ${event.message}` };
    case "error":
      return { level: "error", text: `Late answer to ${to}: ${event.message} [${event.code}]` };
    default:
      return { level: "info", text: `Late answer to ${to}: ${event.event}` };
  }
}

/** Connection changes, shown as they happen: a lost server is not a surprise at the next send. */
async function watchConnection(nc: NatsConnection, screen: ChatScreen): Promise<void> {
  let down = false;
  for await (const status of nc.status()) {
    if (status.type === "disconnect" && !down) {
      down = true;
      screen.show({ level: "warn", text: "Lost the connection to NATS; reconnecting… (messages wait until it is back)" });
    } else if (status.type === "reconnect" && down) {
      down = false;
      screen.show({ level: "success", text: "Reconnected to NATS." });
    }
  }
}

/** The Clack front-end. */
export async function runInteractiveChat(nc: NatsConnection, config: SwitchboardConfig, user: string, logger: Logger, options: ChatRunOptions = {}): Promise<number> {
  const leave = options.signal ?? new AbortController().signal;
  const screen = new ChatScreen(leave);
  const session = await openSession(nc, config, user, logger, true, (event) => screen.show(lateNotice(event, event.turn ? session.unansweredText(event.turn) : undefined)));
  clack.intro(`Switchboard — chatting as ${user}`);
  clack.log.info(wrapped("Say what you need; you will be connected to the right agent. Type END to finish a conversation. Esc clears the line; Ctrl-C twice (or while waiting) leaves."));
  const unsubscribe = options.notices?.subscribe((n) => screen.show(n));
  const watching = watchConnection(nc, screen).catch(() => undefined);
  let armed = false;
  try {
    while (!leave.aborted) {
      const input = await screen.ask({
        message: session.agent ? `You → ${sanitizeForTerminal(session.agent)}` : "You",
        placeholder: session.agent ? "" : "what do you need help with?",
      });
      if (leave.aborted) break;
      if (input.kind === "escape") continue;
      if (input.kind === "interrupt" || input.kind === "paused") {
        if (armed || input.value.trim() === "") break;
        armed = true;
        clack.log.warn("Press Ctrl-C again to leave.");
        continue;
      }
      armed = false;
      const text = input.value.trim();
      screen.wait(session.agent ? `Waiting for ${sanitizeForTerminal(session.agent)}` : "Routing");
      try {
        const streamed = screen.replyPrinter();
        await session.send(text, (event) => streamed.handle(event, screen.spinner) || render(event, screen.spinner, streamed.takeEndedShown()), screen.turnSignal());
        const choice = await answerInteractive(session, screen, leave);
        if (choice === "leave") break;
      } catch (err) {
        if (err instanceof CancelledError) {
          screen.spinner.stop("Cancelled", true);
          break;
        }
        screen.spinner.stop("Failed", true);
        throw err;
      }
    }
  } finally {
    unsubscribe?.();
    screen.close();
    await session.close();
    await Promise.race([watching, sleep(100)]);
  }
  clack.outro("Bye.");
  return 0;
}

/** Shows one event; `contentShown`: the answer an `ended` event carries already streamed. */
function render(event: ChatEvent, spin: WaitIndicator, contentShown = false): void {
  const safe = sanitizeForTerminal;
  switch (event.event) {
    case "routed":
      if (event.from && event.from !== event.agent) {
        const from = event.from;
        spin.interject(() => clack.log.info(`↪ ${safe(from)} handed you to ${safe(event.agent)}`));
        spin.message(`Waiting for ${safe(event.agent)}`);
      } else spin.message(`Routed to ${safe(event.agent)} (${safe(event.intent)}); waiting for its answer`);
      return;
    case "clarify":
      spin.stop("More than one agent fits");
      clack.log.info(safe(event.question));
      return;
    case "reply":
      spin.stop(safe(event.name || event.agent));
      clack.log.message(wrapped(safe(event.content)));
      return;
    case "no_agent":
      spin.stop("No matching agent");
      clack.log.warn(wrapped(safe(event.message)));
      return;
    case "ended":
      spin.stop(`Conversation with ${safe(event.agent)} ended`);
      if (contentShown) clack.log.success(`The conversation with ${safe(event.agent)} ended.`);
      else clack.log.success(wrapped(safe(event.content)));
      clack.log.step("New conversation — say what you need.");
      return;
    case "error":
      if (event.code === ErrorCode.NoConversation) {
        spin.stop("Nothing to end");
        clack.log.info(wrapped(safe(event.message)));
        return;
      }
      spin.stop(event.agent && event.agent !== "router" ? `Error from ${safe(event.agent)}` : "Error", true);
      clack.log.error(wrapped(`${safe(event.message)} [${safe(event.code)}]`));
      return;
    case "queued":
      spin.interject(() => clack.log.warn(wrapped(safe(event.message))));
      spin.message(`Queued for ${safe(event.agent ?? "an agent")}`);
      return;
    case "timeout":
      spin.stop("No answer yet", true);
      clack.log.error(wrapped(safe(event.message)));
      return;
  }
}
