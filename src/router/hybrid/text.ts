import stem from "wink-porter2-stemmer";
import { STOP_WORDS } from "./stop-words.js";

export interface Token {
  /** Lower-case surface form, used to look up word vectors. */
  readonly word: string;
  /** Porter2 stem, used for lexical matching so "reimbursement" meets "reimbursements". */
  readonly stem: string;
}

// Letters and digits, with inner apostrophes or hyphens kept so "don't" stays one stop word.
const WORD = /[\p{L}\p{N}]+(?:['’][\p{L}]+)*/gu;

/** Content words of a text: lower-cased, stop words and possessive endings removed. */
export function contentTokens(text: string): Token[] {
  const tokens: Token[] = [];
  for (const match of text.toLowerCase().matchAll(WORD)) {
    let word = match[0].replace(/’/g, "'");
    if (STOP_WORDS.has(word)) continue;
    if (word.endsWith("'s")) word = word.slice(0, -2);
    if (word.includes("'") || word === "" || STOP_WORDS.has(word)) continue;
    tokens.push({ word, stem: stem(word) });
  }
  return tokens;
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
