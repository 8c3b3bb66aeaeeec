import { performance } from "node:perf_hooks";
import { BUILTIN_PROFILES } from "../../src/agents/builtin.js";
import type { Classifier } from "../../src/router/classifier.js";
import { KeywordClassifier } from "../../src/router/keyword-classifier.js";
import { summarize, type LatencySummary } from "./stats.js";

export interface RoutingResult {
  readonly classifier: string;
  readonly setupMs: number;
  /** Per request, in microseconds. */
  readonly classifyUs: LatencySummary;
}

const UTTERANCES: readonly string[] = [
  "I need help with my budget",
  "How many vacation days do I have left?",
  "Has the supplier invoice been paid?",
  "I want to talk to human resources about my contract",
  "Can you prepare the quarterly forecast for the board?",
  "My laptop will not start and I have a meeting in ten minutes",
  "What is the parental leave policy for new employees?",
  "I need to submit my travel expenses from the Berlin trip",
];

/** The classifiers this checkout can import: the keyword one always, the hybrid one if present. */
async function classifiers(): Promise<{ name: string; make: () => Classifier }[]> {
  const list: { name: string; make: () => Classifier }[] = [{ name: "keyword", make: () => new KeywordClassifier() }];
  try {
    const hybrid = (await import("../../src/router/hybrid/index.js")) as { HybridClassifier?: new () => Classifier };
    const Hybrid = hybrid.HybridClassifier;
    if (Hybrid) list.push({ name: "hybrid", make: () => new Hybrid() });
  } catch (err) {
    process.stderr.write(`  [routing] hybrid classifier not importable (${err instanceof Error ? err.message.split("\n")[0] : String(err)}); measuring the keyword classifier only\n`);
  }
  return list;
}

/** Time per classification of first messages against the built-in routing profiles. */
export async function measureRouting(requests: number): Promise<RoutingResult[]> {
  const results: RoutingResult[] = [];
  for (const { name, make } of await classifiers()) {
    const t0 = performance.now();
    const classifier = make();
    classifier.setProfiles(BUILTIN_PROFILES);
    const setupMs = performance.now() - t0;
    for (let i = 0; i < 200; i++) classifier.classify(UTTERANCES[i % UTTERANCES.length] ?? "");
    const samples: number[] = [];
    for (let i = 0; i < requests; i++) {
      // A per-request suffix defeats caches keyed on the whole text, as real traffic would.
      const text = `${UTTERANCES[i % UTTERANCES.length] ?? ""} (ref ${i})`;
      const s = performance.now();
      classifier.classify(text);
      samples.push((performance.now() - s) * 1000);
    }
    results.push({ classifier: name, setupMs: Math.round(setupMs * 10) / 10, classifyUs: summarize(samples) });
  }
  return results;
}
