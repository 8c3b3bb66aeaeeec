/**
 * Chooses the hybrid classifier's defaults by cross-validation across the routing sets in
 * test/fixtures/routing/: each set is held out in turn, the grid point that does best on the
 * other sets is chosen, and its figures on the held-out set are reported. Then the points that
 * do best on all sets are listed.
 *
 *   npx tsx scripts/tune-routing.ts [--dir DIR] [--background]
 *
 * Without --background, the grid scores the agents' evidence before the competition with
 * everyday language (the everyday-word discount still shapes the word weights). With
 * --background, the other defaults stay as they are and the grid is over the background model of
 * everyday language instead: the everyday-word discount, the weight and allowance of the
 * background's competition, and the threshold. Each set is then held out with the first workplace
 * set kept on its targets whenever it is among the sets a setting is chosen on.
 *
 * "Best" is the smallest total shortfall below the targets (95/90 on the first workplace set,
 * 90/85 elsewhere), ties broken by mean accuracy. Signals are computed once per setting that
 * changes them; weights, focus and threshold are then varied on the stored signals.
 */
import { parseArgs } from "node:util";
import { isRight } from "../src/router/evaluation.js";
import { HybridClassifier, type SignalWeights, type Signals } from "../src/router/hybrid/index.js";
import { afterEverydayCompetition, confidence, evidence } from "../src/router/hybrid/calibration.js";
import { DEFAULT_ROUTING_SETS_DIR, readRoutingSets, type RoutingSet } from "./routing-sets.js";

const { values } = parseArgs({ options: { dir: { type: "string", default: DEFAULT_ROUTING_SETS_DIR }, background: { type: "boolean", default: false } } });

const sets = readRoutingSets(values.dir);

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
      const c = new HybridClassifier({ everydayDiscount, backgroundWeight: 1 });
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

if (values.background) {
  tuneBackground();
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
      const c = new HybridClassifier(indexing);
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
