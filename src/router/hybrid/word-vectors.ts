import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * The compact GloVe file derived by scripts/build-embeddings.ts. Resolved from this module so the
 * same path works from src/ under tsx and from dist/ after a build.
 */
export const DEFAULT_WORD_VECTORS_PATH = fileURLToPath(new URL("../../../assets/embeddings/glove-100d-50k.i8.bin", import.meta.url));

const MAGIC = "SWBEMB01";

/**
 * Unit-length word vectors in corpus-frequency order: a word's row is also its frequency rank,
 * which gives a general-language estimate of how informative the word is.
 */
export class WordVectors {
  readonly dimensions: number;
  readonly size: number;
  private readonly rows: ReadonlyMap<string, number>;
  private readonly data: Float32Array;

  private constructor(words: readonly string[], dimensions: number, data: Float32Array) {
    this.dimensions = dimensions;
    this.size = words.length;
    this.rows = new Map(words.map((w, i) => [w, i]));
    this.data = data;
  }

  static load(path: string = DEFAULT_WORD_VECTORS_PATH): WordVectors {
    return WordVectors.decode(readFileSync(path));
  }

  static decode(file: Uint8Array): WordVectors {
    const buf = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
    if (buf.toString("ascii", 0, 8) !== MAGIC) throw new Error("not a word-vector file (bad magic)");
    const count = buf.readUInt32LE(8);
    const dims = buf.readUInt32LE(12);
    const wordBytes = buf.readUInt32LE(16);
    const words = buf.toString("utf8", 20, 20 + wordBytes).split("\n");
    if (words.length !== count) throw new Error("corrupt word-vector file (word count mismatch)");
    const raw = new Int8Array(buf.buffer, buf.byteOffset + 20 + wordBytes, count * dims);
    const data = new Float32Array(count * dims);
    for (let r = 0; r < count; r++) {
      let norm = 0;
      for (let d = 0; d < dims; d++) norm += raw[r * dims + d]! * raw[r * dims + d]!;
      const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
      for (let d = 0; d < dims; d++) data[r * dims + d] = raw[r * dims + d]! * scale;
    }
    return new WordVectors(words, dims, data);
  }

  /** Frequency rank (0 = most frequent), or undefined for a word outside the vocabulary. */
  rank(word: string): number | undefined {
    return this.rows.get(word);
  }

  /** The unit vector of the word at a frequency rank; do not modify it. */
  vectorAt(rank: number): Float32Array | undefined {
    if (rank < 0 || rank >= this.size) return undefined;
    return this.data.subarray(rank * this.dimensions, (rank + 1) * this.dimensions);
  }

  /** The word's unit vector as a view into the shared matrix; do not modify it. */
  vector(word: string): Float32Array | undefined {
    const row = this.rows.get(word);
    return row === undefined ? undefined : this.data.subarray(row * this.dimensions, (row + 1) * this.dimensions);
  }
}

let shared: WordVectors | undefined;

/** Loads the default vectors once per process; every classifier shares the same ~20 MB. */
export function defaultWordVectors(): WordVectors {
  shared ??= WordVectors.load();
  return shared;
}
