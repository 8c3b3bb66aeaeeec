/**
 * Summarizes V8 CPU profiles (`node --cpu-prof`): top functions by self time, top functions by
 * inclusive time, and self time per area (a package, a Switchboard module folder, node internals,
 * GC). Idle time is reported apart and left out of the percentages.
 *
 *   npx tsx scripts/profile-summary.ts [--top N] [--json] FILE.cpuprofile...
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}
interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}
interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface Entry {
  readonly name: string;
  readonly ms: number;
  /** Share of non-idle time, in percent. */
  readonly pct: number;
}

export interface ProfileSummary {
  readonly totalMs: number;
  readonly idleMs: number;
  readonly selfTop: readonly Entry[];
  readonly inclusiveTop: readonly Entry[];
  readonly areas: readonly Entry[];
}

const SPECIAL = new Set(["(idle)", "(program)", "(garbage collector)", "(root)"]);

function shortUrl(url: string): string {
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) return url.slice(nm + "node_modules/".length);
  const m = /\/(dist|src|scripts)\/(.*)$/.exec(url);
  if (m) return `${m[1]}/${m[2]}`;
  return url.replace(/^file:\/\//, "");
}

function keyOf(f: CallFrame): string {
  if (SPECIAL.has(f.functionName)) return f.functionName;
  const name = f.functionName || "(anonymous)";
  return f.url ? `${name}  ${shortUrl(f.url)}:${f.lineNumber + 1}` : `${name}  (native)`;
}

/** Which part of the system a frame belongs to. */
function areaOf(f: CallFrame): string {
  if (SPECIAL.has(f.functionName)) return f.functionName;
  const url = f.url;
  if (!url) return "native / V8 builtins";
  if (url.startsWith("node:")) return `node:${url.slice(5).split("/")[0] ?? ""}`;
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const rest = url.slice(nm + "node_modules/".length).split("/");
    return rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1] ?? ""}` : (rest[0] ?? "?");
  }
  const m = /\/(dist|src)\/([^/]+)\//.exec(url);
  if (m) return `switchboard ${m[2]}/`;
  return shortUrl(url);
}

function top(map: Map<string, number>, busyMs: number, n: number): Entry[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, us]) => ({ name, ms: Math.round(us / 100) / 10, pct: Math.round((us / 1000 / busyMs) * 1000) / 10 }));
}

export function summarizeProfiles(profiles: readonly CpuProfile[], n = 25): ProfileSummary {
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const areas = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (const p of profiles) {
    const byId = new Map(p.nodes.map((node) => [node.id, node]));
    const parent = new Map<number, number>();
    for (const node of p.nodes) for (const c of node.children ?? []) parent.set(c, node.id);
    p.samples.forEach((id, i) => {
      const dt = Math.max(0, p.timeDeltas[i] ?? 0);
      const node = byId.get(id);
      if (!node) return;
      totalUs += dt;
      const f = node.callFrame;
      if (f.functionName === "(idle)") {
        idleUs += dt;
        return;
      }
      const k = keyOf(f);
      self.set(k, (self.get(k) ?? 0) + dt);
      const area = areaOf(f);
      areas.set(area, (areas.get(area) ?? 0) + dt);
      // Count each function once per sample, however often recursion put it on the stack.
      const seen = new Set<string>();
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        const frame = byId.get(cur)?.callFrame;
        if (!frame || frame.functionName === "(root)") continue;
        const key = keyOf(frame);
        if (seen.has(key)) continue;
        seen.add(key);
        inclusive.set(key, (inclusive.get(key) ?? 0) + dt);
      }
    });
  }
  const busyMs = Math.max(1, (totalUs - idleUs) / 1000);
  return {
    totalMs: Math.round(totalUs / 1000),
    idleMs: Math.round(idleUs / 1000),
    selfTop: top(self, busyMs, n),
    inclusiveTop: top(inclusive, busyMs, n),
    areas: top(areas, busyMs, n),
  };
}

export function loadProfile(path: string): CpuProfile {
  return JSON.parse(readFileSync(path, "utf8")) as CpuProfile;
}

export function formatSummary(s: ProfileSummary): string {
  const rows = (title: string, list: readonly Entry[]) => [title, ...list.map((e) => `  ${e.ms.toFixed(0).padStart(8)} ms ${e.pct.toFixed(1).padStart(5)}%  ${e.name}`)].join("\n");
  return [
    `profiled ${(s.totalMs / 1000).toFixed(1)} s, busy ${((s.totalMs - s.idleMs) / 1000).toFixed(1)} s (percentages are of busy time)`,
    rows("self time by area:", s.areas.slice(0, 15)),
    rows("top functions by self time:", s.selfTop),
    rows("top functions by inclusive time:", s.inclusiveTop),
  ].join("\n\n");
}

function main(): void {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: "string", default: "25" }, json: { type: "boolean", default: false }, help: { type: "boolean", short: "h" } } });
  if (values.help || positionals.length === 0) {
    console.log("Usage: npx tsx scripts/profile-summary.ts [--top N] [--json] FILE.cpuprofile...\n\nTop functions by self and inclusive time, and self time per area, over all given profiles.");
    process.exitCode = values.help ? 0 : 2;
    return;
  }
  const summary = summarizeProfiles(positionals.map(loadProfile), Number(values.top));
  console.log(values.json ? JSON.stringify(summary, null, 2) : formatSummary(summary));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
