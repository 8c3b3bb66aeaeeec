import type { Classification, Classifier, RoutingProfile, ScoredAgent } from "./classifier.js";
import { DEFAULT_AMBIGUITY_MARGIN, HybridClassifier, isAmbiguous } from "./hybrid/index.js";

/**
 * When the offline classifier is unsure enough for the model to be asked: its best score lies in
 * [low, high), or its two best agents are within `margin` of each other (the router would ask
 * the user). Outside the band the offline answer stands and no request is sent.
 */
export interface CascadeBand {
  readonly low: number;
  readonly high: number;
  readonly margin: number;
}

/** See docs/ROUTING.md for how many requests of each routing set reach the model with it. */
export const DEFAULT_CASCADE_BAND: CascadeBand = { low: 0.05, high: 0.99, margin: DEFAULT_AMBIGUITY_MARGIN };

/** Whether a classification of the offline classifier falls in the band where the model is asked. */
export function inCascadeBand(c: Classification, band: CascadeBand): boolean {
  return (c.score >= band.low && c.score < band.high) || isAmbiguous(c, band.margin);
}

export interface LlmClassifierOptions {
  /**
   * Chat-completions endpoint of an OpenAI-compatible server, either the full URL
   * (`http://localhost:8080/v1/chat/completions`) or its base (`http://localhost:8080/v1`).
   */
  readonly url: string;
  readonly model: string;
  /** Sent as `Authorization: Bearer …` when set. */
  readonly apiKey: string;
  /** How long to wait for the model before falling back. Default 5000 ms. */
  readonly timeoutMs: number;
  /** Answers when the model is unreachable, slow or unparseable, and serves `classify()`. */
  readonly fallback: Classifier;
  /** Confidence at or above which the model's choice is routed. Default 0.5. */
  readonly threshold: number;
  /**
   * Ask the model only when the fallback is unsure ({@link DEFAULT_CASCADE_BAND} by default);
   * false asks it about every message.
   */
  readonly cascade: CascadeBand | false;
}

const DEFAULTS = { timeoutMs: 5000, threshold: 0.5, cascade: DEFAULT_CASCADE_BAND } as const;

/** What the model is asked to answer, as JSON. */
interface ModelAnswer {
  readonly agent: string | null;
  readonly confidence: number;
  readonly reason: string;
}

function endpoint(url: string): string {
  const trimmed = url.replace(/\/+$/, "");
  return trimmed.endsWith("/chat/completions") ? trimmed : `${trimmed}/chat/completions`;
}

function systemPrompt(profiles: readonly RoutingProfile[]): string {
  const agents = profiles
    .map((p) => `- ${p.type}: ${p.description}${p.examples.length > 0 ? ` Examples: ${p.examples.map((e) => JSON.stringify(e)).join("; ")}` : ""}`)
    .join("\n");
  return [
    "You route a user's message to the one agent that can handle it, or to none.",
    "Agents:",
    agents,
    'Answer with JSON only: {"agent": "<agent type or null>", "confidence": <0..1>, "reason": "<a few words>"}.',
    "Use null when no agent is relevant; do not guess.",
  ].join("\n");
}

function parseAnswer(content: string, types: ReadonlySet<string>): ModelAnswer | undefined {
  // Models often wrap JSON in prose or code fences; take the outermost object.
  const start = content.indexOf("{");
  const end = content.lastIndexOf("}");
  if (start < 0 || end <= start) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(content.slice(start, end + 1));
  } catch {
    return undefined;
  }
  if (typeof raw !== "object" || raw === null) return undefined;
  const { agent, confidence, reason } = raw as Record<string, unknown>;
  const chosen = typeof agent === "string" && types.has(agent) ? agent : null;
  if (agent !== null && agent !== undefined && agent !== "none" && chosen === null) return undefined;
  const c = typeof confidence === "number" && Number.isFinite(confidence) ? Math.min(1, Math.max(0, confidence)) : chosen ? 1 : 0;
  return { agent: chosen, confidence: c, reason: typeof reason === "string" ? reason.slice(0, 120) : "" };
}

