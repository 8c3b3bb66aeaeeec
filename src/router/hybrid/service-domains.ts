import { fileURLToPath } from "node:url";
import type { Classification, RoutingProfile } from "../classifier.js";
import { BackgroundCorpus } from "./background-corpus.js";

/** The bundled corpus of service-desk requests (see its header). */
export const DEFAULT_SERVICE_REQUESTS_PATH = fileURLToPath(new URL("../../../assets/background/service-requests.txt", import.meta.url));

let shared: BackgroundCorpus | undefined;

/** Loads the bundled service-desk requests once per process. */
export function defaultServiceCorpus(): BackgroundCorpus {
  shared ??= BackgroundCorpus.load(DEFAULT_SERVICE_REQUESTS_PATH);
  return shared;
}

/** The corpus's domains as routing profiles: a domain is named and described by its heading. */
export function serviceDomainProfiles(corpus: BackgroundCorpus): RoutingProfile[] {
  return corpus.domains.map((d) => ({ type: d.name, description: d.name, keywords: [], examples: [...d.requests] }));
}

/** Sorts a request into one of the service domains, or none; a classifier over the domains. */
export interface DomainSorter {
  readonly threshold: number;
  classify(text: string): Classification;
}

/** The evidence a request earns an agent because it reads like a domain the agent serves. */
export interface ServiceCredit {
  readonly agent: string;
  readonly domain: string;
  readonly evidence: number;
}

/** The domain a request reads as, and the credit it earns the agent serving it. */
export interface SortedRequest {
  readonly domain: string | undefined;
  readonly credit: ServiceCredit | undefined;
}

/**
 * Which service domains each agent type serves, and the evidence a request earns an agent when it
 * reads like one of them. An agent serves the domains its own description and examples are sorted
 * into, unless another agent's are sorted there as often (at least half as often): a domain two
 * agents claim alike says nothing about which of them a request is for. This is what lets a
 * request in words the profile never uses reach its agent ("the tax code on my payslip looks
 * wrong" reads as payroll, which an HR desk's examples also read as), since the domain's many
 * requests say it in many ways.
 */
export class ServiceDomains {
  /** Domain → the one agent type that serves it. */
  private owners: ReadonlyMap<string, string> = new Map();
  /** The domain of each current profile sentence (learned examples included), kept across rebuilds. */
  private sortedSentences = new Map<string, string | undefined>();
  private sorterInstance: DomainSorter | undefined;

  constructor(
    /** Builds or finds the sorter; called when profiles first arrive. */
    private readonly makeSorter: () => DomainSorter,
    /** Evidence added when the sorter is certain of the domain; less as it is less sure. */
    private readonly weight: number,
  ) {}

  private get sorter(): DomainSorter {
    this.sorterInstance ??= this.makeSorter();
    return this.sorterInstance;
  }

  setProfiles(profiles: readonly RoutingProfile[]): void {
    const previous = this.sortedSentences;
    this.sortedSentences = new Map();
    // Per domain, how many of each agent's sentences are sorted into it.
    const claims = new Map<string, Map<string, number>>();
    for (const profile of profiles) {
      for (const sentence of [profile.description, ...profile.examples]) {
        const domain = this.domainOf(sentence, previous);
        if (domain === undefined) continue;
        let counts = claims.get(domain);
        if (!counts) claims.set(domain, (counts = new Map()));
        counts.set(profile.type, (counts.get(profile.type) ?? 0) + 1);
      }
    }
    const owners = new Map<string, string>();
    for (const [domain, counts] of claims) {
      const [first, second] = [...counts].sort((a, b) => b[1] - a[1]);
      if (first && first[1] >= 2 * (second?.[1] ?? 0)) owners.set(domain, first[0]);
    }
    this.owners = owners;
  }

  /** Most evidence a request can earn; 0 when no agent serves any domain. */
  get maxCredit(): number {
    return this.owners.size > 0 ? this.weight : 0;
  }

  /** The domain the request reads as, and the agent's credit if one serves it. */
  sort(text: string): SortedRequest {
    const sorted = this.sorter.classify(text);
    const domain = sorted.agent;
    const agent = domain === undefined ? undefined : this.owners.get(domain);
    if (domain === undefined || agent === undefined) return { domain, credit: undefined };
    const certainty = (sorted.score - this.sorter.threshold) / (1 - this.sorter.threshold);
    return { domain, credit: { agent, domain, evidence: this.weight * certainty } };
  }

  /** The domain a profile sentence is sorted into; it depends on nothing else, so a rebuild reuses it. */
  private domainOf(sentence: string, previous: ReadonlyMap<string, string | undefined>): string | undefined {
    if (this.sortedSentences.has(sentence)) return this.sortedSentences.get(sentence);
    const domain = previous.has(sentence) ? previous.get(sentence) : this.sorter.classify(sentence).agent;
    this.sortedSentences.set(sentence, domain);
    return domain;
  }
}
