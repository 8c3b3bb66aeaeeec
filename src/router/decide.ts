import type { Classifier } from "./classifier.js";
import { closeCandidates, DEFAULT_AMBIGUITY_MARGIN, isAmbiguous } from "./hybrid/ambiguity.js";
import type { RoutingDecision } from "./evaluation.js";

/** What the router would do with a text, offline: the chosen agent and, when it would ask, the choices. */
export function routingDecider(classifier: Classifier, margin = DEFAULT_AMBIGUITY_MARGIN): (text: string) => RoutingDecision & { readonly intent: string } {
  return (text) => {
    const c = classifier.classify(text);
    const candidates = isAmbiguous(c, margin) ? closeCandidates(c, margin) : [];
    return { agent: c.agent, candidates, intent: c.intent };
  };
}
