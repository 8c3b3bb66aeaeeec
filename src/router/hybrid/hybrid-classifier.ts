import type { Classification, Classifier, RoutingProfile, ScoredAgent } from "../classifier.js";
import { BackgroundCorpus, backgroundDomainName, defaultBackgroundCorpus, everydayDiscountedWeights } from "./background-corpus.js";
import { DEFAULT_AMBIGUITY_MARGIN } from "./ambiguity.js";
import { afterEverydayCompetition, confidence, evidence, type SignalWeights } from "./calibration.js";
import { expandCompounds } from "./compounds.js";
import { buildProfileIndex, type FloorCache, type Floors, type ProfileIndex } from "./profile-index.js";
import { defaultLexicon, type Lexicon } from "./lexicon.js";
import { defaultServiceCorpus, ServiceDomains, serviceDomainProfiles, type DomainSorter, type ServiceCredit } from "./service-domains.js";
import { SimilarityCache } from "./similarity-cache.js";
import { frequencyWeights, type WordWeights } from "./sentence-vector.js";
import { prepareQuery, scoreAgents, type Signals } from "./signals.js";
import { contentTokens, normalizeRequest } from "./text.js";
import { defaultWordVectors, type WordVectors } from "./word-vectors.js";

export interface HybridClassifierOptions {
  /** Confidence at or above which the best agent is chosen. Default 0.5. */
  readonly threshold: number;
  /** Contribution of each signal to the evidence; see calibration.ts. */
  readonly weights: SignalWeights;
  /** Slope of the evidence → confidence curve. Default 4. */
  readonly steepness: number;
  /**
   * How much evidence depends on the share of the request that is about the agent (0 not at
   * all, 1 entirely), so that one shared word does not carry an unrelated request. Default 0.5.
   */
  readonly focus: number;
  /**
   * The most evidence one word may add to what the rest of the request says, so that a word
   * shared with a profile does not carry a request about something else. Default Infinity.
   */
  readonly singleWordCap: number;
  /** Smoothing of the word-frequency weights (a in a / (a + p(w))). Default 3e-4. */
  readonly smoothing: number;
  /** Share of unrelated words and text an agent's semantic floors must exceed. Default 0.85. */
  readonly backgroundQuantile: number;
  /** Closest profile words averaged per request word. Default 3. */
  readonly neighbours: number;
  /** Trust in profile words that occur only in examples. Default 1. */
  readonly exampleWordTrust: number;
  /** How much an example-only word's closeness to the profile's topic restores its trust. Default 0. */
  readonly exampleTopicality: number;
  /** Word weight a request needs for full lexical coverage. Default 1.5. */
  readonly minEvidence: number;
  /** Closeness credited to a request word whose WordNet relative occurs in a profile. Default 0.2. */
  readonly relatedCloseness: number;
  /** Memory for cached word-to-profile similarities; 0 disables the cache. Default 8 MiB. */
  readonly similarityCacheBytes: number;
  /** Word vectors to use; defaults to the bundled GloVe subset, loaded once per process. */
  readonly vectors: WordVectors;
  /** Related-words lexicon; defaults to the bundled WordNet subset. `Lexicon.empty()` disables it. */
  readonly lexicon: Lexicon;
  /**
   * Everyday requests by life domain; defaults to the bundled corpus. `BackgroundCorpus.empty()`
   * disables both of its uses (`backgroundWeight`, `everydayDiscount`).
   */
  readonly background: BackgroundCorpus;
  /**
   * How much of the best everyday domain's evidence (beyond `backgroundAllowance`) is taken from
   * every agent's: a request that ordinary life explains well needs more to reach an agent. A
   * message that is only a declared keyword is exempt. 0 turns the competition off.
   */
  readonly backgroundWeight: number;
  /** Everyday evidence that costs agents nothing: any request shares some words with ordinary life. */
  readonly backgroundAllowance: number;
  /**
   * How much less a word counts for each further everyday domain that uses it (the weight is
   * divided by 1 + discount · (domains − 1)). 0 turns it off.
   */
  readonly everydayDiscount: number;
  /**
   * Service-desk requests by domain; defaults to the bundled corpus. An agent serves the domains
   * its own description and examples read as (at least twice as often as any other agent's), and
   * a request that reads like one of them earns it up to `serviceWeight` more evidence.
   * `BackgroundCorpus.empty()` turns this off.
   */
  readonly services: BackgroundCorpus;
  /** Evidence a request earns the agent serving the domain it reads as. Default 1.25; 0 turns it off. */
  readonly serviceWeight: number;
  /**
   * Sort every request into the service domains, not only close calls. A request whose best agent
   * leads clearly (chosen, and ahead of the others by more than `serviceWeight` and the default
   * ambiguity margin) is otherwise not sorted: its choice cannot change, but its scores are then
   * its signals' alone. Default false.
   */
  readonly sortEveryRequest: boolean;
}

