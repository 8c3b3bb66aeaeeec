import * as clack from "@clack/prompts";
import { connectNats, type NatsConnection } from "../../core/connection.js";
import { ConfigError, errorMessage } from "../../core/errors.js";
import { createLogger } from "../../core/logging.js";
import { Subjects } from "../../core/subjects.js";
import type { SwitchboardConfig } from "../../core/config.js";
import { BUILTIN_PROFILES } from "../../agents/builtin.js";
import { HostClient } from "../../host/client.js";
import { findExecutable, startChild, stopChild, type Child } from "../children.js";
import { BIN_PATH, LOG_DIR, NATS_CONF, PROJECT_ROOT } from "../paths.js";
import { COMMON_HELP, configFrom, parse } from "../options.js";
import { defaultUser, runInteractiveChat, runJsonChat } from "./chat.js";

export const UP_HELP = `Usage: switchboard up [--user NAME] [options]

The one-terminal demo. Starts nats-server with ${NATS_CONF}
(unless a server already answers at --nats), a host and a worker with every built-in agent,
then the chat. Everything it started is stopped when you leave the chat.
Logs of the started processes go to ${LOG_DIR}/.

Options:
  --user <name>       who is chatting (default: your login name)
  --json              JSON lines chat (see \`switchboard chat --help\`)
${COMMON_HELP}`;

const READY_TIMEOUT_MS = 30_000;

function isLocal(url: string): boolean {
  return /^(nats:\/\/)?(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/.test(url.trim());
}

async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

async function tryConnect(config: SwitchboardConfig): Promise<NatsConnection | undefined> {
  try {
    return await connectNats(config, { name: "switchboard-up" });
  } catch {
    return undefined;
  }
}

async function startNats(config: SwitchboardConfig, children: Child[]): Promise<NatsConnection> {
  if (!isLocal(config.natsUrl)) throw new ConfigError(`no NATS server answers at ${config.natsUrl}, and \`up\` only starts one locally`);
  const binary = findExecutable("nats-server");
  if (!binary) {
    throw new ConfigError(
      "nats-server is not installed. Install it with `sudo apt-get install nats-server` (Debian/Ubuntu) or `brew install nats-server` (macOS), or run `npm start`, which installs it where it can.",
    );
  }
  const nats = startChild("nats-server", binary, ["-c", NATS_CONF], { cwd: PROJECT_ROOT });
  children.push(nats);
  for (let waited = 0; waited < 10_000; waited += 250) {
    if (nats.process.exitCode !== null) break;
    const nc = await tryConnect(config);
    if (nc) return nc;
    await sleep(250);
  }
  throw new ConfigError(`nats-server did not start; see ${nats.logFile}`);
}

async function waitForAgents(nc: NatsConnection, config: SwitchboardConfig, children: readonly Child[]): Promise<void> {
  const host = new HostClient(nc, new Subjects(config.prefix), 2_000);
  const wanted = BUILTIN_PROFILES.map((p) => p.type);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = "";
  while (Date.now() < deadline) {
    const dead = children.find((c) => c.process.exitCode !== null);
    if (dead) throw new ConfigError(`${dead.name} exited early; see ${dead.logFile}`);
    try {
      const agents = await host.agents();
      if (wanted.every((t) => agents.some((a) => a.spec?.type === t && a.available))) return;
    } catch (err) {
      last = errorMessage(err);
    }
    await sleep(250);
  }
  throw new ConfigError(`agents did not become available within ${READY_TIMEOUT_MS / 1000} s (${last}); see the logs in ${LOG_DIR}`);
}

export async function upCommand(args: readonly string[]): Promise<number> {
  const { values } = parse("up", args, { user: { type: "string" }, json: { type: "boolean" } });
  if (values.help) {
    console.log(UP_HELP);
    return 0;
  }
  const config = configFrom(values);
  const interactive = values.json !== true && process.stdin.isTTY === true && process.stdout.isTTY === true;
  const children: Child[] = [];
  const spin = interactive ? clack.spinner() : undefined;
  const progress = (m: string) => (spin ? spin.message(m) : process.stderr.write(`${m}\n`));
  spin?.start("Starting Switchboard");
  let nc: NatsConnection | undefined;
  try {
    progress(`Connecting to NATS at ${config.natsUrl}`);
    nc = (await tryConnect(config)) ?? (progress("Starting nats-server"), await startNats(config, children));
    const childEnv = { ...process.env, NATS_URL: config.natsUrl, SB_PREFIX: config.prefix, LOG_LEVEL: config.logLevel };
    progress("Starting host and worker");
    children.push(startChild("host", process.execPath, [BIN_PATH, "host"], { env: childEnv }));
    children.push(startChild("worker", process.execPath, [BIN_PATH, "worker"], { env: childEnv }));
    progress("Waiting for the agents to register");
    await waitForAgents(nc, config, children);
    spin?.stop(`Switchboard is up (logs in ${LOG_DIR})`);
    if (!interactive) process.stderr.write(`Switchboard is up (logs in ${LOG_DIR})\n`);
    const user = values.user ?? defaultUser();
    const logger = createLogger("switchboard-chat", { level: "warn" });
    return interactive ? await runInteractiveChat(nc, config, user, logger) : await runJsonChat(nc, config, user, logger);
  } catch (err) {
    spin?.stop("Could not start");
    throw err;
  } finally {
    await nc?.drain().catch(() => undefined);
    // Workers first (they deregister with the host), the server last.
    for (const child of [...children].reverse()) await stopChild(child);
  }
}
