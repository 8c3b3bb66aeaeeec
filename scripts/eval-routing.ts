/**
 * Measures the hybrid router on a labelled request set.
 *
 *   npx tsx scripts/eval-routing.ts [--profiles FILE] [--dev FILE] [--check] [--verbose]
 *
 * Each line of the request set is `{"text": "...", "expect": "agent-type" | null}`; null means no
 * agent should be chosen. Prints accuracy on in-scope and out-of-scope requests and every miss
 * with its per-agent signals. With --check, exits 1 unless in-scope accuracy is at least 95% and
 * out-of-scope accuracy at least 90%.
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { RoutingProfile } from "../src/router/classifier.js";
import { HybridClassifier, type AgentExplanation } from "../src/router/hybrid/index.js";

const IN_SCOPE_TARGET = 0.95;
const OUT_OF_SCOPE_TARGET = 0.9;

interface LabelledRequest {
  readonly text: string;
  readonly expect: string | null;
}

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({
  options: {
    profiles: { type: "string", default: resolve(repoRoot, "../shared/routing/profiles.json") },
    dev: { type: "string", default: resolve(repoRoot, "../shared/routing/dev-set.jsonl") },
    check: { type: "boolean", default: false },
    verbose: { type: "boolean", default: false },
  },
});

function readRequests(path: string): LabelledRequest[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as LabelledRequest);
}

function describe(e: AgentExplanation): string {
  const s = e.signals;
  const pair = s.bestPair ? ` ${s.bestPair[0]}~${s.bestPair[1]}` : "";
  return `${e.agent}=${e.score.toFixed(2)} (kw ${s.keyword ?? "-"}, lex ${s.lexical.toFixed(2)}, sem ${s.semantic.toFixed(2)}, sent ${s.sentence.toFixed(2)}${pair})`;
}

const profiles = JSON.parse(readFileSync(values.profiles, "utf8")) as RoutingProfile[];
const requests = readRequests(values.dev);
const classifier = new HybridClassifier();
classifier.setProfiles(profiles);

let inScope = 0;
let inScopeRight = 0;
let outOfScope = 0;
let outOfScopeRight = 0;
for (const { text, expect } of requests) {
  const result = classifier.classify(text);
  const chosen = result.agent ?? null;
  const right = chosen === expect;
  if (expect === null) {
    outOfScope++;
    if (right) outOfScopeRight++;
  } else {
    inScope++;
    if (right) inScopeRight++;
  }
  if (!right || values.verbose) {
    const mark = right ? "ok  " : "MISS";
    console.log(`${mark} ${JSON.stringify(text)} expected ${expect ?? "none"}, got ${chosen ?? "none"} [${result.intent}]`);
    console.log(`     ${classifier.explain(text).map(describe).join("  ")}`);
  }
}

const inAccuracy = inScope === 0 ? 1 : inScopeRight / inScope;
const outAccuracy = outOfScope === 0 ? 1 : outOfScopeRight / outOfScope;
const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
console.log(`in-scope:     ${inScopeRight}/${inScope} routed to the right agent (${pct(inAccuracy)}, target ${pct(IN_SCOPE_TARGET)})`);
console.log(`out-of-scope: ${outOfScopeRight}/${outOfScope} rejected (${pct(outAccuracy)}, target ${pct(OUT_OF_SCOPE_TARGET)})`);
if (values.check && (inAccuracy < IN_SCOPE_TARGET || outAccuracy < OUT_OF_SCOPE_TARGET)) {
  console.error("routing accuracy is below target");
  process.exit(1);
}
