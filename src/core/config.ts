import { homedir } from "node:os";
import { join, resolve, sep } from "node:path";
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
  /**
   * How long the chat waits for an answer to one message. `--timeout` / `SB_REPLY_TIMEOUT_MS`.
   * Keep it above twice {@link ackWaitMs} plus the slowest handler: a turn whose worker died is
   * redelivered after one ack wait and must still be answered within it (docs/RELIABILITY.md).
   */
  readonly replyTimeoutMs: number;
  /** Replicas of streams and buckets the host creates (3 on a cluster). `SB_REPLICAS`. */
  readonly replicas: number;
  /**
   * How long the server waits for a worker's ack before redelivering elsewhere. `SB_ACK_WAIT_MS`.
   * Workers send in-progress acks every third of it while a handler runs, so it bounds how late
   * a dead worker's turn is, not how long a handler may take.
   */
  readonly ackWaitMs: number;
  /** Deliveries of a failing message before it goes to the dead-letter stream. `SB_MAX_DELIVER`. */
  readonly maxDeliver: number;
  /**
   * How long a stopping worker lets the turns in flight finish before handing them back to be
   * answered by another worker from the start. `SB_DRAIN_TIMEOUT_MS`.
   */
  readonly drainTimeoutMs: number;
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
   * How long a host or worker that starts before its server keeps trying to connect before it gives
   * up; 0 fails at once. Once connected, every process reconnects forever. `SB_CONNECT_WAIT_MS`.
   */
  readonly connectWaitMs: number;
  /**
   * Messages a worker handles at once per agent type (per subscription). A worker answers about
   * `concurrency / reply time` turns per second. `--concurrency` / `SB_CONCURRENCY`.
   */
  readonly concurrency: number;
}

export const DEFAULT_RATE_LIMIT_PER_SEC = 10;

/** The root of this package: a checkout, or the copy npm installed. */
export const PACKAGE_ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));

/**
 * Where credentials, logs and the demo's JetStream store live: `SB_DATA_DIR`; else a checkout's
 * own `data/`; else, for a package npm installed, `$XDG_DATA_HOME/switchboard` (by default
 * `~/.local/share/switchboard`), because npm replaces everything under node_modules on the next
 * install and would take the credentials and the stored conversations with it.
 */
export function dataDirFrom(env: Env = process.env, packageRoot: string = PACKAGE_ROOT): string {
  if (env.SB_DATA_DIR) return resolve(env.SB_DATA_DIR);
  if (!packageRoot.split(sep).includes("node_modules")) return join(packageRoot, "data");
  return join(env.XDG_DATA_HOME || join(env.HOME || homedir(), ".local", "share"), "switchboard");
}

export const DEFAULT_CONFIG: SwitchboardConfig = {
  natsUrl: "nats://127.0.0.1:4222",
  prefix: "sb",
  logLevel: "info",
  heartbeatIntervalMs: 2_000,
  workerTtlMs: 10_000,
  replyTimeoutMs: 60_000,
  replicas: 1,
  ackWaitMs: 10_000,
  maxDeliver: 5,
  drainTimeoutMs: 30_000,
  agentDelayMs: 0,
  credsFile: "",
  authDir: join(dataDirFrom(), "auth"),
  tlsCa: "",
  tlsCert: "",
  tlsKey: "",
  rateLimitPerSec: undefined,
  rateBurst: 20,
  connectWaitMs: 60_000,
  concurrency: 64,
};

/** Most messages one worker may hold unacknowledged per agent type (the consumer's max_ack_pending). */
export const MAX_CONCURRENCY = 10_000;

type StringSetting = { [K in keyof SwitchboardConfig]: SwitchboardConfig[K] extends string ? K : never }[keyof SwitchboardConfig];
type IntSetting = Exclude<{ [K in keyof SwitchboardConfig]: SwitchboardConfig[K] extends number ? K : never }[keyof SwitchboardConfig], undefined>;

export type ConfigFlags = Partial<Record<keyof SwitchboardConfig, string | number | undefined>>;
type Env = Readonly<Record<string, string | undefined>>;

