import { pino, type Logger } from "pino";
import pretty from "pino-pretty";

export type { Logger };

export interface LoggerOptions {
  readonly level?: string;
  /** Readable output instead of JSON; defaults to whether stderr is a terminal. */
  readonly pretty?: boolean;
}

/**
 * The root logger of a process. Logs go to stderr so that stdout stays free for command output
 * (the chat's JSON lines, admin tables). Child loggers add `component` and ids; every line names
 * its `event`.
 */
export function createLogger(name: string, options: LoggerOptions = {}): Logger {
  const level = options.level ?? "info";
  const usePretty = options.pretty ?? process.stderr.isTTY === true;
  // ISO 8601 times: a log file read by a person (or grepped for a minute) needs no conversion.
  const timestamp = pino.stdTimeFunctions.isoTime;
  if (usePretty) {
    return pino({ name, level, timestamp }, pretty({ destination: 2, colorize: true, ignore: "pid,hostname", translateTime: "SYS:HH:MM:ss.l", sync: true }));
  }
  return pino({ name, level, timestamp }, pino.destination({ dest: 2, sync: true }));
}

/**
 * The kind of evidence a routing decision rests on — `semantic` of `semantic:receipts~finance`,
 * `llm` of `llm:<the model's reason>` — for logs at info level, where the rest, which may quote
 * the user's message, does not belong.
 */
export function intentKind(intent: string): string {
  return /^[^:(]*/.exec(intent)?.[0]?.trim() ?? "";
}
