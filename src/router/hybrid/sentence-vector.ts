import type { Token } from "./text.js";
import type { WordVectors } from "./word-vectors.js";

/** How much a word says about a topic, in (0, 1]. */
export type WordWeights = (word: string) => number;

/**
 * Smooth inverse frequency weights (Arora et al., 2017): a / (a + p(w)), with p(w) estimated from
 * the word's frequency rank by Zipf's law, so "thing" or "people" count for less than
 * "mortgage". Words outside the vocabulary are rare, so they weigh 1.
 */
export function frequencyWeights(vectors: WordVectors, smoothing = 1e-3): WordWeights {
  // Zipf: p(rank r) ≈ 1 / ((r + 1) · H), H the harmonic number of a ~400k-word corpus vocabulary.
  const harmonic = Math.log(400_000) + 0.5772;
  return (word) => {
    const rank = vectors.rank(word);
    if (rank === undefined) return 1;
    const p = 1 / ((rank + 1) * harmonic);
    return smoothing / (smoothing + p);
  };
}

/** Weighted average of the tokens' word vectors, unit length; undefined when none has a vector. */
export function sentenceVector(tokens: readonly Token[], vectors: WordVectors, weights: WordWeights): Float32Array | undefined {
  const sum = new Float32Array(vectors.dimensions);
  let any = false;
  for (const { word } of tokens) {
    const v = vectors.vector(word);
    if (!v) continue;
    const w = weights(word);
    for (let d = 0; d < sum.length; d++) sum[d]! += w * v[d]!;
    any = true;
  }
  if (!any) return undefined;
  let norm = 0;
  for (let d = 0; d < sum.length; d++) norm += sum[d]! * sum[d]!;
  if (norm === 0) return undefined;
  const inv = 1 / Math.sqrt(norm);
  for (let d = 0; d < sum.length; d++) sum[d]! *= inv;
  return sum;
}

/** Dot product of a with the a.length values of b starting at bOffset. */
export function dot(a: Float32Array, b: Float32Array, bOffset = 0): number {
  // Four independent sums let the CPU overlap the multiply-adds; this loop dominates classify().
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const n = a.length;
  let d = 0;
  for (; d + 3 < n; d += 4) {
    s0 += a[d]! * b[bOffset + d]!;
    s1 += a[d + 1]! * b[bOffset + d + 1]!;
    s2 += a[d + 2]! * b[bOffset + d + 2]!;
    s3 += a[d + 3]! * b[bOffset + d + 3]!;
  }
  for (; d < n; d++) s0 += a[d]! * b[bOffset + d]!;
  return s0 + s1 + s2 + s3;
}
