import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import type { Classification, RoutingProfile } from "../../src/router/classifier.js";
import { DEFAULT_AMBIGUITY_MARGIN, HybridClassifier, closeCandidates, isAmbiguous } from "../../src/router/hybrid/index.js";

const routingDir = resolve(dirname(fileURLToPath(import.meta.url)), "../fixtures/routing/workplace");

interface LabelledRequest {
  readonly text: string;
  readonly expect: string | null;
}

const profiles = JSON.parse(readFileSync(resolve(routingDir, "profiles.json"), "utf8")) as RoutingProfile[];
const devSet = readFileSync(resolve(routingDir, "dev-set.jsonl"), "utf8")
  .split("\n")
  .filter((l) => l.trim() !== "")
  .map((l) => JSON.parse(l) as LabelledRequest);

const itSupport: RoutingProfile = {
  type: "it-support",
  description: "IT support: laptops and computers, software installation, passwords and accounts, VPN and network access, printers.",
  keywords: ["it support", "helpdesk"],
  examples: ["My laptop will not start", "I forgot my password", "The printer is jammed"],
};

function classification(scores: readonly [string, number][], agent: string | undefined): Classification {
  return { agent, score: scores[0]?.[1] ?? 0, intent: "test", ranked: scores.map(([a, score]) => ({ agent: a, score })) };
}

describe("HybridClassifier", () => {
  let classifier: HybridClassifier;
  beforeAll(() => {
    classifier = new HybridClassifier();
    classifier.setProfiles(profiles);
  });

  it("routes in-scope requests of the development set to the right agent", () => {
    const inScope = devSet.filter((r) => r.expect !== null);
    const right = inScope.filter((r) => classifier.classify(r.text).agent === r.expect).length;
    expect(right / inScope.length).toBeGreaterThanOrEqual(0.95);
  });

  it("rejects out-of-scope requests of the development set", () => {
    const outOfScope = devSet.filter((r) => r.expect === null);
    const rejected = outOfScope.filter((r) => classifier.classify(r.text).agent === undefined).length;
    expect(rejected / outOfScope.length).toBeGreaterThanOrEqual(0.9);
  });

  it("does not read 'three' as the hr keyword", () => {
    const result = classifier.classify("three people are waiting outside");
    expect(result.agent).not.toBe("hr");
  });

  it("explains a keyword match in the intent", () => {
    expect(classifier.classify("Talk to HR please")).toMatchObject({ agent: "hr", intent: "keyword:hr" });
  });

  it("routes a message made only of a declared keyword and courtesy words to that keyword's agent", () => {
    // "contract" is a keyword of legal, and procurement's profile speaks of supplier contracts.
    const c = new HybridClassifier();
    c.setProfiles(JSON.parse(readFileSync(resolve(routingDir, "../workplace-v2/profiles.json"), "utf8")) as RoutingProfile[]);
    for (const [text, agent] of [["contract please", "legal"], ["Hi, a question about the vendor", "procurement"], ["MFA?", "security"], ["talk to marketing", "marketing"]] as const) {
      const result = c.classify(text);
      expect(result, text).toMatchObject({ agent, intent: expect.stringMatching(/^keyword:/) as unknown });
      expect(isAmbiguous(result), text).toBe(false);
    }
  });

  it("routes by a profile word the word vectors do not know, as a keyword and in a sentence", () => {
    const c = new HybridClassifier();
    c.setProfiles(JSON.parse(readFileSync(resolve(routingDir, "../workplace-v2/profiles.json"), "utf8")) as RoutingProfile[]);
    // "phishing" is a keyword of security and not among the bundled vectors' words; split into
    // known parts it matched nothing.
    expect(c.classify("phishing?")).toMatchObject({ agent: "security", intent: "keyword:phishing" });
    expect(c.classify("Report phishing please")).toMatchObject({ agent: "security", intent: "keyword:phishing" });
    const licensing: RoutingProfile = {
      type: "licensing",
      description: "Software licences: seats, renewals and licence keys for the tools we buy.",
      keywords: ["licence", "Zorbatex"],
      examples: ["We need five more Zorbatex seats for the design team", "When does our licence renew?", "My licence key is not accepted"],
    };
    c.setProfiles([...profiles, licensing]);
    expect(c.classify("Zorbatex please").agent).toBe("licensing");
    expect(c.classify("Zorbatex keeps asking me for a key").agent).toBe("licensing");
  });

  it("ranks every agent best first with calibrated scores", () => {
    const result = classifier.classify("My reimbursement for the conference hotel has not arrived");
    expect(result.ranked.map((r) => r.agent).sort()).toEqual(["finance", "hr"]);
    expect(result.ranked[0]?.score).toBeGreaterThanOrEqual(result.ranked[1]?.score ?? 1);
    for (const r of result.ranked) expect(r.score).toBeGreaterThan(0), expect(r.score).toBeLessThan(1);
    expect(result.score).toBe(result.ranked[0]?.score);
  });

  it("makes an agent type added with setProfiles routable, and unroutable once removed", () => {
    const c = new HybridClassifier();
    c.setProfiles(profiles);
    const request = "My laptop keeps losing the VPN connection";
    expect(c.classify(request).agent).toBeUndefined();
    c.setProfiles([...profiles, itSupport]);
    expect(c.classify(request).agent).toBe("it-support");
    c.setProfiles(profiles);
    const after = c.classify(request);
    expect(after.agent).toBeUndefined();
    expect(after.ranked.map((r) => r.agent)).not.toContain("it-support");
  });

  it("chooses no agent when no profiles are registered", () => {
    const c = new HybridClassifier();
    expect(c.classify("I need help with my budget")).toMatchObject({ agent: undefined, score: 0, ranked: [] });
    c.setProfiles([]);
    expect(c.classify("I need help with my budget").agent).toBeUndefined();
  });

  it("classifies a request with no content words as no agent", () => {
    expect(classifier.classify("").agent).toBeUndefined();
    expect(classifier.classify("?!").agent).toBeUndefined();
  });
});

