import { create } from "@bufbuild/protobuf";
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-node";
import { SpanStatusCode } from "@opentelemetry/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeEvent } from "../../src/core/codec.js";
import { telemetrySettings } from "../../src/core/config.js";
import { setTracingEnabled, startSpan, TraceHeader } from "../../src/core/telemetry/tracing.js";
import { UserMessageSchema } from "../../src/gen/switchboard/v1/conversation_pb.js";
import { ProbeAgentType } from "../helpers/probe-agent.js";
import { eventually, TestSystem } from "../helpers/system.js";

describe("telemetry settings", () => {
  it("exports nothing unless an OTLP endpoint or exporter is named, and honours OTEL_SDK_DISABLED", () => {
    expect(telemetrySettings({})).toMatchObject({ traces: false, metrics: false, metricExportIntervalMs: 60_000 });
    expect(telemetrySettings({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" })).toMatchObject({ traces: true, metrics: true });
    expect(telemetrySettings({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://c:4318/v1/traces" })).toMatchObject({ traces: true, metrics: false });
    expect(telemetrySettings({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_METRICS_EXPORTER: "none" })).toMatchObject({ traces: true, metrics: false });
    expect(telemetrySettings({ OTEL_TRACES_EXPORTER: "otlp", OTEL_METRIC_EXPORT_INTERVAL: "500" })).toMatchObject({ traces: true, metrics: false, metricExportIntervalMs: 500 });
    expect(telemetrySettings({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_SDK_DISABLED: "true" })).toMatchObject({ traces: false, metrics: false });
  });
});

describe("trace context on events", () => {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  let sys: TestSystem;

  beforeAll(async () => {
    provider.register();
    sys = await TestSystem.start();
    await sys.startHost();
  });

  afterAll(async () => {
    setTracingEnabled(false);
    await sys?.close();
    await provider.shutdown();
  });

  it("adds no header while tracing is off, and the active span's traceparent once it is on", async () => {
    const message = create(UserMessageSchema, { sessionId: "s1", user: "alice", turnId: "t1", text: "hello" });
    setTracingEnabled(false);
    await startSpan("off", {}).run(async () => {
      expect(encodeEvent(UserMessageSchema, message, { source: "test" }).headers.has(TraceHeader.TraceParent)).toBe(false);
    });
    setTracingEnabled(true);
    const span = startSpan("on", {});
    await span.run(async () => {
      const traceparent = encodeEvent(UserMessageSchema, message, { source: "test" }).headers.get(TraceHeader.TraceParent);
      expect(traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    });
    span.end();
  });

  it("continues the trace on every delivery of a failing message, saying which delivery each span handled", async () => {
    setTracingEnabled(true);
    const probe = new ProbeAgentType("fragile", { failOn: "boom" });
    const worker = await sys.startWorker([probe], { consumer: { maxDeliver: 2, ackWaitMs: 2_000 } });
    const publisher = startSpan("test publish", {});
    await publisher.run(() => worker.runtime.publish(create(UserMessageSchema, { sessionId: "s2", user: "alice", turnId: "t2", text: "boom" }), { type: "fragile", source: { user: "alice", session: "s2" } }));
    publisher.end();
    const root = exporter.getFinishedSpans().find((s) => s.name === "test publish")!;
    const handled = await eventually(() => {
      const spans = exporter.getFinishedSpans().filter((s) => s.name === "agent handle" && s.attributes["switchboard.agent.type"] === "fragile");
      return spans.length >= 2 ? spans : undefined;
    }, 15_000, "two deliveries");
    const byCount = (n: number) => handled.find((s: ReadableSpan) => s.attributes["switchboard.delivery.count"] === n)!;
    for (const [n, event] of [[1, "delivery"], [2, "redelivery"]] as const) {
      const span = byCount(n);
      expect(span.spanContext().traceId).toBe(root.spanContext().traceId);
      expect(span.parentSpanContext?.spanId).toBe(root.spanContext().spanId);
      expect(span.events.map((e) => [e.name, e.attributes?.["switchboard.delivery.count"]])).toEqual([[event, n]]);
      expect(span.status.code).toBe(SpanStatusCode.ERROR);
      expect(span.attributes).toMatchObject({ "switchboard.session.id": "s2", "switchboard.turn.id": "t2", "error.type": "Error" });
    }
    // The dead letter is counted just after the last span ends.
    await eventually(() => worker.metrics.agentType("fragile").snapshot().deadLetters === 1, 5_000, "dead letter counted");
    expect(worker.metrics.agentType("fragile").snapshot()).toMatchObject({ turns: 0, failures: 2, redeliveries: 1, deadLetters: 1, inFlight: 0 });
  });
});
