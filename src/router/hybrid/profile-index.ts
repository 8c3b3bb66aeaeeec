import type { RoutingProfile } from "../classifier.js";
import { keywordPattern } from "../keyword-classifier.js";
import { contentTokens, descriptionPhrases } from "./text.js";
import { backgroundSample, quantile } from "./background.js";
import { dot, sentenceVector, type WordWeights } from "./sentence-vector.js";
import type { WordVectors } from "./word-vectors.js";

export interface CompiledKeyword {
  readonly keyword: string;
  readonly pattern: RegExp;
}

/** Everything the classifier precomputes about one agent type. */
export interface AgentIndex {
  readonly type: string;
  readonly keywords: readonly CompiledKeyword[];
  /**
   * Stems of every content word in the profile, for lexical matching, with the trust of the
   * most trusted text each occurs in (see {@link IndexOptions.exampleWordTrust}).
   */
  readonly stems: ReadonlyMap<string, number>;
  /** Stems of the declared keywords: a request made of these alone names this agent. */
  readonly keywordStems: ReadonlySet<string>;
  /** Rows of this agent's distinct profile words in {@link ProfileIndex.vocabulary}. */
  readonly vocabularyRows: Int32Array;
  /** Per row above: 1 for words that define the topic, less for words seen only in examples. */
  readonly vocabularyTrust: Float32Array;
  /** Unit sentence vectors of the description, each of its phrases and each example. */
  readonly sentences: readonly Float32Array[];
  /** Word cosine that unrelated words reach against this profile by chance (see background.ts). */
  readonly wordFloor: number;
  /** Sentence cosine that unrelated text reaches against this profile by chance. */
  readonly sentenceFloor: number;
}

/** All agents' profile words share one matrix so a request word is compared with each once. */
export interface ProfileIndex {
  /** The agent types first, then any background domains (see background-corpus.ts). */
  readonly agents: readonly AgentIndex[];
  /** How many of `agents`, from the first, are agent types a request can be routed to. */
  readonly routable: number;
  readonly vocabularyWords: readonly string[];
  /** Row-major unit vectors, vocabularyWords.length × dimensions. */
  readonly vocabulary: Float32Array;
  /** How informative each vocabulary word is (see sentence-vector.ts). */
  readonly vocabularyWeights: Float32Array;
  /** For each profile stem, the agents (by position) whose profile contains it. */
  readonly stemAgents: ReadonlyMap<string, readonly number[]>;
}

export interface IndexOptions {
  /** Share of unrelated words or text that must fall below an agent's floors. */
  readonly backgroundQuantile: number;
  /** See SignalOptions.neighbours. */
  readonly neighbours: number;
  /**
   * Trust in words that occur only in a profile's examples. Examples are whole requests and carry
   * filler ("I want to…", "Can you prepare…") that the description and keywords do not.
   */
  readonly exampleWordTrust: number;
  /**
   * Raise the trust of an example-only word by how close it is to the words that define the
   * topic (type, description, keywords): "stolen" in a security example is about security,
   * "morning" in the same example is not. 0 leaves every example-only word at exampleWordTrust.
   */
  readonly exampleTopicality: number;
}

/** Cosines with the topic's words below this make an example word incidental, above TOPICAL topical. */
const INCIDENTAL = 0.15;
const TOPICAL = 0.5;

/** The profile's texts with the trust their words get; topic-defining texts first. */
function profileTexts(profile: RoutingProfile, exampleTrust: number): [string, number][] {
  // The type name is often a word itself ("legal", "it-support"); it joins the evidence.
  return [
    [profile.type.replace(/[-_.]+/g, " "), 1],
    [profile.description, 1],
    ...profile.keywords.map((k): [string, number] => [k, 1]),
    ...profile.examples.map((e): [string, number] => [e, exampleTrust]),
  ];
}

function averageOf(words: readonly Float32Array[], dims: number): Float32Array {
  const sum = new Float32Array(dims);
  for (const v of words) for (let d = 0; d < dims; d++) sum[d]! += v[d]!;
  const norm = Math.hypot(...sum) || 1;
  return sum.map((x) => x / norm);
}

