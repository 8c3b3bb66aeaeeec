import { existsSync } from "node:fs";
import { connect, errors as natsErrors, nkeyAuthenticator, type ConnectionOptions, type NatsConnection } from "@nats-io/transport-node";
import { natsServers, type SwitchboardConfig } from "./config.js";
import { credentialsPath, isExposed, readCredentialsFile, type NatsCredentials } from "./credentials.js";
import { CancelledError, SwitchboardError, ErrorCode, errorMessage } from "./errors.js";
import type { Logger } from "./logging.js";
import { Role } from "./roles.js";
import { sleep } from "./sleep.js";

export type { NatsConnection };

export class ConnectionFailedError extends SwitchboardError {
  override name = "ConnectionFailedError";
  constructor(
    readonly url: string,
    cause: unknown,
    hint = "Start one with `switchboard up`, or with nats-server and the configuration `switchboard auth init` names, or point --nats / NATS_URL at a running server.",
    /** The failure was the TLS handshake or certificate, not an absent server. */
    readonly tls = false,
  ) {
    super(ErrorCode.Connection, `cannot connect to NATS at ${url} (${errorMessage(cause)}). ${hint}`, { cause });
  }
}

/** The server did not accept the credentials (or their absence). */
export class AuthenticationFailedError extends SwitchboardError {
  override name = "AuthenticationFailedError";
  constructor(
    readonly url: string,
    message: string,
    cause: unknown,
  ) {
    super(ErrorCode.Unauthenticated, `NATS at ${url} refused the connection: ${message}`, { cause });
  }
}

export interface ConnectOptions {
  /** Connection name shown by the server's monitoring endpoints. */
  readonly name: string;
  /** Whose default credentials file to use when `config.credsFile` names none. Default: none. */
  readonly role?: Role;
  /** The chat user, for {@link Role.Client}. */
  readonly user?: string;
  /** Credentials already read (they win over the config and the role's default file). */
  readonly credentials?: NatsCredentials;
  /** Called with a warning for a person (a credentials file others can read). */
  readonly warn?: (message: string) => void;
  /**
   * How long to keep trying when no server answers yet (it may be starting too); 0 or absent fails
   * at once. Once connected, the connection reconnects forever whatever this is.
   */
  readonly waitMs?: number;
  /** Called once, with a message for a person, when the first attempt fails and waiting begins. */
  readonly onWait?: (message: string) => void;
  /** Stops waiting (a shutdown signal): the connect rejects with {@link CancelledError}. */
  readonly signal?: AbortSignal;
}

/** Pause between attempts while waiting for a server that is not up yet. */
const CONNECT_RETRY_MS = 500;

interface ConnectionState {
  up: boolean;
  /** When the server went away (while `up` is false). */
  downSinceMs: number;
  /** When the connection last came back; 0 when it never went away. */
  restoredAtMs: number;
}

const connected = new WeakMap<NatsConnection, ConnectionState>();

/** Follows the connection's state, so that a shutdown can tell whether the server is reachable. */
function trackState(nc: NatsConnection): void {
  const state: ConnectionState = { up: true, downSinceMs: 0, restoredAtMs: 0 };
  connected.set(nc, state);
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect" && state.up) {
        state.up = false;
        state.downSinceMs = Date.now();
      } else if (s.type === "reconnect" && !state.up) {
        state.up = true;
        state.restoredAtMs = Date.now();
      }
    }
  })().catch(() => undefined);
}

/**
 * How long the connection has been without a server, in ms; 0 while connected. Connections not
 * made by {@link connectNats} count as connected.
 */
export function disconnectedForMs(nc: NatsConnection): number {
  if (nc.isClosed()) return Number.POSITIVE_INFINITY;
  const state = connected.get(nc);
  return !state || state.up ? 0 : Date.now() - state.downSinceMs;
}

/**
 * Whether the connection has been without a server at any time since `sinceMs` (or is closed):
 * a request that failed then failed because of it, and the connection's own log line says so.
 */
export function lostSince(nc: NatsConnection, sinceMs: number): boolean {
  if (nc.isClosed()) return true;
  const state = connected.get(nc);
  return state !== undefined && (!state.up || state.restoredAtMs >= sinceMs);
}

/**
 * Logs each change of the connection's state once: `connection.lost` (warn) when the server goes
 * away and `connection.restored` (info) when it is back. Everything that fails in between is the
 * same news, so those failures log at debug (see {@link lostSince}). Ends with the connection.
 */
export function logConnectionChanges(nc: NatsConnection, logger: Logger): void {
  let downSinceMs: number | undefined;
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect" && downSinceMs === undefined) {
        downSinceMs = Date.now();
        logger.warn({ event: "connection.lost", server: s.server }, `lost the connection to NATS at ${s.server}; reconnecting`);
      } else if (s.type === "reconnect" && downSinceMs !== undefined) {
        logger.info({ event: "connection.restored", server: s.server, downMs: Date.now() - downSinceMs }, `connection to NATS restored (${s.server})`);
        downSinceMs = undefined;
      }
    }
  })().catch(() => undefined);
}

/**
 * The credentials a command connects with: `--creds` / `SB_CREDS` when given, else its role's file
 * in the auth directory when there is one, else none (a server without authentication).
 */
