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
export function evidence(signals: Signals, weights: SignalWeights): number {
  return (
    (signals.keyword ? weights.keyword : 0) +
    weights.lexical * signals.lexical +
    weights.semantic * signals.semantic +
    weights.sentence * signals.sentence
  );
}

/**
 * Maps evidence to a confidence in (0, 1) with a logistic curve centred on the routing point, so
 * evidence 1 is confidence 0.5 and every agent's score is on the same scale as the threshold.
 * `steepness` sets how quickly confidence saturates on either side.
 */
export function confidence(evidenceValue: number, steepness: number): number {
  return 1 / (1 + Math.exp(-steepness * (evidenceValue - 1)));
}
