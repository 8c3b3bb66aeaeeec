import { join } from "node:path";
import { dataDirFrom, PACKAGE_ROOT } from "../core/config.js";

/** The installed package's root (where nats.conf and bin/ live). */
export const PROJECT_ROOT = PACKAGE_ROOT;
export const BIN_PATH = join(PROJECT_ROOT, "bin", "switchboard.js");
export const NATS_CONF = join(PROJECT_ROOT, "nats.conf");
/** Credentials, logs and the demo's JetStream store (see {@link dataDirFrom}). */
export const DATA_DIR = dataDirFrom();
/** Whether nats.conf's relative paths (./data/…) point at {@link DATA_DIR}. */
export const DATA_DIR_IS_PROJECT_DATA = DATA_DIR === join(PROJECT_ROOT, "data");
export const LOG_DIR = join(DATA_DIR, "logs");
/** Where nats.conf has nats-server write its pid, for reloading it after users change. */
export const NATS_PID_FILE = join(DATA_DIR, "nats-server.pid");
/** The credentials directory nats.conf includes `accounts.conf` from. */
export const AUTH_DIR = join(DATA_DIR, "auth");

export const DEFAULT_NATS_PORT = 4222;

/** The client port of a local URL (4222 when it names none). */
export function portOf(url: string): number {
  const match = /:(\d+)$/.exec(url.trim());
  return match ? Number(match[1]) : DEFAULT_NATS_PORT;
}

/** The pid file of the server `up` starts on `port`, which `users`, `auth` and `up` signal to reload. */
export function natsPidFileFor(port: number): string {
  return port === DEFAULT_NATS_PORT ? NATS_PID_FILE : join(DATA_DIR, `nats-server-${port}.pid`);
}

/**
 * Where `up` on `port` keeps its processes' logs: `logs/` for the default port, `logs-<port>/`
 * for another, so that two demos side by side do not interleave their logs.
 */
export function logDirFor(port: number): string {
  return port === DEFAULT_NATS_PORT ? LOG_DIR : join(DATA_DIR, `logs-${port}`);
}
