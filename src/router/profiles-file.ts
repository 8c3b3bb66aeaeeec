import { readFile } from "node:fs/promises";
import { ConfigError, errorMessage } from "../core/errors.js";
import { isValidToken } from "../core/ids.js";
import type { RoutingProfile } from "./classifier.js";

function stringList(value: unknown, where: string, field: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) throw new ConfigError(`${where}: "${field}" must be an array of strings`);
  return value as string[];
}

/**
 * Checks routing profiles in their JSON form: an array of `{type, description, keywords?,
 * examples?}`. `source` names the input in error messages.
 */
export function parseProfiles(raw: unknown, source: string): RoutingProfile[] {
  if (!Array.isArray(raw)) throw new ConfigError(`${source}: expected a JSON array of routing profiles`);
  if (raw.length === 0) throw new ConfigError(`${source}: the array holds no routing profiles`);
  const seen = new Set<string>();
  return raw.map((entry: unknown, i) => {
    const where = `${source}: profile ${i + 1}`;
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) throw new ConfigError(`${where} is not an object`);
    const { type, description, keywords, examples } = entry as Record<string, unknown>;
    if (typeof type !== "string" || !isValidToken(type)) throw new ConfigError(`${where}: "type" must be 1-64 characters from A-Z, a-z, 0-9, '_' and '-'`);
    if (seen.has(type)) throw new ConfigError(`${where}: agent type "${type}" appears twice`);
    seen.add(type);
    if (typeof description !== "string") throw new ConfigError(`${where} (${type}): "description" must be a string`);
    return { type, description, keywords: stringList(keywords, `${where} (${type})`, "keywords"), examples: stringList(examples, `${where} (${type})`, "examples") };
  });
}

/** Reads a routing-profile file (the format of `RoutingProfile`, as JSON). */
export async function readProfilesFile(path: string): Promise<RoutingProfile[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new ConfigError(`cannot read profiles file ${path}: ${errorMessage(err)}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`profiles file ${path} is not valid JSON: ${errorMessage(err)}`);
  }
  return parseProfiles(raw, path);
}
