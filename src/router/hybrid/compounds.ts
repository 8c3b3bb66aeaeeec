import { MAX_WORD_CHARS, stemWord, type Token } from "./text.js";
import type { WordVectors } from "./word-vectors.js";

const MIN_PART = 3;

/**
 * Splits a word the vectors do not know into two words they do ("timesheet" → "time" +
 * "sheet"), so closed compounds and run-together words still carry meaning.
 * Of the possible splits, the one whose rarer half is most frequent wins. Words over
 * MAX_WORD_CHARS are not split: each split point costs a copy of the word, so the work would grow
 * with the square of its length.
 */
export function splitCompound(word: string, vectors: WordVectors): [string, string] | undefined {
  if (word.length > MAX_WORD_CHARS) return undefined;
  let best: [string, string] | undefined;
  let bestRank = Infinity;
  for (let i = MIN_PART; i <= word.length - MIN_PART; i++) {
    const head = word.slice(0, i);
    const tail = word.slice(i);
    const rank = Math.max(vectors.rank(head) ?? Infinity, vectors.rank(tail) ?? Infinity);
    if (rank < bestRank) {
      best = [head, tail];
      bestRank = rank;
    }
  }
  return best;
}

/**
 * Replaces each unknown token that splits into known words by its two parts; keeps the rest,
 * and keeps whole any word whose stem `isKnownStem` accepts: a rare word a profile uses
 * ("phishing") matches that profile as it is, and its parts would match nothing.
 */
export function expandCompounds(tokens: readonly Token[], vectors: WordVectors, isKnownStem: (stem: string) => boolean = () => false): Token[] {
  return tokens.flatMap((token) => {
    if (vectors.rank(token.word) !== undefined || isKnownStem(token.stem)) return [token];
    const parts = splitCompound(token.word, vectors);
    return parts ? parts.map((word) => ({ word, stem: stemWord(word) })) : [token];
  });
}
