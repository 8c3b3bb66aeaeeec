import { connect, type NatsConnection } from "@nats-io/transport-node";
import { natsServers, type SwitchboardConfig } from "./config.js";
import { SwitchboardError, ErrorCode, errorMessage } from "./errors.js";

export type { NatsConnection };

export class ConnectionFailedError extends SwitchboardError {
  override name = "ConnectionFailedError";
  constructor(
    readonly url: string,
    cause: unknown,
  ) {
    super(
      ErrorCode.Connection,
      `cannot connect to NATS at ${url} (${errorMessage(cause)}). Start one with \`switchboard up\` or \`nats-server -c nats.conf\`, or point --nats / NATS_URL at a running server.`,
      { cause },
    );
  }
}

export interface ConnectOptions {
  /** Connection name shown by the server's monitoring endpoints. */
  readonly name: string;
}

/**
 * Connects with the settings every Switchboard process wants: reconnect forever and notice a dead
 * server within seconds (nats.js defaults are 10 attempts and 2-minute pings).
 */
export async function connectNats(config: SwitchboardConfig, options: ConnectOptions): Promise<NatsConnection> {
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
    });
  } catch (err) {
    throw new ConnectionFailedError(config.natsUrl, err);
  }
}
