import { metrics, type Attributes, type Counter, type Histogram, type UpDownCounter } from "@opentelemetry/api";

/** Upper bounds (ms) of the latency buckets kept in process, for the micro STATS data. */
export const LATENCY_BUCKETS_MS: readonly number[] = [5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000];

/** Outcomes of the router's decisions; `handoff` counts hand-offs received (each is also decided). */
export const RoutingOutcome = {
  Routed: "routed",
  Clarify: "clarify",
  NoAgent: "no_agent",
  Handoff: "handoff",
} as const;
export type RoutingOutcome = (typeof RoutingOutcome)[keyof typeof RoutingOutcome];

/** Metric names, as exported over OTLP. */
export const MetricName = {
  Turns: "switchboard.agent.turns",
  Failures: "switchboard.agent.failures",
  Duration: "switchboard.agent.handler.duration",
  InFlight: "switchboard.agent.in_flight",
  Redeliveries: "switchboard.agent.redeliveries",
  DeadLetters: "switchboard.agent.dead_letters",
  Pending: "switchboard.consumer.pending",
  RoutingDecisions: "switchboard.routing.decisions",
} as const;

/** One agent type's figures in one worker since it started: the `data` of its micro endpoint. */
export interface AgentTypeStats {
  readonly agentType: string;
  /** Messages whose handler finished without error. */
  readonly turns: number;
  /** Handler runs that threw (each redelivery that fails counts again). */
  readonly failures: number;
  readonly inFlight: number;
  /** Deliveries after the first. */
  readonly redeliveries: number;
  readonly deadLetters: number;
  /** Messages waiting in the type's consumers, as the server last told this worker. */
  readonly pending: number;
  readonly latency: LatencySummary;
}

export interface LatencySummary {
  readonly count: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly maxMs: number;
  /** Counts per bucket of {@link LATENCY_BUCKETS_MS}, and one more for anything slower. */
  readonly buckets: readonly number[];
}

interface Instruments {
  readonly turns: Counter;
  readonly failures: Counter;
  readonly duration: Histogram;
  readonly inFlight: UpDownCounter;
  readonly redeliveries: Counter;
  readonly deadLetters: Counter;
}

function createInstruments(): Instruments {
  // Instruments come from the global provider as it is when the worker starts: a no-op one when
  // metrics export is off, so each record is an empty call.
  const meter = metrics.getMeter("switchboard");
  return {
    turns: meter.createCounter(MetricName.Turns, { description: "Messages handled successfully" }),
    failures: meter.createCounter(MetricName.Failures, { description: "Handler runs that failed" }),
    duration: meter.createHistogram(MetricName.Duration, {
      description: "Handler latency",
      unit: "ms",
      advice: { explicitBucketBoundaries: [...LATENCY_BUCKETS_MS] },
    }),
    inFlight: meter.createUpDownCounter(MetricName.InFlight, { description: "Handlers running now" }),
    redeliveries: meter.createCounter(MetricName.Redeliveries, { description: "Deliveries after the first" }),
    deadLetters: meter.createCounter(MetricName.DeadLetters, { description: "Messages moved to the dead-letter stream" }),
  };
}

export function percentile(buckets: readonly number[], count: number, q: number, maxMs: number): number {
  if (count === 0) return 0;
  const rank = Math.ceil(q * count);
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    seen += buckets[i] ?? 0;
    if (seen >= rank) return Math.min(LATENCY_BUCKETS_MS[i] ?? maxMs, maxMs);
  }
  return maxMs;
}

/** The meter of one agent type in one worker. */
export class AgentTypeMeter {
  private turns = 0;
  private failures = 0;
  private inFlight = 0;
  private redeliveries = 0;
  private deadLetters = 0;
  private readonly pendingByConsumer = new Map<string, number>();
  private readonly buckets = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
  private count = 0;
  private sumMs = 0;
  private maxMs = 0;
  private readonly attributes: Attributes;

  constructor(
    readonly agentType: string,
    workerId: string,
    private readonly instruments: Instruments,
  ) {
    this.attributes = { "switchboard.agent.type": agentType, "switchboard.worker.id": workerId };
  }

