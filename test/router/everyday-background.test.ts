import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import type { RoutingProfile } from "../../src/router/classifier.js";
import { BackgroundCorpus, HybridClassifier, isAmbiguous } from "../../src/router/hybrid/index.js";
import { stemWord } from "../../src/router/hybrid/text.js";
import { routingSetTexts, stemsOf } from "../helpers/routing-set-texts.js";

const v2Profiles = JSON.parse(readFileSync(fileURLToPath(new URL("../fixtures/routing/workplace-v2/profiles.json", import.meta.url)), "utf8")) as RoutingProfile[];

// Everyday requests that share one word with a profile of the workplace-v2 set, written for these
// tests: "morning" (security's example about a device stolen on the train), "buy" (procurement),
// "weekend" (travel's trips).
const EVERYDAY_NEAR_MISSES = [
  ["My cat got stuck up a tree this morning", "security"],
  ["Is it safe to buy a used washing machine from a neighbour?", "procurement"],
  ["What should I pack for a camping weekend with the kids?", "travel"],
] as const;

describe("the background of everyday language", () => {
  it("loads the bundled corpus of everyday requests by life domain", () => {
    const corpus = BackgroundCorpus.load();
    expect(corpus.domains.length).toBeGreaterThanOrEqual(20);
    expect(corpus.domains.reduce((n, d) => n + d.requests.length, 0)).toBeGreaterThanOrEqual(400);
    for (const word of ["someone", "check", "allowed", "next", "send", "morning", "buy"]) expect(corpus.domainsUsing(stemWord(word)), word).toBeGreaterThanOrEqual(4);
    for (const word of ["mortgage", "toddler", "phishing"]) expect(corpus.domainsUsing(stemWord(word)), word).toBeLessThanOrEqual(1);
  });

  it("shares no request with the routing sets it is measured on", () => {
    // Every request and profile example of every set, as sets of stems.
    const setTexts = routingSetTexts().map(stemsOf);
    expect(setTexts.length).toBeGreaterThan(300);
    const tooClose: string[] = [];
    for (const domain of BackgroundCorpus.load().domains) {
      for (const request of domain.requests) {
        const own = stemsOf(request);
        const overlap = (other: Set<string>) => {
          const shared = [...own].filter((s) => other.has(s)).length;
          return shared / (own.size + other.size - shared || 1);
        };
        // Two short requests may share a word or two by chance; half their words is a copy.
        if (setTexts.some((other) => overlap(other) >= 0.5)) tooClose.push(request);
      }
    }
    expect(tooClose).toEqual([]);
  });

  it("parses domains, requests and comments", () => {
    const corpus = BackgroundCorpus.parse("# header\n\n## cooking\nboil an egg\n# aside\nroast a chicken\n## pets\nwalk the dog\n## empty\n");
    expect(corpus.domains).toEqual([
      { name: "cooking", requests: ["boil an egg", "roast a chicken"] },
      { name: "pets", requests: ["walk the dog"] },
    ]);
    expect(corpus.domainsUsing(stemWord("eggs"))).toBe(1);
    expect(BackgroundCorpus.empty().domains).toEqual([]);
  });

  describe("with the workplace-v2 agents", () => {
    let classifier: HybridClassifier;
    let withoutBackground: HybridClassifier;
    beforeAll(() => {
      classifier = new HybridClassifier();
      classifier.setProfiles(v2Profiles);
      withoutBackground = new HybridClassifier({ background: BackgroundCorpus.empty() });
      withoutBackground.setProfiles(v2Profiles);
    });

    it("does not route an everyday request that shares one word with a profile, and says which everyday domain explains it", () => {
      for (const [text, sharedWith] of EVERYDAY_NEAR_MISSES) {
        const result = classifier.classify(text);
        expect(result.agent, text).toBeUndefined();
        expect(result.intent, text).toMatch(/^below threshold \(.*; everyday: [a-z ,]+\)$/);
        // The same classifier without the background routes it on the shared word.
        expect(withoutBackground.classify(text).agent, text).toBe(sharedWith);
      }
    });

    it("still routes requests about an agent's business, including ones in everyday words", () => {
      for (const [text, agent] of [
        ["Our supplier sent a quote for the vendor contract renewal", "procurement"],
        ["I followed a link in a strange email and gave it my login details", "security"],
        ["Can you book me a flight and a hotel for the client meeting in Madrid?", "travel"],
        ["Who reviews the wording of a non-disclosure agreement before we sign it?", "legal"],
      ] as const) {
        expect(classifier.classify(text).agent, text).toBe(agent);
      }
    });

    it("keeps a message that is only a declared keyword with that keyword's agent, however everyday the word", () => {
      expect(BackgroundCorpus.load().domainsUsing(stemWord("flight"))).toBeGreaterThan(0);
      for (const [text, agent] of [["flight please", "travel"], ["hotel?", "travel"], ["Hi, a question about the vendor", "procurement"]] as const) {
        const result = classifier.classify(text);
        expect(result, text).toMatchObject({ agent, intent: expect.stringMatching(/^keyword:/) as unknown });
        expect(isAmbiguous(result), text).toBe(false);
      }
    });

    it("ranks every agent type and none of the everyday domains", () => {
      const result = classifier.classify("My cat got stuck up a tree this morning");
      expect(result.ranked.map((r) => r.agent).sort()).toEqual(v2Profiles.map((p) => p.type).sort());
    });
  });

  it("counts a word used across many everyday domains for less", () => {
    const corpus = BackgroundCorpus.parse(
      ["## home", "someone is at the door", "## pets", "can someone feed the cat", "## travel", "someone took my seat", "## cooking", "someone ate the cake", "## work", "badge reader at the gate"].join("\n"),
    );
    const profiles: RoutingProfile[] = [
      { type: "facilities", description: "Facilities: repairs in the office, cleaning, heating", keywords: ["facilities"], examples: ["Can someone fix the lights on floor 2?"] },
      { type: "security", description: "Security: badges and door access, stolen devices", keywords: ["security"], examples: ["My badge stopped working"] },
    ];
    const evidenceFor = (everydayDiscount: number) => {
      const c = new HybridClassifier({ background: corpus, backgroundWeight: 0, everydayDiscount });
      c.setProfiles(profiles);
      return c.explain("someone walked in behind me through the turnstile").find((e) => e.agent === "facilities")?.evidence ?? NaN;
    };
    expect(evidenceFor(1)).toBeLessThan(evidenceFor(0) - 0.1);
  });

  it("does not weigh a request a profile lists as an example against everyday language", () => {
    // An IT desk's business is also home tech support: its own example must still reach it.
    const it = new HybridClassifier();
    it.setProfiles([
      { type: "it_helpdesk", description: "IT support: laptops, passwords, VPN, wifi and printers.", keywords: ["laptop", "password"], examples: ["My laptop will not boot", "I forgot my password"] },
      { type: "facilities", description: "Facilities: office rooms, desks, parking and heating.", keywords: ["parking"], examples: ["I need a parking spot"] },
    ]);
    for (const text of ["I forgot my password", "  i FORGOT my password. "]) expect(it.classify(text), text).toMatchObject({ agent: "it_helpdesk" });
    // Another request with the same words is ordinary language, as before.
    expect(it.classify("I forgot my password for my home wifi router").agent).toBeUndefined();
  });

  it("rejects options out of range", () => {
    expect(() => new HybridClassifier({ everydayDiscount: -1 })).toThrow(RangeError);
    expect(() => new HybridClassifier({ backgroundWeight: -1 })).toThrow(RangeError);
    expect(() => new HybridClassifier({ backgroundAllowance: Number.NaN })).toThrow(RangeError);
  });
});
