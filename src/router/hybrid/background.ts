import type { WordVectors } from "./word-vectors.js";

/**
 * A fixed, evenly spread sample of ordinary vocabulary words (skipping the few hundred most
 * frequent, which are mostly function words). Comparing an agent's profile with words that have
 * nothing to do with it tells how close "unrelated" looks for that profile: a long profile has
 * more words, so a random word finds a closer one by chance.
 */
export function backgroundSample(vectors: WordVectors, size = 1000, from = 200, to = 30_000): Float32Array[] {
  const last = Math.min(to, vectors.size);
  const stride = Math.max(1, Math.floor((last - from) / size));
  const sample: Float32Array[] = [];
  for (let rank = from; rank < last && sample.length < size; rank += stride) {
    const v = vectors.vectorAt(rank);
    if (v) sample.push(v);
  }
  return sample;
}

/** The q-quantile (0..1) of the values; sorts a copy. */
export function quantile(values: ArrayLike<number>, q: number): number {
  const sorted = Float64Array.from(values).sort();
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))));
  return sorted[i]!;
}
