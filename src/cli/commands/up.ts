import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { AuthenticationFailedError, connectNats, ConnectionFailedError, type NatsConnection } from "../../core/connection.js";
import { ConfigError, errorMessage, StartupFailedError } from "../../core/errors.js";
import type { NatsCredentials } from "../../core/credentials.js";
import { Role } from "../../core/roles.js";
import { createLogger } from "../../core/logging.js";
import { isVulnerableNatsServerVersion, vulnerableServerAdvice } from "../../core/server-version.js";
import { sleep } from "../../core/sleep.js";
import { Subjects } from "../../core/subjects.js";
import type { SwitchboardConfig } from "../../core/config.js";
import { BUILTIN_AGENT_TYPES, BUILTIN_PROFILES } from "../../agents/builtin.js";
import { USER_PROXY_AGENT_TYPE } from "../../agents/user-proxy.js";
import { ROUTER_AGENT_TYPE } from "../../router/router-agent.js";
import { loadAgentsFile } from "../../agents/llm/agents-file.js";
import { HostClient } from "../../host/client.js";
import { isRunning, runFilesFor, stopLeftovers, Supervisor, type Child } from "../children.js";
import { findNatsServer } from "../nats-server-binary.js";
import { natsConfigFor } from "../nats-config.js";
import { NoticeBoard } from "../chat-notices.js";
import { WaitIndicator } from "../chat-spinner.js";
import { AuthStore } from "../auth-store.js";
import { AUTH_DIR, BIN_PATH, DATA_DIR, DEFAULT_NATS_PORT, LOG_DIR, logDirFor, NATS_CONF, natsPidFileFor, portOf, PROJECT_ROOT } from "../paths.js";
import { COMMON_HELP, configFrom, parse, warnOnStderr } from "../options.js";
import { loadAgentModules } from "../agent-modules.js";
import { reloadNatsServer } from "../reload.js";
import { chatIdentity, leaveOnSignals, runInteractiveChat, runJsonChat } from "./chat.js";

export const UP_HELP = `Usage: switchboard up [--user NAME] [--port N] [--module FILE]... [--agents-file FILE] [--no-builtin-agents] [options]

The one-terminal demo. Starts nats-server with ${NATS_CONF}
(unless a server already answers at --nats: then it says so, and warns when that server lets
anyone in), a host and a worker with every built-in agent, then the chat. It owns what it
started: leaving the chat (Ctrl-C twice, at an empty prompt, or while an answer is awaited), SIGTERM, SIGHUP (the terminal
closing) or a crash stops all of it; a process that stops on its own meanwhile is reported in
the chat and started again.
Logs of the started processes go to ${LOG_DIR}/ (logs-<port>/ beside it for another --port; see
\`switchboard logs\`).

To run beside another server, give it another port: \`--port 14222\` or
\`--nats nats://127.0.0.1:14222\` starts nats-server on that port (monitoring on a free port,
JetStream data in ${join(DATA_DIR, "jetstream-14222")}).
Credentials, logs and JetStream data live in ${DATA_DIR} (env SB_DATA_DIR).

When it starts nats-server it first creates the credentials that nats.conf requires (in
${AUTH_DIR}/, owner-only: host, worker, admin, and a chat user for --user), so the bus it
starts accepts no one else. Each process it starts connects with its own role's credentials.

Options:
  --user <name>       who is chatting (default: your login name)
  --json              JSON lines chat (see \`switchboard chat --help\`)
  --agents-file <f>   the worker also runs the agents of this file, answered by a language
                      model (see \`switchboard worker --help\`); those with a built-in's type (hr,
                      finance) replace it. Checked before anything starts.
  --module <file>     the worker also runs the agents this ES module exports (made with
                      defineAgent, see \`switchboard worker --help\`). Repeatable. Loaded once
                      before anything starts, to check it.
  --no-builtin-agents the worker runs the router and the user proxy but not the demo's hr and
                      finance: only your agents (--module, --agents-file) answer
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
  const outcome = await reloadNatsServer(natsPidFileFor(portOf(config.natsUrl)));
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



async function startNats(config: SwitchboardConfig, supervisor: Supervisor, signal: AbortSignal): Promise<NatsConnection> {
  if (!isLocal(config.natsUrl)) throw new ConfigError(`no NATS server answers at ${config.natsUrl}, and \`up\` only starts one locally`);
  const binary = findNatsServer();
  if (!binary) {
    throw new StartupFailedError(
      "nats-server is not installed. Install it with `sudo apt-get install nats-server` (Debian/Ubuntu) or `brew install nats-server` (macOS), or run `npm start`, which installs it where it can.",
    );
  }
  const nats = supervisor.start({ name: "nats-server", command: binary.path, args: ["-c", natsConfigFor(portOf(config.natsUrl))], cwd: PROJECT_ROOT });
  for (let waited = 0; waited < 10_000; waited += 250) {
    if (!isRunning(nats)) break;
    const nc = await tryConnect(config);
    if (nc) return nc;
    await sleep(250, signal);
  }
  throw new StartupFailedError(`nats-server did not start at ${config.natsUrl}; see ${nats.logFile}`);
}

