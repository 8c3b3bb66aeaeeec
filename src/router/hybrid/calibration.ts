import type { Signals } from "./signals.js";

/** How much each signal adds to the evidence that a request is for an agent. */
export interface SignalWeights {
  readonly keyword: number;
  readonly lexical: number;
  readonly semantic: number;
  readonly sentence: number;
}

/**
 * Evidence is scaled so that 1 is exactly enough to route: a declared keyword alone reaches it,
 * and so does a strong semantic match, or weaker lexical, semantic and sentence signals together.
 */
export function evidence(signals: Signals, weights: SignalWeights, focus = 0, singleWordCap = Infinity): number {
  // A request that only names an agent ("HR please") is for that agent whatever else matches.
  // One more than any mix of signals can reach, so that agent wins outright.
  if (signals.keyword && signals.keywordOnly) return 1 + weights.keyword + weights.lexical + weights.semantic + weights.sentence;
  const total = weighted(signals, weights);
  // One word adds at most `singleWordCap` to what the rest of the request says: a word shared
  // with a profile, in a request about something else, must not carry it alone.
  const sum = Number.isFinite(singleWordCap) ? Math.min(total, weighted(signals.rest, weights) + singleWordCap) : total;
  // Scaled by how much of the request is about the agent: one shared word in a request about
  // something else ("file my tax return") must not carry it across the threshold.
  return focus === 0 ? sum : sum * Math.min(1, signals.coverage / FULL_COVERAGE) ** focus;
}

/** How strongly everyday language competes with the agents (see `HybridClassifierOptions`). */
export interface EverydayCompetition {
  readonly backgroundWeight: number;
  readonly backgroundAllowance: number;
}

/**
 * An agent's evidence after the competition with everyday language: the best everyday domain's
 * evidence beyond the allowance, times the weight, is taken off, so a request that ordinary life
 * explains better than any agent is not routed. `backgroundEvidence` is undefined when nothing
 * competes.
 */
export function afterEverydayCompetition(rawEvidence: number, signals: Pick<Signals, "keyword" | "keywordOnly">, backgroundEvidence: number | undefined, competition: EverydayCompetition): number {
  // A message that only names an agent ("HR please") is for that agent, as ever.
  if ((signals.keyword && signals.keywordOnly) || backgroundEvidence === undefined) return rawEvidence;
  return rawEvidence - competition.backgroundWeight * Math.max(0, backgroundEvidence - competition.backgroundAllowance);
}

/** Coverage at which a request counts as entirely about an agent. */
const FULL_COVERAGE = 0.5;

function weighted(s: { readonly keyword: unknown; readonly lexical: number; readonly semantic: number; readonly sentence: number }, weights: SignalWeights): number {
  return (s.keyword ? weights.keyword : 0) + weights.lexical * s.lexical + weights.semantic * s.semantic + weights.sentence * s.sentence;
}

/**
 * Maps evidence to a confidence in (0, 1) with a logistic curve centred on the routing point, so
 * evidence 1 is confidence 0.5 and every agent's score is on the same scale as the threshold.
 * `steepness` sets how quickly confidence saturates on either side.
 */
export function confidence(evidenceValue: number, steepness: number): number {
  return 1 / (1 + Math.exp(-steepness * (evidenceValue - 1)));
}