type ScalarOptions = Omit<HybridClassifierOptions, "vectors" | "lexicon" | "background" | "services">;

export const DEFAULT_HYBRID_OPTIONS: ScalarOptions = {
  threshold: 0.5,
  weights: { keyword: 0.35, lexical: 0.7, semantic: 2.1, sentence: 2.1 },
  steepness: 4,
  focus: 0,
  singleWordCap: Number.POSITIVE_INFINITY,
  smoothing: 3e-4,
  backgroundQuantile: 0.85,
  neighbours: 3,
  exampleWordTrust: 1,
  exampleTopicality: 0,
  minEvidence: 1.5,
  relatedCloseness: 0.2,
  similarityCacheBytes: 8 * 1024 * 1024,
  backgroundWeight: 8,
  backgroundAllowance: 1.25,
  everydayDiscount: 0.25,
  serviceWeight: 1.25,
  sortEveryRequest: false,
};

/** Characters of a request sorted into the service domains. */
const SORTED_TEXT_LIMIT = 1000;

/** Floors kept per process, by vectors and options; a few thousand profiles at most in practice. */
const FLOOR_CACHE_LIMIT = 4096;
const floorCaches = new WeakMap<WordVectors, WeakMap<BackgroundCorpus, Map<string, Map<string, Floors>>>>();

function sharedFloorCache(vectors: WordVectors, background: BackgroundCorpus, options: ScalarOptions): FloorCache {
  let byCorpus = floorCaches.get(vectors);
  if (!byCorpus) floorCaches.set(vectors, (byCorpus = new WeakMap()));
  // Word weights, and so floors, depend on the corpus when everyday words are discounted.
  let byOptions = byCorpus.get(background);
  if (!byOptions) byCorpus.set(background, (byOptions = new Map()));
  const optionsKey = JSON.stringify([options.backgroundQuantile, options.neighbours, options.exampleWordTrust, options.exampleTopicality, options.smoothing, options.everydayDiscount]);
  let cache = byOptions.get(optionsKey);
  if (!cache) byOptions.set(optionsKey, (cache = new Map()));
  const entries = cache;
  return {
    get: (key) => entries.get(key),
    set: (key, floors) => {
      // Profiles rarely change; when they churn, start over rather than track recency.
      if (entries.size >= FLOOR_CACHE_LIMIT) entries.clear();
      entries.set(key, floors);
    },
  };
}

/** Sorters by the resources they are built from; weak, so a dropped corpus takes its sorter with it. */
const sorters = new WeakMap<BackgroundCorpus, WeakMap<WordVectors, WeakMap<Lexicon, WeakMap<BackgroundCorpus, Map<number, HybridClassifier>>>>>();

function weakEntry<K extends object, V>(map: WeakMap<K, V>, key: K, make: () => V): V {
  let value = map.get(key);
  if (value === undefined) map.set(key, (value = make()));
  return value;
}

