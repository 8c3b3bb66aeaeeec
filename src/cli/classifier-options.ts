import type { ParseArgsConfig } from "node:util";
import { ConfigError } from "../core/errors.js";
import type { Classifier } from "../router/classifier.js";
import { errorMessage } from "../core/errors.js";
import { BackgroundCorpus, HybridClassifier, type HybridClassifierOptions } from "../router/hybrid/index.js";
import { KeywordClassifier } from "../router/keyword-classifier.js";
import { LlmClassifier } from "../router/llm-classifier.js";

/** The router's classifier flags, for commands that run a router. */
export const CLASSIFIER_OPTIONS = {
  classifier: { type: "string" },
  "llm-url": { type: "string" },
  "llm-model": { type: "string" },
  "everyday-background": { type: "string" },
  "service-domains": { type: "string" },
} as const satisfies NonNullable<ParseArgsConfig["options"]>;

/** Shared by the worker and \`switchboard route\`, so that route shows what the router does. */
export const CORPORA_HELP = `  --everyday-background <on|off|file>
                      the everyday requests the hybrid classifier weighs each request against,
                      so that one shared word does not route ordinary questions: on (the bundled
                      ones; default), off (for agents whose business is itself everyday, such as
                      IT or home support), or a file of your own ("## domain" headings, one
                      request a line) (env SB_EVERYDAY_BACKGROUND)
  --service-domains <on|off|file>
                      requests people send to service desks, by domain: an agent whose own
                      examples read as a domain gets more evidence for requests that read like
                      it, even in words its profile never uses: on (the bundled ones; default),
                      off, or a file of your own in the same format (env SB_SERVICE_DOMAINS)`;

export const CLASSIFIER_HELP = `Routing (when this worker runs the router):
  --classifier <kind> hybrid (keywords + word-vector semantics, offline; default),
                      keyword (declared keywords only), or llm (an OpenAI-compatible model,
                      falling back to hybrid when it is unreachable or slow)
  --llm-url <url>     chat-completions endpoint or its base, e.g. http://localhost:8080/v1
                      (env SB_LLM_URL; required with --classifier llm)
  --llm-model <name>  model name (env SB_LLM_MODEL; required with --classifier llm)
                      the API key, if the server needs one, comes from env SB_LLM_API_KEY only
${CORPORA_HELP}`;

export const CLASSIFIER_KINDS = ["hybrid", "keyword", "llm"] as const;

export type ClassifierSettings =
  | { readonly kind: "keyword" }
  | ({ readonly kind: "hybrid" } & HybridCorpora)
  | ({ readonly kind: "llm"; readonly url: string; readonly model: string; readonly apiKey: string | undefined } & HybridCorpora);

/** The request corpora a hybrid classifier uses; undefined for the bundled ones. */
export interface HybridCorpora {
  readonly background: BackgroundCorpus | undefined;
  readonly services: BackgroundCorpus | undefined;
}

interface ClassifierFlags {
  readonly classifier?: string | undefined;
  readonly "llm-url"?: string | undefined;
  readonly "llm-model"?: string | undefined;
  readonly "everyday-background"?: string | undefined;
  readonly "service-domains"?: string | undefined;
}

type Env = Readonly<Record<string, string | undefined>>;

function nonEmpty(...values: (string | undefined)[]): string | undefined {
  return values.find((v) => v !== undefined && v.trim() !== "")?.trim();
}

/** Flags first, then SB_LLM_URL, SB_LLM_MODEL and SB_LLM_API_KEY; rejects incomplete settings. */
export function classifierSettings(flags: ClassifierFlags, env: Env = process.env): ClassifierSettings {
  const kind = flags.classifier ?? "hybrid";
  if (!(CLASSIFIER_KINDS as readonly string[]).includes(kind)) {
    throw new ConfigError(`--classifier must be one of ${CLASSIFIER_KINDS.join(", ")}, got ${JSON.stringify(kind)}`);
  }
  for (const flag of ["everyday-background", "service-domains"] as const) {
    if (kind === "keyword" && flags[flag] !== undefined) throw new ConfigError(`--${flag} needs --classifier hybrid or llm`);
  }
  const corpora: HybridCorpora = kind === "keyword" ? { background: undefined, services: undefined } : hybridCorpora(flags, env);
  if (kind !== "llm") {
    if (flags["llm-url"] !== undefined || flags["llm-model"] !== undefined) throw new ConfigError("--llm-url and --llm-model need --classifier llm");
    return kind === "keyword" ? { kind } : { kind: "hybrid", ...corpora };
  }
  const url = nonEmpty(flags["llm-url"], env["SB_LLM_URL"]);
  const model = nonEmpty(flags["llm-model"], env["SB_LLM_MODEL"]);
  if (!url) throw new ConfigError("--classifier llm needs --llm-url (or SB_LLM_URL)");
  if (!model) throw new ConfigError("--classifier llm needs --llm-model (or SB_LLM_MODEL)");
  try {
    new URL(url);
  } catch {
    throw new ConfigError(`--llm-url ${JSON.stringify(url)} is not a URL`);
  }
  return { kind: "llm", url, model, apiKey: nonEmpty(env["SB_LLM_API_KEY"]), ...corpora };
}

/**
 * The corpora --everyday-background and --service-domains (or SB_EVERYDAY_BACKGROUND and
 * SB_SERVICE_DOMAINS) ask for. A file is read and checked now, so a mistake stops the command at
 * start.
 */
export function hybridCorpora(flags: Pick<ClassifierFlags, "everyday-background" | "service-domains">, env: Env = process.env): HybridCorpora {
  return {
    background: corpusSetting("everyday-background", nonEmpty(flags["everyday-background"], env["SB_EVERYDAY_BACKGROUND"])),
    services: corpusSetting("service-domains", nonEmpty(flags["service-domains"], env["SB_SERVICE_DOMAINS"])),
  };
}

/** undefined for the bundled corpus ("on"), an empty one for "off", or the file's. */
function corpusSetting(flag: string, value = "on"): BackgroundCorpus | undefined {
  if (value === "on") return undefined;
  if (value === "off") return BackgroundCorpus.empty();
  let corpus: BackgroundCorpus;
  try {
    corpus = BackgroundCorpus.load(value);
  } catch (err) {
    throw new ConfigError(`--${flag}: cannot read ${value} (${errorMessage(err)}); give on, off or a file`);
  }
  if (corpus.domains.length === 0) throw new ConfigError(`--${flag}: ${value} has no "## domain" heading with requests under it`);
  return corpus;
}

/** Hybrid classifier options for the corpora; the bundled ones are the defaults. */
export function corporaOptions({ background, services }: HybridCorpora): Partial<HybridClassifierOptions> {
  return { ...(background ? { background } : {}), ...(services ? { services } : {}) };
}

/** The classifier the settings describe; the LLM one falls back to a hybrid classifier. */
export function createClassifier(settings: ClassifierSettings): Classifier {
  switch (settings.kind) {
    case "keyword":
      return new KeywordClassifier();
    case "hybrid":
      return new HybridClassifier(corporaOptions(settings));
    case "llm":
      return new LlmClassifier({
        url: settings.url,
        model: settings.model,
        ...(settings.apiKey ? { apiKey: settings.apiKey } : {}),
        ...(settings.background || settings.services ? { fallback: new HybridClassifier(corporaOptions(settings)) } : {}),
      });
  }
}
