import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { RoutingProfile } from "../../src/router/classifier.js";
import { BackgroundCorpus, DEFAULT_HYBRID_OPTIONS, DEFAULT_SERVICE_REQUESTS_PATH, HybridClassifier, isAmbiguous, WordVectors } from "../../src/router/hybrid/index.js";
import { defaultBackgroundCorpus, everydayDiscountedWeights } from "../../src/router/hybrid/background-corpus.js";
import { buildProfileIndex } from "../../src/router/hybrid/profile-index.js";
import { frequencyWeights } from "../../src/router/hybrid/sentence-vector.js";
import { defaultServiceCorpus, serviceDomainProfiles } from "../../src/router/hybrid/service-domains.js";
import { defaultWordVectors } from "../../src/router/hybrid/word-vectors.js";
import { ROUTING_SETS_DIR as ROUTING_SETS, routingSetTexts, stemsOf } from "../helpers/routing-set-texts.js";

const CLINIC = JSON.parse(readFileSync(fileURLToPath(new URL("../fixtures/clinic-profiles.json", import.meta.url)), "utf8")) as RoutingProfile[];

// A paraphrase of a pharmacy example ("Can someone else collect my medicine?") in other words:
// the clinic's profiles alone do not route it; the bundled service domains read it as pharmacy.
const TABLETS = "can my husband pick up my tablets for me";

// Two small domains of their own, so that which agent claims what does not depend on the bundled
// corpus; neither is part of everyday life, so the everyday background does not compete.
const SMALL_CORPUS = BackgroundCorpus.parse(`
## forklifts and warehouse machinery
the forklift's hydraulic lift drifts down under load
pallet jack wheel is cracked in aisle 4
reach truck battery won't hold a charge past noon
the conveyor belt in dispatch keeps stopping
who services the scissor lift on loading bay 2
forklift mast chain needs lubricating
## laboratory instruments
the centrifuge makes a grinding noise at high speed
our spectrometer needs recalibrating before the trial
the fume hood airflow alarm keeps going off
pipettes in lab 3 are out of calibration
the autoclave failed its last cycle
can someone look at the gas chromatograph
`);

const profile = (type: string, description: string, examples: string[]): RoutingProfile => ({ type, description, keywords: [type.split("_")[0]!], examples });
const warehouse = profile("warehouse_ops", "Warehouse operations: forklifts, pallet trucks and loading equipment.", ["the forklift in bay 3 won't start", "a pallet truck has a flat wheel"]);
const plantHire = profile("plant_hire", "Plant hire: renting forklifts, lifts and loading machines.", ["can we hire a second forklift for March", "the rented pallet truck is broken"]);
const lab = profile("lab_support", "Lab support: scientific instruments, calibration and lab equipment repairs.", ["the centrifuge is out of balance", "we need the balance calibrated"]);

