/**
 * The OpenTelemetry SDK set-up for `OTEL_TRACES_EXPORTER=console|none`: resource, batch processor, console
 * exporter; plus the types and OTLP/HTTP settings the direct export path (sink.ts) shares.
 */
import type { Context } from "@opentelemetry/api";
import type { Config } from "../config.ts";
import { type ExportResult, ExportResultCode } from "@opentelemetry/core";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  type ReadableSpan,
  type Span,
  type SpanExporter,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import process from "node:process";
import {
  countDropped,
  countExportResult,
  countQueued,
  countReleased,
  type ExportCounters,
  zeroExportCounters,
} from "../counters.ts";
import type { HrTime } from "@opentelemetry/api";

/** What the exporters need from the configuration (config.ts is the one place that reads it). */
export type TracingOptions = Pick<
  Config,
  | "tracesExporter"
  | "protocol"
  | "endpoint"
  | "headers"
  | "timeoutMs"
  | "compression"
  | "certificateFile"
  | "clientKeyFile"
  | "clientCertificateFile"
  | "insecure"
  | "serviceName"
  | "serviceVersion"
  | "resourceAttributes"
  | "bsp"
  | "spoolDir"
  | "spoolMaxBytes"
>;

export interface Tracing {
  provider: BasicTracerProvider;
  counters: ExportCounters;
  /** Spans waiting in the batch queue. */
  queueDepth(): number;
  /** Exports everything queued, then stops. */
  shutdown(): Promise<void>;
}

export function createTracing(options: TracingOptions & { attributeCountLimit?: number }): Tracing {
  const counters = zeroExportCounters();
  const resource = resourceFromAttributes({
    ...options.resourceAttributes,
    "service.name": options.serviceName,
    "service.version": options.serviceVersion,
  });
  const processors: SpanProcessor[] = [];
  let queueDepth = () => 0;
  if (options.tracesExporter !== "none") {
    const exporter = new CountingExporter(createExporter(options), counters);
    const batch = new BatchSpanProcessor(exporter, {
      maxQueueSize: options.bsp.maxQueueSize,
      maxExportBatchSize: options.bsp.maxExportBatchSize,
      scheduledDelayMillis: options.bsp.scheduleDelayMs,
      exportTimeoutMillis: options.bsp.exportTimeoutMs,
    });
    // The SDK drops spans silently once its queue is full and keeps no lasting count; reading the queue
    // length (an internal field, checked here once) lets us count every drop.
    const queue = () => (batch as unknown as { _finishedSpans?: unknown[] })._finishedSpans?.length ?? 0;
    queueDepth = queue;
    processors.push(new DropCountingProcessor(batch, queue, options.bsp.maxQueueSize, counters));
  }
  const provider = new BasicTracerProvider({
    resource,
    spanProcessors: processors,
    // OTEL_ATTRIBUTE_COUNT_LIMIT, as on the direct path (default 1,024, not the SDK's 128: flow spans carry up
    // to a few hundred IPFIX elements).
    spanLimits: { attributeCountLimit: options.attributeCountLimit ?? 1_024 },
  });
  return {
    provider,
    counters,
    queueDepth,
    async shutdown() {
      await provider.forceFlush();
      await provider.shutdown();
    },
  };
}

/**
 * The SDK path serves `OTEL_TRACES_EXPORTER=console` (and `none`, with no processor at all); OTLP export
 * goes through the direct encoder instead (sink.ts).
 */
function createExporter(_options: TracingOptions): SpanExporter {
  return new ConsoleLineExporter();
}

const FLOW_SPAN = "netflow.flow";

/** Counts what the exporter delivered and what it failed to deliver. */
class CountingExporter implements SpanExporter {
  constructor(private readonly inner: SpanExporter, private readonly counters: ExportCounters) {}
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      const flows = spans.reduce((n, s) => n + (s.name === FLOW_SPAN ? 1 : 0), 0);
      countReleased(this.counters, spans.length, flows);
      countExportResult(
        this.counters,
        spans.length,
        flows,
        result.code === ExportResultCode.SUCCESS
          ? { accepted: true, rejectedSpans: 0 }
          : { accepted: false, error: result.error?.message ?? String(result.error) },
      );
      done(result);
    });
  }
  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

/** Forwards to the batch processor and counts the spans it is about to drop because its queue is full. */
class DropCountingProcessor implements SpanProcessor {
  constructor(
    private readonly inner: SpanProcessor,
    private readonly queueLength: () => number,
    private readonly maxQueueSize: number,
    private readonly counters: ExportCounters,
  ) {}
  onStart(span: Span, parentContext: Context): void {
    this.inner.onStart(span, parentContext);
  }
  onEnd(span: ReadableSpan): void {
    const flow = span.name === FLOW_SPAN ? 1 : 0;
    if (this.queueLength() >= this.maxQueueSize) countDropped(this.counters, 1, flow);
    else countQueued(this.counters, 1, flow);
    this.inner.onEnd(span);
  }
  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }
  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}

/** `OTEL_TRACES_EXPORTER=console`: one JSON line per span on stdout. */
class ConsoleLineExporter implements SpanExporter {
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    let out = "";
    for (const s of spans) {
      const ctx = s.spanContext();
      out += JSON.stringify({
        name: s.name,
        traceId: ctx.traceId,
        spanId: ctx.spanId,
        parentSpanId: s.parentSpanContext?.spanId,
        startUs: hrTimeToMicro(s.startTime),
        endUs: hrTimeToMicro(s.endTime),
        status: s.status.code === 2 ? { code: "ERROR", message: s.status.message } : undefined,
        attributes: s.attributes,
      }) + "\n";
    }
    process.stdout.write(out);
    done({ code: ExportResultCode.SUCCESS });
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** HrTime → integer microseconds since the epoch. */
function hrTimeToMicro(t: HrTime): number {
  return t[0] * 1e6 + Math.floor(t[1] / 1000);
}
