import type { ProfileIndex } from "./profile-index.js";
import { dot, sentenceVector, type WordWeights } from "./sentence-vector.js";
import type { Lexicon } from "./lexicon.js";
import type { SimilarityCache } from "./similarity-cache.js";
import type { Token } from "./text.js";
import type { WordVectors } from "./word-vectors.js";

/** The separate pieces of evidence that one request is for one agent type. */
export interface Signals {
  /** The first declared keyword found as whole words, if any. */
  readonly keyword: string | undefined;
  /** Weighted share of the request's words whose stem occurs in the profile, in [0, 1]. */
  readonly lexical: number;
  /** Combined strength of the request words that sit close to the profile's words, in [0, 1). */
  readonly semantic: number;
  /** How far the request's sentence vector beats unrelated text against the profile's sentences. */
  readonly sentence: number;
  /**
   * Weighted share of the request that is about this agent: each word's closeness to the
   * profile, weighted as in the other signals, over the weight of all words. Low when one word
   * matches and the rest of the request is about something else.
   */
  readonly coverage: number;
  /** The request's content words are all words of this agent's declared keywords. */
  readonly keywordOnly: boolean;
  /**
   * The signals again without the request's strongest word for this agent: what the rest of
   * the request says. Near zero when one shared word is all that links the two.
   */
  readonly rest: { readonly keyword: boolean; readonly lexical: number; readonly semantic: number; readonly sentence: number };
  /** The request word and profile word behind the strongest semantic match, for explanations. */
  readonly bestPair: readonly [string, string] | undefined;
}

export interface SignalOptions {
  /**
   * Total word weight a request needs before its lexical coverage can reach 1; shorter or vaguer
   * requests are scaled down so one common word ("thing") cannot carry a request on its own.
   */
  readonly minEvidence: number;
  /**
   * How many of the closest profile words a request word is compared with. Averaging over a few
   * rewards words that relate to the profile's topic as a whole rather than to one polysemous
   * word ("left" is close to "right", but not to "vacation" or "benefits").
   */
  readonly neighbours: number;
  /** Closeness credited when a word the lexicon relates to a request word occurs in the profile. */
  readonly relatedCloseness: number;
}

interface QueryWord {
  readonly token: Token;
  /** Stems of the words the lexicon relates to this one. */
  readonly related: readonly string[];
  readonly weight: number;
  /** Cosine with every profile word, indexed by vocabulary row; undefined without a vector. */
  readonly similarities: Float32Array | undefined;
}

/** Per-request state shared by every agent's scoring. */
export interface PreparedQuery {
  readonly text: string;
  readonly words: readonly QueryWord[];
  readonly totalWeight: number;
  readonly vector: Float32Array | undefined;
}

export function prepareQuery(
  text: string,
  tokens: readonly Token[],
  index: ProfileIndex,
  vectors: WordVectors,
  weights: WordWeights,
  lexicon: Lexicon,
  cache: SimilarityCache,
): PreparedQuery {
  const dims = vectors.dimensions;
  const vocabularySize = index.vocabularyWords.length;
  let totalWeight = 0;
  const words = tokens.map((token): QueryWord => {
    const weight = weights(token.word);
    totalWeight += weight;
    const related = lexicon.relatedStems(token.word);
    const v = vectors.vector(token.word);
    if (!v) return { token, weight, related, similarities: undefined };
    let similarities = cache.get(token.word);
    if (!similarities) {
      similarities = new Float32Array(vocabularySize);
      for (let row = 0; row < vocabularySize; row++) similarities[row] = dot(v, index.vocabulary, row * dims) * index.vocabularyWeights[row]!;
      cache.set(token.word, similarities);
    }
    return { token, weight, related, similarities };
  });
  return { text, words, totalWeight, vector: sentenceVector(tokens, vectors, weights) };
}

/** Mean of the k largest values among rows, and the row of the largest. */
function topMean(similarities: Float32Array, rows: Int32Array, trust: Float32Array, k: number, scratch: Float32Array): [number, number] {
  let n = 0;
  let bestRow = -1;
  for (let j = 0; j < rows.length; j++) {
    const row = rows[j]!;
    const s = similarities[row]! * trust[j]!;
    // Insertion into a tiny sorted buffer beats sorting every profile word.
    let i = Math.min(n, k - 1);
    if (n === k && s <= scratch[k - 1]!) continue;
    while (i > 0 && scratch[i - 1]! < s) {
      scratch[i] = scratch[i - 1]!;
      i--;
    }
    scratch[i] = s;
    if (i === 0) bestRow = row;
    if (n < k) n++;
  }
  let sum = 0;
  for (let i = 0; i < n; i++) sum += scratch[i]!;
  return [n > 0 ? sum / k : 0, bestRow];
}

/**
 * How specific a request word is to the registered agents, in [0, 1]: an inverse document
 * frequency over agent types where a profile counts by how close it is to the word. A word close
 * to one profile keeps its full weight; one close to many ("please", "new", "accounts") is
 * little evidence for any single one of them.
 */
function specificity(closeness: Float32Array, agents: number): number {
  let spread = 0;
  for (const c of closeness) spread += c;
  const idf = Math.log((agents + 1) / (spread + 0.5)) / Math.log((agents + 1) / 1.5);
  return Math.min(1, Math.max(0, idf));
}

