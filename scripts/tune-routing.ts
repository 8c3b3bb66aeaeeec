/**
 * Chooses the hybrid classifier's defaults by cross-validation across the routing sets in
 * test/fixtures/routing/: each set is held out in turn, the grid point that does best on the
 * other sets is chosen, and its figures on the held-out set are reported. Then the points that
 * do best on all sets are listed.
 *
 *   npx tsx scripts/tune-routing.ts [--dir DIR] [--background | --services | --joint [--seed N] [--samples N] [--combos N] [--minutes M]]
 *
 * Without --background, the grid scores the agents' evidence before the competition with
 * everyday language (the everyday-word discount still shapes the word weights). With
 * --background, the other defaults stay as they are and the grid is over the background model of
 * everyday language instead: the everyday-word discount, the weight and allowance of the
 * background's competition, and the threshold. Each set is then held out with the first workplace
 * set kept on its targets whenever it is among the sets a setting is chosen on.
 *
 * These grids, and --joint, tune the classifier without the service-desk domains (`services`),
 * whose credit is not a stored signal. With --services, every other default stays as it is and the
 * grid is over `serviceWeight`, each point scored with the classifier itself.
 *
 * With --joint, every numeric option is searched at once: a random search (--samples settings of
 * the options that change the signals, --combos settings of the rest on each), shared by the
 * folds, then per fold a coordinate descent from the fold's best point, scored on its three sets
 * only and stopped after --minutes. The chosen points are checked with the classifier itself and
 * their held-out figures printed beside the defaults'.
 *
 * "Best" is the smallest total shortfall below the targets (95/90 on the first workplace set,
 * 90/85 elsewhere), ties broken by mean accuracy. Signals are computed once per setting that
 * changes them; weights, focus and threshold are then varied on the stored signals.
 */
import { parseArgs } from "node:util";
import { routingDecider } from "../src/router/decide.js";
import { evaluate, isRight, ratio } from "../src/router/evaluation.js";
import { BackgroundCorpus, DEFAULT_HYBRID_OPTIONS, HybridClassifier, type HybridClassifierOptions, type Lexicon, type SignalWeights, type Signals, type WordVectors } from "../src/router/hybrid/index.js";
import { afterEverydayCompetition, confidence, evidence } from "../src/router/hybrid/calibration.js";
import { expandCompounds } from "../src/router/hybrid/compounds.js";
import type { ProfileIndex } from "../src/router/hybrid/profile-index.js";
import type { WordWeights } from "../src/router/hybrid/sentence-vector.js";
import { prepareQuery, scoreAgents, type SignalOptions } from "../src/router/hybrid/signals.js";
import type { SimilarityCache } from "../src/router/hybrid/similarity-cache.js";
import { contentTokens } from "../src/router/hybrid/text.js";
import { DEFAULT_ROUTING_SETS_DIR, readRoutingSets, type RoutingSet } from "./routing-sets.js";

const { values } = parseArgs({
  options: {
    dir: { type: "string", default: DEFAULT_ROUTING_SETS_DIR },
    background: { type: "boolean", default: false },
    services: { type: "boolean", default: false },
    joint: { type: "boolean", default: false },
    seed: { type: "string", default: "1" },
    samples: { type: "string", default: "300" },
    combos: { type: "string", default: "300" },
    minutes: { type: "string", default: "4" },
  },
});

const sets = readRoutingSets(values.dir);
/** The grids over stored signals leave the service-desk domains out; see --services. */
const withoutServices = { services: BackgroundCorpus.empty() } as const;

interface Score {
  readonly inAcc: number;
  readonly outAcc: number;
  readonly shortfall: number;
}

const objective = (scores: readonly Score[]) => -scores.reduce((s, x) => s + x.shortfall, 0) + 1e-3 * scores.reduce((s, x) => s + x.inAcc + x.outAcc, 0);
/**
 * The first workplace set must stay on its targets: among the sets a point is chosen on, a
 * shortfall there outweighs any gain elsewhere.
 */
const constrainedObjective = (scores: readonly Score[], names: readonly string[]) =>
  objective(scores) - 10 * scores.reduce((s, x, i) => s + (names[i] === "workplace" ? x.shortfall : 0), 0);
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

