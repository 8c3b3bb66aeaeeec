import { BUILTIN_AGENT_TYPES, builtinAgents } from "../../agents/builtin.js";
import { ROUTER_AGENT_TYPE } from "../../router/router-agent.js";
import { connectNats } from "../../core/connection.js";
import { CancelledError, ConfigError } from "../../core/errors.js";
import { createLogger } from "../../core/logging.js";
import { DEFAULT_RATE_LIMIT_PER_SEC, type SwitchboardConfig } from "../../core/config.js";
import type { NatsConnection } from "../../core/connection.js";
import { Role } from "../../core/roles.js";
import type { RateLimitOptions } from "../../worker/rate-limit.js";
import { Subjects } from "../../core/subjects.js";
import { Worker } from "../../worker/worker.js";
import { CLASSIFIER_HELP, CLASSIFIER_OPTIONS, classifierSettings, createClassifier } from "../classifier-options.js";
import { stopGracefully, untilShutdown } from "../lifecycle.js";
import { COMMON_HELP, configFrom, parse, warnOnStderr } from "../options.js";

export const WORKER_HELP = `Usage: switchboard worker [--agents ${BUILTIN_AGENT_TYPES.join(",")}] [options]

Runs agents. Registers their types with the host, binds their topic subscriptions to durable
consumers shared with every other worker of the same type, and heartbeats. Waits for a NATS
server that is not up yet (up to SB_CONNECT_WAIT_MS, default 60000). On SIGINT/SIGTERM it stops
taking messages, finishes those in flight, deregisters and exits 0 (without a server it stops at
once and leaves in-flight messages to redelivery).

Delivery (see docs/RELIABILITY.md):
  SB_ACK_WAIT_MS      how long the server waits for an ack before redelivering a message to
                      another worker (default 10000); in-progress acks every third of it keep a
                      slow handler's message
  SB_MAX_DELIVER      deliveries before a message becomes a dead letter (default 5)
  SB_AGENT_DELAY_MS   simulated work per message in the built-in task agents (default 0)

Options:
  --agents <list>     comma-separated agent types to run (default: all built-in: ${BUILTIN_AGENT_TYPES.join(",")})
  --id <id>           worker id (default: random)
  Per-user rate limit: SB_RATE_LIMIT messages per second to each agent type (0: none; default
  ${DEFAULT_RATE_LIMIT_PER_SEC} when the server requires credentials, none otherwise), bursts of SB_RATE_BURST (default 20).
${CLASSIFIER_HELP}
${COMMON_HELP}`;

export function parseAgentList(raw: string | undefined): string[] {
  if (raw === undefined) return [...BUILTIN_AGENT_TYPES];
  const names = raw.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (names.length === 0) throw new ConfigError(`--agents is empty; choose from ${BUILTIN_AGENT_TYPES.join(", ")}`);
  return [...new Set(names)];
}

/**
 * The per-user limit: as configured, or by default only where users are authenticated (on an open
 * server anyone can claim any user name, so a per-user limit would protect nothing).
 */
export function rateLimitFor(config: SwitchboardConfig, nc: NatsConnection): RateLimitOptions | undefined {
  const perSecond = config.rateLimitPerSec ?? (nc.info?.auth_required === true ? DEFAULT_RATE_LIMIT_PER_SEC : 0);
  return perSecond > 0 ? { perSecond, burst: config.rateBurst } : undefined;
}

export async function workerCommand(args: readonly string[]): Promise<number> {
  const { values } = parse("worker", args, { agents: { type: "string" }, id: { type: "string" }, ...CLASSIFIER_OPTIONS });
  if (values.help) {
    console.log(WORKER_HELP);
    return 0;
  }
  const config = configFrom(values);
  const names = parseAgentList(values.agents);
  const routing = classifierSettings(values);
  const router = names.includes(ROUTER_AGENT_TYPE) ? { classifier: createClassifier(routing) } : undefined;
  const agents = builtinAgents(names, { task: { delayMs: config.agentDelayMs }, ...(router ? { router } : {}) });
  const logger = createLogger("switchboard-worker", { level: config.logLevel });
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
  const rateLimit = rateLimitFor(config, nc);
  const worker = new Worker({
    nc,
    subjects: new Subjects(config.prefix),
    logger,
    agents,
    consumer: { ackWaitMs: config.ackWaitMs, maxDeliver: config.maxDeliver },
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
