import { readFile, stat } from "node:fs/promises";
import { ConfigError, errorMessage } from "../core/errors.js";
import { isValidToken } from "../core/ids.js";
import type { RoutingProfile } from "./classifier.js";

const PROFILE_KEYS = ["type", "description", "keywords", "examples"];

/** Larger files are refused before they are read: no set of routing profiles or requests is that big. */
export const MAX_ROUTING_FILE_BYTES = 64 * 1024 * 1024;

/** A file's text without the byte-order mark some editors write, which JSON does not allow. */
export async function readRoutingFile(path: string, what: string): Promise<string> {
  try {
    const { size } = await stat(path);
    if (size > MAX_ROUTING_FILE_BYTES) throw new ConfigError(`${what} ${path} is ${Math.round(size / 1024 / 1024)} MB; the most read is ${MAX_ROUTING_FILE_BYTES / 1024 / 1024} MB`);
    return (await readFile(path, "utf8")).replace(/^\uFEFF/, "");
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`cannot read ${what} ${path}: ${errorMessage(err)}`);
  }
}

/** The known field a misspelt one most likely meant ("keyword" → "keywords"). */
function likelyField(key: string): string | undefined {
  const k = key.toLowerCase();
  return PROFILE_KEYS.find((f) => f.startsWith(k) || k.startsWith(f) || f.startsWith(k.slice(0, 4)));
}

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
    for (const key of Object.keys(entry)) {
      if (PROFILE_KEYS.includes(key)) continue;
      const meant = likelyField(key);
      throw new ConfigError(`${where}: unknown field "${key}"${meant ? ` (did you mean "${meant}"?)` : ""}; a profile has ${PROFILE_KEYS.join(", ")}`);
    }
    if (typeof type !== "string" || !isValidToken(type)) throw new ConfigError(`${where}: "type" must be 1-64 characters from A-Z, a-z, 0-9, '_' and '-'`);
    if (seen.has(type)) throw new ConfigError(`${where}: agent type "${type}" appears twice`);
    seen.add(type);
    if (typeof description !== "string" || description.trim() === "") throw new ConfigError(`${where} (${type}): "description" must be a sentence saying what the agent does`);
    return { type, description, keywords: stringList(keywords, `${where} (${type})`, "keywords"), examples: stringList(examples, `${where} (${type})`, "examples") };
  });
}

/** Reads a routing-profile file (the format of `RoutingProfile`, as JSON). */
export async function readProfilesFile(path: string): Promise<RoutingProfile[]> {
  return parseProfiles(parseProfilesJson(await readRoutingFile(path, "profiles file"), path), path);
}

/** The JSON value of a profiles file's text. */
export function parseProfilesJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`profiles file ${path} is not valid JSON: ${errorMessage(err)}`);
  }
}
