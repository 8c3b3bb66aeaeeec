import type { ServiceStats } from "@nats-io/services";
import { errors, type NatsConnection } from "@nats-io/transport-node";
import { ServiceName } from "../core/telemetry/discovery.js";
import { percentile, RoutingOutcome, type AgentTypeStats } from "../core/telemetry/metrics.js";

/** A consumer's backlog as a worker read it from the server. */
export interface ConsumerBacklog {
  readonly name: string;
  readonly pending: number;
  readonly ackPending: number;
  readonly redelivered: number;
}

/** The STATS data of one agent type's endpoint in one worker. */
type EndpointData = AgentTypeStats & { readonly workerId: string; readonly consumers?: readonly ConsumerBacklog[]; readonly routing?: Readonly<Record<string, number>> };

export interface WorkerView {
  readonly workerId: string;
  readonly serviceId: string;
  readonly version: string;
  readonly hostname: string;
  readonly started: string;
  readonly agentTypes: readonly AgentTypeStats[];
  readonly routing: Readonly<Record<string, number>>;
}

export interface AgentTypeView {
  readonly agentType: string;
  readonly workers: number;
  readonly turns: number;
  readonly failures: number;
  readonly inFlight: number;
  readonly redeliveries: number;
  /** Moved to the dead-letter stream by the workers running now, since they started. */
  readonly deadLetters: number;
  /** Messages waiting in the type's consumers, shared by its workers. */
  readonly pending: number;
  readonly ackPending: number;
  readonly latency: { readonly count: number; readonly meanMs: number; readonly p50Ms: number; readonly p95Ms: number; readonly maxMs: number };
}

export interface HostView {
  readonly hostId: string;
  readonly serviceId: string;
  readonly version: string;
  /** Messages the dead-letter stream holds now. */
  readonly deadLetters: number | undefined;
}

/** What `switchboard admin stats` shows: every worker's and host's figures, summed per agent type. */
export interface SystemStats {
  readonly at: string;
  readonly agentTypes: readonly AgentTypeView[];
  readonly workers: readonly WorkerView[];
  readonly hosts: readonly HostView[];
  readonly routing: Readonly<Record<string, number>>;
  /** Messages the dead-letter stream holds (as a host read it); undefined when no host answered. */
  readonly deadLettersStored: number | undefined;
}

const STATS_WAIT_MS = 1_500;

async function collect(nc: NatsConnection, name: string): Promise<ServiceStats[]> {
  // Every instance answers the one request; the client stops listening when answers stall.
  const { Svcm } = await import("@nats-io/services");
  const client = new Svcm(nc as unknown as ConstructorParameters<typeof Svcm>[0]).client({ strategy: "stall", maxWait: STATS_WAIT_MS });
  const out: ServiceStats[] = [];
  try {
    for await (const s of await client.stats(name)) out.push(s);
  } catch (err) {
    // Nobody of that kind is running: an empty answer, not a failure.
    if (!(err instanceof errors.NoRespondersError)) throw err;
  }
  return out;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null;
}

/** Reads `$SRV.STATS` of every worker and host and sums the figures per agent type. */
export async function readSystemStats(nc: NatsConnection): Promise<SystemStats> {
  const [workerStats, hostStats] = await Promise.all([collect(nc, ServiceName.Worker), collect(nc, ServiceName.Host)]);
  const workers: WorkerView[] = workerStats.map((s): WorkerView => {
    const data = (s.endpoints ?? []).map((e) => e.data).filter((d): d is EndpointData => isRecord(d) && typeof d["agentType"] === "string");
    return {
      workerId: s.metadata?.["worker_id"] ?? data[0]?.workerId ?? s.id,
      serviceId: s.id,
      version: s.version,
      hostname: s.metadata?.["hostname"] ?? "",
      started: s.started,
      agentTypes: data,
      routing: data[0]?.routing ?? {},
    };
  });
  workers.sort((a, b) => a.workerId.localeCompare(b.workerId));
  const hosts: HostView[] = hostStats.map((s) => {
    const data = s.endpoints?.[0]?.data;
    const deadLetters = isRecord(data) && typeof data["deadLetters"] === "number" ? data["deadLetters"] : undefined;
    return { hostId: s.metadata?.["host_id"] ?? s.id, serviceId: s.id, version: s.version, deadLetters };
  });
  return {
    at: new Date().toISOString(),
    agentTypes: summarize(workers),
    workers,
    hosts,
    routing: sumRouting(workers),
    deadLettersStored: hosts.find((h) => h.deadLetters !== undefined)?.deadLetters,
  };
}

function sumRouting(workers: readonly WorkerView[]): Record<string, number> {
  const total: Record<string, number> = Object.fromEntries(Object.values(RoutingOutcome).map((o) => [o, 0]));
  for (const w of workers) for (const [k, v] of Object.entries(w.routing)) total[k] = (total[k] ?? 0) + v;
  return total;
}

function summarize(workers: readonly WorkerView[]): AgentTypeView[] {
  const byType = new Map<string, EndpointData[]>();
  for (const w of workers) for (const a of w.agentTypes) byType.set(a.agentType, [...(byType.get(a.agentType) ?? []), a as EndpointData]);
  return [...byType.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([agentType, parts]) => {
      // A consumer is shared by the type's workers: each reports the same backlog; count it once.
      const consumers = new Map<string, ConsumerBacklog>();
      for (const p of parts) for (const c of p.consumers ?? []) consumers.set(c.name, c);
      const sum = (f: (p: EndpointData) => number) => parts.reduce((n, p) => n + f(p), 0);
      const buckets = parts[0]?.latency.buckets.map((_, i) => sum((p) => p.latency.buckets[i] ?? 0)) ?? [];
      const count = sum((p) => p.latency.count);
      const maxMs = Math.max(0, ...parts.map((p) => p.latency.maxMs));
      return {
        agentType,
        workers: parts.length,
        turns: sum((p) => p.turns),
        failures: sum((p) => p.failures),
        inFlight: sum((p) => p.inFlight),
        redeliveries: sum((p) => p.redeliveries),
        deadLetters: sum((p) => p.deadLetters),
        pending: consumers.size > 0 ? [...consumers.values()].reduce((n, c) => n + c.pending, 0) : Math.max(0, ...parts.map((p) => p.pending)),
        ackPending: [...consumers.values()].reduce((n, c) => n + c.ackPending, 0),
        latency: {
          count,
          meanMs: count === 0 ? 0 : sum((p) => p.latency.meanMs * p.latency.count) / count,
          p50Ms: percentile(buckets, count, 0.5, maxMs),
          p95Ms: percentile(buckets, count, 0.95, maxMs),
          maxMs,
        },
      };
    });
}
