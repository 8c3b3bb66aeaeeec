import { ConfigError, errorMessage, InvalidIdError, SwitchboardError } from "../core/errors.js";
import { startTelemetry } from "../core/telemetry/sdk.js";
import { adminCommand } from "./commands/admin.js";
import { chatCommand } from "./commands/chat.js";
import { hostCommand } from "./commands/host.js";
import { logsCommand } from "./commands/logs.js";
import { routeCommand } from "./commands/route.js";
import { upCommand } from "./commands/up.js";
import { sanitizeForTerminal } from "./terminal.js";
import { didYouMean } from "./suggest.js";
import { PROJECT_ROOT } from "./paths.js";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { authCommand, usersCommand } from "./commands/users.js";
import { workerCommand } from "./commands/worker.js";

const COMMANDS: Record<string, (args: readonly string[]) => Promise<number>> = {
  up: upCommand,
  host: hostCommand,
  worker: workerCommand,
  chat: chatCommand,
  admin: adminCommand,
  route: routeCommand,
  users: usersCommand,
  auth: authCommand,
  logs: logsCommand,
};

export const MAIN_HELP = `Switchboard: a distributed agent runtime on NATS.

Usage: switchboard <command> [options]

Commands:
  up                  one-terminal demo: nats-server (if none is running), host, worker, chat
  host                run the control plane (registry, session state, admin queries)
  worker              run agents (--agents router,user_proxy,hr,finance)
  chat                chat in the terminal (JSON lines when not a terminal, or with --json)
  admin               query the registry, sessions, dead letters and learned routing: agents |
                      workers | sessions | session <id> | dead-letters | replay <seq> | stats |
                      watch | routing
  route               show where the router would send messages, and why (--profiles FILE or live)
  users               chat users and their credentials: add NAME | remove NAME | rotate NAME | list
  auth                credentials of the services: init | rotate ROLE | reload
  logs                the logs of what \`up\` started: host | worker | nats (latest run)

Exit codes: 0 success, 1 failure at run time, 2 wrong usage. \`switchboard --version\` prints the version.

Every command takes --nats <url> (or NATS_URL) and --creds <file> (or SB_CREDS; by default its
role's credentials in the auth directory, when there are any). Run \`switchboard <command> --help\` for details.`;

/** This package's version, from its package.json. */
export function version(): string {
  const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, "package.json"), "utf8")) as { version?: string };
  return pkg.version ?? "unknown";
}

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === "help" || command === "--help" || command === "-h") {
    console.log(MAIN_HELP);
    return command ? 0 : 2;
  }
  if (command === "--version" || command === "-V" || command === "version") {
    console.log(`switchboard ${version()} (Node.js ${process.versions.node})`);
    return 0;
  }
  const run = COMMANDS[command];
  if (!run) {
    const guess = didYouMean(command, Object.keys(COMMANDS));
    const hint = guess ? `; did you mean \`switchboard ${guess}\`?` : "";
    process.stderr.write(`switchboard: unknown command "${sanitizeForTerminal(command)}"${hint}\n\n${MAIN_HELP}\n`);
    return 2;
  }
  // OpenTelemetry export, when OTEL_* variables ask for it (docs/OBSERVABILITY.md).
  const telemetry = await startTelemetry(`switchboard-${command}`);
  try {
    return await run(rest);
  } finally {
    await telemetry.shutdown();
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  const prefix = "switchboard: ";
  if (err instanceof SwitchboardError) {
    // Messages may carry text from the far side of a request.
    process.stderr.write(`${prefix}${sanitizeForTerminal(err.message)}\n`);
    // A malformed name or id given on the command line is wrong usage, like a bad flag.
    process.exitCode = err instanceof ConfigError || err instanceof InvalidIdError ? 2 : 1;
  } else {
    process.stderr.write(`${prefix}unexpected error: ${sanitizeForTerminal(errorMessage(err))}\n${err instanceof Error ? sanitizeForTerminal(err.stack ?? "") : ""}\n`);
    process.exitCode = 1;
  }
}
// Leave even if a library still holds a handle; every command has closed what it opened by now.
process.exit();
