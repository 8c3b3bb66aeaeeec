import { describe, expect, it } from "vitest";
import { BUILTIN_PROFILES } from "../../src/agents/builtin.js";
import { containsEndWord } from "../../src/agents/end-word.js";
import { KeywordClassifier } from "../../src/router/keyword-classifier.js";
import { headline, noAgentMessage } from "../../src/router/router-agent.js";

describe("keyword classifier", () => {
  const classifier = new KeywordClassifier();
  classifier.setProfiles(BUILTIN_PROFILES);

  it("routes on whole-word keywords, case-insensitively", () => {
    expect(classifier.classify("I need help with my budget").agent).toBe("finance");
    expect(classifier.classify("BUDGET approval needed").agent).toBe("finance");
    expect(classifier.classify("Talk to HR please").agent).toBe("hr");
    expect(classifier.classify("a question about Human   Resources").agent).toBe("hr");
    expect(classifier.classify("An employee of mine is leaving").intent).toBe("keyword:employee");
  });

  it("does not match keywords inside other words", () => {
    expect(classifier.classify("three people are waiting outside").agent).toBeUndefined();
    expect(classifier.classify("budgetary").agent).toBeUndefined();
    expect(classifier.classify("hello").agent).toBeUndefined();
  });

  it("routes nowhere when no agent type is known", () => {
    const empty = new KeywordClassifier();
    empty.setProfiles([]);
    expect(empty.classify("budget").agent).toBeUndefined();
  });

  it("tells the user which agents exist when nothing fits", () => {
    expect(noAgentMessage(BUILTIN_PROFILES)).toMatch(/hr \(Human resources\).*finance \(budgets, expenses and reimbursements, invoices…\)/);
    expect(noAgentMessage([])).toMatch(/No agents are available/);
  });

  it("names each agent by the first clause of its description, whatever its punctuation", () => {
    const profile = (description: string) => ({ type: "it", description, keywords: [], examples: [] });
    expect(headline(profile("IT help desk: laptops, VPN and accounts."))).toBe("it (IT help desk)");
    expect(headline(profile("Answers IT questions, e.g. about laptops. Not for buying them."))).toBe("it (Answers IT questions, e.g. about laptops)");
    expect(headline(profile("Fixes laptops; resets passwords"))).toBe("it (Fixes laptops)");
    expect(headline(profile("Version 2.1 of the help desk"))).toBe("it (Version 2.1 of the help desk)");
    expect(headline(profile("Answers every question anyone in the company might have about their laptop, phone or accounts"))).toBe(
      "it (Answers every question anyone in the company…)",
    );
    expect(headline(profile(""))).toBe("it");
    // A first clause that only repeats the type's name says nothing: what follows it does.
    expect(headline({ ...profile("Facilities: office rooms, desks, parking."), type: "facilities" })).toBe("facilities (office rooms, desks, parking)");
    expect(headline({ ...profile("Product advice: sizes and fit"), type: "product_advice" })).toBe("product_advice (sizes and fit)");
  });
});

describe("END word", () => {
  it("matches END standing alone only", () => {
    expect(containsEndWord("END")).toBe(true);
    expect(containsEndWord("ok, END.")).toBe(true);
    expect(containsEndWord("ENDING soon")).toBe(false);
    expect(containsEndWord("the end")).toBe(false);
    expect(containsEndWord("BACKEND")).toBe(false);
    expect(containsEndWord("remember the END-OF-DAY report")).toBe(false);
    expect(containsEndWord("file it under PRE-END")).toBe(false);
    expect(containsEndWord("thanks - END")).toBe(true);
  });
});
