import { existsSync } from "node:fs";
import { connect, errors as natsErrors, nkeyAuthenticator, type ConnectionOptions, type NatsConnection } from "@nats-io/transport-node";
import { natsServers, type SwitchboardConfig } from "./config.js";
import { credentialsPath, isExposed, readCredentialsFile, type NatsCredentials } from "./credentials.js";
import { SwitchboardError, ErrorCode, errorMessage } from "./errors.js";
import { Role } from "./roles.js";

export type { NatsConnection };

export class ConnectionFailedError extends SwitchboardError {
  override name = "ConnectionFailedError";
  constructor(
    readonly url: string,
    cause: unknown,
    hint = "Start one with `switchboard up` or `nats-server -c nats.conf`, or point --nats / NATS_URL at a running server.",
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
      throw new ConnectionFailedError(config.natsUrl, err, "The server uses TLS: pass the CA that signed its certificate with --tls-ca FILE / SB_TLS_CA (see docs/SECURITY.md).");
    }
    throw new ConnectionFailedError(config.natsUrl, err);
  }
}
