import { performance } from "node:perf_hooks";
import { sleep } from "../../src/core/sleep.js";
import { cpuMs } from "./processes.js";
import { summarize, type LatencySummary } from "./stats.js";

/** Where a turn sits in a session: the first message goes to the router, END closes. */
export type TurnStep = "first" | "followup" | "end";

export type TurnOutcome = { readonly kind: "ok" } | { readonly kind: "error" | "lost"; readonly detail: string };

/** One simulated user of one system under test. */
export interface SimulatedUser {
  /** Sends one message and resolves once its final event arrived (or it timed out). */
  turn(step: TurnStep, index: number): Promise<TurnOutcome>;
  /** Leaves the current session after a failed turn, so the next one starts clean. */
  reset(): void;
  close(): Promise<void>;
}

export interface UserFactory {
  create(index: number): Promise<SimulatedUser>;
}

/** A process whose CPU time is charged to the run. */
export interface Accounted {
  readonly name: string;
  readonly pid: number;
}

export interface RunPlan {
  readonly system: string;
  readonly concurrency: number;
  /** Stop starting turns after this long... */
  readonly durationMs?: number | undefined;
  /** ...or after this many whole sessions. */
  readonly sessions?: number | undefined;
  readonly followups: number;
  /**
   * Mean pause of a user after each answer before the next message (exponentially distributed,
   * as independent people typing); 0 is closed-loop at full speed.
   */
  readonly thinkMs?: number;
  readonly accounted: readonly Accounted[];
  /** Progress lines on stderr; off for warm-ups. */
  readonly quiet?: boolean;
  /** Reads the server's traffic counters, to charge the run's messages and bytes to its turns. */
  readonly serverTraffic?: () => Promise<ServerTraffic>;
}

/** Cumulative traffic counters of the nats-server (its `/varz`). */
export interface ServerTraffic {
  readonly inMsgs: number;
  readonly outMsgs: number;
  readonly inBytes: number;
  readonly outBytes: number;
}

export interface RunResult {
  readonly system: string;
  readonly concurrency: number;
  readonly elapsedS: number;
  readonly turns: number;
  readonly sessionsCompleted: number;
  readonly turnsPerS: number;
  readonly latencyMs: LatencySummary;
  readonly latencyByStepMs: Readonly<Record<TurnStep, LatencySummary>>;
  readonly errors: number;
  readonly lost: number;
  readonly errorSamples: readonly string[];
  /** CPU milliseconds each accounted process spent per completed turn. */
  readonly cpuMsPerTurn: Readonly<Record<string, number>>;
  /**
   * Messages and bytes the server received from and sent to clients per completed turn: the work
   * a turn asks of the bus, which unlike time does not depend on what else the machine does.
   */
  readonly serverPerTurn?: ServerTraffic;
}

const PROGRESS_EVERY_MS = 2_000;

/**
 * Closed-loop load: `concurrency` users, each sending its next message as soon as the previous
 * one was answered (or after a pause, with `thinkMs`), whole sessions (first message, follow-ups,
 * END) one after another. Pauses are not part of any turn's latency.
 */
