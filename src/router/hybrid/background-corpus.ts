import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { RoutingProfile } from "../classifier.js";
import type { WordWeights } from "./sentence-vector.js";
import { contentTokens, stemWord } from "./text.js";

/** The bundled corpus of everyday requests (see its header). */
export const DEFAULT_BACKGROUND_PATH = fileURLToPath(new URL("../../../assets/background/everyday-requests.txt", import.meta.url));

/** Type names of background domains start with this, which no agent type can. */
const BACKGROUND_PREFIX = "\u0000background:";

/** One life domain of the corpus ("cooking and recipes") and its requests. */
export interface BackgroundDomain {
  readonly name: string;
  readonly requests: readonly string[];
}

/**
 * A model of ordinary language: short everyday requests grouped by life domain. A request that
 * one of these domains explains as well as any agent does is not routed, and a word spread over
 * many domains ("check", "someone", "next") is weak evidence for any agent.
 */
export class BackgroundCorpus {
  readonly domains: readonly BackgroundDomain[];
  /** For each stem, how many domains use it. */
  private readonly spread: ReadonlyMap<string, number>;

  constructor(domains: readonly BackgroundDomain[]) {
    this.domains = domains.filter((d) => d.requests.length > 0);
    const spread = new Map<string, number>();
    for (const domain of this.domains) {
      const stems = new Set(domain.requests.flatMap((r) => contentTokens(r).map((t) => t.stem)));
      for (const s of stems) spread.set(s, (spread.get(s) ?? 0) + 1);
    }
    this.spread = spread;
  }

  static load(path: string = DEFAULT_BACKGROUND_PATH): BackgroundCorpus {
    return BackgroundCorpus.parse(readFileSync(path, "utf8"));
  }

  /** Reads "## domain" headings, one request a line; blank lines and "#" comments are skipped. */
  static parse(text: string): BackgroundCorpus {
    const domains: { name: string; requests: string[] }[] = [];
    for (const raw of text.split("\n")) {
      const line = raw.trim();
      if (line.startsWith("## ")) domains.push({ name: line.slice(3).trim(), requests: [] });
      else if (line === "" || line.startsWith("#")) continue;
      else if (domains.length === 0) domains.push({ name: "everyday", requests: [line] });
      else domains.at(-1)!.requests.push(line);
    }
    return new BackgroundCorpus(domains);
  }

  static empty(): BackgroundCorpus {
    return new BackgroundCorpus([]);
  }

  /** How many domains use the stem: 0 for words of no domain, high for everyday words. */
  domainsUsing(stem: string): number {
    return this.spread.get(stem) ?? 0;
  }

  /** The domains as routing profiles, indexed and scored like agent types. */
  profiles(): RoutingProfile[] {
    return this.domains.map((d) => ({ type: `${BACKGROUND_PREFIX}${d.name}`, description: d.name, keywords: [], examples: [...d.requests] }));
  }
}

/**
 * Word weights that count a word used across many everyday domains for less: divided by
 * `1 + discount · (domains − 1)`, so a word of one domain only ("mortgage", "toddler") keeps its
 * weight and "check", "someone" or "morning" weigh a fraction of it. 0 leaves `base` as it is.
 */
export function everydayDiscountedWeights(base: WordWeights, corpus: BackgroundCorpus, discount: number): WordWeights {
  if (discount === 0 || corpus.domains.length === 0) return base;
  // Requests repeat the same few thousand words; stemming each once is enough.
  const factors = new Map<string, number>();
  return (word) => {
    let factor = factors.get(word);
    if (factor === undefined) {
      factor = 1 / (1 + discount * Math.max(0, corpus.domainsUsing(stemWord(word)) - 1));
      if (factors.size >= MAX_MEMOISED_WORDS) factors.clear();
      factors.set(word, factor);
    }
    return base(word) * factor;
  };
}

const MAX_MEMOISED_WORDS = 50_000;

/** The domain name of a background type name. */
export function backgroundDomainName(type: string): string {
  return type.slice(BACKGROUND_PREFIX.length);
}

let shared: BackgroundCorpus | undefined;

/** Loads the bundled corpus once per process. */
export function defaultBackgroundCorpus(): BackgroundCorpus {
  shared ??= BackgroundCorpus.load();
  return shared;
}
