import { hostname } from "node:os";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { lostSince } from "../core/connection.js";
import { CancelledError, errorMessage, NoRespondersError } from "../core/errors.js";
import { newId, validateToken } from "../core/ids.js";
import { openBucket } from "../core/kv-records.js";
import type { Logger } from "../core/logging.js";
import { sleep } from "../core/sleep.js";
import { TopicType, type Subjects } from "../core/subjects.js";
import { Discovery, ServiceName } from "../core/telemetry/discovery.js";
import { routingDecisions, WorkerMetrics } from "../core/telemetry/metrics.js";
import { RegisterWorkerRequestSchema } from "../gen/switchboard/v1/registry_pb.js";
import { HostClient } from "../host/client.js";
import type { AgentRuntime, AgentState } from "./agent.js";
import { KvAgentState } from "./agent-state.js";
import { toAgentTypeDefinition, type AnyAgentDefinition } from "../agents/define-agent-runtime.js";
import { guardAgentType } from "./inbound-guard.js";
import { AgentInstances } from "./instances.js";
import type { RateLimitOptions } from "./rate-limit.js";
import { RpcServer } from "./rpc-server.js";
import { NatsAgentRuntime } from "./runtime.js";
import { DEFAULT_TOPIC_CONSUMER_OPTIONS, TopicConsumer, type TopicConsumerOptions } from "./topic-consumer.js";

export interface WorkerOptions {
  readonly nc: NatsConnection;
  readonly subjects: Subjects;
  readonly logger: Logger;
  /** Agent types to host: `defineAgent` results or low-level definitions. */
  readonly agents: readonly AnyAgentDefinition[];
  /** Default: a fresh random id. */
  readonly workerId?: string;
  readonly consumer?: Partial<TopicConsumerOptions>;
  /** How long close() waits for in-flight handlers before abandoning them to redelivery. */
  readonly drainTimeoutMs?: number;
  /** Agent instances without a message for this long are dropped (default 10 min). */
  readonly instanceIdleMs?: number;
  /**
   * Per-user limit on the messages users send to each agent type, in this worker (a user over it
   * gets an ErrorEvent `rate_limited`). Default: none.
   */
  readonly rateLimit?: RateLimitOptions | undefined;
}

const RETRY_MS = 1_000;
/**
 * After the connection comes back the host needs about as long to be reachable again: a heartbeat
 * failing within this of a lost connection is that same news, which the connection logs once.
 */
const RESTORED_GRACE_MS = 5_000;
/** Longest a stopping worker waits for its user proxy to take the replies its handlers published. */
const USER_OUTPUT_CATCH_UP_MS = 2_000;

/**
 * The agent runtime of one process: hosts agent types, binds their subscriptions to shared
 * durable consumers, serves their RPC, registers with the host and heartbeats.
 */
export class Worker {
  readonly id: string;
  readonly runtime: AgentRuntime;
  /** Deliveries, latency, backlog and dead letters per agent type, since the worker started. */
  readonly metrics: WorkerMetrics;
  private readonly nc: NatsConnection;
  private readonly subjects: Subjects;
  private readonly logger: Logger;
  private readonly host: HostClient;
  private readonly instances: AgentInstances[];
  private readonly consumers: TopicConsumer[] = [];
  private readonly rpcServers: RpcServer[] = [];
  private readonly lifetime = new AbortController();
  private agentState: KV | undefined;
  private discovery: Discovery | undefined;
  private jsm: JetStreamManager | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private evictionTimer: NodeJS.Timeout | undefined;
  private heartbeatInflight: Promise<void> | undefined;
  private heartbeatIntervalMs = 2_000;
  /** A heartbeat failure has been reported and no heartbeat has succeeded since. */
  private heartbeatFailing = false;
  private closing: Promise<void> | undefined;
  private readonly done: Promise<void>;
  private resolveDone!: () => void;
  private readonly startedAtMs = Date.now();