describe("isAmbiguous", () => {
  it("is true when the two best routed scores are within the default margin", () => {
    expect(isAmbiguous(classification([["finance", 0.8], ["hr", 0.8 - DEFAULT_AMBIGUITY_MARGIN / 2]], "finance"))).toBe(true);
  });

  it("is false when the best agent clearly leads", () => {
    expect(isAmbiguous(classification([["finance", 0.9], ["hr", 0.3]], "finance"))).toBe(false);
  });

  it("is false when no agent was chosen or only one is registered", () => {
    expect(isAmbiguous(classification([["finance", 0.3], ["hr", 0.29]], undefined))).toBe(false);
    expect(isAmbiguous(classification([["finance", 0.9]], "finance"))).toBe(false);
  });

  it("honours a custom margin and lists the close candidates", () => {
    const c = classification([["finance", 0.8], ["hr", 0.6], ["legal", 0.2]], "finance");
    expect(isAmbiguous(c)).toBe(false);
    expect(isAmbiguous(c, 0.25)).toBe(true);
    expect(closeCandidates(c, 0.25)).toEqual(["finance", "hr"]);
  });

  it("flags a real request that fits two registered agents", () => {
    const c = new HybridClassifier();
    c.setProfiles(profiles);
    // Health insurance is a benefit (hr) and a cost (finance): the two are within the margin.
    const result = c.classify("How do I add my spouse to the health insurance plan?");
    expect(result.agent).toBe("hr");
    expect(isAmbiguous(result)).toBe(true);
    expect(closeCandidates(result)).toEqual(["hr", "finance"]);
  });

  it("does not call two saturated scores a tie when one clearly leads", () => {
    // Without the everyday competition, which would lower both scores alike, so both saturate.
    const c = new HybridClassifier({ backgroundWeight: 0 });
    c.setProfiles([
      ...profiles,
      { type: "payroll", description: "Payroll: salary payments, pay slips, overtime pay, tax withholding and bank details for salary.", keywords: ["payroll", "salary"], examples: ["When is salary paid?"] },
    ]);
    const result = c.classify("My salary payment this month looks wrong");
    expect(result.agent).toBe("payroll");
    expect(result.ranked[1]?.score).toBeGreaterThan(0.9);
    expect(isAmbiguous(result)).toBe(false);
  });

});
