import { ConfigError } from "./errors.js";

/**
 * Settings shared by every process. Read once, from flags first and then the environment, so no
 * other module touches `process.env`.
 */
export interface SwitchboardConfig {
  /** NATS server URL(s), comma-separated. `--nats` / `NATS_URL`. */
  readonly natsUrl: string;
  /** Subject prefix. `--prefix` / `SB_PREFIX`. */
  readonly prefix: string;
  /** pino level. `--log-level` / `LOG_LEVEL`. */
  readonly logLevel: string;
  /** How often a worker heartbeats. `SB_HEARTBEAT_MS`. */
  readonly heartbeatIntervalMs: number;
  /** A worker silent this long is expired by the host. `SB_WORKER_TTL_MS`. */
  readonly workerTtlMs: number;
  /** How long the chat waits for an answer to one message. `--timeout` / `SB_REPLY_TIMEOUT_MS`. */
  readonly replyTimeoutMs: number;
  /** Replicas of streams and buckets the host creates (3 on a cluster). `SB_REPLICAS`. */
  readonly replicas: number;
  /** How long the server waits for a worker's ack before redelivering elsewhere. `SB_ACK_WAIT_MS`. */
  readonly ackWaitMs: number;
  /** Deliveries of a failing message before it goes to the dead-letter stream. `SB_MAX_DELIVER`. */
  readonly maxDeliver: number;
  /** Simulated work per message in the built-in task agents (demos and failure tests). `SB_AGENT_DELAY_MS`. */
  readonly agentDelayMs: number;
}

export const DEFAULT_CONFIG: SwitchboardConfig = {
  natsUrl: "nats://127.0.0.1:4222",
  prefix: "sb",
  logLevel: "info",
  heartbeatIntervalMs: 2_000,
  workerTtlMs: 10_000,
  replyTimeoutMs: 30_000,
  replicas: 1,
  ackWaitMs: 30_000,
  maxDeliver: 5,
  agentDelayMs: 0,
};

export type ConfigFlags = Partial<Record<keyof SwitchboardConfig, string | number | undefined>>;
type Env = Readonly<Record<string, string | undefined>>;

const ENV_NAMES: Record<keyof SwitchboardConfig, string> = {
  natsUrl: "NATS_URL",
  prefix: "SB_PREFIX",
  logLevel: "LOG_LEVEL",
  heartbeatIntervalMs: "SB_HEARTBEAT_MS",
  workerTtlMs: "SB_WORKER_TTL_MS",
  replyTimeoutMs: "SB_REPLY_TIMEOUT_MS",
  replicas: "SB_REPLICAS",
  ackWaitMs: "SB_ACK_WAIT_MS",
  maxDeliver: "SB_MAX_DELIVER",
  agentDelayMs: "SB_AGENT_DELAY_MS",
};

function positiveInt(name: string, raw: string | number, min = 1): number {
  const n = typeof raw === "number" ? raw : Number(raw);
  if (!Number.isInteger(n) || n < min) throw new ConfigError(`${name} must be an integer of at least ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

/** Merges defaults, environment and flags (flags win) and rejects bad values early. */
export function loadConfig(flags: ConfigFlags = {}, env: Env = process.env): SwitchboardConfig {
  const pick = (key: keyof SwitchboardConfig): string | number | undefined => {
    const fromFlag = flags[key];
    if (fromFlag !== undefined && fromFlag !== "") return fromFlag;
    const fromEnv = env[ENV_NAMES[key]];
    return fromEnv !== undefined && fromEnv !== "" ? fromEnv : undefined;
  };
  const str = (key: "natsUrl" | "prefix" | "logLevel"): string => String(pick(key) ?? DEFAULT_CONFIG[key]);
  const int = (key: "heartbeatIntervalMs" | "workerTtlMs" | "replyTimeoutMs" | "replicas" | "ackWaitMs" | "maxDeliver" | "agentDelayMs", min = 1): number => {
    const raw = pick(key);
    return raw === undefined ? DEFAULT_CONFIG[key] : positiveInt(ENV_NAMES[key], raw, min);
  };
  const config: SwitchboardConfig = {
    natsUrl: str("natsUrl"),
    prefix: str("prefix"),
    logLevel: str("logLevel"),
    heartbeatIntervalMs: int("heartbeatIntervalMs"),
    workerTtlMs: int("workerTtlMs"),
    replyTimeoutMs: int("replyTimeoutMs"),
    replicas: int("replicas"),
    ackWaitMs: int("ackWaitMs", 500),
    maxDeliver: int("maxDeliver"),
    agentDelayMs: int("agentDelayMs", 0),
  };
  if (config.workerTtlMs <= config.heartbeatIntervalMs) {
    throw new ConfigError(`SB_WORKER_TTL_MS (${config.workerTtlMs}) must be longer than SB_HEARTBEAT_MS (${config.heartbeatIntervalMs})`);
  }
  if (config.replicas > 5) throw new ConfigError(`SB_REPLICAS must be between 1 and 5, got ${config.replicas}`);
  return config;
}

/** Server URLs as nats.js wants them. */
export function natsServers(config: SwitchboardConfig): string[] {
  return config.natsUrl.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}
