import type { Classification, Classifier, RoutingProfile, ScoredAgent } from "./classifier.js";

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Matches a keyword or phrase as whole words, case-insensitively: "three" does not contain the
 * keyword "hr", "human  resources" matches "human resources".
 */
export function keywordPattern(keyword: string): RegExp {
  const words = keyword.trim().split(/\s+/).map(escapeRegExp);
  return new RegExp(`(?<![\\p{L}\\p{N}])${words.join("\\s+")}(?![\\p{L}\\p{N}])`, "iu");
}

interface CompiledProfile {
  readonly type: string;
  readonly keywords: readonly { readonly keyword: string; readonly pattern: RegExp }[];
}

/**
 * Routes on the keywords each agent type declares in its routing profile. A match scores 1, no
 * match 0; when several agent types match, the one with most matching keywords wins, ties going
 * to the earliest keyword in the text.
 */
export class KeywordClassifier implements Classifier {
  private profiles: readonly CompiledProfile[] = [];

  setProfiles(profiles: readonly RoutingProfile[]): void {
    this.profiles = profiles.map((p) => ({
      type: p.type,
      keywords: p.keywords.filter((k) => k.trim() !== "").map((keyword) => ({ keyword, pattern: keywordPattern(keyword) })),
    }));
  }

  classify(text: string): Classification {
    let best: { type: string; keyword: string; count: number; index: number } | undefined;
    const ranked: ScoredAgent[] = [];
    for (const profile of this.profiles) {
      let count = 0;
      let first: { keyword: string; index: number } | undefined;
      for (const { keyword, pattern } of profile.keywords) {
        const m = pattern.exec(text);
        if (!m) continue;
        count++;
        if (!first || m.index < first.index) first = { keyword, index: m.index };
      }
      ranked.push({ agent: profile.type, score: count > 0 ? 1 : 0 });
      if (first && (!best || count > best.count || (count === best.count && first.index < best.index))) {
        best = { type: profile.type, keyword: first.keyword, count, index: first.index };
      }
    }
    ranked.sort((a, b) => (b.agent === best?.type ? 1 : 0) - (a.agent === best?.type ? 1 : 0) || b.score - a.score);
    if (!best) return { agent: undefined, score: 0, intent: "no keyword matched", ranked };
    return { agent: best.type, score: 1, intent: `keyword:${best.keyword.toLowerCase()}`, ranked };
  }
}
