import { countRoutingDecision, type RoutingOutcome } from "./metrics.js";
import { annotateActiveSpan, inSpan, SpanAttribute, SpanName } from "./tracing.js";

/** Runs the router's classification in its own span, which records the best agent and score. */
export function traceClassification<T extends { readonly agent?: string | undefined; readonly score: number }>(classify: () => Promise<T>): Promise<T> {
  return inSpan(SpanName.RouterClassify, {}, async (span) => {
    const result = await classify();
    span?.setAttributes({ [SpanAttribute.RoutedAgentType]: result.agent ?? "", [SpanAttribute.RoutingScore]: result.score });
    return result;
  });
}

/** Counts a routing decision and records it on the router's `agent handle` span. */
export function recordRoutingDecision(outcome: RoutingOutcome, agentType?: string, score?: number): void {
  countRoutingDecision(outcome);
  annotateActiveSpan({
    [SpanAttribute.RoutingDecision]: outcome,
    ...(agentType !== undefined ? { [SpanAttribute.RoutedAgentType]: agentType } : {}),
    ...(score !== undefined ? { [SpanAttribute.RoutingScore]: score } : {}),
  });
}