export function resolveCredentials(config: SwitchboardConfig, role: Role | undefined, user?: string): NatsCredentials | undefined {
  if (config.credsFile !== "") return readCredentialsFile(config.credsFile);
  if (!role || (role === Role.Client && !user)) return undefined;
  const file = credentialsPath(config.authDir, role, user);
  return existsSync(file) ? readCredentialsFile(file) : undefined;
}

function missingCredentialsHint(config: SwitchboardConfig, role: Role | undefined, user: string | undefined): string {
  if (role === Role.Client && user) {
    return `it requires credentials and there are none for user "${user}" (looked for ${credentialsPath(config.authDir, role, user)}). Create them with \`switchboard users add ${user}\` where the server runs, or pass --creds FILE / SB_CREDS.`;
  }
  if (role) {
    return `it requires credentials and there are none for the ${role} role (looked for ${credentialsPath(config.authDir, role)}). Run \`switchboard auth init\` where the server runs and copy that file here, or pass --creds FILE / SB_CREDS.`;
  }
  return "it requires credentials; pass --creds FILE / SB_CREDS.";
}

function tlsOptions(config: SwitchboardConfig): ConnectionOptions["tls"] | undefined {
  if (config.tlsCa === "" && config.tlsCert === "") return undefined;
  return {
    ...(config.tlsCa !== "" ? { caFile: config.tlsCa } : {}),
    ...(config.tlsCert !== "" ? { certFile: config.tlsCert, keyFile: config.tlsKey } : {}),
  };
}

/**
 * Connects with the settings every Switchboard process wants: reconnect forever and notice a dead
 * server within seconds (nats.js defaults are 10 attempts and 2-minute pings), the identity's
 * NKey and its own inbox prefix, and TLS when configured.
 */
export async function connectNats(config: SwitchboardConfig, options: ConnectOptions): Promise<NatsConnection> {
  const deadline = Date.now() + (options.waitMs ?? 0);
  for (let attempt = 0; ; attempt++) {
    try {
      const nc = await abortable(connectOnce(config, options), options.signal, `connecting to NATS at ${config.natsUrl}`);
      if (attempt > 0) options.onWait?.(`connected to NATS at ${config.natsUrl}`);
      trackState(nc);
      return nc;
    } catch (err) {
      // Wrong credentials or TLS settings will not fix themselves; a server that is starting will.
      if (!(err instanceof ConnectionFailedError) || err.tls || Date.now() >= deadline) throw err;
      if (options.signal?.aborted) throw new CancelledError(`connecting to NATS at ${config.natsUrl}`);
      if (attempt === 0) {
        options.onWait?.(`no NATS server answers at ${config.natsUrl} yet (${errorMessage(err.cause)}); waiting up to ${Math.round((deadline - Date.now()) / 1000)} s for one (SB_CONNECT_WAIT_MS)`);
      }
      await sleep(CONNECT_RETRY_MS, options.signal).catch(() => undefined);
      if (options.signal?.aborted) throw new CancelledError(`connecting to NATS at ${config.natsUrl}`);
    }
  }
}

/**
 * Rejects as soon as `signal` aborts, without waiting for an attempt under way (against an
 * unreachable address it takes the connect time-out); a connection it makes after all is closed.
 */
function abortable(attempt: Promise<NatsConnection>, signal: AbortSignal | undefined, what: string): Promise<NatsConnection> {
  if (!signal) return attempt;
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      reject(new CancelledError(what));
      void attempt.then((nc) => nc.close()).catch(() => undefined);
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    attempt.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

async function connectOnce(config: SwitchboardConfig, options: ConnectOptions): Promise<NatsConnection> {
  const credentials = options.credentials ?? resolveCredentials(config, options.role, options.user);
  if (credentials?.file && isExposed(credentials.file)) {
    options.warn?.(`credentials file ${credentials.file} can be read by other users; restrict it with \`chmod 600 ${credentials.file}\``);
  }
  const tls = tlsOptions(config);
  try {
    return await connect({
      servers: natsServers(config),
      name: options.name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      pingInterval: 2_000,
      maxPingOut: 3,
      timeout: 5_000,
      // Async stack traces cost an Error allocation per request; our errors carry their context.
      noAsyncTraces: true,
      ...(credentials ? { authenticator: nkeyAuthenticator(new TextEncoder().encode(credentials.seed)), inboxPrefix: credentials.inboxPrefix } : {}),
      ...(tls ? { tls } : {}),
    });
  } catch (err) {
    if (err instanceof natsErrors.AuthorizationError) {
      const why = credentials
        ? `it does not accept the ${credentials.role} credentials in ${credentials.file ?? "use"} (removed or rotated? see \`switchboard users list\`)`
        : missingCredentialsHint(config, options.role, options.user);
      throw new AuthenticationFailedError(config.natsUrl, why, err);
    }
    if (/certificate|tls|ssl/i.test(errorMessage(err))) {
      throw new ConnectionFailedError(config.natsUrl, err, "The server uses TLS: pass the CA that signed its certificate with --tls-ca FILE / SB_TLS_CA (see docs/SECURITY.md).", true);
    }
    throw new ConnectionFailedError(config.natsUrl, err);
  }
}
