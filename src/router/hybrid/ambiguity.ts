import type { Classification } from "../classifier.js";

/**
 * Default gap between the two best confidences below which a routed result counts as ambiguous.
 * Confidences are calibrated so 0.5 is the routing threshold; two agents within 0.1 of each other
 * are closer than small rewordings of the same request move them, so the caller should ask.
 */
export const DEFAULT_AMBIGUITY_MARGIN = 0.1;

/**
 * True when an agent was chosen but the runner-up scores within `margin` of it: the caller should
 * let the user pick from {@link closeCandidates} rather than route silently.
 */
export function isAmbiguous(c: Classification, margin: number = DEFAULT_AMBIGUITY_MARGIN): boolean {
  const [first, second] = c.ranked;
  if (c.agent === undefined || !first || !second) return false;
  return first.score - second.score < margin;
}

/** The agents whose scores lie within `margin` of the best one, best first. */
export function closeCandidates(c: Classification, margin: number = DEFAULT_AMBIGUITY_MARGIN): string[] {
  const best = c.ranked[0]?.score ?? 0;
  return c.ranked.filter((r) => best - r.score < margin).map((r) => r.agent);
}