/**
 * The classifier that sorts requests into the service domains, one per process for each set of
 * resources and cache size: indexing a few thousand requests takes longer than a deployment's
 * profiles. Its other options are the defaults, which are tuned for agents and domains alike.
 */
function sharedSorter(services: BackgroundCorpus, vectors: WordVectors, lexicon: Lexicon, background: BackgroundCorpus, similarityCacheBytes: number): DomainSorter {
  const byCache = weakEntry(weakEntry(weakEntry(weakEntry(sorters, services, () => new WeakMap()), vectors, () => new WeakMap()), lexicon, () => new WeakMap()), background, () => new Map<number, HybridClassifier>());
  let sorter = byCache.get(similarityCacheBytes);
  if (!sorter) {
    sorter = new HybridClassifier({ vectors, lexicon, background, similarityCacheBytes, services: BackgroundCorpus.empty() });
    sorter.setProfiles(serviceDomainProfiles(services));
    byCache.set(similarityCacheBytes, sorter);
  }
  return sorter;
}

/** One agent's signals and confidence for a request, for tools that explain a decision. */
export interface AgentExplanation {
  readonly agent: string;
  readonly score: number;
  /**
   * The agent's evidence after the competition with everyday language (see `backgroundWeight`)
   * and with the credit of a service domain it serves (see `services`).
   */
  readonly evidence: number;
  /** The agent's evidence before that competition. */
  readonly rawEvidence: number;
  /** The service domain the request reads as, when this agent serves it and it counted. */
  readonly service: ServiceCredit | undefined;
  readonly signals: Signals;
}

/** The everyday domain that best explains a request, and its evidence on the agents' scale. */
export interface BackgroundExplanation {
  readonly domain: string;
  readonly evidence: number;
  readonly signals: Signals;
}

/** Every agent's signals for a request, best first, and the everyday domain competing with them. */
export interface RequestExplanation {
  readonly agents: readonly AgentExplanation[];
  /** Undefined when the competition with everyday language is off. */
  readonly background: BackgroundExplanation | undefined;
  /**
   * Whether the request was sorted into the service domains (only when their credit could change
   * the choice), and the domain it reads as, if any.
   */
  readonly service: { readonly consulted: boolean; readonly domain: string | undefined };
}

/**
 * An everyday domain's evidence on the agents' scale, from the words it shares with the request
 * and its closest everyday request. Its word neighbours are left out: a domain of ordinary life
 * has a word close to almost any word, so they say little (and are not indexed).
 */
function everydayEvidence(s: Signals, weights: SignalWeights): number {
  return weights.lexical * s.lexical + weights.sentence * s.sentence;
}

function intentOf(s: Signals): string {
  if (s.keyword) return `keyword:${s.keyword.toLowerCase()}`;
  if (s.bestPair) {
    const [word, near] = s.bestPair;
    if (word === near) return `lexical:${word}`;
    return near.startsWith("~") ? `related:${word}${near}` : `semantic:${word}~${near}`;
  }
  return "sentence";
}

/**
 * Offline classifier that combines declared keywords, stemmed word overlap with the profile, and
 * similarity of GloVe word and sentence vectors into one calibrated confidence per agent type.
 * Semantic scores are measured against how close unrelated words get to the same profile, so a
 * single threshold works whatever the size or wording of each profile. See docs/ROUTING.md.
 */
export class HybridClassifier implements Classifier {
  private readonly options: ScalarOptions;
  private readonly vectors: WordVectors;
  private readonly lexicon: Lexicon;
  private readonly background: BackgroundCorpus;
  private readonly services: ServiceDomains | undefined;
  private readonly weights: WordWeights;
  private index: ProfileIndex | undefined;
  /** Each profile example (normalised) and the agent types that list it. */
  private declaredExamples: ReadonlyMap<string, ReadonlySet<string>> = new Map();
  private cache = new SimilarityCache(0, 0);
  private readonly floors: FloorCache;

