import { readFileSync } from "node:fs";
import { extname } from "node:path";
import { parse as parseYaml } from "yaml";
import { secretFromEnv } from "../../core/config.js";
import { ConfigError, errorMessage } from "../../core/errors.js";
import { isValidToken } from "../../core/ids.js";
import type { RoutingProfile } from "../../router/classifier.js";

/** How an agent of an agents file reaches its language model. */
export interface ModelSettings {
  /** Chat-completions URL of an OpenAI-compatible server, or its base (`…/v1`). */
  readonly url: string;
  readonly model: string;
  /** Name of the environment variable holding the API key (the key itself is never in the file). */
  readonly apiKeyEnv: string | undefined;
  /** The key read from `apiKeyEnv` when the file was loaded. */
  readonly apiKey: string | undefined;
  readonly systemPrompt: string;
  readonly temperature: number | undefined;
  readonly maxTokens: number | undefined;
  /** The whole answer must arrive within this; otherwise the user gets a `model_timeout` error. */
  readonly timeoutMs: number;
  /** Earlier messages of the session sent with each request (user and assistant messages alike). */
  readonly historyMessages: number;
}

/** One entry of an agents file: a routing profile and the model that answers. */
export interface LlmAgentConfig extends RoutingProfile {
  /** Shown in replies; default `<type>_agent`, as the built-in agents. */
  readonly name: string;
  readonly model: ModelSettings;
}

/** The time-out stays below the chat's default wait (60 s), so that a slow model is reported as such. */
export const MODEL_DEFAULTS = { timeoutMs: 25_000, historyMessages: 20 } as const;

const ENTRY_KEYS = new Set(["type", "name", "description", "keywords", "examples", "model"]);
const MODEL_KEYS = new Set(["url", "model", "apiKeyEnv", "systemPrompt", "temperature", "maxTokens", "timeoutMs", "historyMessages"]);

/** A problem with an agents file, naming the file and the entry. */
export class AgentsFileError extends ConfigError {
  override name = "AgentsFileError";
  constructor(
    readonly file: string,
    readonly where: string | undefined,
    problem: string,
  ) {
    super(`${file}${where ? `: ${where}` : ""}: ${problem}`);
  }
}

/**
 * Reads and validates an agents file, JSON (`.json`) or YAML (anything else):
 * `{ "defaults": { model settings }, "agents": [ { type, description, keywords, examples, model } ] }`.
 * Settings in `defaults` apply to every agent's model unless the agent sets them. API keys are read
 * from the environment variables the file names.
 */
export function loadAgentsFile(file: string, env?: Readonly<Record<string, string | undefined>>): LlmAgentConfig[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new AgentsFileError(file, undefined, `cannot read the agents file (${errorMessage(err)})`);
  }
  return parseAgentsFile(file, text, env);
}

/**
 * {@link loadAgentsFile} for text already read; `file` names it in errors and picks the format.
 * `requireApiKeys` false reads the file for its routing profiles alone, where no model is called
 * and its key need not be set.
 */
export function parseAgentsFile(file: string, text: string, env?: Readonly<Record<string, string | undefined>>, requireApiKeys = true): LlmAgentConfig[] {
  let raw: unknown;
  try {
    raw = extname(file).toLowerCase() === ".json" ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    // The YAML parser's message ends in ":" before a code frame on the next lines; keep the first line, whole.
    throw new AgentsFileError(file, undefined, `not valid ${extname(file).toLowerCase() === ".json" ? "JSON" : "YAML"}: ${(errorMessage(err).split("\n")[0] ?? "").replace(/:\s*$/, "")}`);
  }
  if (!isRecord(raw)) throw new AgentsFileError(file, undefined, 'expected an object with an "agents" list');
  for (const key of Object.keys(raw)) if (key !== "agents" && key !== "defaults") throw new AgentsFileError(file, undefined, `unknown setting "${key}" (expected "agents" and optionally "defaults")`);
  const defaults = raw["defaults"] ?? {};
  if (!isRecord(defaults)) throw new AgentsFileError(file, "defaults", "expected an object of model settings");
  checkKeys(file, "defaults", defaults, MODEL_KEYS);
  const agents = raw["agents"];
  if (!Array.isArray(agents) || agents.length === 0) throw new AgentsFileError(file, undefined, '"agents" must be a non-empty list');
  const configs = agents.map((entry: unknown, i) => parseEntry(file, i, entry, defaults, env, requireApiKeys));
  const seen = new Set<string>();
  configs.forEach((c, i) => {
    if (seen.has(c.type)) throw new AgentsFileError(file, where(i, c.type), `agent type "${c.type}" is defined twice`);
    seen.add(c.type);
  });
  return configs;
}

