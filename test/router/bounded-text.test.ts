import { performance } from "node:perf_hooks";
import { describe, expect, it } from "vitest";
import { splitCompound } from "../../src/router/hybrid/compounds.js";
import { HybridClassifier } from "../../src/router/hybrid/index.js";
import { contentTokens, MAX_WORD_CHARS, stemWord } from "../../src/router/hybrid/text.js";
import { defaultWordVectors } from "../../src/router/hybrid/word-vectors.js";

const profiles = [
  { type: "finance", description: "Finance: budgets, invoices, expenses and reimbursements.", keywords: ["budget"], examples: ["Has my invoice been paid?"] },
  { type: "hr", description: "Human resources: leave, benefits, payroll questions.", keywords: ["vacation"], examples: ["How many days of leave do I have?"] },
];

function timeClassify(classifier: HybridClassifier, text: string): number {
  const start = performance.now();
  classifier.classify(text);
  return performance.now() - start;
}

describe("bounded text work in the router", () => {
  it("cuts words to MAX_WORD_CHARS before stemming", () => {
    const tokens = contentTokens(`budget ${"y".repeat(10_000)} invoices`);
    expect(tokens.map((t) => t.word.length)).toEqual([6, MAX_WORD_CHARS, 8]);
    expect(stemWord("z".repeat(100_000)).length).toBeLessThanOrEqual(MAX_WORD_CHARS);
  });

  it("does not try to split words longer than MAX_WORD_CHARS", () => {
    const vectors = defaultWordVectors();
    expect(splitCompound("timesheet", vectors)).toEqual(["time", "sheet"]);
    expect(splitCompound("time" + "x".repeat(10_000) + "sheet", vectors)).toBeUndefined();
  });

  it("classifies a 16,000-character word no slower than 16,000 characters of prose", () => {
    const classifier = new HybridClassifier({ similarityCacheBytes: 0 });
    classifier.setProfiles(profiles);
    const prose = "please check whether the travel expenses from the conference in march were reimbursed to my account ";
    const normal = prose.repeat(Math.ceil(16_000 / prose.length)).slice(0, 16_000);
    const hostile = ["y".repeat(16_000), "abcdefghijklmnopqrstuvwxyz".repeat(616).slice(0, 16_000), `${"timesheetbudget".repeat(60)} `.repeat(18).slice(0, 16_000)];
    timeClassify(classifier, normal);
    const normalMs = Math.max(timeClassify(classifier, normal), timeClassify(classifier, normal));
    for (const text of hostile) {
      timeClassify(classifier, text);
      // Twice the normal cost plus slack for a busy machine; before the caps one such word took seconds.
      expect(timeClassify(classifier, text)).toBeLessThan(normalMs * 2 + 50);
    }
  });
});