  constructor(options: Partial<HybridClassifierOptions> = {}) {
    const { vectors, lexicon, background, services, ...rest } = options;
    this.options = { ...DEFAULT_HYBRID_OPTIONS, ...rest };
    if (!(this.options.threshold > 0 && this.options.threshold < 1)) throw new RangeError("threshold must be between 0 and 1");
    if (!Number.isInteger(this.options.neighbours) || this.options.neighbours < 1) throw new RangeError("neighbours must be a positive integer");
    if (!(this.options.everydayDiscount >= 0)) throw new RangeError("everydayDiscount must be 0 or more");
    if (!(this.options.backgroundWeight >= 0)) throw new RangeError("backgroundWeight must be 0 or more");
    if (!Number.isFinite(this.options.backgroundAllowance)) throw new RangeError("backgroundAllowance must be a finite number");
    if (!(this.options.serviceWeight >= 0 && Number.isFinite(this.options.serviceWeight))) throw new RangeError("serviceWeight must be a finite number, 0 or more");
    this.vectors = vectors ?? defaultWordVectors();
    this.lexicon = lexicon ?? defaultLexicon();
    this.background = background ?? defaultBackgroundCorpus();
    this.weights = everydayDiscountedWeights(frequencyWeights(this.vectors, this.options.smoothing), this.background, this.options.everydayDiscount);
    this.floors = sharedFloorCache(this.vectors, this.background, this.options);
    if (this.options.serviceWeight > 0) {
      const corpus = services ?? defaultServiceCorpus();
      // Indexed when profiles first arrive: a classifier that never routes never pays for it.
      const sorter = () => sharedSorter(corpus, this.vectors, this.lexicon, this.background, this.options.similarityCacheBytes);
      if (corpus.domains.length > 0) this.services = new ServiceDomains(sorter, this.options.serviceWeight);
    }
  }

  get threshold(): number {
    return this.options.threshold;
  }

  /**
   * Builds the index for the new profiles, then swaps it in. Floors of profiles seen before (by
   * any classifier in the process with the same options) are reused, so adding one agent type to
   * many costs about as much as indexing that one.
   */
  setProfiles(profiles: readonly RoutingProfile[]): void {
    const competitors = this.options.backgroundWeight > 0 ? this.background.profiles() : [];
    const index = buildProfileIndex(profiles, this.vectors, this.weights, this.options, this.floors, competitors);
    this.index = index;
    this.declaredExamples = declaredExamples(profiles);
    this.services?.setProfiles(profiles);
    this.cache = new SimilarityCache(this.options.similarityCacheBytes, index.vocabularyWords.length);
  }

  /** Every agent's signals for a request, best first. */
  explain(text: string): AgentExplanation[] {
    return [...this.explainAll(text).agents];
  }