function parseEntry(file: string, index: number, entry: unknown, defaults: Record<string, unknown>, env: Readonly<Record<string, string | undefined>> | undefined, requireApiKeys: boolean): LlmAgentConfig {
  if (!isRecord(entry)) throw new AgentsFileError(file, `agents[${index}]`, "expected an object");
  const type = entry["type"];
  if (typeof type !== "string" || !isValidToken(type)) {
    throw new AgentsFileError(file, `agents[${index}]`, `"type" must be 1-64 characters from A-Z, a-z, 0-9, '_' and '-', got ${JSON.stringify(type)}`);
  }
  const at = where(index, type);
  const fail = (problem: string) => new AgentsFileError(file, at, problem);
  checkKeys(file, at, entry, ENTRY_KEYS);
  const description = entry["description"];
  if (typeof description !== "string" || description.trim() === "") throw fail('"description" is required: the router matches messages against it');
  const model = entry["model"] ?? {};
  if (!isRecord(model)) throw fail('"model" must be an object of model settings');
  checkKeys(file, `${at} model`, model, MODEL_KEYS);
  const name = entry["name"] ?? `${type}_agent`;
  if (typeof name !== "string" || name.trim() === "") throw fail('"name" must be a non-empty string');
  return {
    type,
    name,
    description,
    keywords: stringList(entry["keywords"], "keywords", fail),
    examples: stringList(entry["examples"], "examples", fail),
    model: modelSettings({ ...defaults, ...model }, fail, env, requireApiKeys),
  };
}

function modelSettings(m: Record<string, unknown>, fail: (problem: string) => AgentsFileError, env: Readonly<Record<string, string | undefined>> | undefined, requireApiKeys: boolean): ModelSettings {
  const url = m["url"];
  if (typeof url !== "string" || !/^https?:\/\//.test(url)) throw fail(`model.url must be an http(s) URL of an OpenAI-compatible chat-completions server, got ${JSON.stringify(url ?? null)}`);
  try {
    new URL(url);
  } catch {
    throw fail(`model.url ${JSON.stringify(url)} is not a valid URL`);
  }
  const model = m["model"];
  if (typeof model !== "string" || model === "") throw fail("model.model (the model's name on that server) is required");
  const systemPrompt = m["systemPrompt"] ?? "";
  if (typeof systemPrompt !== "string") throw fail("model.systemPrompt must be a string");
  const apiKeyEnv = m["apiKeyEnv"];
  if (apiKeyEnv !== undefined && (typeof apiKeyEnv !== "string" || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(apiKeyEnv))) {
    throw fail("model.apiKeyEnv must name an environment variable (the key itself does not belong in the file)");
  }
  const apiKey = apiKeyEnv === undefined ? undefined : secretFromEnv(apiKeyEnv, env);
  if (requireApiKeys && apiKeyEnv !== undefined && apiKey === undefined) throw fail(`environment variable ${apiKeyEnv} (model.apiKeyEnv) is not set; export the model's API key in it`);
  return {
    url,
    model,
    apiKeyEnv,
    apiKey,
    systemPrompt,
    temperature: optionalNumber(m["temperature"], "model.temperature", 0, 2, false, fail),
    maxTokens: optionalNumber(m["maxTokens"], "model.maxTokens", 1, 1_000_000, true, fail),
    timeoutMs: optionalNumber(m["timeoutMs"], "model.timeoutMs", 1, 3_600_000, true, fail) ?? MODEL_DEFAULTS.timeoutMs,
    historyMessages: optionalNumber(m["historyMessages"], "model.historyMessages", 0, 200, true, fail) ?? MODEL_DEFAULTS.historyMessages,
  };
}

function optionalNumber(value: unknown, what: string, min: number, max: number, integer: boolean, fail: (problem: string) => AgentsFileError): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    throw fail(`${what} must be ${integer ? "an integer" : "a number"} from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function stringList(value: unknown, what: string, fail: (problem: string) => AgentsFileError): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) throw fail(`"${what}" must be a list of strings`);
  return value as string[];
}

function checkKeys(file: string, at: string, value: Record<string, unknown>, known: ReadonlySet<string>): void {
  for (const key of Object.keys(value)) {
    if (!known.has(key)) throw new AgentsFileError(file, at, `unknown setting "${key}"; known: ${[...known].join(", ")}`);
  }
}

function where(index: number, type: string): string {
  return `agents[${index}] (${type})`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
