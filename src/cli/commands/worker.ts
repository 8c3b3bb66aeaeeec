import { BUILTIN_AGENT_TYPES, builtinAgents } from "../../agents/builtin.js";
import { loadAgentsFile, type LlmAgentConfig } from "../../agents/llm/agents-file.js";
import { llmAgent } from "../../agents/llm/llm-agent.js";
import { chatCompletionsUrl, displayUrl } from "../../agents/llm/chat-completions.js";
import { ROUTER_AGENT_TYPE } from "../../router/router-agent.js";
import { connectNats, logConnectionChanges } from "../../core/connection.js";
import { CancelledError, ConfigError } from "../../core/errors.js";
import { createLogger } from "../../core/logging.js";
import { DEFAULT_CONFIG, DEFAULT_RATE_LIMIT_PER_SEC } from "../../core/config.js";
import { Role } from "../../core/roles.js";
import { rateLimitFor } from "../../worker/rate-limit.js";
import { Subjects } from "../../core/subjects.js";
import { Worker } from "../../worker/worker.js";
import type { AgentTypeDefinition } from "../../worker/agent.js";
import type { AnyAgentDefinition } from "../../agents/define-agent-runtime.js";
import { loadAgentModules, type ModuleAgent } from "../agent-modules.js";
import { CLASSIFIER_HELP, CLASSIFIER_OPTIONS, classifierSettings, createClassifier } from "../classifier-options.js";
import { stopGracefully, untilShutdown } from "../lifecycle.js";
import { COMMON_HELP, configFrom, parse, warnOnStderr } from "../options.js";

export const WORKER_HELP = `Usage: switchboard worker [--agents ${BUILTIN_AGENT_TYPES.join(",")}] [--module ./agents.js] [options]

Runs agents. Registers their types with the host, binds their topic subscriptions to durable
consumers shared with every other worker of the same type, and heartbeats. Waits for a NATS
server that is not up yet (up to SB_CONNECT_WAIT_MS, default 60000). On SIGINT/SIGTERM/SIGHUP it stops
taking messages, finishes those in flight (for up to SB_DRAIN_TIMEOUT_MS; the rest are answered
by another worker from the start), deregisters and exits 0 (without a server it stops at once
and leaves in-flight messages to redelivery).

Delivery (see docs/RELIABILITY.md):
  SB_ACK_WAIT_MS      how long the server waits for an ack before redelivering a message to
                      another worker (default 10000); in-progress acks every third of it keep a
                      slow handler's message
  SB_MAX_DELIVER      deliveries before a message becomes a dead letter (default 5)
  SB_DRAIN_TIMEOUT_MS how long a stopping worker lets turns in flight finish (default 30000); set
                      it above your slowest agent's time-out for rolling restarts without re-runs
  SB_AGENT_DELAY_MS   simulated work per message in the built-in task agents (default 0)

Options:
  --agents <list>     comma-separated agent types to run (default: all built-in: ${BUILTIN_AGENT_TYPES.join(",")},
                      and every agent of the --module files and --agents-file)
  --module <file>     an ES module whose exports (default or named) are agents made with defineAgent
                      from "switchboard"; run beside the built-in ones. Repeatable. Paths are relative
                      to the working directory.
  --concurrency <n>   messages handled at once per agent type (env SB_CONCURRENCY, default ${DEFAULT_CONFIG.concurrency}); a worker
                      answers about n / (reply time in s) turns per second
  --id <id>           worker id (default: random)
  --agents-file <f>   agents answered by a language model, from a JSON or YAML file (see
                      examples/llm-agents); they run beside the built-in ones, and an agent of the
                      file with a built-in's type (hr, finance) replaces it
  Per-user rate limit: SB_RATE_LIMIT messages per second to each agent type (0: none; default
  ${DEFAULT_RATE_LIMIT_PER_SEC} when the server requires credentials, none otherwise), bursts of SB_RATE_BURST (default 20).
${CLASSIFIER_HELP}
${COMMON_HELP}`;

export function parseAgentList(raw: string | undefined, available: readonly string[]): string[] {
  if (raw === undefined) return [...available];
  const names = raw.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (names.length === 0) throw new ConfigError(`--agents is empty; choose from ${available.join(", ")}`);
  return [...new Set(names)];
}

/** The agents a worker runs: `--agents` picks among the built-in ones and those of `--module`. */
function selectAgents(names: readonly string[], moduleAgents: readonly ModuleAgent[], builtin: (names: readonly string[]) => AgentTypeDefinition[]): AnyAgentDefinition[] {
  const unknown = names.filter((n) => !BUILTIN_AGENT_TYPES.includes(n) && !moduleAgents.some((a) => a.type === n));
  if (unknown.length > 0) {
    const fromModules = moduleAgents.length > 0 ? `; from --module: ${moduleAgents.map((a) => a.type).join(", ")}` : " (load your own with --module ./agents.js)";
    throw new ConfigError(`unknown agent type "${unknown[0]}"; built-in agent types are: ${BUILTIN_AGENT_TYPES.join(", ")}${fromModules}`);
  }
  return names.map((name) => moduleAgents.find((a) => a.type === name)?.definition ?? builtin([name])[0]!);
}

