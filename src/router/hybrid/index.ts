export { HybridClassifier, DEFAULT_HYBRID_OPTIONS } from "./hybrid-classifier.js";
export type { HybridClassifierOptions, AgentExplanation } from "./hybrid-classifier.js";
export { isAmbiguous, closeCandidates, confidenceGap, DEFAULT_AMBIGUITY_MARGIN } from "./ambiguity.js";
export type { SignalWeights } from "./calibration.js";
export { evidence, confidence } from "./calibration.js";
export type { Signals } from "./signals.js";
export { WordVectors, DEFAULT_WORD_VECTORS_PATH } from "./word-vectors.js";
export { Lexicon, DEFAULT_LEXICON_PATH } from "./lexicon.js";