  /** A delivery starts; `deliveryCount` above 1 is a redelivery. */
  started(deliveryCount: number): void {
    this.inFlight++;
    this.instruments.inFlight.add(1, this.attributes);
    if (deliveryCount > 1) {
      this.redeliveries++;
      this.instruments.redeliveries.add(1, this.attributes);
    }
  }

  finished(durationMs: number, ok: boolean): void {
    this.inFlight--;
    this.instruments.inFlight.add(-1, this.attributes);
    if (ok) {
      this.turns++;
      this.instruments.turns.add(1, this.attributes);
    } else {
      this.failures++;
      this.instruments.failures.add(1, this.attributes);
    }
    this.instruments.duration.record(durationMs, this.attributes);
    let i = LATENCY_BUCKETS_MS.findIndex((bound) => durationMs <= bound);
    if (i < 0) i = LATENCY_BUCKETS_MS.length;
    this.buckets[i] = (this.buckets[i] ?? 0) + 1;
    this.count++;
    this.sumMs += durationMs;
    this.maxMs = Math.max(this.maxMs, durationMs);
  }

  deadLettered(): void {
    this.deadLetters++;
    this.instruments.deadLetters.add(1, this.attributes);
  }

  /** What the server said is still waiting in one of the type's consumers. */
  pending(consumer: string, messages: number): void {
    this.pendingByConsumer.set(consumer, messages);
  }

  get pendingTotal(): number {
    let total = 0;
    for (const n of this.pendingByConsumer.values()) total += n;
    return total;
  }

  snapshot(): AgentTypeStats {
    const { count, maxMs } = this;
    return {
      agentType: this.agentType,
      turns: this.turns,
      failures: this.failures,
      inFlight: this.inFlight,
      redeliveries: this.redeliveries,
      deadLetters: this.deadLetters,
      pending: this.pendingTotal,
      latency: {
        count,
        meanMs: count === 0 ? 0 : this.sumMs / count,
        p50Ms: percentile(this.buckets, count, 0.5, maxMs),
        p95Ms: percentile(this.buckets, count, 0.95, maxMs),
        maxMs,
        buckets: [...this.buckets],
      },
    };
  }
}

/** Every agent type's meter in one worker. */
export class WorkerMetrics {
  private readonly meters = new Map<string, AgentTypeMeter>();
  private instruments: Instruments | undefined;

  constructor(readonly workerId: string) {}

  agentType(type: string): AgentTypeMeter {
    let meter = this.meters.get(type);
    if (!meter) {
      this.instruments ??= createInstruments();
      meter = new AgentTypeMeter(type, this.workerId, this.instruments);
      this.meters.set(type, meter);
    }
    return meter;
  }

  snapshot(): AgentTypeStats[] {
    return [...this.meters.values()].map((m) => m.snapshot());
  }

  /** Exports consumer backlogs as an observable gauge (read when the SDK collects). */
  observePending(): void {
    const gauge = metrics.getMeter("switchboard").createObservableGauge(MetricName.Pending, { description: "Messages waiting in the agent type's consumers" });
    gauge.addCallback((result) => {
      for (const m of this.meters.values()) result.observe(m.pendingTotal, { "switchboard.agent.type": m.agentType, "switchboard.worker.id": this.workerId });
    });
  }
}

const routingTotals: Record<RoutingOutcome, number> = { routed: 0, clarify: 0, no_agent: 0, handoff: 0 };
let routingCounter: Counter | undefined;

/**
 * Counts one decision of a router in this process. Process-wide rather than per worker: a router
 * decides inside its handler, which knows nothing of the worker running it.
 */
export function countRoutingDecision(outcome: RoutingOutcome): void {
  routingTotals[outcome]++;
  routingCounter ??= metrics.getMeter("switchboard").createCounter(MetricName.RoutingDecisions, { description: "Router decisions by outcome" });
  routingCounter.add(1, { "switchboard.routing.decision": outcome });
}

/** Decisions of the routers in this process since it started, by outcome. */
export function routingDecisions(): Readonly<Record<RoutingOutcome, number>> {
  return { ...routingTotals };
}
