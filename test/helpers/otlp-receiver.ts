import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** An OTLP attribute value as the JSON encoding writes it. */
interface AnyValue {
  readonly stringValue?: string;
  readonly intValue?: number | string;
  readonly doubleValue?: number;
  readonly boolValue?: boolean;
}
interface KeyValue {
  readonly key: string;
  readonly value: AnyValue;
}

export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly name: string;
  readonly kind: number;
  readonly attributes: Record<string, string | number | boolean>;
  readonly events: { readonly name: string; readonly attributes: Record<string, string | number | boolean> }[];
  /** `service.name` and `service.instance.id` of the process that sent it. */
  readonly service: string;
  readonly instance: string;
}

function plain(attrs: readonly KeyValue[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const { key, value } of attrs ?? []) {
    const v = value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : undefined) ?? value.doubleValue ?? value.boolValue;
    if (v !== undefined) out[key] = v;
  }
  return out;
}

interface TracesRequest {
  readonly resourceSpans?: {
    readonly resource?: { readonly attributes?: KeyValue[] };
    readonly scopeSpans?: { readonly spans?: { traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attributes?: KeyValue[]; events?: { name: string; attributes?: KeyValue[] }[] }[] }[];
  }[];
}

interface MetricsRequest {
  readonly resourceMetrics?: { readonly scopeMetrics?: { readonly metrics?: { readonly name: string }[] }[] }[];
}

/**
 * A small OTLP/HTTP collector (JSON encoding) on a loopback port: what the exporters of the
 * processes under test send, kept for the test to inspect.
 */
export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  readonly metricNames = new Set<string>();
  /** Every request body as received, to search for text that must not be there. */
  readonly bodies: string[] = [];

  private constructor(private readonly server: Server) {}

  static async start(): Promise<OtlpReceiver> {
    let receiver: OtlpReceiver | undefined;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        receiver?.take(req.url ?? "", req.headers["content-type"] ?? "", body);
        res.writeHead(200, { "content-type": "application/json" });
        res.end("{}");
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    receiver = new OtlpReceiver(server);
    return receiver;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private take(url: string, contentType: string, body: string): void {
    this.bodies.push(body);
    if (!contentType.includes("json")) throw new Error(`the receiver reads JSON only, got ${contentType}`);
    if (url.endsWith("/v1/traces")) {
      const request = JSON.parse(body) as TracesRequest;
      for (const rs of request.resourceSpans ?? []) {
        const resource = plain(rs.resource?.attributes);
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            this.spans.push({
              traceId: s.traceId,
              spanId: s.spanId,
              parentSpanId: s.parentSpanId ?? "",
              name: s.name,
              kind: s.kind,
              attributes: plain(s.attributes),
              events: (s.events ?? []).map((e) => ({ name: e.name, attributes: plain(e.attributes) })),
              service: String(resource["service.name"] ?? ""),
              instance: String(resource["service.instance.id"] ?? ""),
            });
          }
        }
      }
    } else if (url.endsWith("/v1/metrics")) {
      const request = JSON.parse(body) as MetricsRequest;
      for (const rm of request.resourceMetrics ?? []) for (const sm of rm.scopeMetrics ?? []) for (const m of sm.metrics ?? []) this.metricNames.add(m.name);
    }
  }

  /** Waits until `check` holds of what was received. */
  async waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; received spans: ${this.spans.map((s) => `${s.service}:${s.name}`).join(", ")}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