function tally(set: RoutingSet, chosen: readonly (string | undefined)[]): Score {
  let inN = 0, inR = 0, outN = 0, outR = 0;
  set.requests.forEach((request, i) => {
    const right = isRight(request, chosen[i]);
    if (request.expect === null) [outN, outR] = [outN + 1, outR + (right ? 1 : 0)];
    else [inN, inR] = [inN + 1, inR + (right ? 1 : 0)];
  });
  const inAcc = inR / inN, outAcc = outR / outN;
  return { inAcc, outAcc, shortfall: Math.max(0, set.targets[0] - inAcc) + Math.max(0, set.targets[1] - outAcc) };
}

/** Leave-one-set-out over a grid of points already scored on every set, then the best on all. */
function crossValidate<P>(points: readonly P[], results: readonly (readonly Score[])[], show: (p: P) => string, keepWorkplace = false): void {
  console.log(`${points.length} grid points\nheld out        chosen on the other sets                                        held-out in / out`);
  const names = sets.map((s) => s.name);
  const goal = (scores: readonly Score[], h: number) =>
    keepWorkplace ? constrainedObjective(scores.filter((_, s) => s !== h), names.filter((_, s) => s !== h)) : objective(scores.filter((_, s) => s !== h));
  sets.forEach((held, h) => {
    let best = 0;
    points.forEach((_, p) => {
      if (goal(results[p]!, h) > goal(results[best]!, h)) best = p;
    });
    const r = results[best]![h]!;
    console.log(`${held.name.padEnd(15)} ${show(points[best]!).padEnd(64)} ${pct(r.inAcc)} / ${pct(r.outAcc)}`);
  });
  const order = points.map((_, p) => p).sort((a, b) => objective(results[b]!) - objective(results[a]!));
  console.log("\nbest on all sets:");
  for (const p of order.slice(0, 10)) console.log(`${show(points[p]!).padEnd(64)} ${results[p]!.map((r, s) => `${sets[s]!.name} ${pct(r.inAcc)}/${pct(r.outAcc)}`).join("  ")}`);
  const w = sets.findIndex((s) => s.name === "workplace");
  if (w >= 0) {
    console.log("\nbest among the points that keep the workplace set on target:");
    for (const p of order.filter((p) => results[p]![w]!.shortfall === 0).slice(0, 6)) console.log(`${show(points[p]!).padEnd(64)} ${results[p]!.map((r, s) => `${sets[s]!.name} ${pct(r.inAcc)}/${pct(r.outAcc)}`).join("  ")}`);
  }
}

interface BackgroundPoint {
  readonly everydayDiscount: number;
  readonly backgroundWeight: number;
  readonly backgroundAllowance: number;
  readonly threshold: number;
}

/** The background grid: signals once per discount, competition and threshold varied on them. */
function tuneBackground(): void {
  const discounts = [0, 0.1, 0.25, 0.5, 1];
  // Per discount, set, request: each agent's evidence before the competition, and the background's.
  const scored = discounts.map((everydayDiscount) =>
    sets.map((set) => {
      const c = new HybridClassifier({ ...withoutServices, everydayDiscount, backgroundWeight: 1 });
      c.setProfiles(set.profiles);
      return set.requests.map((r) => {
        const { agents, background } = c.explainAll(r.text);
        return { agents: agents.map((a) => ({ agent: a.agent, evidence: a.rawEvidence, signals: a.signals })), background: background?.evidence };
      });
    }),
  );
  const points: BackgroundPoint[] = [];
  for (const everydayDiscount of discounts)
    for (const backgroundWeight of [0, 1, 1.5, 2, 2.5, 3, 4, 6, 8, 12, 16])
      for (const backgroundAllowance of [0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2])
        for (const threshold of [0.5]) points.push({ everydayDiscount, backgroundWeight, backgroundAllowance, threshold });
  const results = points.map((p) =>
    sets.map((set, s) => {
      const perRequest = scored[discounts.indexOf(p.everydayDiscount)]![s]!;
      const chosen = perRequest.map(({ agents, background }) => {
        let best: string | undefined;
        let bestE = -Infinity;
        for (const a of agents) {
          const e = afterEverydayCompetition(a.evidence, a.signals, background, p);
          if (e > bestE) [best, bestE] = [a.agent, e];
        }
        return confidence(bestE, 4) >= p.threshold ? best : undefined;
      });
      return tally(set, chosen);
    }),
  );
  crossValidate(points, results, (p) => `discount ${p.everydayDiscount} weight ${p.backgroundWeight} allowance ${p.backgroundAllowance} threshold ${p.threshold}`, true);
}

