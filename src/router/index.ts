export type { Classification, Classifier, RoutingProfile, ScoredAgent } from "./classifier.js";
export { KeywordClassifier, keywordPattern } from "./keyword-classifier.js";
export { RouterAgentType, ROUTER_AGENT_TYPE, noAgentMessage, type RouterOptions } from "./router-agent.js";
