import type { RunResult } from "./load.js";

const COLORS: Readonly<Record<string, string>> = { switchboard: "#d62728", durable: "#1f77b4", core: "#2ca02c" };
const W = 760;
const H = 460;
const M = { left: 70, right: 190, top: 50, bottom: 60 };

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** 1, 2, 5, 10, 20, 50, ... covering [lo, hi]. */
function logTicks(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo / 1.0001 && v <= hi * 1.0001) ticks.push(v);
    }
  }
  return ticks;
}

/**
 * Latency vs load: p50 (solid) and p99 (dashed) against concurrent users for each system. Both
 * axes are logarithmic, so the three systems stay readable although they differ by an order of
 * magnitude.
 */
export function latencyChart(runs: readonly RunResult[], title: string): string {
  const levels = [...new Set(runs.map((r) => r.concurrency))].sort((a, b) => a - b);
  const values = runs.flatMap((r) => [r.latencyMs.p50, r.latencyMs.p99]).filter((v) => Number.isFinite(v) && v > 0);
  const yLo = 10 ** Math.floor(Math.log10(Math.min(...values, 1)));
  const yHi = 10 ** Math.ceil(Math.log10(Math.max(...values, 10)));
  const xLo = levels[0] ?? 1;
  const xHi = Math.max(levels[levels.length - 1] ?? 2, xLo * 2);
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const x = (c: number) => M.left + (levels.length === 1 ? pw / 2 : ((Math.log(c) - Math.log(xLo)) / (Math.log(xHi) - Math.log(xLo))) * pw);
  const y = (v: number) => M.top + ph - ((Math.log(v) - Math.log(yLo)) / (Math.log(yHi) - Math.log(yLo))) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2 - M.right / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`);
  for (const t of logTicks(yLo, yHi)) {
    out.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${M.left - 8}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end">${t}</text>`);
  }
  for (const c of levels) {
    out.push(`<line x1="${x(c).toFixed(1)}" x2="${x(c).toFixed(1)}" y1="${M.top}" y2="${M.top + ph}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${x(c).toFixed(1)}" y="${M.top + ph + 18}" text-anchor="middle">${c}</text>`);
  }
  out.push(`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`);
  out.push(`<text x="${M.left + pw / 2}" y="${H - 18}" text-anchor="middle">concurrent users (log scale)</text>`);
  out.push(`<text transform="translate(18 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">turn latency, ms (log scale)</text>`);
  let legendY = M.top + 10;
  for (const system of Object.keys(COLORS)) {
    const mine = runs.filter((r) => r.system === system).sort((a, b) => a.concurrency - b.concurrency);
    if (mine.length === 0) continue;
    const color = COLORS[system] ?? "#000";
    for (const [q, dash] of [["p50", ""], ["p99", ' stroke-dasharray="6 4"']] as const) {
      const pts = mine.filter((r) => r.latencyMs[q] > 0).map((r) => `${x(r.concurrency).toFixed(1)},${y(r.latencyMs[q]).toFixed(1)}`);
      if (pts.length > 1) out.push(`<polyline points="${pts.join(" ")}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`);
      for (const p of pts) {
        const [px, py] = p.split(",");
        out.push(`<circle cx="${px}" cy="${py}" r="3.5" fill="${q === "p50" ? color : "white"}" stroke="${color}" stroke-width="1.5"/>`);
      }
      out.push(`<line x1="${W - M.right + 15}" x2="${W - M.right + 45}" y1="${legendY}" y2="${legendY}" stroke="${color}" stroke-width="2"${dash}/>`);
      out.push(`<text x="${W - M.right + 52}" y="${legendY + 4}">${esc(`${system} ${q}`)}</text>`);
      legendY += 20;
    }
  }
  out.push("</svg>");
  return out.join("\n") + "\n";
}
