import { randomUUID } from "node:crypto";
import { metrics as metricsApi } from "@opentelemetry/api";
import { telemetrySettings, type TelemetrySettings } from "../config.js";
import { setTracingEnabled } from "./tracing.js";

/** The running OpenTelemetry SDK of a process, or nothing when no exporter is configured. */
export interface Telemetry {
  readonly traces: boolean;
  readonly metrics: boolean;
  /** Exports what is buffered and stops; call before the process exits. */
  shutdown(): Promise<void>;
}

const OFF: Telemetry = { traces: false, metrics: false, shutdown: async () => undefined };

/**
 * Starts the OpenTelemetry SDK when the standard `OTEL_*` variables ask for an exporter (see
 * {@link telemetrySettings}). The SDK is imported only then, so a process without a collector
 * loads none of it. `serviceName` applies unless `OTEL_SERVICE_NAME` names another.
 */
export async function startTelemetry(serviceName: string, settings: TelemetrySettings = telemetrySettings()): Promise<Telemetry> {
  if (!settings.traces && !settings.metrics) return OFF;
  const { defaultResource, detectResources, envDetector, resourceFromAttributes } = await import("@opentelemetry/resources");
  // Lowest precedence first: the SDK's defaults, ours, then OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES.
  const resource = defaultResource()
    .merge(resourceFromAttributes({ "service.name": serviceName, "service.instance.id": randomUUID() }))
    .merge(detectResources({ detectors: [envDetector] }));
  const stops: (() => Promise<void>)[] = [];
  if (settings.traces) {
    const { NodeTracerProvider, BatchSpanProcessor } = await import("@opentelemetry/sdk-trace-node");
    const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-http");
    // The exporter reads OTEL_EXPORTER_OTLP_*; the provider the sampler (OTEL_TRACES_SAMPLER) and
    // the batch settings (OTEL_BSP_*).
    const provider = new NodeTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())] });
    // Registers the W3C propagator and an AsyncLocalStorage context, so a handler's publishes carry its span.
    provider.register();
    setTracingEnabled(true);
    stops.push(() => provider.shutdown());
  }
  if (settings.metrics) {
    const { MeterProvider, PeriodicExportingMetricReader } = await import("@opentelemetry/sdk-metrics");
    const { OTLPMetricExporter } = await import("@opentelemetry/exporter-metrics-otlp-http");
    const reader = new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter(), exportIntervalMillis: settings.metricExportIntervalMs, exportTimeoutMillis: Math.min(30_000, settings.metricExportIntervalMs) });
    const provider = new MeterProvider({ resource, readers: [reader] });
    metricsApi.setGlobalMeterProvider(provider);
    stops.push(() => provider.shutdown());
  }
  return {
    traces: settings.traces,
    metrics: settings.metrics,
    shutdown: async () => {
      setTracingEnabled(false);
      // An unreachable collector must not hold up the exit.
      await Promise.race([Promise.allSettled(stops.map((stop) => stop())), new Promise((resolve) => setTimeout(resolve, 5_000).unref())]);
    },
  };
}