  constructor(private readonly options: WorkerOptions) {
    this.id = validateToken("worker id", options.workerId ?? newId("w"));
    this.nc = options.nc;
    this.subjects = options.subjects;
    this.logger = options.logger.child({ component: "worker", workerId: this.id });
    this.host = new HostClient(this.nc, this.subjects);
    this.metrics = new WorkerMetrics(this.id);
    const agents = options.agents.map(toAgentTypeDefinition);
    const types = new Set<string>();
    for (const def of agents) {
      validateToken("agent type", def.spec.type);
      if (types.has(def.spec.type)) throw new Error(`agent type ${def.spec.type} is listed twice`);
      types.add(def.spec.type);
    }
    const js = jetstream(this.nc);
    this.runtime = new NatsAgentRuntime(this.nc, js, this.subjects, `switchboard/worker/${this.id}`);
    // Every event is checked (identity, rate) before an agent sees it.
    const guarded = agents.map((def) => guardAgentType(def, { rateLimit: options.rateLimit, logger: this.logger }));
    this.instances = guarded.map(
      (def) => new AgentInstances(def, this.runtime, this.logger.child({ agentType: def.spec.type }), (key) => this.stateFor(def.spec.type, key)),
    );
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  private stateFor(agentType: string, key: string): AgentState {
    if (!this.agentState) throw new Error("agent state is available once the worker has started");
    return new KvAgentState(this.agentState, this.subjects.agentStateKey(agentType, key), this.lifetime.signal);
  }

  get agentTypes(): string[] {
    return this.instances.map((i) => i.type);
  }

  /**
   * Waits for the host's event stream, opens the agent types, binds their consumers and RPC, and
   * registers. Rejects with CancelledError if `signal` aborts first.
   */
  async start(signal?: AbortSignal): Promise<void> {
    const jsm = await jetstreamManager(this.nc);
    this.agentState = await this.waitForInfrastructure(jsm, signal);
    for (const inst of this.instances) {
      await inst.definition.open?.({ nc: this.nc, subjects: this.subjects, logger: this.logger.child({ agentType: inst.type }), signal: this.lifetime.signal });
    }
    const js = jetstream(this.nc);
    this.jsm = jsm;
    await this.announce();
    const consumerOptions = { ...DEFAULT_TOPIC_CONSUMER_OPTIONS, ...this.options.consumer };
    for (const inst of this.instances) {
      for (const topicType of new Set(inst.definition.spec.subscriptions)) {
        const meter = this.metrics.agentType(inst.type);
        const consumer = new TopicConsumer(js, jsm, this.subjects, inst, topicType, this.runtime, this.logger.child({ agentType: inst.type }), { ...consumerOptions, meter });
        await consumer.start();
        this.consumers.push(consumer);
      }
      const rpc = new RpcServer(this.nc, this.subjects, inst, `switchboard/worker/${this.id}`, this.logger);
      rpc.start(this.discovery);
      this.rpcServers.push(rpc);
    }
    await this.nc.flush();
    // Registering last means the router never sends work before this worker consumes it.
    await this.register(signal);
    const specs = this.instances.map((inst) => inst.definition.spec);
    for (const inst of this.instances) await inst.definition.registered?.(specs, this.lifetime.signal);
    this.scheduleHeartbeat();
    const idleMs = this.options.instanceIdleMs ?? 10 * 60_000;
    this.evictionTimer = setInterval(() => {
      for (const inst of this.instances) inst.evictIdle(Date.now() - idleMs);
    }, Math.min(idleMs, 60_000));
    this.evictionTimer.unref();
    this.logger.info({ event: "worker.started", agentTypes: this.agentTypes }, "worker started");
  }

  /**
   * Announces the worker as a NATS micro service: one endpoint per agent type (its RPC subject),
   * with the type's figures as the endpoint's STATS data.
   */
  private async announce(): Promise<void> {
    this.discovery = new Discovery(
      this.nc,
      {
        name: ServiceName.Worker,
        description: "Switchboard worker: runs agent types",
        metadata: { worker_id: this.id, hostname: hostname(), pid: String(process.pid), agent_types: this.agentTypes.join(",") },
        stats: (agentType) => this.endpointStats(agentType),
      },
      this.logger,
    );
    await this.discovery.start();
    this.metrics.observePending();
  }

  /** An agent type's figures, with its consumers' backlog read from the server now. */
  private async endpointStats(agentType: string): Promise<unknown> {
    const meter = this.metrics.agentType(agentType);
    const consumers = [];
    for (const c of this.consumers.filter((tc) => tc.agentType === agentType)) {
      try {
        const info = await this.jsm?.consumers.info(this.subjects.eventStream, c.durableName);
        if (!info) continue;
        meter.pending(c.durableName, info.num_pending);
        consumers.push({ name: c.durableName, pending: info.num_pending, ackPending: info.num_ack_pending, redelivered: info.num_redelivered });
      } catch (err) {
        this.logger.debug({ event: "stats.consumer_info_failed", consumer: c.durableName, err: errorMessage(err) }, "could not read a consumer's backlog");
      }
    }
    return { workerId: this.id, ...meter.snapshot(), consumers, routing: routingDecisions() };
  }

  /** Waits until a host has created the event stream and the buckets (the state bucket comes last). */
  private async waitForInfrastructure(jsm: JetStreamManager, signal?: AbortSignal): Promise<KV> {
    let warned = false;
    for (;;) {
      try {
        await jsm.streams.info(this.subjects.eventStream);
        return await openBucket(this.nc, this.subjects.agentStateBucket);
      } catch (err) {
        if (!warned) {
          this.logger.warn({ event: "worker.waiting_for_host", stream: this.subjects.eventStream, err: errorMessage(err) }, "event stream or buckets not found yet; waiting for a host to create them");
          warned = true;
        }
      }
      await sleep(RETRY_MS, signal);
    }
  }

  private async register(signal?: AbortSignal): Promise<void> {
    const request = create(RegisterWorkerRequestSchema, {
      workerId: this.id,
      hostname: hostname(),
      pid: process.pid,
      agentTypes: this.instances.map((i) => i.definition.spec),
      startedAt: timestampFromMs(this.startedAtMs),
    });
    let warned = false;
    for (;;) {
      try {
        const res = await this.host.register(request, signal ? { signal } : {});
        this.heartbeatIntervalMs = res.heartbeatIntervalMs > 0 ? res.heartbeatIntervalMs : this.heartbeatIntervalMs;
        return;
      } catch (err) {
        if (err instanceof CancelledError) throw err;
        if (!warned) {
          this.logger.warn({ event: "worker.waiting_for_host", err: errorMessage(err) }, "cannot register yet; retrying");
          warned = true;
        }
        if (!(err instanceof NoRespondersError)) this.logger.debug({ err: errorMessage(err) }, "register failed");
      }
      await sleep(RETRY_MS, signal);
    }
  }

  private scheduleHeartbeat(): void {
    this.heartbeatTimer = setTimeout(() => {
      this.heartbeatInflight = this.heartbeat().finally(() => {
        this.heartbeatInflight = undefined;
        if (!this.closing) this.scheduleHeartbeat();
      });
    }, this.heartbeatIntervalMs);
  }

  private async heartbeat(): Promise<void> {
    const askedAtMs = Date.now();
    try {
      // Generous deadline: a busy host answering late is not a reason to miss a heartbeat.
      const known = await this.host.heartbeat(this.id, { timeoutMs: Math.max(this.heartbeatIntervalMs, 2_000), signal: this.lifetime.signal });
      if (this.heartbeatFailing) {
        this.heartbeatFailing = false;
        this.logger.info({ event: "worker.heartbeat_restored" }, "the host answers heartbeats again");
      }
      if (!known && !this.closing) {
        this.logger.warn({ event: "worker.reregister" }, "host had expired this worker; registering again");
        await this.register(this.lifetime.signal);
      }
    } catch (err) {
      if (err instanceof CancelledError) return;
      // Reported once per run of failures; without a server the connection's own line says why.
      const fields = { event: "worker.heartbeat_failed", err: errorMessage(err) };
      if (this.heartbeatFailing || this.closing || lostSince(this.nc, askedAtMs - RESTORED_GRACE_MS)) {
        this.logger.debug(fields, "heartbeat failed");
      } else {
        this.heartbeatFailing = true;
        this.logger.warn(fields, "heartbeat failed; the host expires this worker if no heartbeat reaches it");
      }
    }
  }

  /**
   * Graceful stop: take no new messages, finish those in flight (up to `drainTimeoutMs`, after which
   * they are left to be redelivered elsewhere), deregister, close agent types. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.logger.info({ event: "worker.stopping" }, "worker stopping: finishing in-flight messages");
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    clearInterval(this.evictionTimer);
    // Output on its way to users is delivered by the user proxy's consumer: it stops last, so the
    // replies of the handlers that finish during the stop still reach their users now rather than
    // when another worker of the user proxy runs.
    const towardUsers = (c: TopicConsumer) => c.topicType === TopicType.UserProxy;
    // It first takes what those handlers published: a reply stored a moment before it stopped
    // pulling would otherwise wait for the next worker of the user proxy.
    const drain = Promise.all([this.discovery?.close(), ...this.consumers.filter((c) => !towardUsers(c)).map((c) => c.close()), ...this.rpcServers.map((r) => r.close())]).then(() =>
      Promise.all(this.consumers.filter(towardUsers).map((c) => c.closeAfterCatchingUp(USER_OUTPUT_CATCH_UP_MS))),
    );
    const limit = this.options.drainTimeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      drain.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), limit))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.logger.warn({ event: "worker.drain_timeout", timeoutMs: limit }, "in-flight messages did not finish; leaving them to be redelivered");
      for (const c of this.consumers) c.abortInflight();
      for (const r of this.rpcServers) r.abortInflight();
    }
    this.lifetime.abort();
    await this.heartbeatInflight;
    const deregisteringAt = Date.now();
    try {
      if (!this.nc.isClosed()) await this.host.deregister(this.id, { timeoutMs: 2_000 });
    } catch (err) {
      // Without a server the lost connection has been reported already; this is the same news.
      const level = lostSince(this.nc, deregisteringAt) ? "debug" : "warn";
      this.logger[level]({ event: "worker.deregister_failed", err: errorMessage(err) }, "could not deregister; the host will expire this worker");
    }
    for (const inst of this.instances) await inst.definition.close?.();
    this.logger.info({ event: "worker.stopped" }, "worker stopped");
    this.resolveDone();
  }

  /** Resolves once the worker has stopped. */
  closed(): Promise<void> {
    return this.done;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
