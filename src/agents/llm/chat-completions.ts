import { EventSourceParserStream } from "eventsource-parser/stream";
import { CancelledError, errorMessage } from "../../core/errors.js";
import { ModelError, ModelTimeoutError, ModelUnreachableError } from "./errors.js";

/** One message of the conversation sent to the model. */
export interface ChatMessage {
  readonly role: "system" | "user" | "assistant";
  readonly content: string;
}

export interface ChatCompletionOptions {
  /**
   * Chat-completions endpoint of an OpenAI-compatible server, either the full URL
   * (`http://localhost:8080/v1/chat/completions`) or its base (`http://localhost:8080/v1`).
   */
  readonly url: string;
  readonly model: string;
  /** Sent as `Authorization: Bearer …` when set; never logged nor put into an error message. */
  readonly apiKey?: string | undefined;
  readonly temperature?: number | undefined;
  readonly maxTokens?: number | undefined;
  /** The whole answer, from the request to its last chunk, must arrive within this. */
  readonly timeoutMs: number;
  /** Aborting it ends the stream with a {@link CancelledError}. */
  readonly signal?: AbortSignal | undefined;
}

/** Error text taken from a server's answer is cut to this, so a huge error page stays out of events. */
const MAX_DETAIL_CHARS = 300;

/** The endpoint for a base URL or a full chat-completions URL (the router's LLM classifier takes both too). */
export function chatCompletionsUrl(url: string): string {
  const trimmed = url.replace(/\/+$/, "");
  return trimmed.endsWith("/chat/completions") ? trimmed : `${trimmed}/chat/completions`;
}

/** The URL as it may be shown: without user info, query or fragment, which can carry secrets. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return "(invalid url)";
  }
}

/**
 * Asks an OpenAI-compatible chat-completions server for an answer with `stream: true` and yields
 * the text of each streamed chunk as it arrives. Fails with a {@link ModelUnreachableError},
 * {@link ModelTimeoutError} (the whole answer took longer than `timeoutMs`), {@link ModelError}
 * (an error status or error event, or an unreadable stream) or {@link CancelledError}.
 */
export async function* streamChatCompletion(messages: readonly ChatMessage[], options: ChatCompletionOptions): AsyncGenerator<string, void, undefined> {
  const url = chatCompletionsUrl(options.url);
  const shown = displayUrl(url);
  const deadline = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, deadline]) : deadline;
  // Each failure is classified by what was aborted, not by the error the fetch machinery threw.
  const failure = (err: unknown): Error => {
    if (options.signal?.aborted) return new CancelledError(`asking the language model at ${shown}`);
    if (deadline.aborted) return new ModelTimeoutError(shown, options.timeoutMs);
    if (err instanceof ModelError) return err;
    return new ModelUnreachableError(shown, redact(causeOf(err).replaceAll(url, shown), options.apiKey), { cause: err });
  };

  let response: Response;
  try {
    response = await fetch(url, { method: "POST", headers: requestHeaders(options.apiKey), body: requestBody(messages, options), signal });
  } catch (err) {
    throw failure(err);
  }
  if (!response.ok) {
    const detail = await errorDetail(response).catch(() => response.statusText);
    throw failure(new ModelError(shown, response.status, redact(detail || response.statusText || "no detail", options.apiKey)));
  }
  if (!response.body) throw new ModelError(shown, undefined, "the answer has no body");
  const contentType = response.headers.get("content-type") ?? "";
  // Some servers and gateways ignore `stream: true` and send the whole completion at once.
  if (/^application\/(.+\+)?json\b/i.test(contentType)) {
    let text: string;
    try {
      text = await response.text();
    } catch (err) {
      throw failure(err);
    }
    const whole = completionText(text, shown, options.apiKey);
    if (whole) yield whole;
    return;
  }

  const events = response.body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream());
  let received = 0;
  try {
    for await (const event of events) {
      received += 1;
      if (event.data === "[DONE]") return;
      const text = chunkText(event.data, shown, options.apiKey);
      if (text) yield text;
    }
  } catch (err) {
    throw failure(err);
  } finally {
    // Leaving early (the consumer stopped, or a failure) must not leave the connection open.
    await events.cancel().catch(() => undefined);
  }
  if (signal.aborted) throw failure(signal.reason);
  // Not one event: an HTML page or some other body, not an answer; an empty reply would hide that.
  if (received === 0) throw new ModelError(shown, undefined, `the answer is not a stream of server-sent events (content-type ${contentType || "none"}); is this an OpenAI-compatible chat-completions endpoint?`);
}

