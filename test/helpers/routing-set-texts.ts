import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { RoutingProfile } from "../../src/router/classifier.js";
import { contentTokens } from "../../src/router/hybrid/text.js";

export const ROUTING_SETS_DIR = fileURLToPath(new URL("../fixtures/routing", import.meta.url));

/** Every request and profile example of every routing set in test/fixtures/routing/. */
export function routingSetTexts(): string[] {
  const texts: string[] = [];
  for (const set of readdirSync(ROUTING_SETS_DIR, { withFileTypes: true }).filter((d) => d.isDirectory())) {
    for (const file of readdirSync(join(ROUTING_SETS_DIR, set.name))) {
      const text = readFileSync(join(ROUTING_SETS_DIR, set.name, file), "utf8");
      if (file.endsWith(".jsonl")) for (const line of text.split("\n").filter((l) => l.trim() !== "")) texts.push((JSON.parse(line) as { text: string }).text);
      if (file === "profiles.json") for (const p of JSON.parse(text) as RoutingProfile[]) texts.push(...p.examples);
    }
  }
  return texts;
}

/** A text's content words, as stems. */
export function stemsOf(text: string): Set<string> {
  return new Set(contentTokens(text).map((t) => t.stem));
}
