import { execFileSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { isVulnerableNatsServerVersion, SAFE_NATS_SERVER_VERSION } from "../core/server-version.js";
import { findExecutable } from "./children.js";

/** Names the nats-server binary to use, overriding every other place. */
export const NATS_SERVER_ENV = "SB_NATS_SERVER";

/**
 * Where `npm run setup` puts a nats-server it fetched because the system's is older than
 * {@link SAFE_NATS_SERVER_VERSION} (kept in step with scripts/setup.sh).
 */
export function managedNatsServerPath(): string {
  const cache = process.env["XDG_CACHE_HOME"] || join(homedir(), ".cache");
  return join(cache, "switchboard", "nats-server", "nats-server");
}

export interface NatsServerBinary {
  readonly path: string;
  /** As `nats-server --version` prints it, without the leading `v`; undefined if it would not say. */
  readonly version: string | undefined;
  /** True when the version is known and older than {@link SAFE_NATS_SERVER_VERSION}. */
  readonly vulnerable: boolean;
}

/**
 * The nats-server to start: {@link NATS_SERVER_ENV} when set; else the system's when it is safe;
 * else the one setup fetched; else the system's all the same (the caller warns). Undefined when
 * there is none at all.
 */
export function findNatsServer(): NatsServerBinary | undefined {
  const chosen = process.env[NATS_SERVER_ENV];
  if (chosen) return describe(chosen);
  const system = findExecutable("nats-server");
  const systemBinary = system === undefined ? undefined : describe(system);
  if (systemBinary && !systemBinary.vulnerable) return systemBinary;
  const managed = managedNatsServerPath();
  if (isExecutable(managed)) return describe(managed);
  return systemBinary;
}

function describe(path: string): NatsServerBinary {
  const version = versionOf(path);
  return { path, version, vulnerable: version !== undefined && isVulnerableNatsServerVersion(version) };
}

function versionOf(path: string): string | undefined {
  try {
    const out = execFileSync(path, ["--version"], { encoding: "utf8", timeout: 10_000, stdio: ["ignore", "pipe", "ignore"] });
    return /v?(\d+\.\d+\.\d+\S*)/.exec(out)?.[1];
  } catch {
    return undefined;
  }
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