/** One numeric option of the joint search, with the range it is drawn from. */
interface Dim {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  /** Drawn on a log scale (smoothing). */
  readonly log?: boolean;
  readonly integer?: boolean;
  /** Changes the signals themselves, so a new value means indexing every set again. */
  readonly indexing?: boolean;
}

const DIMS: readonly Dim[] = [
  { name: "smoothing", min: 1e-4, max: 3e-3, log: true, indexing: true },
  { name: "backgroundQuantile", min: 0.7, max: 0.95, indexing: true },
  { name: "neighbours", min: 1, max: 6, integer: true, indexing: true },
  { name: "exampleWordTrust", min: 0.1, max: 1, indexing: true },
  { name: "exampleTopicality", min: 0, max: 1, indexing: true },
  { name: "minEvidence", min: 0.5, max: 3, indexing: true },
  { name: "relatedCloseness", min: 0, max: 0.5, indexing: true },
  { name: "everydayDiscount", min: 0, max: 1, indexing: true },
  { name: "threshold", min: 0.3, max: 0.9 },
  { name: "steepness", min: 2, max: 8 },
  { name: "keyword", min: 0, max: 1.5 },
  { name: "lexical", min: 0, max: 2 },
  { name: "semantic", min: 0, max: 4 },
  { name: "sentence", min: 0, max: 4 },
  { name: "focus", min: 0, max: 1 },
  // Infinity (the default) or a finite cap in this range.
  { name: "singleWordCap", min: 0.3, max: 2 },
  { name: "backgroundWeight", min: 0, max: 16 },
  { name: "backgroundAllowance", min: 0, max: 2.5 },
];
const INDEXING_DIMS = DIMS.filter((d) => d.indexing);
const COMBINING_DIMS = DIMS.filter((d) => !d.indexing);

type JointPoint = Readonly<Record<string, number>>;

const DEFAULT_POINT: JointPoint = (() => {
  const { weights, sortEveryRequest: _notNumeric, ...rest } = DEFAULT_HYBRID_OPTIONS;
  const flat: Record<string, number> = { ...weights, ...rest };
  return Object.fromEntries(DIMS.map((d) => [d.name, flat[d.name]!]));
})();

function jointOptions(p: JointPoint): Partial<HybridClassifierOptions> {
  const { keyword, lexical, semantic, sentence, ...rest } = p;
  return { ...rest, weights: { keyword: keyword!, lexical: lexical!, semantic: semantic!, sentence: sentence! } };
}

const indexingOf = (p: JointPoint) => JSON.stringify(INDEXING_DIMS.map((d) => p[d.name]));
const showJoint = (p: JointPoint) =>
  DIMS.filter((d) => p[d.name] !== DEFAULT_POINT[d.name])
    .map((d) => `${d.name} ${p[d.name]}`)
    .join(", ") || "the defaults";

