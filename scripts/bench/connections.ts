import { connect, type NatsConnection } from "@nats-io/transport-node";

/**
 * Client connections of the simulated users: one shared connection, or one per user (as separate
 * chat clients would have). Closed together at the end.
 */
export class ClientConnections {
  private shared: Promise<NatsConnection> | undefined;
  private readonly all: NatsConnection[] = [];

  constructor(
    private readonly url: string,
    private readonly sharedConnection: boolean,
  ) {}

  async get(name: string): Promise<NatsConnection> {
    if (this.sharedConnection) {
      this.shared ??= this.open("bench-clients");
      return this.shared;
    }
    return this.open(name);
  }

  private async open(name: string): Promise<NatsConnection> {
    // As `switchboard chat` connects: no async stack traces (the same for every system measured).
    const nc = await connect({ servers: this.url, name, maxReconnectAttempts: -1, reconnectTimeWait: 250, noAsyncTraces: true });
    this.all.push(nc);
    return nc;
  }

  async closeAll(): Promise<void> {
    const all = this.all.splice(0);
    this.shared = undefined;
    await Promise.all(all.map((nc) => nc.close().catch(() => undefined)));
  }
}
