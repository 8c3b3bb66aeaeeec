import * as clack from "@clack/prompts";
import { resolve } from "node:path";
import { AuthenticationFailedError, connectNats, ConnectionFailedError, type NatsConnection } from "../../core/connection.js";
import { ConfigError, errorMessage } from "../../core/errors.js";
import type { NatsCredentials } from "../../core/credentials.js";
import { Role } from "../../core/roles.js";
import { createLogger } from "../../core/logging.js";
import { sleep } from "../../core/sleep.js";
import { Subjects } from "../../core/subjects.js";
import type { SwitchboardConfig } from "../../core/config.js";
import { BUILTIN_PROFILES } from "../../agents/builtin.js";
import { HostClient } from "../../host/client.js";
import { findExecutable, startChild, stopChild, type Child } from "../children.js";
import { AuthStore } from "../auth-store.js";
import { AUTH_DIR, BIN_PATH, LOG_DIR, NATS_CONF, NATS_PID_FILE, PROJECT_ROOT } from "../paths.js";
import { COMMON_HELP, configFrom, parse, warnOnStderr } from "../options.js";
import { reloadNatsServer } from "../reload.js";
import { chatIdentity, runInteractiveChat, runJsonChat } from "./chat.js";

export const UP_HELP = `Usage: switchboard up [--user NAME] [options]

The one-terminal demo. Starts nats-server with ${NATS_CONF}
(unless a server already answers at --nats), a host and a worker with every built-in agent,
then the chat. Everything it started is stopped when you leave the chat.
Logs of the started processes go to ${LOG_DIR}/.

When it starts nats-server it first creates the credentials that nats.conf requires (in
${AUTH_DIR}/, owner-only: host, worker, admin, and a chat user for --user), so the bus it
starts accepts no one else. Each process it starts connects with its own role's credentials.

Options:
  --user <name>       who is chatting (default: your login name)
  --json              JSON lines chat (see \`switchboard chat --help\`)
${COMMON_HELP}`;

const READY_TIMEOUT_MS = 30_000;

function isLocal(url: string): boolean {
  return /^(nats:\/\/)?(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/.test(url.trim());
}

/** A connection for watching the system come up, or undefined when no server answers. */
async function tryConnect(config: SwitchboardConfig): Promise<NatsConnection | undefined> {
  try {
    return await connectNats(config, { name: "switchboard-up", role: Role.Admin, warn: warnOnStderr });
  } catch (err) {
    // A server that answers but refuses us is not one to start another in place of.
    if (err instanceof ConnectionFailedError) return undefined;
    throw err;
  }
}

/** The credentials nats.conf requires, created before the server that reads them starts. */
function prepareCredentials(config: SwitchboardConfig, user: string, progress: (m: string) => void): void {
  if (resolve(config.authDir) !== resolve(AUTH_DIR)) {
    throw new ConfigError(`\`up\` starts nats-server with ${NATS_CONF}, which reads its users from ${AUTH_DIR}; unset SB_AUTH_DIR (now ${config.authDir}) or start your own server`);
  }
  const store = new AuthStore(config.authDir);
  const { created, permissionsUpdated } = store.init(config.prefix);
  if (created.length > 0) progress(`Created credentials in ${store.dir}`);
  else if (permissionsUpdated) progress(`Updated the roles' permissions in ${store.accountsFile}`);
  if (config.credsFile === "" && !store.hasUser(user)) store.addUser(user);
}

/**
 * A server that requires credentials is running (one that \`up\` started before, say) and the
 * chat user has none yet: create them and have the server re-read its users.
 */
async function addChatUser(config: SwitchboardConfig, user: string, progress: (m: string) => void): Promise<boolean> {
  const store = new AuthStore(config.authDir);
  if (!store.isInitialized()) return false;
  // A server started by an older version may hold permissions this version's processes outgrew.
  const permissionsUpdated = store.syncPermissions(config.prefix);
  const adding = config.credsFile === "" && !store.hasUser(user);
  if (adding) store.addUser(user);
  if (!adding && !permissionsUpdated) return false;
  const outcome = await reloadNatsServer(NATS_PID_FILE);
  const what = adding ? `Added chat user ${user}` : "Updated the roles' permissions";
  progress(outcome.reloaded ? what : `${what}, but ${outcome.reason}`);
  return adding;
}

/** The chat's own connection; right after a reload the server may not know the user for a moment. */
async function connectChat(config: SwitchboardConfig, user: string, credentials: NatsCredentials | undefined, retry: boolean): Promise<NatsConnection> {
  const deadline = Date.now() + (retry ? 5_000 : 0);
  for (;;) {
    try {
      return await connectNats(config, { name: `switchboard-chat-${user}`, role: Role.Client, user, ...(credentials ? { credentials } : {}), warn: warnOnStderr });
    } catch (err) {
      if (!(err instanceof AuthenticationFailedError) || Date.now() >= deadline) throw err;
      await sleep(250);
    }
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
  const { user, credentials } = chatIdentity(config, values.user);
  const interactive = values.json !== true && process.stdin.isTTY === true && process.stdout.isTTY === true;
  const children: Child[] = [];
  const spin = interactive ? clack.spinner() : undefined;
  const progress = (m: string) => (spin ? spin.message(m) : process.stderr.write(`${m}\n`));
  spin?.start("Starting Switchboard");
  let nc: NatsConnection | undefined;
  let chatNc: NatsConnection | undefined;
  try {
    progress(`Connecting to NATS at ${config.natsUrl}`);
    let userAdded = false;
    nc = await tryConnect(config);
    if (!nc) {
      prepareCredentials(config, user, progress);
      progress("Starting nats-server");
      nc = await startNats(config, children);
    } else if (nc.info?.auth_required === true) {
      userAdded = await addChatUser(config, user, progress);
    }
    // The children find their own credentials in the auth directory; the chat's are not theirs.
    const { SB_CREDS: _chatCredentials, ...inherited } = process.env;
    const childEnv = { ...inherited, NATS_URL: config.natsUrl, SB_PREFIX: config.prefix, LOG_LEVEL: config.logLevel, SB_AUTH_DIR: config.authDir, ...(config.tlsCa !== "" ? { SB_TLS_CA: config.tlsCa } : {}) };
    progress("Starting host and worker");
    children.push(startChild("host", process.execPath, [BIN_PATH, "host"], { env: childEnv }));
    children.push(startChild("worker", process.execPath, [BIN_PATH, "worker"], { env: childEnv }));
    progress("Waiting for the agents to register");
    await waitForAgents(nc, config, children);
    chatNc = await connectChat(config, user, credentials, userAdded);
    spin?.stop(`Switchboard is up (logs in ${LOG_DIR})`);
    if (!interactive) process.stderr.write(`Switchboard is up (logs in ${LOG_DIR})\n`);
    const logger = createLogger("switchboard-chat", { level: "warn" });
    return interactive ? await runInteractiveChat(chatNc, config, user, logger) : await runJsonChat(chatNc, config, user, logger);
  } catch (err) {
    spin?.stop("Could not start");
    throw err;
  } finally {
    await chatNc?.drain().catch(() => undefined);
    await nc?.drain().catch(() => undefined);
    // Workers first (they deregister with the host), the server last.
    for (const child of [...children].reverse()) await stopChild(child);
  }
}