/** The text of a completion sent whole (`choices[0].message.content`); an `error` object fails it. */
function completionText(text: string, shown: string, apiKey: string | undefined): string {
  const { choices } = answerObject(text, "the answer", shown, apiKey);
  const content = Array.isArray(choices) ? (choices[0] as { message?: { content?: unknown } } | undefined)?.message?.content : undefined;
  if (typeof content !== "string") throw new ModelError(shown, undefined, "the answer has no choices[0].message.content");
  return content;
}

function requestHeaders(apiKey: string | undefined): Record<string, string> {
  const headers: Record<string, string> = { "content-type": "application/json", accept: "text/event-stream" };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;
  return headers;
}

function requestBody(messages: readonly ChatMessage[], options: ChatCompletionOptions): string {
  return JSON.stringify({
    model: options.model,
    messages,
    stream: true,
    ...(options.temperature === undefined ? {} : { temperature: options.temperature }),
    ...(options.maxTokens === undefined ? {} : { max_tokens: options.maxTokens }),
  });
}

/** A JSON object from the model (a whole completion or a streamed chunk); its `error` object fails it. */
function answerObject(text: string, what: string, shown: string, apiKey: string | undefined): { readonly choices?: unknown } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ModelError(shown, undefined, `${what} is not JSON`);
  }
  if (typeof parsed !== "object" || parsed === null) throw new ModelError(shown, undefined, `${what} is not an object`);
  const { error, choices } = parsed as { error?: unknown; choices?: unknown };
  if (error !== undefined && error !== null) throw new ModelError(shown, undefined, redact(detailOf(error), apiKey));
  return { choices };
}

/** The text a streamed chunk adds to the answer; an `error` object in a chunk ends the stream. */
function chunkText(data: string, shown: string, apiKey: string | undefined): string {
  const { choices } = answerObject(data, "a streamed chunk", shown, apiKey);
  if (!Array.isArray(choices)) return "";
  const first: unknown = choices[0];
  const content = (first as { delta?: { content?: unknown } } | undefined)?.delta?.content;
  return typeof content === "string" ? content : "";
}

/** OpenAI-style `{"error":{"message":…}}` bodies give their message; anything else its first characters. */
async function errorDetail(response: Response): Promise<string> {
  const text = await response.text();
  try {
    return detailOf((JSON.parse(text) as { error?: unknown }).error ?? text);
  } catch {
    return text.slice(0, MAX_DETAIL_CHARS).trim();
  }
}

function detailOf(error: unknown): string {
  if (typeof error === "string") return error.slice(0, MAX_DETAIL_CHARS);
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === "string" ? message.slice(0, MAX_DETAIL_CHARS) : JSON.stringify(error).slice(0, MAX_DETAIL_CHARS);
}

/** Some servers quote the key they refused; it must not travel on in an error event or a log. */
function redact(detail: string, apiKey: string | undefined): string {
  return apiKey ? detail.replaceAll(apiKey, "[redacted]") : detail;
}

/** undici reports "fetch failed" and keeps the reason (ECONNREFUSED, ENOTFOUND, …) in `cause`. */
function causeOf(err: unknown): string {
  const cause = err instanceof Error ? (err.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  if (cause && typeof cause.code === "string") return cause.code;
  if (cause && typeof cause.message === "string") return cause.message;
  return errorMessage(err);
}