/** Background pseudo-sentences: short bags of unrelated words, as long as a typical request. */
function backgroundSentences(sample: readonly Float32Array[], dims: number, wordsPerSentence = 3): Float32Array[] {
  const sentences: Float32Array[] = [];
  for (let i = 0; i + wordsPerSentence <= sample.length; i += wordsPerSentence) {
    // Words a third of the sample apart, so one pseudo-sentence does not mix neighbouring ranks only.
    const words = Array.from({ length: wordsPerSentence }, (_, k) => sample[(i + k * Math.floor(sample.length / wordsPerSentence)) % sample.length]!);
    sentences.push(averageOf(words, dims));
  }
  return sentences;
}

/**
 * Each background word's weighted cosine with every vocabulary word (sample-major), or with a
 * vocabulary row computed when asked: many profiles share words, and when their floors are all
 * measured at once (a large index, or the first one) computing each pair once is far cheaper.
 */
type BackgroundSimilarity = (sampleIndex: number, row: number) => number;

function backgroundSimilarity(index: Pick<ProfileIndex, "vocabulary" | "vocabularyWeights">, sample: readonly Float32Array[], dims: number, rowsToMeasure: number): BackgroundSimilarity {
  const words = index.vocabularyWeights.length;
  const direct: BackgroundSimilarity = (i, row) => dot(sample[i]!, index.vocabulary, row * dims) * index.vocabularyWeights[row]!;
  if (rowsToMeasure <= 2 * words) return direct;
  // Doubles, as the direct computation gives: a floor must not depend on which path measured it.
  const table = new Float64Array(sample.length * words);
  for (let i = 0; i < sample.length; i++) for (let row = 0; row < words; row++) table[i * words + row] = direct(i, row);
  return (i, row) => table[i * words + row]!;
}

/** Same measure as the request side: mean of the k closest weighted profile words. */
function wordFloor(agent: Pick<AgentIndex, "vocabularyRows" | "vocabularyTrust">, similarity: BackgroundSimilarity, sampleSize: number, options: IndexOptions): number {
  const k = options.neighbours;
  const rows = agent.vocabularyRows;
  const trust = agent.vocabularyTrust;
  const top = new Float64Array(k);
  const closest = new Float32Array(sampleSize);
  for (let i = 0; i < sampleSize; i++) {
    let n = 0;
    for (let j = 0; j < rows.length; j++) {
      const s = similarity(i, rows[j]!) * trust[j]!;
      if (n === k && s <= top[k - 1]!) continue;
      // Insertion into the k best so far, largest first.
      let p = n < k ? n++ : k - 1;
      while (p > 0 && top[p - 1]! < s) {
        top[p] = top[p - 1]!;
        p--;
      }
      top[p] = s;
    }
    let sum = 0;
    for (let j = 0; j < n; j++) sum += top[j]!;
    closest[i] = sum / k;
  }
  return quantile(closest, options.backgroundQuantile);
}

function sentenceFloor(sentences: readonly Float32Array[], background: readonly Float32Array[], q: number): number {
  const closest = background.map((b) => Math.max(-1, ...sentences.map((s) => dot(b, s))));
  return quantile(closest, q);
}

/** An agent's background floors; they depend only on its own profile and the index options. */
export interface Floors {
  readonly wordFloor: number;
  readonly sentenceFloor: number;
}

/**
 * Remembers floors across rebuilds, keyed by profile content: measuring them is most of the cost
 * of a rebuild, and a registry change usually adds or removes one agent type among many.
 */
export interface FloorCache {
  get(key: string): Floors | undefined;
  set(key: string, floors: Floors): unknown;
}

function profileKey(profile: RoutingProfile): string {
  return JSON.stringify([profile.type, profile.description, profile.keywords, profile.examples]);
}

const samples = new WeakMap<WordVectors, { readonly words: Float32Array[]; readonly sentences: Float32Array[] }>();

function background(vectors: WordVectors): { readonly words: Float32Array[]; readonly sentences: Float32Array[] } {
  let cached = samples.get(vectors);
  if (!cached) {
    const words = backgroundSample(vectors);
    cached = { words, sentences: backgroundSentences(words, vectors.dimensions) };
    samples.set(vectors, cached);
  }
  return cached;
}

/**
 * Indexes the agent types' profiles, followed by `competitors`: profiles scored like agents but
 * never routed to (the background domains of ordinary language).
 */
