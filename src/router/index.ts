export type { Classification, Classifier, RoutingProfile, ScoredAgent } from "./classifier.js";
export { KeywordClassifier, keywordPattern } from "./keyword-classifier.js";
export { LlmClassifier, type LlmClassifierOptions } from "./llm-classifier.js";
export { HybridClassifier, isAmbiguous, closeCandidates, DEFAULT_AMBIGUITY_MARGIN } from "./hybrid/index.js";
export { RouterAgentType, ROUTER_AGENT_TYPE, USER_CHOICE_INTENT, clarifyQuestion, noAgentMessage, type RouterOptions } from "./router-agent.js";
export { readProfilesFile, parseProfiles } from "./profiles-file.js";