  /** Every agent's signals for a request, best first, and the everyday domain that competes with them. */
  explainAll(text: string): RequestExplanation {
    const index = this.index;
    if (!index || index.routable === 0) return { agents: [], background: undefined, service: { consulted: false, domain: undefined } };
    const tokens = expandCompounds(contentTokens(text), this.vectors, (stem) => index.stemAgents.has(stem));
    const query = prepareQuery(text, tokens, index, this.vectors, this.weights, this.lexicon, this.cache);
    const all = scoreAgents(query, index, this.options);
    const weigh = (signals: Signals) => evidence(signals, this.options.weights, this.options.focus, this.options.singleWordCap);
    let background: BackgroundExplanation | undefined;
    for (let a = index.routable; a < all.length; a++) {
      const e = everydayEvidence(all[a]!, this.options.weights);
      if (!background || e > background.evidence) background = { domain: backgroundDomainName(index.agents[a]!.type), evidence: e, signals: all[a]! };
    }
    // A request a profile lists as its own example is that agent's business, however ordinary
    // its words: the everyday competition does not count against it.
    const declaredFor = this.declaredExamples.get(normalizeRequest(text));
    const scored = all.slice(0, index.routable).map((signals, a) => {
      const type = index.agents[a]?.type ?? "";
      const raw = weigh(signals);
      const e = declaredFor?.has(type) ? raw : afterEverydayCompetition(raw, signals, background?.evidence, this.options);
      return { type, raw, e, signals };
    });
    // A request's opening says what it is about; sorting the longest message whole would take a second.
    const sorted = this.creditCouldMatter(scored.map((s) => s.e)) ? this.services?.sort(text.slice(0, SORTED_TEXT_LIMIT)) : undefined;
    const credit = sorted?.credit;
    const agents = scored.map(({ type, raw, e, signals }): AgentExplanation => {
      const service = credit?.agent === type ? credit : undefined;
      const total = e + (service?.evidence ?? 0);
      return { agent: type, score: confidence(total, this.options.steepness), evidence: total, rawEvidence: raw, service, signals };
    });
    return { agents: agents.sort((a, b) => b.score - a.score), background, service: { consulted: sorted !== undefined, domain: sorted?.domain } };
  }

  /** Evidence at which confidence reaches the threshold. */
  private get evidenceToRoute(): number {
    return 1 + Math.log(this.options.threshold / (1 - this.options.threshold)) / this.options.steepness;
  }

  /**
   * Whether a service domain's credit could change the choice or make it a close call at the
   * default ambiguity margin; sorting a request into domains costs more than classifying it, so
   * it is done only then (unless `sortEveryRequest`).
   */
  private creditCouldMatter(evidences: readonly number[]): boolean {
    const most = this.services?.maxCredit ?? 0;
    if (most === 0) return false;
    if (this.options.sortEveryRequest) return true;
    let first = Number.NEGATIVE_INFINITY;
    let second = Number.NEGATIVE_INFINITY;
    for (const e of evidences) {
      if (e > first) [first, second] = [e, first];
      else if (e > second) second = e;
    }
    const needed = this.evidenceToRoute;
    const margin = (DEFAULT_AMBIGUITY_MARGIN * 4) / this.options.steepness;
    if (first + most < needed) return false;
    return first < needed || second + most > first - margin;
  }

  classify(text: string): Classification {
    const { agents: explained, background } = this.explainAll(text);
    const ranked: ScoredAgent[] = explained.map(({ agent, score }) => ({ agent, score }));
    const best = explained[0];
    if (!best) return { agent: undefined, score: 0, intent: "no agent types registered", ranked };
    const intent = best.service && decidedByService(best, explained[1], this.evidenceToRoute) ? `service:${best.service.domain}` : intentOf(best.signals);
    if (best.score < this.options.threshold) {
      // Name the everyday domain that explains the request when it counted against the agents.
      const everyday = background && best.rawEvidence > best.evidence - (best.service?.evidence ?? 0) ? `; everyday: ${background.domain}` : "";
      return { agent: undefined, score: best.score, intent: `below threshold (${intent}${everyday})`, ranked };
    }
    return { agent: best.agent, score: best.score, intent, ranked };
  }
}

/** True when the best agent leads, or is chosen at all, only thanks to its service domain. */
function decidedByService(best: AgentExplanation, runnerUp: AgentExplanation | undefined, evidenceToRoute: number): boolean {
  const without = best.evidence - (best.service?.evidence ?? 0);
  return without < evidenceToRoute || (runnerUp !== undefined && runnerUp.evidence > without);
}

function declaredExamples(profiles: readonly RoutingProfile[]): Map<string, Set<string>> {
  const byText = new Map<string, Set<string>>();
  for (const profile of profiles) {
    for (const example of profile.examples) {
      const key = normalizeRequest(example);
      const types = byText.get(key);
      if (types) types.add(profile.type);
      else byText.set(key, new Set([profile.type]));
    }
  }
  return byText;
}