/** The environment variable of each setting. */
export const ENV_NAMES: Readonly<Record<keyof SwitchboardConfig, string>> = {
  natsUrl: "NATS_URL",
  prefix: "SB_PREFIX",
  logLevel: "LOG_LEVEL",
  heartbeatIntervalMs: "SB_HEARTBEAT_MS",
  workerTtlMs: "SB_WORKER_TTL_MS",
  replyTimeoutMs: "SB_REPLY_TIMEOUT_MS",
  replicas: "SB_REPLICAS",
  ackWaitMs: "SB_ACK_WAIT_MS",
  maxDeliver: "SB_MAX_DELIVER",
  drainTimeoutMs: "SB_DRAIN_TIMEOUT_MS",
  agentDelayMs: "SB_AGENT_DELAY_MS",
  credsFile: "SB_CREDS",
  authDir: "SB_AUTH_DIR",
  tlsCa: "SB_TLS_CA",
  tlsCert: "SB_TLS_CERT",
  tlsKey: "SB_TLS_KEY",
  rateLimitPerSec: "SB_RATE_LIMIT",
  rateBurst: "SB_RATE_BURST",
  connectWaitMs: "SB_CONNECT_WAIT_MS",
  concurrency: "SB_CONCURRENCY",
};

/** pino's levels. */
const LOG_LEVELS: readonly string[] = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

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
    drainTimeoutMs: int("drainTimeoutMs", 0),
    agentDelayMs: int("agentDelayMs", 0),
    credsFile: str("credsFile"),
    authDir: String(pick("authDir") ?? join(dataDirFrom(env), "auth")),
    tlsCa: str("tlsCa"),
    tlsCert: str("tlsCert"),
    tlsKey: str("tlsKey"),
    rateLimitPerSec: pick("rateLimitPerSec") === undefined ? undefined : positiveInt(ENV_NAMES.rateLimitPerSec, pick("rateLimitPerSec") ?? 0, 0),
    rateBurst: int("rateBurst"),
    connectWaitMs: int("connectWaitMs", 0),
    concurrency: int("concurrency"),
  };
  if (config.workerTtlMs <= config.heartbeatIntervalMs) {
    throw new ConfigError(`SB_WORKER_TTL_MS (${config.workerTtlMs}) must be longer than SB_HEARTBEAT_MS (${config.heartbeatIntervalMs})`);
  }
  if ((config.tlsCert === "") !== (config.tlsKey === "")) throw new ConfigError("SB_TLS_CERT and SB_TLS_KEY go together: set both for a client certificate, or neither");
  if (config.concurrency > MAX_CONCURRENCY) throw new ConfigError(`SB_CONCURRENCY must be at most ${MAX_CONCURRENCY}, got ${config.concurrency}`);
  if (config.replicas > 5) throw new ConfigError(`SB_REPLICAS must be between 1 and 5, got ${config.replicas}`);
  if (!LOG_LEVELS.includes(config.logLevel)) throw new ConfigError(`--log-level (LOG_LEVEL) must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(config.logLevel)}`);
  return config;
}

/** Server URLs as nats.js wants them. */
export function natsServers(config: SwitchboardConfig): string[] {
  return config.natsUrl.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}

/** Which OpenTelemetry signals to export, from the standard `OTEL_*` variables. */
export interface TelemetrySettings {
  readonly traces: boolean;
  readonly metrics: boolean;
  /** How often metrics are exported. `OTEL_METRIC_EXPORT_INTERVAL` (ms), default 60 s as in the SDKs. */
  readonly metricExportIntervalMs: number;
}

function otelSignalOn(env: Env, exporterVar: string, endpointVar: string): boolean {
  const exporters = (env[exporterVar] ?? "").split(",").map((s) => s.trim().toLowerCase()).filter((s) => s !== "");
  if (exporters.includes("none")) return false;
  if (exporters.includes("otlp")) return true;
  // Unlike the SDK's own default (always otlp), nothing is exported unless a collector is named:
  // a process without one pays nothing for telemetry.
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env[endpointVar]);
}

/**
 * Traces and metrics are exported over OTLP/HTTP when an endpoint is configured
 * (`OTEL_EXPORTER_OTLP_ENDPOINT`, or the per-signal `…_TRACES_ENDPOINT` / `…_METRICS_ENDPOINT`) or
 * the exporter is named (`OTEL_TRACES_EXPORTER=otlp`, `OTEL_METRICS_EXPORTER=otlp`);
 * `OTEL_SDK_DISABLED=true` or an exporter of `none` turns a signal off. The SDK reads the rest
 * (service name, sampler, batching, headers) from the environment itself.
 */
export function telemetrySettings(env: Env = process.env): TelemetrySettings {
  const interval = env.OTEL_METRIC_EXPORT_INTERVAL ? positiveInt("OTEL_METRIC_EXPORT_INTERVAL", env.OTEL_METRIC_EXPORT_INTERVAL, 100) : 60_000;
  if ((env.OTEL_SDK_DISABLED ?? "").trim().toLowerCase() === "true") return { traces: false, metrics: false, metricExportIntervalMs: interval };
  return {
    traces: otelSignalOn(env, "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
    metrics: otelSignalOn(env, "OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"),
    metricExportIntervalMs: interval,
  };
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
