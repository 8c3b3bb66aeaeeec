import { fileURLToPath } from "node:url";
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
  /**
   * NATS credentials file (an NKey seed) to connect with. `--creds` / `SB_CREDS`. Empty: each
   * command uses its role's file in {@link authDir} when there is one, and none otherwise.
   */
  readonly credsFile: string;
  /** Where `switchboard auth` and `users` keep credentials and the server's user list. `SB_AUTH_DIR`. */
  readonly authDir: string;
  /** CA certificate that signed the server's TLS certificate. `--tls-ca` / `SB_TLS_CA`. */
  readonly tlsCa: string;
  /** Client certificate and key, for servers that verify clients. `SB_TLS_CERT`, `SB_TLS_KEY`. */
  readonly tlsCert: string;
  readonly tlsKey: string;
  /**
   * Messages per second each user may send to one agent type in one worker; 0 disables the limit.
   * `SB_RATE_LIMIT`. Unset: {@link DEFAULT_RATE_LIMIT_PER_SEC} when the server requires credentials,
   * off on an open server (where user names are not authenticated, so a per-user limit means nothing).
   */
  readonly rateLimitPerSec: number | undefined;
  /** Messages a user may send at once before the rate applies. `SB_RATE_BURST`. */
  readonly rateBurst: number;
  /**
   * Messages a worker handles at once per agent type (per subscription). A worker answers about
   * `concurrency / reply time` turns per second. `--concurrency` / `SB_CONCURRENCY`.
   */
  readonly concurrency: number;
}

export const DEFAULT_RATE_LIMIT_PER_SEC = 10;

/** The checkout's (or installed package's) `data/auth`, next to `nats.conf` which includes it. */
const DEFAULT_AUTH_DIR = fileURLToPath(new URL("../../data/auth", import.meta.url));

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
  credsFile: "",
  authDir: DEFAULT_AUTH_DIR,
  tlsCa: "",
  tlsCert: "",
  tlsKey: "",
  rateLimitPerSec: undefined,
  rateBurst: 20,
  concurrency: 64,
};

/** Most messages one worker may hold unacknowledged per agent type (the consumer's max_ack_pending). */
export const MAX_CONCURRENCY = 10_000;

type StringSetting = { [K in keyof SwitchboardConfig]: SwitchboardConfig[K] extends string ? K : never }[keyof SwitchboardConfig];
type IntSetting = Exclude<{ [K in keyof SwitchboardConfig]: SwitchboardConfig[K] extends number ? K : never }[keyof SwitchboardConfig], undefined>;

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
  credsFile: "SB_CREDS",
  authDir: "SB_AUTH_DIR",
  tlsCa: "SB_TLS_CA",
  tlsCert: "SB_TLS_CERT",
  tlsKey: "SB_TLS_KEY",
  rateLimitPerSec: "SB_RATE_LIMIT",
  rateBurst: "SB_RATE_BURST",
  concurrency: "SB_CONCURRENCY",
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
  const str = (key: StringSetting): string => String(pick(key) ?? DEFAULT_CONFIG[key]);
  const int = (key: IntSetting, min = 1): number => {
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
    credsFile: str("credsFile"),
    authDir: str("authDir"),
    tlsCa: str("tlsCa"),
    tlsCert: str("tlsCert"),
    tlsKey: str("tlsKey"),
    rateLimitPerSec: pick("rateLimitPerSec") === undefined ? undefined : positiveInt(ENV_NAMES.rateLimitPerSec, pick("rateLimitPerSec") ?? 0, 0),
    rateBurst: int("rateBurst"),
    concurrency: int("concurrency"),
  };
  if (config.workerTtlMs <= config.heartbeatIntervalMs) {
    throw new ConfigError(`SB_WORKER_TTL_MS (${config.workerTtlMs}) must be longer than SB_HEARTBEAT_MS (${config.heartbeatIntervalMs})`);
  }
  if ((config.tlsCert === "") !== (config.tlsKey === "")) throw new ConfigError("SB_TLS_CERT and SB_TLS_KEY go together: set both for a client certificate, or neither");
  if (config.concurrency > MAX_CONCURRENCY) throw new ConfigError(`SB_CONCURRENCY must be at most ${MAX_CONCURRENCY}, got ${config.concurrency}`);
  if (config.replicas > 5) throw new ConfigError(`SB_REPLICAS must be between 1 and 5, got ${config.replicas}`);
  return config;
}

/** Server URLs as nats.js wants them. */
export function natsServers(config: SwitchboardConfig): string[] {
  return config.natsUrl.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}

/**
 * The value of an environment variable that a configuration file names (an API key, say), so
 * that secrets stay out of files and this module stays the one that reads the environment.
 * Undefined when unset or empty.
 */
export function secretFromEnv(name: string, env: Env = process.env): string | undefined {
  const value = env[name];
  return value === undefined || value === "" ? undefined : value;
}