describe("the service-desk domains", () => {
  it("routes a request in words its agent's profile does not use to the agent serving the domain it reads as", () => {
    const classifier = new HybridClassifier();
    classifier.setProfiles(CLINIC);
    const c = classifier.classify(TABLETS);
    expect(c.agent).toBe("pharmacy");
    expect(c.intent).toMatch(/^service:/);
    const best = classifier.explain(TABLETS)[0];
    expect(best).toMatchObject({ agent: "pharmacy", service: { agent: "pharmacy", evidence: expect.any(Number) as unknown } });
    expect(best?.service?.evidence).toBeGreaterThan(0);
    expect(best?.service?.evidence).toBeLessThanOrEqual(1.25);

    const without = new HybridClassifier({ services: BackgroundCorpus.empty() });
    without.setProfiles(CLINIC);
    expect(without.classify(TABLETS).agent).toBeUndefined();
    expect(without.explainAll(TABLETS).service).toEqual({ consulted: false, domain: undefined });
    const off = new HybridClassifier({ serviceWeight: 0 });
    off.setProfiles(CLINIC);
    expect(off.classify(TABLETS).agent).toBeUndefined();
  });

  it("credits the agent whose description and examples read as a domain, and no agent when two claim it alike", () => {
    const fumeHood = "the fume cupboard fan alarm is beeping again";
    const one = new HybridClassifier({ services: SMALL_CORPUS });
    one.setProfiles([warehouse, lab]);
    expect(one.explainAll(fumeHood).service.domain).toBe("laboratory instruments");
    expect(one.explain(fumeHood).filter((a) => a.service).map((a) => a.agent)).toEqual(["lab_support"]);
    expect(one.classify(fumeHood)).toMatchObject({ agent: "lab_support", intent: "service:laboratory instruments" });

    // Warehouse operations and plant hire both claim forklifts: the domain says nothing about
    // which of them a request is for, while the lab's domain still counts.
    const two = new HybridClassifier({ services: SMALL_CORPUS });
    two.setProfiles([warehouse, plantHire, lab]);
    const reachTruck = two.explainAll("the reach truck's forks tilt down when it carries a pallet");
    expect(reachTruck.service).toEqual({ consulted: true, domain: "forklifts and warehouse machinery" });
    expect(reachTruck.agents.every((a) => a.service === undefined)).toBe(true);
    expect(two.explain(fumeHood).filter((a) => a.service).map((a) => a.agent)).toEqual(["lab_support"]);

    // One example of the warehouse's about a lab instrument does not take the lab's domain away.
    const stray = new HybridClassifier({ services: SMALL_CORPUS });
    stray.setProfiles([{ ...warehouse, examples: [...warehouse.examples, "the centrifuge in the goods-in lab is grinding"] }, lab]);
    expect(stray.explain(fumeHood).filter((a) => a.service).map((a) => a.agent)).toEqual(["lab_support"]);
  });

  it("chooses as it would sorting every request, on every routing set, though it sorts only close calls", () => {
    let sortedAlways = 0;
    let sortedLazily = 0;
    for (const set of readdirSync(ROUTING_SETS, { withFileTypes: true }).filter((d) => d.isDirectory())) {
      const dir = join(ROUTING_SETS, set.name);
      const profiles = JSON.parse(readFileSync(join(dir, "profiles.json"), "utf8")) as RoutingProfile[];
      const texts = [
        ...readdirSync(dir)
          .filter((f) => f.endsWith(".jsonl"))
          .flatMap((f) => readFileSync(join(dir, f), "utf8").split("\n").filter((l) => l.trim() !== "").map((l) => (JSON.parse(l) as { text: string }).text)),
        ...profiles.flatMap((p) => p.examples),
      ];
      const lazy = new HybridClassifier();
      const always = new HybridClassifier({ sortEveryRequest: true });
      lazy.setProfiles(profiles);
      always.setProfiles(profiles);
      for (const text of texts) {
        const a = lazy.classify(text);
        const b = always.classify(text);
        expect({ text, agent: a.agent, ambiguous: isAmbiguous(a) }).toEqual({ text, agent: b.agent, ambiguous: isAmbiguous(b) });
        sortedAlways += always.explainAll(text).service.consulted ? 1 : 0;
        sortedLazily += lazy.explainAll(text).service.consulted ? 1 : 0;
      }
    }
    expect(sortedLazily).toBeLessThan(sortedAlways);
  });

  it("measures the same background floors for many profiles at once as for each alone", () => {
    const vectors: WordVectors = defaultWordVectors();
    const weights = everydayDiscountedWeights(frequencyWeights(vectors, DEFAULT_HYBRID_OPTIONS.smoothing), defaultBackgroundCorpus(), DEFAULT_HYBRID_OPTIONS.everydayDiscount);
    // The domains share many words: measured together, from one table of similarities.
    const profiles = serviceDomainProfiles(defaultServiceCorpus()).slice(0, 60);
    const together = buildProfileIndex(profiles, vectors, weights, DEFAULT_HYBRID_OPTIONS).agents.map((a) => [a.wordFloor, a.sentenceFloor]);
    const alone = profiles.map((p) => buildProfileIndex([p], vectors, weights, DEFAULT_HYBRID_OPTIONS).agents.map((a) => [a.wordFloor, a.sentenceFloor])[0]);
    expect(together).toEqual(alone);
  });

  it("sorts a request into the domains only when their credit could change the choice", () => {
    const classifier = new HybridClassifier();
    classifier.setProfiles(CLINIC);
    // A declared keyword alone: pharmacy leads by far more than any credit.
    const clear = classifier.explainAll("prescription");
    expect(clear.agents[0]?.agent).toBe("pharmacy");
    expect(clear.service.consulted).toBe(false);
    expect(classifier.explainAll(TABLETS).service.consulted).toBe(true);
  });

  it("does not route an everyday request for reading like a domain no agent serves", () => {
    const classifier = new HybridClassifier();
    classifier.setProfiles(CLINIC);
    for (const text of ["my car's exhaust is rattling", "what's a good recipe for banana bread"]) {
      const c = classifier.classify(text);
      expect(c.agent, text).toBeUndefined();
      expect(classifier.explain(text).every((a) => a.service === undefined), text).toBe(true);
    }
  });

  it("refuses a negative or infinite service weight", () => {
    expect(() => new HybridClassifier({ serviceWeight: -1 })).toThrow(RangeError);
    expect(() => new HybridClassifier({ serviceWeight: Number.POSITIVE_INFINITY })).toThrow(RangeError);
  });

  it("loads the bundled corpus, at most 16 requests a domain", () => {
    const corpus = BackgroundCorpus.load(DEFAULT_SERVICE_REQUESTS_PATH);
    expect(corpus.domains.length).toBeGreaterThanOrEqual(100);
    for (const domain of corpus.domains) expect(domain.requests.length, domain.name).toBeLessThanOrEqual(16);
    expect(new Set(corpus.domains.map((d) => d.name)).size).toBe(corpus.domains.length);
  });

  it("shares no request with the routing sets it is measured on", () => {
    const setTexts = routingSetTexts().map(stemsOf);
    expect(setTexts.length).toBeGreaterThan(300);
    const tooClose: string[] = [];
    for (const domain of BackgroundCorpus.load(DEFAULT_SERVICE_REQUESTS_PATH).domains) {
      for (const request of domain.requests) {
        const own = stemsOf(request);
        // The corpus header's rule: two shared stems and a third of the words, or four shared stems.
        const close = setTexts.some((other) => {
          const shared = [...own].filter((s) => other.has(s)).length;
          return (shared >= 2 && shared / (own.size + other.size - shared) >= 0.34) || shared >= 4;
        });
        if (close) tooClose.push(request);
      }
    }
    expect(tooClose).toEqual([]);
  });
});
