/**
 * The word that ends a session: `END` standing alone, as in "thanks, END" (not "ENDING", nor
 * "END-OF-DAY").
 */
const END_WORD = /(?<![\p{L}\p{N}_-])END(?![\p{L}\p{N}_-])/u;

export function containsEndWord(text: string): boolean {
  return END_WORD.test(text);
}
