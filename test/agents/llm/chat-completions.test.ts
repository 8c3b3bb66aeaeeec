import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { streamChatCompletion, type ChatMessage } from "../../../src/agents/llm/chat-completions.js";
import { ModelError, ModelTimeoutError, ModelUnreachableError } from "../../../src/agents/llm/errors.js";
import { CancelledError } from "../../../src/core/errors.js";
import { ModelStub } from "../../helpers/model-stub.js";
import { freePort } from "../../helpers/ports.js";

const MESSAGES: ChatMessage[] = [
  { role: "system", content: "You are terse." },
  { role: "user", content: "hello" },
];

async function collect(iterable: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const text of iterable) out.push(text);
  return out;
}

describe("streaming chat completions from an OpenAI-compatible server", () => {
  let stub: ModelStub;
  beforeEach(async () => {
    stub = await ModelStub.start();
  });
  afterEach(async () => {
    await stub.close();
  });

  it("yields the streamed chunks in order and sends model, messages, settings and the key", async () => {
    stub.answer = () => ({ kind: "stream", chunks: ["Hel", "lo", ", world"] });
    const chunks = await collect(streamChatCompletion(MESSAGES, { url: stub.url, model: "m1", apiKey: "k-123", temperature: 0.3, maxTokens: 64, timeoutMs: 5_000 }));
    expect(chunks).toEqual(["Hel", "lo", ", world"]);
    const [request] = stub.requests;
    expect(request?.path).toBe("/v1/chat/completions");
    expect(request?.authorization).toBe("Bearer k-123");
    expect(request?.body).toMatchObject({ model: "m1", stream: true, temperature: 0.3, max_tokens: 64, messages: MESSAGES });
  });

  it("accepts the full chat-completions URL and sends no authorization without a key", async () => {
    stub.answer = () => ({ kind: "stream", chunks: ["ok"] });
    expect(await collect(streamChatCompletion(MESSAGES, { url: `${stub.url}/chat/completions/`, model: "m", timeoutMs: 5_000 }))).toEqual(["ok"]);
    expect(stub.requests[0]?.authorization).toBeUndefined();
  });

  it("turns an HTTP 500 into a ModelError carrying the status and the server's message, without the key", async () => {
    stub.answer = () => ({ kind: "status", status: 500, message: "overloaded; key k-secret-1 was fine" });
    const err = await collect(streamChatCompletion(MESSAGES, { url: stub.url, model: "m", apiKey: "k-secret-1", timeoutMs: 5_000 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelError);
    expect(err).toMatchObject({ code: "model_error", status: 500 });
    expect((err as Error).message).toContain("overloaded");
    expect((err as Error).message).not.toContain("k-secret-1");
  });

  it("gives model_timeout within the time-out when the model stalls mid-answer", async () => {
    stub.answer = () => ({ kind: "stream", chunks: ["first ", "late"], delayMs: 5_000 });
    const started = Date.now();
    const err = await collect(streamChatCompletion(MESSAGES, { url: stub.url, model: "m", timeoutMs: 400 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelTimeoutError);
    expect(err).toMatchObject({ code: "model_timeout" });
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it("gives model_timeout when the model sends headers and then nothing", async () => {
    stub.answer = () => ({ kind: "hang" });
    const err = await collect(streamChatCompletion(MESSAGES, { url: stub.url, model: "m", timeoutMs: 300 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelTimeoutError);
  });

  it("gives model_unreachable when nothing listens at the URL", async () => {
    const port = await freePort();
    const err = await collect(streamChatCompletion(MESSAGES, { url: `http://127.0.0.1:${port}/v1`, model: "m", timeoutMs: 5_000 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelUnreachableError);
    expect(err).toMatchObject({ code: "model_unreachable" });
    expect((err as Error).message).toContain("ECONNREFUSED");
  });

  it("shows neither user info nor query of the URL in its errors, as they can carry secrets", async () => {
    const port = await freePort();
    const err = await collect(streamChatCompletion(MESSAGES, { url: `http://user:pw@127.0.0.1:${port}/v1?key=zzz`, model: "m", timeoutMs: 5_000 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelUnreachableError);
    expect((err as Error).message).not.toMatch(/pw|zzz/);
  });

  it("ends with a CancelledError when the caller aborts", async () => {
    stub.answer = () => ({ kind: "stream", chunks: ["a", "b", "c"], delayMs: 2_000 });
    const abort = new AbortController();
    const seen: string[] = [];
    const run = (async () => {
      for await (const text of streamChatCompletion(MESSAGES, { url: stub.url, model: "m", timeoutMs: 10_000, signal: abort.signal })) seen.push(text);
    })();
    setTimeout(() => abort.abort(), 300);
    await expect(run).rejects.toBeInstanceOf(CancelledError);
    expect(seen).toEqual([]);
  });

  it("turns an error chunk in the middle of the stream into a ModelError after the text before it", async () => {
    stub.answer = () => ({ kind: "stream", chunks: ["partial "], failWith: "the model crashed" });
    const seen: string[] = [];
    const err = await (async () => {
      for await (const text of streamChatCompletion(MESSAGES, { url: stub.url, model: "m", timeoutMs: 5_000 })) seen.push(text);
    })().catch((e: unknown) => e);
    expect(seen).toEqual(["partial "]);
    expect(err).toBeInstanceOf(ModelError);
    expect((err as Error).message).toContain("the model crashed");
  });

  it("takes the whole completion from a server that ignores stream: true and answers with one JSON body", async () => {
    stub.answer = () => ({ kind: "whole", content: "All at once." });
    expect(await collect(streamChatCompletion(MESSAGES, { url: stub.url, model: "m", timeoutMs: 5_000 }))).toEqual(["All at once."]);
    expect(stub.requests[0]?.body.stream).toBe(true);
  });

  it("gives a ModelError, not an empty answer, when a 200 answer is neither a stream nor a completion", async () => {
    stub.answer = () => ({ kind: "page", contentType: "text/html", body: "<html><body>Welcome to the dashboard</body></html>" });
    const err = await collect(streamChatCompletion(MESSAGES, { url: stub.url, model: "m", timeoutMs: 5_000 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelError);
    expect((err as Error).message).toMatch(/not a stream of server-sent events \(content-type text\/html\)/);
  });

  it("gives a ModelError for a JSON answer without choices[0].message.content", async () => {
    stub.answer = () => ({ kind: "page", contentType: "application/json", body: JSON.stringify({ status: "ok" }) });
    const err = await collect(streamChatCompletion(MESSAGES, { url: stub.url, model: "m", timeoutMs: 5_000 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelError);
    expect((err as Error).message).toContain("no choices[0].message.content");
  });

  it("gives a ModelError with the status for a wrong path", async () => {
    const err = await collect(streamChatCompletion(MESSAGES, { url: stub.url.replace("/v1", "/v2"), model: "m", timeoutMs: 5_000 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelError);
    expect(err).toMatchObject({ status: 404 });
  });
});