export async function runLoad(factory: UserFactory, plan: RunPlan): Promise<RunResult> {
  const users = await Promise.all(Array.from({ length: plan.concurrency }, (_, i) => factory.create(i)));
  const samples: Record<TurnStep, number[]> = { first: [], followup: [], end: [] };
  const errorSamples: string[] = [];
  let errors = 0;
  let lost = 0;
  let sessionsStarted = 0;
  let sessionsCompleted = 0;
  const trafficBefore = await plan.serverTraffic?.();
  const cpuBefore = new Map(plan.accounted.map((p) => [p.name, cpuMs(p.pid)]));
  const selfBefore = process.cpuUsage();
  const start = performance.now();
  const deadline = plan.durationMs === undefined ? Number.POSITIVE_INFINITY : start + plan.durationMs;
  const turnsSoFar = () => samples.first.length + samples.followup.length + samples.end.length;
  const progress = plan.quiet
    ? undefined
    : setInterval(() => {
        const s = (performance.now() - start) / 1000;
        const goal = plan.durationMs !== undefined ? `${s.toFixed(0)}/${plan.durationMs / 1000} s` : `${sessionsCompleted}/${plan.sessions} sessions`;
        process.stderr.write(`  [${plan.system} c=${plan.concurrency}] ${goal}  turns=${turnsSoFar()} (${(turnsSoFar() / s).toFixed(0)}/s)  errors=${errors} lost=${lost}\n`);
      }, PROGRESS_EVERY_MS);

  const claimSession = (): boolean => {
    if (performance.now() >= deadline) return false;
    if (plan.sessions !== undefined && sessionsStarted >= plan.sessions) return false;
    sessionsStarted++;
    return true;
  };

  const runUser = async (user: SimulatedUser): Promise<void> => {
    // People do not all press Enter at the same instant: with pauses, each user starts within the
    // first pause instead of all together.
    if (plan.thinkMs) await sleep(Math.random() * plan.thinkMs);
    while (claimSession()) {
      const steps: TurnStep[] = ["first", ...Array<TurnStep>(plan.followups).fill("followup"), "end"];
      let whole = true;
      for (const [i, step] of steps.entries()) {
        // In a timed run a session may be cut short; its turns so far still count.
        if (performance.now() >= deadline) {
          whole = false;
          break;
        }
        const t0 = performance.now();
        const outcome = await user.turn(step, i);
        const dt = performance.now() - t0;
        if (outcome.kind === "ok") {
          samples[step].push(dt);
          if (plan.thinkMs) await sleep(Math.min(-Math.log(1 - Math.random()) * plan.thinkMs, Math.max(0, deadline - performance.now())));
          continue;
        }
        if (outcome.kind === "lost") lost++;
        else errors++;
        if (errorSamples.length < 10) errorSamples.push(`${step}: ${outcome.detail}`);
        user.reset();
        whole = false;
        break;
      }
      if (whole) sessionsCompleted++;
    }
  };

  try {
    await Promise.all(users.map(runUser));
  } finally {
    if (progress) clearInterval(progress);
    await Promise.all(users.map((u) => u.close().catch(() => undefined)));
  }
  const elapsedS = (performance.now() - start) / 1000;
  const turns = turnsSoFar();
  const trafficAfter = trafficBefore ? await plan.serverTraffic?.() : undefined;
  const self = process.cpuUsage(selfBefore);
  const cpuMsPerTurn: Record<string, number> = {};
  const perTurn = (ms: number) => (turns > 0 ? Math.round((ms / turns) * 1000) / 1000 : Number.NaN);
  for (const p of plan.accounted) cpuMsPerTurn[p.name] = perTurn(cpuMs(p.pid) - (cpuBefore.get(p.name) ?? 0));
  cpuMsPerTurn["bench-client"] = perTurn((self.user + self.system) / 1000);
  return {
    system: plan.system,
    concurrency: plan.concurrency,
    elapsedS: Math.round(elapsedS * 1000) / 1000,
    turns,
    sessionsCompleted,
    turnsPerS: Math.round((turns / elapsedS) * 10) / 10,
    latencyMs: summarize([...samples.first, ...samples.followup, ...samples.end]),
    latencyByStepMs: { first: summarize(samples.first), followup: summarize(samples.followup), end: summarize(samples.end) },
    errors,
    lost,
    errorSamples,
    cpuMsPerTurn,
    ...(trafficBefore && trafficAfter && turns > 0 ? { serverPerTurn: trafficPerTurn(trafficBefore, trafficAfter, turns) } : {}),
  };
}

function trafficPerTurn(before: ServerTraffic, after: ServerTraffic, turns: number): ServerTraffic {
  const per = (a: number, b: number, digits: number) => Math.round(((b - a) / turns) * 10 ** digits) / 10 ** digits;
  return {
    inMsgs: per(before.inMsgs, after.inMsgs, 2),
    outMsgs: per(before.outMsgs, after.outMsgs, 2),
    inBytes: per(before.inBytes, after.inBytes, 0),
    outBytes: per(before.outBytes, after.outBytes, 0),
  };
}