async function waitForAgents(nc: NatsConnection, config: SwitchboardConfig, children: () => readonly Child[], signal: AbortSignal, wanted: readonly string[]): Promise<void> {
  const host = new HostClient(nc, new Subjects(config.prefix), 2_000);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = "";
  while (Date.now() < deadline) {
    const dead = children().find((c) => !isRunning(c));
    if (dead) throw new StartupFailedError(`${dead.name} exited early; see ${dead.logFile}`);
    try {
      const agents = await host.agents();
      if (wanted.every((t) => agents.some((a) => a.spec?.type === t && a.available))) return;
    } catch (err) {
      last = errorMessage(err);
    }
    await sleep(250, signal);
  }
  throw new StartupFailedError(`agents did not become available within ${READY_TIMEOUT_MS / 1000} s (${last}); see the logs in ${logDirFor(portOf(config.natsUrl))}`);
}

export async function upCommand(args: readonly string[]): Promise<number> {
  const { values } = parse("up", args, {
    user: { type: "string" },
    json: { type: "boolean" },
    "agents-file": { type: "string" },
    module: { type: "string", multiple: true },
    "no-builtin-agents": { type: "boolean" },
  });
  if (values.help) {
    console.log(UP_HELP);
    return 0;
  }
  const config = configFrom(values);
  // The demo's worker serves hr and finance: agents on a model that replace them must run in that
  // worker, not in a second one beside it, which would share their messages with the built-in ones.
  // The file is checked here, so that a mistake in it stops `up` before anything starts.
  const agentsFile = values["agents-file"];
  const fileTypes = agentsFile !== undefined ? loadAgentsFile(agentsFile).map((a) => a.type) : [];
  // The same for modules; the worker, started in this directory, resolves them the same way.
  const modules = values.module ?? [];
  const moduleTypes = (await loadAgentModules(modules, { cwd: process.cwd(), reserved: BUILTIN_AGENT_TYPES })).map((a) => a.type);
  const ownTypes = [...new Set([...fileTypes, ...moduleTypes])];
  const builtinDemo = values["no-builtin-agents"] !== true;
  if (!builtinDemo && ownTypes.length === 0) throw new ConfigError("--no-builtin-agents needs --module or --agents-file: without them no agent would answer");
  const workerArgs = [
    ...(agentsFile !== undefined ? ["--agents-file", resolve(agentsFile)] : []),
    ...modules.flatMap((m) => ["--module", m]),
    ...(builtinDemo ? [] : ["--agents", [ROUTER_AGENT_TYPE, USER_PROXY_AGENT_TYPE, ...ownTypes].join(",")]),
  ];
  const wantedTypes = [...new Set([...(builtinDemo ? BUILTIN_PROFILES.map((p) => p.type) : []), ...ownTypes])];
  const { user, credentials } = chatIdentity(config, values.user);
  const interactive = values.json !== true && process.stdin.isTTY === true && process.stdout.isTTY === true;
  // From here on, every way out stops what `up` started: a signal, leaving the chat, an error, a crash.
  const leave = leaveOnSignals();
  mkdirSync(DATA_DIR, { recursive: true, mode: 0o700 });
  const runFile = join(DATA_DIR, `up-${portOf(config.natsUrl)}-${process.pid}.json`);
  const logDir = logDirFor(portOf(config.natsUrl));
  const supervisor = new Supervisor(runFile, logDir);
  const notices = new NoticeBoard();
  const spin = interactive ? new WaitIndicator() : undefined;
  const progress = (m: string) => (spin ? spin.message(m) : process.stderr.write(`${m}\n`));
  spin?.start("Starting Switchboard", () => leave.abort());
  let nc: NatsConnection | undefined;
  let chatNc: NatsConnection | undefined;
  try {
    const leftovers: string[] = [];
    for (const file of runFilesFor(DATA_DIR, portOf(config.natsUrl))) leftovers.push(...(await stopLeftovers(file)));
    if (leftovers.length > 0) progress(`Stopped what an earlier \`up\` on this port left running when it was killed: ${leftovers.join(", ")}`);
    progress(`Connecting to NATS at ${config.natsUrl}`);
    let userAdded = false;
    nc = await tryConnect(config);
    if (!nc) {
      prepareCredentials(config, user, progress);
      progress(`Starting nats-server on port ${portOf(config.natsUrl)}`);
      nc = await startNats(config, supervisor, leave.signal);
    } else {
      const open = nc.info?.auth_required !== true;
      const reuse = `Using the NATS server already running at ${config.natsUrl} (${nc.info?.server_name ?? "a server"} ${nc.info?.version ?? ""}); \`up\` did not start it and will not stop it. To start a separate one: \`switchboard up --port 14222\``;
      if (spin) spin.message("Found a running NATS server");
      if (spin) notices.post({ level: "info", text: reuse });
      else process.stderr.write(`${reuse}\n`);
      if (open) {
        const warning = `that server requires no credentials: anyone who reaches ${config.natsUrl} can read and write every conversation, and the per-user rate limit is off. Start the secured one with \`switchboard up --port 14222\` (or stop the open server).`;
        if (spin) notices.post({ level: "warn", text: `Warning: ${warning}` });
        else warnOnStderr(warning);
      } else userAdded = await addChatUser(config, user, progress);
    }
    const version = nc.info?.version ?? "";
    if (isVulnerableNatsServerVersion(version)) {
      const warning = vulnerableServerAdvice(version);
      if (spin) notices.post({ level: "warn", text: `Warning: ${warning}` });
      else warnOnStderr(warning);
    }
    // The children find their own credentials in the auth directory; the chat's are not theirs.
    const { SB_CREDS: _chatCredentials, ...inherited } = process.env;
    const childEnv = { ...inherited, NATS_URL: config.natsUrl, SB_PREFIX: config.prefix, LOG_LEVEL: config.logLevel, SB_AUTH_DIR: config.authDir, ...(config.tlsCa !== "" ? { SB_TLS_CA: config.tlsCa } : {}) };
    progress("Starting host and worker");
    supervisor.start({ name: "host", command: process.execPath, args: [BIN_PATH, "host"], env: childEnv, jsonLog: true, followsParent: true });
    supervisor.start({ name: "worker", command: process.execPath, args: [BIN_PATH, "worker", ...workerArgs], env: childEnv, jsonLog: true, followsParent: true });
    progress("Waiting for the agents to register");
    const watcher = nc;
    await waitForAgents(watcher, config, () => supervisor.children, leave.signal, wantedTypes);
    chatNc = await connectChat(config, user, credentials, userAdded);
    if (leave.signal.aborted) {
      spin?.stop("Stopped");
      return 0;
    }
    const where = `Started ${supervisor.children.map((c) => `${c.name} (pid ${c.process.pid ?? "?"})`).join(", ")}. Their logs are in ${logDir}/: \`switchboard logs worker${portOf(config.natsUrl) === DEFAULT_NATS_PORT ? "" : ` --port ${portOf(config.natsUrl)}`}\` shows this run's.`;
    spin?.stop("Switchboard is up");
    if (interactive) notices.post({ level: "info", text: where });
    else process.stderr.write(`Switchboard is up. ${where}\n`);
    supervisor.watch(
      (n) => notices.post(n),
      (name) => (name === "nats-server" ? Promise.resolve() : waitForAgents(watcher, config, () => [], leave.signal, wantedTypes)),
    );
    const logger = createLogger("switchboard-chat", { level: "warn" });
    const options = { signal: leave.signal, notices };
    return interactive ? await runInteractiveChat(chatNc, config, user, logger, options) : await runJsonChat(chatNc, config, user, logger, options);
  } catch (err) {
    spin?.stop(leave.signal.aborted ? "Stopped" : "Could not start", !leave.signal.aborted);
    if (leave.signal.aborted) return 0;
    throw err;
  } finally {
    const stopping = supervisor.children.some(isRunning);
    if (stopping) process.stderr.write("Stopping what `up` started…\n");
    const drain = (c: NatsConnection | undefined) => (c ? Promise.race([c.drain().catch(() => undefined), sleep(2_000)]) : Promise.resolve());
    await drain(chatNc);
    await drain(nc);
    // Workers first (they deregister with the host), the server last.
    await supervisor.stopAll();
    leave.dispose();
  }
}