/** Deterministic generator (mulberry32), so a run can be repeated. */
function randomSource(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Two significant digits are enough for a default someone has to read. */
const round2 = (x: number) => Number(x.toPrecision(2));

/** Each option keeps its default with probability 0.3, so points near the defaults are tried too. */
function drawValue(d: Dim, random: () => number): number {
  if (random() < 0.3) return DEFAULT_POINT[d.name]!;
  if (d.name === "singleWordCap" && random() < 0.4) return Number.POSITIVE_INFINITY;
  const u = random();
  if (d.integer) return Math.min(d.max, d.min + Math.floor(u * (d.max - d.min + 1)));
  return round2(d.log ? Math.exp(Math.log(d.min) + u * (Math.log(d.max) - Math.log(d.min))) : d.min + u * (d.max - d.min));
}

/** The values coordinate descent tries for one option: nine across its range, and its default. */
function dimGrid(d: Dim): number[] {
  const values = new Set<number>([DEFAULT_POINT[d.name]!]);
  if (d.integer) for (let v = d.min; v <= d.max; v++) values.add(v);
  else
    for (let i = 0; i <= 8; i++) {
      const u = i / 8;
      values.add(round2(d.log ? Math.exp(Math.log(d.min) + u * (Math.log(d.max) - Math.log(d.min))) : d.min + u * (d.max - d.min)));
    }
  if (d.name === "singleWordCap") values.add(Number.POSITIVE_INFINITY);
  return [...values];
}

/** What the combination step needs of one request: every agent's signals, then every everyday domain's. */
interface RequestSignals {
  readonly agents: readonly Signals[];
  readonly domains: readonly Signals[];
}

/**
 * Every agent's and everyday domain's signals, in index order, by the classifier's own code.
 * `explainAll` keeps only the domain that is best with the current weights, and the search
 * varies those weights, so this reaches past the classifier's private fields for all of them.
 */
function allSignals(c: HybridClassifier, text: string): RequestSignals {
  const inner = c as unknown as { index: ProfileIndex; vectors: WordVectors; weights: WordWeights; lexicon: Lexicon; cache: SimilarityCache; options: SignalOptions };
  const tokens = expandCompounds(contentTokens(text), inner.vectors);
  const all = scoreAgents(prepareQuery(text, tokens, inner.index, inner.vectors, inner.weights, inner.lexicon, inner.cache), inner.index, inner.options);
  return { agents: all.slice(0, inner.index.routable), domains: all.slice(inner.index.routable) };
}

/**
 * Signals per set and request for one setting of the indexing options, computed with the
 * everyday domains indexed (backgroundWeight 1) so that any weight can be applied afterwards.
 * The most recent settings are kept, since coordinate descent comes back to them.
 */
const signalCache = new Map<string, RequestSignals[][]>();
function signalsFor(p: JointPoint): RequestSignals[][] {
  const key = indexingOf(p);
  const hit = signalCache.get(key);
  if (hit) return hit;
  const computed = sets.map((set) => {
    const c = new HybridClassifier({ ...withoutServices, ...jointOptions(p), backgroundWeight: 1 });
    c.setProfiles(set.profiles);
    return set.requests.map((r) => allSignals(c, r.text));
  });
  if (signalCache.size >= 32) signalCache.delete(signalCache.keys().next().value!);
  signalCache.set(key, computed);
  return computed;
}

/** What the classifier would decide with point p, from stored signals; as in `explainAll` and `classify`. */
function scoreJoint(p: JointPoint, s: number): Score {
  const set = sets[s]!;
  const weights: SignalWeights = { keyword: p.keyword!, lexical: p.lexical!, semantic: p.semantic!, sentence: p.sentence! };
  const chosen = signalsFor(p)[s]!.map(({ agents, domains }) => {
    let everyday = -Infinity;
    for (const d of domains) everyday = Math.max(everyday, weights.lexical * d.lexical + weights.sentence * d.sentence);
    const penalty = p.backgroundWeight! > 0 && domains.length > 0 ? p.backgroundWeight! * Math.max(0, everyday - p.backgroundAllowance!) : 0;
    // The first agent in profile order wins a tie in confidence, as in the classifier's stable sort.
    let best = -1;
    let bestScore = -Infinity;
    agents.forEach((a, i) => {
      const raw = evidence(a, weights, p.focus!, p.singleWordCap!);
      const score = confidence(a.keyword && a.keywordOnly ? raw : raw - penalty, p.steepness!);
      if (score > bestScore) [best, bestScore] = [i, score];
    });
    return best >= 0 && bestScore >= p.threshold! ? set.profiles[best]!.type : undefined;
  });
  return tally(set, chosen);
}

/** The classifier itself on every set with point p: the check that the stored signals told the truth. */
function verifyJoint(p: JointPoint): Score[] {
  return sets.map((set) => {
    const c = new HybridClassifier({ ...withoutServices, ...jointOptions(p) });
    c.setProfiles(set.profiles);
    const report = evaluate(set.requests, routingDecider(c));
    const inAcc = ratio(report.inScopeRight, report.inScope), outAcc = ratio(report.outOfScopeRight, report.outOfScope);
    return { inAcc, outAcc, shortfall: Math.max(0, set.targets[0] - inAcc) + Math.max(0, set.targets[1] - outAcc) };
  });
}

/**
 * Joint search over every numeric option. The random points are scored on every set once and
 * shared by the folds (each fold chooses among them on its three sets only); coordinate descent
 * then starts from each fold's best and sees only that fold's three sets.
 */
function tuneJoint(): void {
  const random = randomSource(Number(values.seed));
  const samples = Number(values.samples), combos = Number(values.combos), minutes = Number(values.minutes);
  const names = sets.map((s) => s.name);
  const goal = (scores: readonly Score[], held: number) =>
    constrainedObjective(scores.filter((_, s) => s !== held), names.filter((_, s) => s !== held));
  const defaults = sets.map((_, s) => scoreJoint(DEFAULT_POINT, s));
  const started = Date.now();

  const pool: { point: JointPoint; scores: Score[] }[] = [{ point: DEFAULT_POINT, scores: defaults }];
  for (let i = 0; i < samples; i++) {
    const indexing = Object.fromEntries(INDEXING_DIMS.map((d) => [d.name, i === 0 ? DEFAULT_POINT[d.name]! : drawValue(d, random)]));
    for (let j = 0; j < combos; j++) {
      const point = { ...indexing, ...Object.fromEntries(COMBINING_DIMS.map((d) => [d.name, drawValue(d, random)])) };
      pool.push({ point, scores: sets.map((_, s) => scoreJoint(point, s)) });
    }
  }
  console.log(`random search: ${pool.length} points in ${((Date.now() - started) / 1000).toFixed(0)} s`);

  const chosen = sets.map((held, h) => {
    let best = pool[0]!;
    for (const entry of pool) if (goal(entry.scores, h) > goal(best.scores, h)) best = entry;
    const foldStart = Date.now();
    let point = best.point;
    let value = goal(best.scores, h);
    let improved = true;
    for (let pass = 0; improved && Date.now() - foldStart < minutes * 60_000; pass++) {
      improved = false;
      for (const d of DIMS) {
        if (Date.now() - foldStart >= minutes * 60_000) break;
        for (const v of dimGrid(d)) {
          if (v === point[d.name]) continue;
          const candidate = { ...point, [d.name]: v };
          const scores = sets.map((_, s) => (s === h ? { inAcc: 0, outAcc: 0, shortfall: 0 } : scoreJoint(candidate, s)));
          const g = goal(scores, h);
          if (g > value + 1e-12) [point, value, improved] = [candidate, g, true];
        }
      }
    }
    console.log(`${held.name}: random best ${goal(best.scores, h).toFixed(4)}, after descent ${value.toFixed(4)} (${((Date.now() - foldStart) / 1000).toFixed(0)} s)`);
    return point;
  });

  const fmt = (r: Score) => `${pct(r.inAcc)} / ${pct(r.outAcc)}`;
  const verifiedDefaults = verifyJoint(DEFAULT_POINT);
  console.log("\nheld out        held-out in / out: chosen    defaults          chosen on the other three sets");
  const verified = chosen.map((point, h) => {
    const scores = verifyJoint(point);
    console.log(`${sets[h]!.name.padEnd(15)} ${fmt(scores[h]!).padEnd(26)} ${fmt(verifiedDefaults[h]!).padEnd(17)} ${showJoint(point)}`);
    return scores;
  });
  console.log("\neach chosen point on every set (verified with the classifier):");
  chosen.forEach((_, h) => console.log(`chosen without ${sets[h]!.name.padEnd(13)} ${verified[h]!.map((r, s) => `${sets[s]!.name} ${fmt(r)}`).join("  ")}`));
  console.log(`defaults${" ".repeat(21)} ${verifiedDefaults.map((r, s) => `${sets[s]!.name} ${fmt(r)}`).join("  ")}`);
  const mismatch = chosen.some((point, h) => sets.some((_, s) => Math.abs(scoreJoint(point, s).shortfall - verified[h]![s]!.shortfall) > 1e-9));
  if (mismatch) console.log("\nwarning: the stored signals disagree with the classifier on a chosen point");
  console.log(`\ntotal ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

if (values.joint) {
  tuneJoint();
  process.exit(0);
}

if (values.background) {
  tuneBackground();
  process.exit(0);
}

/** The service-desk domains' weight, every other default as it is, scored with the classifier itself. */
function tuneServices(): void {
  const weights = [0, 0.5, 0.75, 1, 1.25, 1.5, 2, 3];
  const results = weights.map((serviceWeight) =>
    sets.map((set) => {
      const c = new HybridClassifier({ serviceWeight });
      c.setProfiles(set.profiles);
      return tally(set, set.requests.map((r) => c.classify(r.text).agent));
    }),
  );
  crossValidate(weights, results, (w) => `service weight ${w}`, true);
}

if (values.services) {
  tuneServices();
  process.exit(0);
}

interface Point {
  readonly exampleWordTrust: number;
  readonly exampleTopicality: number;
  readonly focus: number;
  readonly singleWordCap: number;
  readonly threshold: number;
  readonly weights: SignalWeights;
}

// Settings that change the signals themselves; the rest only combine them.
const INDEXINGS = [
  { exampleWordTrust: 1, exampleTopicality: 0 },
  { exampleWordTrust: 0.6, exampleTopicality: 0 },
  { exampleWordTrust: 0.35, exampleTopicality: 0 },
  { exampleWordTrust: 0.35, exampleTopicality: 1 },
  { exampleWordTrust: 0.1, exampleTopicality: 1 },
] as const;
const indexingKey = (p: { exampleWordTrust: number; exampleTopicality: number }) => `${p.exampleWordTrust}/${p.exampleTopicality}`;
const points: Point[] = [];
for (const indexing of INDEXINGS)
  for (const focus of [0, 1])
    for (const singleWordCap of [Infinity, 1.2, 0.9, 0.7, 0.5])
      for (const keyword of [1, 0.5])
        for (const lexical of [1, 2])
          for (const semantic of [1, 2, 3])
            for (const sentence of [0, 1.5, 3])
              for (const threshold of [0.5, 0.7, 0.85, 0.95])
                points.push({ ...indexing, focus, singleWordCap, threshold, weights: { keyword, lexical, semantic, sentence } });

// Signals per set, per trust, per request, per agent.
const signals = new Map<string, { agent: string; signals: Signals }[][][]>();
for (const indexing of INDEXINGS) {
  signals.set(
    indexingKey(indexing),
    sets.map((set) => {
      const c = new HybridClassifier({ ...withoutServices, ...indexing });
      c.setProfiles(set.profiles);
      return set.requests.map((r) => c.explain(r.text).map(({ agent, signals }) => ({ agent, signals })));
    }),
  );
}

function score(s: number, p: Point): Score {
  const set = sets[s]!;
  const perRequest = signals.get(indexingKey(p))![s]!;
  const chosen = set.requests.map((_, i) => {
    let best: string | undefined;
    let bestE = -Infinity;
    for (const a of perRequest[i]!) {
      const e = evidence(a.signals, p.weights, p.focus, p.singleWordCap);
      if (e > bestE) [best, bestE] = [a.agent, e];
    }
    return confidence(bestE, 4) >= p.threshold ? best : undefined;
  });
  return tally(set, chosen);
}

const results = points.map((p) => sets.map((_, s) => score(s, p)));
const show = (p: Point) => `trust ${p.exampleWordTrust} topical ${p.exampleTopicality} focus ${p.focus} cap ${p.singleWordCap} threshold ${p.threshold} weights ${p.weights.keyword}/${p.weights.lexical}/${p.weights.semantic}/${p.weights.sentence}`;
crossValidate(points, results, show);
