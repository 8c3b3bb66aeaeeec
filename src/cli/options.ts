import { parseArgs, type ParseArgsConfig } from "node:util";
import { ConfigError } from "../core/errors.js";
import { loadConfig, type ConfigFlags, type SwitchboardConfig } from "../core/config.js";
import { didYouMean } from "./suggest.js";

type OptionSpecs = NonNullable<ParseArgsConfig["options"]>;
/** Spelled out so that the declaration build can name it. */
type ParsedArgs<O extends OptionSpecs> = ReturnType<typeof parseArgs<{ args: string[]; options: typeof COMMON_OPTIONS & O; allowPositionals: true; strict: true }>>;

/** Flags every command takes. */
export const COMMON_OPTIONS = {
  nats: { type: "string" },
  port: { type: "string" },
  prefix: { type: "string" },
  "log-level": { type: "string" },
  creds: { type: "string" },
  "tls-ca": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const satisfies OptionSpecs;

export const COMMON_HELP = `Common options:
  --nats <url>        NATS server URL(s), comma-separated (env NATS_URL, default nats://127.0.0.1:4222)
  --port <n>          a local server's port: the same as --nats nats://127.0.0.1:N
  --prefix <name>     subject prefix (env SB_PREFIX, default sb)
  --log-level <lvl>   trace|debug|info|warn|error (env LOG_LEVEL, default info)
  --creds <file>      NATS credentials (env SB_CREDS; default: this command's file in the auth
                      directory when it exists, see \`switchboard auth --help\`)
  --tls-ca <file>     CA certificate of a server that uses TLS (env SB_TLS_CA)
  -h, --help          show this help`;

/** Warnings for a person, on stderr (stdout belongs to the command's output). */
export function warnOnStderr(message: string): void {
  process.stderr.write(`switchboard: warning: ${message}\n`);
}

/** Parses a command's arguments; unknown flags are errors that name the command's help. */
export function parse<const O extends OptionSpecs>(command: string, args: readonly string[], options: O): ParsedArgs<O> {
  const all: OptionSpecs = { ...COMMON_OPTIONS, ...options };
  try {
    return parseArgs({ args: [...args], options: { ...COMMON_OPTIONS, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new ConfigError(`${readableArgsError(err, all)} (see \`switchboard ${command} --help\`)`);
  }
}

/** Node's parseArgs messages, said the way the rest of the CLI speaks, with a guess at typos. */
function readableArgsError(err: unknown, options: OptionSpecs): string {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | null)?.code;
  const unknown = /^Unknown option '(-{1,2})([^'=]+)/.exec(message);
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && unknown) {
    const [, dashes = "--", name = ""] = unknown;
    const guess = didYouMean(name, Object.keys(options));
    return `unknown option ${dashes}${name}${guess ? `; did you mean --${guess}?` : ""}`;
  }
  const missing = /^Option '(?:-\w, )?(--[\w-]+) <value>' argument missing/.exec(message);
  if (missing) return `${missing[1]} needs a value`;
  const noValue = /^Option '(?:-\w, )?(--[\w-]+)' does not take an argument/.exec(message);
  if (noValue) return `${noValue[1]} takes no value`;
  return message;
}

function parsePort(raw: string): number {
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new ConfigError(`--port must be a port number (1-65535), got ${JSON.stringify(raw)}`);
  return port;
}

/** Config from the common flags plus the environment. */
export function configFrom(
  values: { nats?: string | undefined; port?: string | undefined; prefix?: string | undefined; "log-level"?: string | undefined; creds?: string | undefined; "tls-ca"?: string | undefined },
  extra: ConfigFlags = {},
): SwitchboardConfig {
  if (values.port !== undefined && values.nats !== undefined) throw new ConfigError("give either --port or --nats, not both");
  const natsUrl = values.port !== undefined ? `nats://127.0.0.1:${parsePort(values.port)}` : values.nats;
  return loadConfig({ natsUrl, prefix: values.prefix, logLevel: values["log-level"], credsFile: values.creds, tlsCa: values["tls-ca"], ...extra });
}