function contentOf(body: unknown): string | undefined {
  const choices = (body as { choices?: readonly { message?: { content?: unknown } }[] } | null)?.choices;
  const content = choices?.[0]?.message?.content;
  return typeof content === "string" ? content : undefined;
}

/**
 * Asks a language model behind an OpenAI-compatible chat-completions API which agent a message
 * is for. Network calls are asynchronous, so the model is reached through {@link classifyAsync};
 * the synchronous {@link classify} required by {@link Classifier} answers from the fallback
 * (by default the offline {@link HybridClassifier}), as does classifyAsync whenever the model is
 * unreachable, times out, or answers something that is not a valid choice.
 */
export class LlmClassifier implements Classifier {
  private readonly options: Omit<LlmClassifierOptions, "apiKey"> & { readonly apiKey: string | undefined };
  private profiles: readonly RoutingProfile[] = [];
  private types: ReadonlySet<string> = new Set();

  constructor(options: Pick<LlmClassifierOptions, "url" | "model"> & Partial<LlmClassifierOptions>) {
    if (!options.url) throw new TypeError("LlmClassifier needs the chat-completions url");
    if (!options.model) throw new TypeError("LlmClassifier needs a model name");
    this.options = {
      ...DEFAULTS,
      ...options,
      url: endpoint(options.url),
      apiKey: options.apiKey,
      fallback: options.fallback ?? new HybridClassifier(),
    };
  }

  setProfiles(profiles: readonly RoutingProfile[]): void {
    this.profiles = profiles;
    this.types = new Set(profiles.map((p) => p.type));
    this.options.fallback.setProfiles(profiles);
  }

  /** Offline answer from the fallback classifier; use {@link classifyAsync} to ask the model. */
  classify(text: string): Classification {
    return this.options.fallback.classify(text);
  }

  /**
   * Asks the model, waiting at most `timeoutMs`. Resolves to the fallback's classification (its
   * intent prefixed with `fallback:`) when the model cannot answer. Rejects only when `signal`
   * is aborted by the caller.
   */
  async classifyAsync(text: string, signal?: AbortSignal): Promise<Classification> {
    if (this.profiles.length === 0) return this.classify(text);
    const fallback = this.options.fallback.classify(text);
    if (this.options.cascade && !inCascadeBand(fallback, this.options.cascade)) return fallback;
    let answer: ModelAnswer | undefined;
    try {
      answer = await this.ask(text, signal);
    } catch (err) {
      if (signal?.aborted) throw signal.reason ?? err;
      answer = undefined;
    }
    if (!answer) return { ...fallback, intent: `fallback:${fallback.intent}` };
    return this.merge(answer, fallback);
  }

  private async ask(text: string, signal: AbortSignal | undefined): Promise<ModelAnswer | undefined> {
    const timeout = AbortSignal.timeout(this.options.timeoutMs);
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
    const response = await fetch(this.options.url, {
      method: "POST",
      headers,
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      body: JSON.stringify({
        model: this.options.model,
        temperature: 0,
        messages: [
          { role: "system", content: systemPrompt(this.profiles) },
          { role: "user", content: text },
        ],
      }),
    });
    if (!response.ok) return undefined;
    const content = contentOf(await response.json());
    return content === undefined ? undefined : parseAnswer(content, this.types);
  }

  /**
   * The model decides; the fallback's scores fill in the ranking for the other agents, kept well
   * below the model's choice so the router does not ask the user what the model settled.
   */
  private merge(answer: ModelAnswer, fallback: Classification): Classification {
    const intent = `llm:${answer.reason || (answer.agent ?? "none")}`;
    if (answer.agent === null || answer.confidence < this.options.threshold) {
      return { agent: undefined, score: answer.agent === null ? 0 : answer.confidence, intent, ranked: fallback.ranked };
    }
    const chosen: ScoredAgent = { agent: answer.agent, score: answer.confidence };
    const rest = fallback.ranked.filter((r) => r.agent !== answer.agent).map((r) => ({ agent: r.agent, score: Math.min(r.score, answer.confidence / 2) }));
    return { agent: answer.agent, score: answer.confidence, intent, ranked: [chosen, ...rest] };
  }
}
