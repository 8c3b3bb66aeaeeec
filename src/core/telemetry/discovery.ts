import type { Service, ServiceMsg } from "@nats-io/services";
import type { Msg, NatsConnection, Subscription, SubscriptionOptions } from "@nats-io/transport-node";
import { guardReply } from "../reply-subject.js";
import { errorMessage } from "../errors.js";
import type { Logger } from "../logging.js";
import { version } from "../../version.js";

/** Micro service names: what `nats micro ls` lists and `$SRV.<verb>.<name>` addresses. */
export const ServiceName = {
  Host: "switchboard-host",
  Worker: "switchboard-worker",
} as const;

/** Announced as the micro service version. */
export const SWITCHBOARD_VERSION = version;

/** A request/reply subject a process serves, announced as a micro endpoint. */
export interface ServedEndpoint {
  /** Endpoint name: a simple token (letters, digits, `-`, `_`). */
  readonly name: string;
  readonly subject: string;
  readonly queue: string;
  readonly metadata?: Record<string, string>;
  handle(msg: Msg): void;
}

export interface DiscoveryOptions {
  readonly name: string;
  readonly description: string;
  /** Identifies the process (`worker_id`, `host_id`, agent types…); shown by PING and INFO. */
  readonly metadata: Record<string, string>;
  /** The `data` of an endpoint's STATS entry. */
  readonly stats?: (endpoint: string) => Promise<unknown>;
}

/**
 * Announces a process through the NATS micro protocol (`$SRV.PING|INFO|STATS`) and serves its
 * request/reply endpoints through it, so micro-aware tools list it with its subjects and counts.
 * The micro library stops every endpoint when one of its subscriptions fails (for instance a
 * server whose permissions predate `$SRV`): the endpoints are then served by plain subscriptions,
 * so discovery failing never takes the process's real work with it.
 */
export class Discovery {
  private service: Service | undefined;
  private readonly endpoints: ServedEndpoint[] = [];
  private readonly fallback: Subscription[] = [];
  private closing = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly options: DiscoveryOptions,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    const { stats } = this.options;
    // Loaded here rather than at start-up: it brings its own copy of nats-core, which commands
    // that announce nothing (chat, users) need not load.
    const { Svcm } = await import("@nats-io/services");
    // The library is built against that copy; the connection is the same object.
    const service = await new Svcm(answeringOnlyInboxes(this.nc, this.logger) as unknown as ConstructorParameters<typeof Svcm>[0]).add({
      name: this.options.name,
      version: SWITCHBOARD_VERSION,
      description: this.options.description,
      metadata: this.options.metadata,
      // Endpoints name their own queue groups; the library's default group would never be used.
      queue: "q",
      ...(stats ? { statsHandler: (endpoint) => stats(endpoint.subject ? endpointName(this.endpoints, endpoint.subject) : "") } : {}),
    });
    this.service = service;
    void service.stopped.then((err) => this.lost(err));
  }

  get id(): string | undefined {
    return this.service?.info().id;
  }

  /** Serves `endpoint`; call after {@link start}. */
  add(endpoint: ServedEndpoint): void {
    this.endpoints.push(endpoint);
    if (!this.service || this.service.isStopped) {
      this.subscribePlain(endpoint);
      return;
    }
    this.service.addEndpoint(endpoint.name, {
      subject: endpoint.subject,
      queue: endpoint.queue,
      ...(endpoint.metadata ? { metadata: endpoint.metadata } : {}),
      handler: (err: Error | null, msg: ServiceMsg) => {
        if (!err) endpoint.handle(msg as unknown as Msg);
      },
    });
  }

  private lost(err: Error | null): void {
    if (this.closing || this.nc.isClosed()) return;
    this.logger.warn({ event: "discovery.stopped", err: err ? errorMessage(err) : undefined }, "micro service announcement stopped; serving endpoints without it");
    for (const endpoint of this.endpoints) this.subscribePlain(endpoint);
  }

  private subscribePlain(endpoint: ServedEndpoint): void {
    this.fallback.push(
      this.nc.subscribe(endpoint.subject, {
        queue: endpoint.queue,
        callback: (err, msg) => {
          if (!err) guardReply(msg, this.logger, (m) => endpoint.handle(m));
        },
      }),
    );
  }

  /** Stops answering: drains the endpoints' subscriptions and the micro control subjects. */
  async close(): Promise<void> {
    this.closing = true;
    await this.service?.stop();
    await Promise.allSettled(this.fallback.filter((s) => !s.isClosed()).map((s) => s.drain()));
  }
}

/**
 * The connection as the micro library sees it: every request it subscribes to (its own PING, INFO
 * and STATS, and the endpoints) passes {@link guardReply} before the library handles or answers it.
 */
function answeringOnlyInboxes(nc: NatsConnection, logger: Logger): NatsConnection {
  return new Proxy(nc, {
    get(target, property) {
      if (property === "subscribe") {
        return (subject: string, opts?: SubscriptionOptions): Subscription => {
          const callback = opts?.callback;
          if (!callback) return target.subscribe(subject, opts);
          return target.subscribe(subject, { ...opts, callback: (err, msg) => (err ? callback(err, msg) : guardReply(msg, logger, (m) => callback(null, m))) });
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

function endpointName(endpoints: readonly ServedEndpoint[], subject: string): string {
  return endpoints.find((e) => e.subject === subject)?.name ?? "";
}