/**
 * The agents of an agents file, in the form `--module` agents take. They may replace a built-in
 * agent (hr, finance), but not share a type with a module's agent: which one runs would be a guess.
 */
function fileAgentsBeside(file: string | undefined, configs: readonly LlmAgentConfig[], moduleAgents: readonly ModuleAgent[]): ModuleAgent[] {
  return configs.map((config, i) => {
    const clash = moduleAgents.find((a) => a.type === config.type);
    if (clash) throw new ConfigError(`${file}: agents[${i}] (${config.type}): agent type "${config.type}" is also exported by ${clash.module} (${clash.exportName}); rename one of them`);
    return { type: config.type, definition: llmAgent(config), module: file ?? "", exportName: `agents[${i}]` };
  });
}

export { rateLimitFor } from "../../worker/rate-limit.js";

export async function workerCommand(args: readonly string[]): Promise<number> {
  const { values } = parse("worker", args, { agents: { type: "string" }, module: { type: "string", multiple: true }, concurrency: { type: "string" }, id: { type: "string" }, "agents-file": { type: "string" }, ...CLASSIFIER_OPTIONS });
  if (values.help) {
    console.log(WORKER_HELP);
    return 0;
  }
  const config = configFrom(values, { concurrency: values.concurrency });
  const moduleAgents = await loadAgentModules(values.module ?? [], { cwd: process.cwd(), reserved: BUILTIN_AGENT_TYPES });
  const agentsFile = values["agents-file"];
  const fileConfigs = agentsFile ? loadAgentsFile(agentsFile) : [];
  const fileAgents = fileAgentsBeside(agentsFile, fileConfigs, moduleAgents);
  const names = parseAgentList(values.agents, [...new Set([...BUILTIN_AGENT_TYPES, ...moduleAgents.map((a) => a.type), ...fileAgents.map((a) => a.type)])]);
  const routing = classifierSettings(values);
  const router = names.includes(ROUTER_AGENT_TYPE) ? { classifier: createClassifier(routing) } : undefined;
  // File agents come first: one with a built-in's type replaces the built-in.
  const agents = selectAgents(names, [...fileAgents, ...moduleAgents], (builtin) => builtinAgents(builtin, { task: { delayMs: config.agentDelayMs }, ...(router ? { router } : {}) }));
  const logger = createLogger("switchboard-worker", { level: config.logLevel });
  if (agentsFile) {
    // Where each model is and which variable holds its key; never the key.
    const models = fileConfigs.filter((c) => names.includes(c.type)).map((c) => ({ type: c.type, model: c.model.model, url: displayUrl(chatCompletionsUrl(c.model.url)), apiKeyEnv: c.model.apiKeyEnv ?? null }));
    logger.info({ event: "worker.llm_agents", file: agentsFile, models }, `${models.length} agent(s) on a language model`);
  }
  const startAbort = new AbortController();
  const shutdown = untilShutdown();
  void shutdown.then(() => startAbort.abort());
  let nc;
  try {
    nc = await connectNats(config, { name: "switchboard-worker", role: Role.Worker, warn: warnOnStderr, waitMs: config.connectWaitMs, onWait: (m) => logger.warn({ event: "worker.waiting_for_nats" }, m), signal: startAbort.signal });
  } catch (err) {
    if (err instanceof CancelledError) return 0;
    throw err;
  }
  logConnectionChanges(nc, logger);
  const rateLimit = rateLimitFor(config, nc);
  const worker = new Worker({
    nc,
    subjects: new Subjects(config.prefix),
    logger,
    agents,
    consumer: { ackWaitMs: config.ackWaitMs, maxDeliver: config.maxDeliver, concurrency: config.concurrency },
    drainTimeoutMs: config.drainTimeoutMs,
    rateLimit,
    ...(values.id ? { workerId: values.id } : {}),
  });
  try {
    await worker.start(startAbort.signal);
    logger.info({ event: "worker.rate_limit", perSecond: rateLimit?.perSecond ?? 0, burst: rateLimit?.burst ?? 0 }, rateLimit ? "per-user rate limit on" : "no per-user rate limit");
  } catch (err) {
    if (startAbort.signal.aborted) {
      await stopGracefully(nc, () => worker.close(), logger);
      return 0;
    }
    throw err;
  }
  const why = await shutdown;
  logger.info({ event: "worker.signal", signal: why }, "shutting down");
  await stopGracefully(nc, () => worker.close(), logger);
  return 0;
}
