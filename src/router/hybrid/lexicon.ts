import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import stem from "wink-porter2-stemmer";

/** Related-words file derived from WordNet by scripts/build-embeddings.ts. */
export const DEFAULT_LEXICON_PATH = fileURLToPath(new URL("../../../assets/lexicon/wordnet-related-50k.txt", import.meta.url));

/**
 * Words WordNet relates to a word: synonyms and direct hypernyms of its common senses, and
 * partners in two-word compounds. It supplies relations word vectors miss ("furlough" is a
 * kind of "leave", an "invoice" is a "bill"); it is noisy, so its matches count for less than a word's own.
 */
export class Lexicon {
  private readonly related: ReadonlyMap<string, readonly string[]>;
  private readonly stems = new Map<string, readonly string[]>();

  constructor(entries: Iterable<readonly [string, readonly string[]]>) {
    this.related = new Map(entries);
  }

  static load(path: string = DEFAULT_LEXICON_PATH): Lexicon {
    return Lexicon.parse(readFileSync(path, "utf8"));
  }

  static parse(text: string): Lexicon {
    return new Lexicon(
      text
        .split("\n")
        .filter((line) => line !== "")
        .map((line): [string, string[]] => {
          const [word = "", ...related] = line.split(" ");
          return [word, related];
        }),
    );
  }

  static empty(): Lexicon {
    return new Lexicon([]);
  }

  /** Stems of the words related to `word`; memoised, as requests repeat the same words. */
  relatedStems(word: string): readonly string[] {
    let stems = this.stems.get(word);
    if (!stems) {
      stems = (this.related.get(word) ?? []).map((w) => stem(w));
      this.stems.set(word, stems);
    }
    return stems;
  }
}

let shared: Lexicon | undefined;

export function defaultLexicon(): Lexicon {
  shared ??= Lexicon.load();
  return shared;
}
