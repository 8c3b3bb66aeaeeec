import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { prettyFactory } from "pino-pretty";
import { ConfigError } from "../../core/errors.js";
import { RUN_MARKER_TEXT } from "../children.js";
import { LOG_DIR, logDirFor, portOf } from "../paths.js";
import { configFrom, parse } from "../options.js";
import { ago, formatTable, sanitizeForTerminal } from "../terminal.js";
import { didYouMean } from "../suggest.js";

export const LOGS_HELP = `Usage: switchboard logs [host|worker|nats] [--all] [--lines N] [--json] [--port N]

The logs of the processes \`switchboard up\` started, from ${LOG_DIR}/ (for \`up --port N\`, from
logs-N/ beside it: pass the same --port).
Without a name, lists the log files. With one, prints that process's lines from its latest run
(\`up\` starts each run with a marker line); --all prints every run, --lines N only the last N lines.
JSON log lines are shown readably in a terminal, as they are otherwise (or with --json).

Options:
  --all               every run, not only the latest
  --lines <n>         only the last n lines
  --json              the JSON lines as written
  --port <n>          the logs of \`up --port N\` (or --nats with that port)
  -h, --help          show this help`;

const NAMES: Record<string, string> = { host: "host", worker: "worker", nats: "nats-server", "nats-server": "nats-server" };

export async function logsCommand(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse("logs", args, { all: { type: "boolean" }, lines: { type: "string" }, json: { type: "boolean" } });
  if (values.help) {
    console.log(LOGS_HELP);
    return 0;
  }
  const [which, ...extra] = positionals;
  if (extra.length > 0) throw new ConfigError(`one log at a time: switchboard logs ${Object.keys(NAMES).slice(0, 3).join("|")}`);
  const limit = values.lines === undefined ? undefined : Number(values.lines);
  if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) throw new ConfigError(`--lines must be a positive integer, got ${JSON.stringify(values.lines)}`);
  const logDir = logDirFor(portOf(configFrom(values).natsUrl));
  if (which === undefined) return listLogs(logDir);
  const name = NAMES[which];
  if (!name) {
    const guess = didYouMean(which, Object.keys(NAMES));
    throw new ConfigError(`no log named "${which}"${guess ? `; did you mean ${guess}?` : ""} (host, worker or nats)`);
  }
  const file = join(logDir, `${name}.log`);
  if (!existsSync(file)) {
    process.stderr.write(`switchboard: no ${file} yet; \`switchboard up\` writes it when it starts the ${name}\n`);
    return 1;
  }
  let lines = readFileSync(file, "utf8").split("\n");
  if (lines.at(-1) === "") lines.pop();
  if (values.all !== true) lines = lines.slice(Math.max(0, lastRunStart(lines)));
  if (limit !== undefined) lines = lines.slice(-limit);
  const readable = values.json !== true && process.stdout.isTTY === true;
  const pretty = readable ? prettyFactory({ colorize: true, ignore: "pid,hostname", translateTime: "SYS:yyyy-mm-dd HH:MM:ss.l" }) : undefined;
  for (const line of lines) process.stdout.write(pretty && line.startsWith("{") ? pretty(line) : `${sanitizeForTerminal(line)}\n`);
  return 0;
}

/** Index of the latest run marker (0 when there is none). */
function lastRunStart(lines: readonly string[]): number {
  for (let i = lines.length - 1; i >= 0; i--) if ((lines[i] ?? "").includes(RUN_MARKER_TEXT)) return i;
  return 0;
}

function listLogs(logDir: string): number {
  const files = existsSync(logDir) ? readdirSync(logDir).filter((f) => f.endsWith(".log")) : [];
  if (files.length === 0) {
    console.log(`No logs in ${logDir} yet: \`switchboard up\` writes them.`);
    return 0;
  }
  const rows = files.map((f) => {
    const stat = statSync(join(logDir, f));
    return [f.replace(/\.log$/, ""), join(logDir, f), `${Math.ceil(stat.size / 1024)} KiB`, ago(stat.mtimeMs)];
  });
  console.log(formatTable(["log", "file", "size", "written"], rows));
  console.log("\n`switchboard logs NAME` prints the latest run's lines.");
  return 0;
}
