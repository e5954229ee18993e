/** The OpenTelemetry SDK set-up: resource, batch processor sized for flow volume, and the trace exporter. */
import type { Context } from "@opentelemetry/api";
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
import { OTLPTraceExporter as HttpTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { OTLPTraceExporter as GrpcTraceExporter } from "@opentelemetry/exporter-trace-otlp-grpc";
import { type ChannelCredentials, credentials, Metadata } from "@grpc/grpc-js";
import { isIP } from "node:net";
import {
  CompressionAlgorithm,
  type IOtlpExportDelegate,
  type OTLPExporterNodeConfigBase,
} from "@opentelemetry/otlp-exporter-base";
import type { OTLPGRPCExporterConfigNode } from "@opentelemetry/otlp-grpc-exporter-base";
import { readFileSync } from "node:fs";
import process from "node:process";
import type { HrTime } from "@opentelemetry/api";

export interface TracingOptions {
  tracesExporter: "otlp" | "console" | "none";
  protocol: "grpc" | "http/protobuf";
  endpoint: string;
  headers: Record<string, string>;
  timeoutMs: number;
  compression: "gzip" | "none";
  certificateFile?: string;
  clientKeyFile?: string;
  clientCertificateFile?: string;
  insecure?: boolean;
  serviceName: string;
  serviceVersion: string;
  resourceAttributes: Record<string, string>;
  bsp: { maxQueueSize: number; maxExportBatchSize: number; scheduleDelayMs: number; exportTimeoutMs: number };
}

/** Counters the stats line and the metrics report. */
export interface ExportCounters {
  spansQueued: number;
  spansDropped: number;
  spansExported: number;
  spansFailed: number;
  exportFailures: number;
  lastExportError?: string;
}

/**
 * Flow spans carry up to a few hundred IPFIX elements: the SDK's default of 128 attributes per span would
 * silently cut them, so the limit is raised deliberately.
 */
export const SPAN_ATTRIBUTE_COUNT_LIMIT = 1024;

export interface Tracing {
  provider: BasicTracerProvider;
  counters: ExportCounters;
  /** Spans waiting in the batch queue. */
  queueDepth(): number;
  /** Exports everything queued, then stops. */
  shutdown(): Promise<void>;
}

export function createTracing(options: TracingOptions): Tracing {
  const counters: ExportCounters = {
    spansQueued: 0,
    spansDropped: 0,
    spansExported: 0,
    spansFailed: 0,
    exportFailures: 0,
  };
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
    spanLimits: { attributeCountLimit: SPAN_ATTRIBUTE_COUNT_LIMIT },
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

function createExporter(options: TracingOptions): SpanExporter {
  if (options.tracesExporter === "console") return new ConsoleLineExporter();
  return options.protocol === "http/protobuf"
    ? new HttpTraceExporter(httpExporterConfig(options))
    : new GrpcTraceExporter(grpcExporterConfig(options));
}

/** The OTLP/HTTP exporter settings (endpoint, headers, timeout, compression, TLS) from our options. */
export function httpExporterConfig(options: TracingOptions): OTLPExporterNodeConfigBase {
  // TLS for https:// endpoints: custom CA and client certificate (mTLS). The SDK's agent factory drops
  // ca/cert/key for http:// itself. OTEL_EXPORTER_OTLP_INSECURE concerns gRPC only (as in the OTLP spec):
  // an https:// endpoint is always verified.
  const read = (path?: string) => (path ? readFileSync(path) : undefined);
  const ca = read(options.certificateFile);
  const cert = read(options.clientCertificateFile);
  const key = read(options.clientKeyFile);
  return {
    url: options.endpoint,
    headers: options.headers,
    timeoutMillis: options.timeoutMs,
    compression: options.compression === "gzip" ? CompressionAlgorithm.GZIP : CompressionAlgorithm.NONE,
    httpAgentOptions: {
      keepAlive: true,
      ...(ca ? { ca } : {}),
      ...(cert ? { cert } : {}),
      ...(key ? { key } : {}),
    },
  };
}

/** The OTLP/gRPC exporter settings (endpoint, metadata, timeout, compression, TLS) from our options. */
export function grpcExporterConfig(options: TracingOptions): OTLPGRPCExporterConfigNode {
  const metadata = new Metadata();
  for (const [k, v] of Object.entries(options.headers)) metadata.set(k.toLowerCase(), v);
  const secure = options.endpoint.startsWith("https:") && !options.insecure;
  const read = (path?: string) => (path ? readFileSync(path) : null);
  return {
    url: options.endpoint,
    metadata,
    timeoutMillis: options.timeoutMs,
    compression: options.compression === "gzip" ? CompressionAlgorithm.GZIP : CompressionAlgorithm.NONE,
    credentials: secure
      ? withoutIpServername(credentials.createSsl(
        read(options.certificateFile),
        read(options.clientKeyFile),
        read(options.clientCertificateFile),
      ))
      : credentials.createInsecure(),
  };
}

/**
 * grpc-js sends the endpoint's host as TLS SNI even when it is an IP address; Node tolerates that, Deno's
 * node:tls refuses it ("options.servername must not be an IP address") and every export to
 * `https://10.0.0.5:4317` would fail. SNI carries host names only (RFC 6066 §3), so drop it for IP literals;
 * the certificate is still verified against the IP (tls.connect falls back to `host`).
 */
function withoutIpServername(creds: ChannelCredentials): ChannelCredentials {
  type Connector = { connectionOptions?: { servername?: string } };
  const internal = creds as unknown as { _createSecureConnector?: (...args: unknown[]) => Connector };
  const create = internal._createSecureConnector;
  if (typeof create !== "function") return creds;
  internal._createSecureConnector = (...args: unknown[]) => {
    const connector = create.apply(creds, args);
    const options = connector?.connectionOptions;
    if (options?.servername && isIP(options.servername)) delete options.servername;
    return connector;
  };
  return creds;
}

/** gRPC status codes the OTLP specification calls retryable (RESOURCE_EXHAUSTED only with RetryInfo: not here). */
const RETRYABLE_GRPC_CODES = new Set([1, 4, 10, 11, 14, 15]);
const RETRY_INITIAL_MS = 1_000, RETRY_MAX_MS = 5_000, RETRY_MULTIPLIER = 1.5;

/**
 * Retries gRPC exports that failed with a retryable status (UNAVAILABLE, DEADLINE_EXCEEDED, …) with
 * exponential backoff (1 s × 1.5, at most 5 s, ±20 % jitter) until `timeoutMs` after the first attempt, as
 * the SDK does for HTTP. The SDK's gRPC transport (0.223.1) reports every error as final, so without this an
 * export made while the channel reconnects after an outage fails at once and its spans are lost.
 */
export function withGrpcRetries<T>(
  delegate: IOtlpExportDelegate<T>,
  timeoutMs: number,
): IOtlpExportDelegate<T> {
  return {
    export(batch, done) {
      const deadline = Date.now() + timeoutMs;
      let backoff = RETRY_INITIAL_MS;
      const attempt = () =>
        delegate.export(batch, (result) => {
          const code = (result.error as { code?: unknown } | undefined)?.code;
          const wait = Math.min(backoff, RETRY_MAX_MS) * (0.8 + 0.4 * Math.random());
          if (
            result.code === ExportResultCode.SUCCESS || typeof code !== "number" ||
            !RETRYABLE_GRPC_CODES.has(code) ||
            Date.now() + wait >= deadline
          ) {
            return done(result);
          }
          backoff *= RETRY_MULTIPLIER;
          setTimeout(attempt, wait);
        });
      attempt();
    },
    forceFlush: () => delegate.forceFlush(),
    shutdown: () => delegate.shutdown(),
    setMetrics: (metrics) => delegate.setMetrics(metrics),
  };
}

/** Counts what the exporter delivered and what it failed to deliver. */
class CountingExporter implements SpanExporter {
  constructor(private readonly inner: SpanExporter, private readonly counters: ExportCounters) {}
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      if (result.code === ExportResultCode.SUCCESS) {
        this.counters.spansExported += spans.length;
      } else {
        this.counters.spansFailed += spans.length;
        this.counters.exportFailures++;
        this.counters.lastExportError = result.error?.message ?? String(result.error);
      }
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
    if (this.queueLength() >= this.maxQueueSize) this.counters.spansDropped++;
    else this.counters.spansQueued++;
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
