import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** A chat-completions request as the stub received it. */
export interface ReceivedRequest {
  readonly path: string;
  readonly authorization: string | undefined;
  readonly body: {
    readonly model: string;
    readonly stream?: boolean;
    readonly temperature?: number;
    readonly max_tokens?: number;
    readonly messages: readonly { readonly role: string; readonly content: string }[];
  };
}

/** How the stub answers one request. */
export type StubAnswer =
  /**
   * Streams these chunks as server-sent events, `delayMs` apart, then `[DONE]`; or, with
   * `failWith`, an error chunk instead of the end, as a server that fails mid-answer. `holdLast`
   * holds the last chunk back until it resolves.
   */
  | { readonly kind: "stream"; readonly chunks: readonly string[]; readonly delayMs?: number; readonly firstDelayMs?: number; readonly failWith?: string; readonly holdLast?: Promise<void> }
  /** Answers with an HTTP error status and an OpenAI-style error body. */
  | { readonly kind: "status"; readonly status: number; readonly message: string }
  /** Sends the headers and then nothing, as a model stuck on a long answer. */
  | { readonly kind: "hang" }
  /** Ignores `stream: true` and sends the whole completion as one JSON body, as some servers and gateways do. */
  | { readonly kind: "whole"; readonly content: string }
  /** Answers 200 with something that is no answer at all (a web page), as a URL pointing at the wrong server. */
  | { readonly kind: "page"; readonly contentType: string; readonly body: string };

/**
 * The answer the stub gives by default, from which a test can tell what the model was sent: the
 * system prompt, the earlier user messages and the new one, in word-sized chunks.
 */
export function echoAnswer(request: ReceivedRequest): StubAnswer {
  const messages = request.body.messages;
  const system = messages.find((m) => m.role === "system")?.content ?? "(none)";
  const users = messages.filter((m) => m.role === "user").map((m) => m.content);
  const assistants = messages.filter((m) => m.role === "assistant").length;
  const text = `system: ${system} | earlier: ${users.slice(0, -1).join(" / ") || "(none)"} | answers so far: ${assistants} | you said: ${users.at(-1) ?? ""}`;
  return { kind: "stream", chunks: text.split(/(?<= )/) };
}

/**
 * A small real HTTP server speaking the OpenAI chat-completions API with `stream: true`
 * (server-sent events of `chat.completion.chunk` objects), for tests and the streaming bench.
 */
export class ModelStub {
  readonly requests: ReceivedRequest[] = [];
  /** Decides each answer; tests replace it. */
  answer: (request: ReceivedRequest) => StubAnswer = echoAnswer;
  /** Called right after each content chunk is written, with the request's index (0-based). */
  onChunk: ((request: number, chunk: number) => void) | undefined;
  private readonly open = new Set<ServerResponse>();

  private constructor(
    private readonly server: Server,
    /** Base URL, `http://127.0.0.1:<port>/v1`. */
    readonly url: string,
  ) {}

  static async start(): Promise<ModelStub> {
    let stub: ModelStub | undefined;
    const server = createServer((req, res) => {
      if (stub) void stub.handle(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    stub = new ModelStub(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`);
    return stub;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let raw = "";
    for await (const chunk of req) raw += String(chunk);
    if (req.method !== "POST" || req.url !== "/v1/chat/completions") {
      res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: { message: "not found" } }));
      return;
    }
    const request: ReceivedRequest = { path: req.url, authorization: req.headers.authorization, body: JSON.parse(raw) as ReceivedRequest["body"] };
    const index = this.requests.push(request) - 1;
    const answer = this.answer(request);
    if (answer.kind === "status") {
      res.writeHead(answer.status, { "content-type": "application/json" }).end(JSON.stringify({ error: { message: answer.message, type: "server_error" } }));
      return;
    }
    if (answer.kind === "whole") {
      const completion = { id: `chatcmpl-${this.requests.length}`, object: "chat.completion", created: 0, model: request.body.model, choices: [{ index: 0, message: { role: "assistant", content: answer.content }, finish_reason: "stop" }] };
      res.writeHead(200, { "content-type": "application/json; charset=utf-8" }).end(JSON.stringify(completion));
      return;
    }
    if (answer.kind === "page") {
      res.writeHead(200, { "content-type": answer.contentType }).end(answer.body);
      return;
    }
    this.open.add(res);
    res.once("close", () => this.open.delete(res));
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
    res.flushHeaders();
    if (answer.kind === "hang") return;
    const id = `chatcmpl-${this.requests.length}`;
    const send = (delta: Record<string, string>, finish: string | null) =>
      res.write(`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created: 0, model: request.body.model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`);
    send({ role: "assistant", content: "" }, null);
    for (const [i, chunk] of answer.chunks.entries()) {
      const wait = i === 0 ? (answer.firstDelayMs ?? answer.delayMs ?? 0) : (answer.delayMs ?? 0);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (i === answer.chunks.length - 1 && answer.holdLast) await answer.holdLast;
      if (res.destroyed) return;
      send({ content: chunk }, null);
      this.onChunk?.(index, i);
    }
    if (answer.failWith !== undefined) {
      res.end(`data: ${JSON.stringify({ error: { message: answer.failWith, type: "server_error" } })}\n\n`);
      return;
    }
    send({}, "stop");
    res.end("data: [DONE]\n\n");
  }

  async close(): Promise<void> {
    for (const res of this.open) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
