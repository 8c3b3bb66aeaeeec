import stem from "wink-porter2-stemmer";
import { STOP_WORDS } from "./stop-words.js";

export interface Token {
  /** Lower-case surface form, used to look up word vectors. */
  readonly word: string;
  /** Porter2 stem, used for lexical matching so "reimbursement" meets "reimbursements". */
  readonly stem: string;
}

/**
 * Longest word kept whole, in characters; longer ones are cut to this length. No word with a
 * vector or a profile match is that long, and the stemmer's and the compound splitter's work grows
 * faster than linearly with a word's length, so one long "word" must not cost more than this.
 */
export const MAX_WORD_CHARS = 40;

/**
 * Characters of a text that are tokenized; the rest is ignored. The same as the longest message a
 * user may send, so only text that never came from a user (a direct call) is ever cut.
 */
export const MAX_TOKENIZED_CHARS = 16_000;

// Letters and digits, with inner apostrophes or hyphens kept so "don't" stays one stop word.
const WORD = /[\p{L}\p{N}]+(?:['’][\p{L}]+)*/gu;

/** Porter2 stem of a lower-case word; words over {@link MAX_WORD_CHARS} are stemmed cut to that. */
export function stemWord(word: string): string {
  return stem(word.length > MAX_WORD_CHARS ? word.slice(0, MAX_WORD_CHARS) : word);
}

/**
 * Content words of a text: lower-cased, stop words and possessive endings removed. Linear in the
 * text's length: at most {@link MAX_TOKENIZED_CHARS} are read, each word is cut to
 * {@link MAX_WORD_CHARS}.
 */
export function contentTokens(text: string): Token[] {
  const tokens: Token[] = [];
  const bounded = text.length > MAX_TOKENIZED_CHARS ? text.slice(0, MAX_TOKENIZED_CHARS) : text;
  for (const match of bounded.toLowerCase().matchAll(WORD)) {
    let word = match[0].replace(/’/g, "'");
    if (STOP_WORDS.has(word)) continue;
    if (word.endsWith("'s")) word = word.slice(0, -2);
    if (word.includes("'") || word === "" || STOP_WORDS.has(word)) continue;
    if (word.length > MAX_WORD_CHARS) word = word.slice(0, MAX_WORD_CHARS);
    tokens.push({ word, stem: stemWord(word) });
  }
  return tokens;
}

/** Case, spacing and surrounding punctuation do not make a request a different one. */
export function normalizeRequest(text: string): string {
  return text
    .toLowerCase()
    .replace(/\s+/g, " ")
    .replace(/^[\s\p{P}]+|[\s\p{P}]+$/gu, "");
}

/**
 * Splits a profile description into its phrases ("leave and time off", "benefits") so a short
 * request can match one phrase instead of being diluted by the whole description.
 */
export function descriptionPhrases(description: string): string[] {
  return description
    .split(/[:;,.()\n]/)
    .map((p) => p.trim())
    .filter((p) => p !== "");
}
