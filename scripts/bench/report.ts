import type { RunResult } from "./load.js";
import type { SystemName } from "./options.js";

export interface Comparison {
  readonly concurrency: number;
  /** Switchboard turns/s divided by the durable baseline's. */
  readonly throughputRatio: number;
  /** Switchboard p50 divided by the durable baseline's. */
  readonly p50Ratio: number;
}

const r2 = (v: number) => Math.round(v * 100) / 100;

export function compare(runs: readonly RunResult[]): Comparison[] {
  const levels = [...new Set(runs.map((r) => r.concurrency))].sort((a, b) => a - b);
  const out: Comparison[] = [];
  for (const c of levels) {
    const sb = runs.find((r) => r.system === "switchboard" && r.concurrency === c);
    const base = runs.find((r) => r.system === "durable" && r.concurrency === c);
    if (sb && base) out.push({ concurrency: c, throughputRatio: r2(sb.turnsPerS / base.turnsPerS), p50Ratio: r2(sb.latencyMs.p50 / base.latencyMs.p50) });
  }
  return out;
}

function pad(s: string | number, n: number, left = false): string {
  const t = String(s);
  return left ? t.padEnd(n) : t.padStart(n);
}

const fmt = (v: number) => (Number.isFinite(v) ? v.toFixed(v < 10 ? 2 : 1) : "-");

/** The per-level table: turns/s and latency percentiles of each system, then the ratios. */
export function formatTable(runs: readonly RunResult[], systems: readonly SystemName[]): string {
  const lines: string[] = [];
  const head = `${pad("users", 5)}  ${pad("system", 11, true)} ${pad("turns/s", 8)} ${pad("p50 ms", 7)} ${pad("p90 ms", 7)} ${pad("p99 ms", 7)} ${pad("max ms", 7)} ${pad("turns", 7)} ${pad("err", 4)} ${pad("lost", 4)}  cpu ms/turn`;
  lines.push(head, "-".repeat(head.length + 30));
  const comparisons = compare(runs);
  for (const c of [...new Set(runs.map((r) => r.concurrency))].sort((a, b) => a - b)) {
    for (const system of systems) {
      const r = runs.find((x) => x.system === system && x.concurrency === c);
      if (!r) continue;
      const cpu = Object.entries(r.cpuMsPerTurn)
        .map(([k, v]) => `${k} ${fmt(v)}`)
        .join(", ");
      lines.push(`${pad(c, 5)}  ${pad(system, 11, true)} ${pad(fmt(r.turnsPerS), 8)} ${pad(fmt(r.latencyMs.p50), 7)} ${pad(fmt(r.latencyMs.p90), 7)} ${pad(fmt(r.latencyMs.p99), 7)} ${pad(fmt(r.latencyMs.max), 7)} ${pad(r.turns, 7)} ${pad(r.errors, 4)} ${pad(r.lost, 4)}  ${cpu}`);
    }
    const cmp = comparisons.find((x) => x.concurrency === c);
    if (cmp) lines.push(`${pad("", 5)}  switchboard / durable: throughput ${cmp.throughputRatio.toFixed(2)}x, p50 ${cmp.p50Ratio.toFixed(2)}x`);
    lines.push("");
  }
  return lines.join("\n");
}

export interface Targets {
  readonly throughputRatioMin: number;
  readonly p50RatioMax: number;
  readonly p99MaxMs: number;
  readonly bytesPerIdleSessionMax: number;
}

/** What the product has to reach on a 2-core machine at 50 users (see docs/PERFORMANCE.md). */
export const TARGETS: Targets = { throughputRatioMin: 0.7, p50RatioMax: 1.5, p99MaxMs: 25, bytesPerIdleSessionMax: 2048 };

export interface TargetCheck {
  readonly target: string;
  readonly measured: string;
  readonly met: boolean;
}

/** Checks the targets at the level closest to 50 users (they are defined at 50). */
export function checkTargets(runs: readonly RunResult[], bytesPerSession: number | undefined): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const levels = [...new Set(runs.map((r) => r.concurrency))];
  if (levels.length === 0) return checks;
  const at = levels.reduce((best, c) => (Math.abs(c - 50) < Math.abs(best - 50) ? c : best));
  const sb = runs.find((r) => r.system === "switchboard" && r.concurrency === at);
  const cmp = compare(runs).find((x) => x.concurrency === at);
  if (cmp) {
    checks.push({ target: `throughput >= ${TARGETS.throughputRatioMin}x durable baseline @${at} users`, measured: `${cmp.throughputRatio}x`, met: cmp.throughputRatio >= TARGETS.throughputRatioMin });
    checks.push({ target: `p50 <= ${TARGETS.p50RatioMax}x durable baseline @${at} users`, measured: `${cmp.p50Ratio}x`, met: cmp.p50Ratio <= TARGETS.p50RatioMax });
  }
  if (sb) {
    checks.push({ target: `p99 < ${TARGETS.p99MaxMs} ms @${at} users`, measured: `${sb.latencyMs.p99} ms`, met: sb.latencyMs.p99 < TARGETS.p99MaxMs });
    const bad = runs.filter((r) => r.system === "switchboard").reduce((n, r) => n + r.errors + r.lost, 0);
    checks.push({ target: "no error or lost turn", measured: `${bad}`, met: bad === 0 });
  }
  if (bytesPerSession !== undefined) {
    checks.push({ target: `worker memory < ${TARGETS.bytesPerIdleSessionMax} B per idle session (heap after GC)`, measured: `${bytesPerSession} B`, met: bytesPerSession < TARGETS.bytesPerIdleSessionMax });
  }
  return checks;
}