/** Every agent's signals for a prepared request, in index order. */
export function scoreAgents(query: PreparedQuery, index: ProfileIndex, options: SignalOptions): Signals[] {
  const agents = index.agents;
  const scratch = new Float32Array(options.neighbours);
  const lexical = new Float64Array(agents.length);
  const missing = new Float64Array(agents.length).fill(1);
  const best = new Float64Array(agents.length);
  const bestPair: (readonly [string, string] | undefined)[] = new Array(agents.length).fill(undefined);
  const closeness = new Float32Array(agents.length);
  const closestRow = new Int32Array(agents.length);
  const relatedMatch: (string | undefined)[] = new Array(agents.length).fill(undefined);
  const exact = new Float32Array(agents.length);
  const covered = new Float64Array(agents.length);
  const keywordWords = new Uint16Array(agents.length);
  const bestLexical = new Float64Array(agents.length);
  const bestWeight = new Float64Array(agents.length);
  const bestIsKeyword = new Uint8Array(agents.length);
  let allWeight = 0;
  for (const word of query.words) {
    exact.fill(0);
    closeness.fill(0);
    closestRow.fill(-1);
    relatedMatch.fill(undefined);
    for (const a of index.stemAgents.get(word.token.stem) ?? []) {
      exact[a] = agents[a]!.stems.get(word.token.stem) ?? 0;
      if (agents[a]!.keywordStems.has(word.token.stem)) keywordWords[a]!++;
    }
    // Looked up from the stem side: a word has a few dozen relatives, while there may be many agents.
    for (const related of word.related) {
      for (const a of index.stemAgents.get(related) ?? []) {
        if (relatedMatch[a] !== undefined) continue;
        closeness[a] = options.relatedCloseness;
        relatedMatch[a] = related;
      }
    }
    agents.forEach((agent, a) => {
      if (exact[a] === 1) {
        closeness[a] = 1;
        return;
      }
      // Words seen only in examples are trusted less; a vector neighbour may still do better.
      if (exact[a]! > closeness[a]!) closeness[a] = exact[a]!;
      // Competitors without indexed words (everyday domains) are compared by stems only.
      if (!word.similarities || agent.vocabularyRows.length === 0) return;
      const [mean, row] = topMean(word.similarities, agent.vocabularyRows, agent.vocabularyTrust, options.neighbours, scratch);
      const semantic = Math.min(1, Math.max(0, (mean - agent.wordFloor) / (1 - agent.wordFloor)));
      if (semantic > closeness[a]!) {
        closeness[a] = semantic;
        closestRow[a] = row;
      }
    });
    // Specific to the agent types, not to the background domains that compete with them.
    const weight = word.weight * specificity(closeness.subarray(0, index.routable), index.routable);
    allWeight += weight;
    for (let a = 0; a < agents.length; a++) {
      const c = closeness[a]!;
      if (c === 0) continue;
      covered[a]! += c * weight;
      if (exact[a]) lexical[a]! += weight * exact[a]!;
      // Noisy-or: each related word is independent evidence, and unrelated details (names,
      // places, dates) do not dilute the words that do match.
      const evidence = c * weight;
      missing[a]! *= 1 - evidence;
      if (evidence > best[a]!) {
        best[a] = evidence;
        bestLexical[a] = exact[a] ? weight * exact[a]! : 0;
        bestWeight[a] = weight;
        bestIsKeyword[a] = agents[a]!.keywordStems.has(word.token.stem) ? 1 : 0;
        const row = closestRow[a]!;
        const related = relatedMatch[a];
        // A lexicon match is shown as "~stem" so explanations can tell it from a vector neighbour.
        const near = exact[a] ? word.token.word : row >= 0 ? index.vocabularyWords[row] : related !== undefined ? `~${related}` : undefined;
        bestPair[a] = [word.token.word, near ?? word.token.word];
      }
    }
  }
  const coverage = Math.max(query.totalWeight, options.minEvidence);
  return agents.map((agent, a) => {
    let sentence = -1;
    if (query.vector) for (const s of agent.sentences) sentence = Math.max(sentence, dot(query.vector, s));
    const keyword = agent.keywords.find((k) => k.pattern.test(query.text))?.keyword;
    const sentenceSignal = Math.max(0, (sentence - agent.sentenceFloor) / (1 - agent.sentenceFloor));
    const bestEvidence = best[a]!;
    return {
      keyword,
      rest: {
        keyword: keyword !== undefined && keywordWords[a]! - bestIsKeyword[a]! > 0,
        lexical: (lexical[a]! - bestLexical[a]!) / coverage,
        semantic: bestEvidence >= 1 ? 0 : 1 - missing[a]! / (1 - bestEvidence),
        // The sentence vector is a weighted mean: the rest's share of it.
        sentence: allWeight > 0 ? sentenceSignal * (1 - bestWeight[a]! / allWeight) : 0,
      },
      lexical: lexical[a]! / coverage,
      semantic: 1 - missing[a]!,
      sentence: sentenceSignal,
      coverage: allWeight > 0 ? covered[a]! / allWeight : 0,
      keywordOnly: query.words.length > 0 && keywordWords[a] === query.words.length,
      bestPair: bestPair[a],
    };
  });
}