export function buildProfileIndex(
  routableProfiles: readonly RoutingProfile[],
  vectors: WordVectors,
  weights: WordWeights,
  options: IndexOptions,
  floors?: FloorCache,
  competitors: readonly RoutingProfile[] = [],
): ProfileIndex {
  const profiles = [...routableProfiles, ...competitors];
  const vocabularyWords: string[] = [];
  const rowOf = new Map<string, number>();
  const agents = profiles.map((profile, p): AgentIndex => {
    // Competitors are compared by their words and sentences only: word neighbours of a domain of
    // everyday life cover almost any request, and would cost as much as the agents' own.
    const competitor = p >= routableProfiles.length;
    const stems = new Map<string, number>();
    const rows = new Map<number, number>();
    const topic: Float32Array[] = [];
    for (const [text, textTrust] of profileTexts(profile, options.exampleWordTrust)) {
      for (const token of contentTokens(text)) {
        const v = vectors.vector(token.word);
        let trust = textTrust;
        if (textTrust === 1 && v) topic.push(v);
        else if (textTrust < 1 && options.exampleTopicality > 0 && v && !stems.has(token.stem)) {
          let closest = 0;
          for (const t of topic) closest = Math.max(closest, dot(v, t));
          const topicality = Math.min(1, Math.max(0, (closest - INCIDENTAL) / (TOPICAL - INCIDENTAL)));
          trust = textTrust + (1 - textTrust) * options.exampleTopicality * topicality;
        }
        stems.set(token.stem, Math.max(trust, stems.get(token.stem) ?? 0));
        if (!v || competitor) continue;
        let row = rowOf.get(token.word);
        if (row === undefined) {
          row = vocabularyWords.length;
          rowOf.set(token.word, row);
          vocabularyWords.push(token.word);
        }
        if (!rows.has(row)) rows.set(row, trust);
      }
    }
    // A one-phrase description is its own phrase: compare each text once.
    const sentenceTexts = [...new Set([profile.description, ...descriptionPhrases(profile.description), ...profile.examples])];
    const sentences = sentenceTexts
      .map((text) => sentenceVector(contentTokens(text), vectors, weights))
      .filter((v): v is Float32Array => v !== undefined);
    return {
      wordFloor: 0,
      sentenceFloor: 0,
      type: profile.type,
      keywords: profile.keywords.filter((k) => k.trim() !== "").map((keyword) => ({ keyword, pattern: keywordPattern(keyword) })),
      stems,
      keywordStems: new Set(profile.keywords.flatMap((k) => contentTokens(k).map((t) => t.stem))),
      vocabularyRows: Int32Array.from(rows.keys()),
      vocabularyTrust: Float32Array.from(rows.values()),
      sentences,
    };
  });
  const dims = vectors.dimensions;
  const vocabulary = new Float32Array(vocabularyWords.length * dims);
  vocabularyWords.forEach((word, row) => vocabulary.set(vectors.vector(word) ?? [], row * dims));
  const vocabularyWeights = Float32Array.from(vocabularyWords, weights);
  const keys = profiles.map(profileKey);
  const known = keys.map((key) => floors?.get(key));
  const rowsToMeasure = agents.reduce((sum, agent, a) => sum + (known[a] ? 0 : agent.vocabularyRows.length), 0);
  let similarity: BackgroundSimilarity | undefined;
  const calibrated = agents.map((agent, a) => {
    let measured = known[a];
    if (!measured) {
      const { words, sentences } = background(vectors);
      similarity ??= backgroundSimilarity({ vocabulary, vocabularyWeights }, words, dims, rowsToMeasure);
      measured = {
        wordFloor: wordFloor(agent, similarity, words.length, options),
        sentenceFloor: sentenceFloor(agent.sentences, sentences, options.backgroundQuantile),
      };
      floors?.set(keys[a]!, measured);
    }
    return { ...agent, ...measured };
  });
  const stemAgents = new Map<string, number[]>();
  agents.forEach((agent, a) => {
    for (const stem of agent.stems.keys()) {
      const list = stemAgents.get(stem);
      if (list) list.push(a);
      else stemAgents.set(stem, [a]);
    }
  });
  return { agents: calibrated, routable: routableProfiles.length, vocabularyWords, vocabulary, vocabularyWeights, stemAgents };
}
