import type { Classification } from "../classifier.js";

/**
 * Default margin below which the two best agents count as too close to call. It is measured on
 * the evidence (log-odds) scale, in units that equal a confidence gap near the 0.5 threshold:
 * 0.2 there is about 0.2 of evidence, more than small rewordings of the same request move it.
 * Measuring in log-odds keeps the test meaningful when both confidences saturate near 1 — 0.99999
 * against 0.9999 is a clear lead, not a tie.
 */
export const DEFAULT_AMBIGUITY_MARGIN = 0.2;

// Scores of exactly 0 or 1 (the keyword classifier) would make the log-odds infinite.
const EPSILON = 1e-9;

function logOdds(p: number): number {
  const q = Math.min(1 - EPSILON, Math.max(EPSILON, p));
  return Math.log(q / (1 - q));
}

/**
 * How far apart two confidences are, on the scale of {@link DEFAULT_AMBIGUITY_MARGIN}: the gap in
 * log-odds divided by 4, the slope of the logistic at 0.5.
 */
export function confidenceGap(best: number, other: number): number {
  return (logOdds(best) - logOdds(other)) / 4;
}

/**
 * True when an agent was chosen but the runner-up is within `margin` of it: the caller should
 * let the user pick from {@link closeCandidates} rather than route silently.
 */
export function isAmbiguous(c: Classification, margin: number = DEFAULT_AMBIGUITY_MARGIN): boolean {
  const [first, second] = c.ranked;
  if (c.agent === undefined || !first || !second) return false;
  return confidenceGap(first.score, second.score) < margin;
}

/** The agents within `margin` of the best one, best first. */
export function closeCandidates(c: Classification, margin: number = DEFAULT_AMBIGUITY_MARGIN): string[] {
  const best = c.ranked[0]?.score ?? 0;
  return c.ranked.filter((r) => confidenceGap(best, r.score) < margin).map((r) => r.agent);
}
