/**
 * Where decoded packets go: a {@link TraceSink} turns each packet into its trace and exports it.
 *
 * - `otlp`: {@link OtlpSpanSink} encodes spans straight to OTLP protobuf (otlp_encoder.ts) and sends the
 *   batches through the OpenTelemetry exporter transports (HTTP or gRPC: retries with backoff, timeouts,
 *   compression, TLS, headers), with a bounded queue and several exports in flight.
 * - `console` and `none`: the OpenTelemetry SDK Tracer and batch processor (tracer.ts).
 */
import { type ExportResult, ExportResultCode } from "@opentelemetry/core";
import {
  createOtlpNetworkExportDelegate,
  ExporterMetrics,
  OTLPExporterBase,
} from "@opentelemetry/otlp-exporter-base";
import {
  convertLegacyHttpOptions,
  createOtlpHttpExportDelegate,
} from "@opentelemetry/otlp-exporter-base/node-http";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import type { ExportPacket } from "../netflow/types.ts";
import { GrpcTransport } from "./grpc_transport.ts";
import { OtlpTraceEncoder } from "./otlp_encoder.ts";
import { planTrace, SpanBuilder, type SpanBuilderOptions } from "./spans.ts";
import { createTracing, type ExportCounters, httpExporterConfig, type TracingOptions } from "./tracer.ts";

export interface TraceSink {
  /** Builds the packet's trace and queues it for export (or counts it as dropped when the queue is full). */
  emit(packet: ExportPacket): void;
  readonly counters: ExportCounters;
  /** Spans built and not yet handed to the backend. */
  queueDepth(): number;
  /** Exports everything queued, then releases the exporter. */
  shutdown(): Promise<void>;
}

export interface SinkOptions extends TracingOptions, SpanBuilderOptions {
  scopeName: string;
  scopeVersion: string;
}

export function createTraceSink(options: SinkOptions): TraceSink {
  return options.tracesExporter === "otlp" ? new OtlpSpanSink(options) : new SdkSink(options);
}

/** The SDK path: Tracer → BatchSpanProcessor → exporter (console lines, or nothing). */
class SdkSink implements TraceSink {
  private readonly tracing;
  private readonly builder;
  constructor(options: SinkOptions) {
    this.tracing = createTracing(options);
    this.builder = new SpanBuilder(
      this.tracing.provider.getTracer(options.scopeName, options.scopeVersion),
      options,
    );
  }
  get counters(): ExportCounters {
    return this.tracing.counters;
  }
  emit(packet: ExportPacket): void {
    this.builder.emit(packet);
  }
  queueDepth(): number {
    return this.tracing.queueDepth();
  }
  shutdown(): Promise<void> {
    return this.tracing.shutdown();
  }
}

/** An encoded ExportTraceServiceRequest and how many spans it holds. */
interface EncodedBatch {
  body: Uint8Array;
  spans: number;
}

/** Sent as the gRPC user-agent, like the SDK exporters. */
const USER_AGENT = "netflow2traces OTel-OTLP-Exporter-JavaScript";

/** Batches in flight at once: keeps the link busy while one request waits for its response. */
const MAX_EXPORTS_IN_FLIGHT = 4;

/** The fast path: spans encoded directly, exported in batches over the SDK's OTLP transports. */
export class OtlpSpanSink implements TraceSink {
  readonly counters: ExportCounters = {
    spansQueued: 0,
    spansDropped: 0,
    spansExported: 0,
    spansFailed: 0,
    exportFailures: 0,
  };
  private readonly encoder: OtlpTraceEncoder;
  private readonly exporter: OTLPExporterBase<EncodedBatch>;
  private readonly waiting: EncodedBatch[] = [];
  private inFlight = 0;
  /** Spans encoded but not yet answered by the backend (current batch + waiting + in flight). */
  private held = 0;
  private readonly timer: ReturnType<typeof setInterval>;
  private idle: (() => void)[] = [];

  constructor(private readonly options: SinkOptions) {
    this.encoder = new OtlpTraceEncoder({
      resource: {
        ...options.resourceAttributes,
        "service.name": options.serviceName,
        "service.version": options.serviceVersion,
      },
      scopeName: options.scopeName,
      scopeVersion: options.scopeVersion,
    });
    this.exporter = new OTLPExporterBase(createDelegate(options));
    this.timer = setInterval(() => this.cut(), options.bsp.scheduleDelayMs);
    (this.timer as { unref?: () => void }).unref?.();
  }

  emit(packet: ExportPacket): void {
    const spans = packet.flows.length + 2;
    if (this.held + spans > this.options.bsp.maxQueueSize) {
      this.counters.spansDropped += spans;
      return;
    }
    this.encoder.write(planTrace(packet, this.options));
    this.held += spans;
    this.counters.spansQueued += spans;
    if (this.encoder.spanCount >= this.options.bsp.maxExportBatchSize) this.cut();
  }

  queueDepth(): number {
    return this.held;
  }

  async shutdown(): Promise<void> {
    clearInterval(this.timer);
    this.cut();
    if (this.inFlight > 0 || this.waiting.length > 0) {
      await new Promise<void>((resolve) => this.idle.push(resolve));
    }
    await this.exporter.shutdown();
  }

  /** Closes the current batch and sends what the in-flight limit allows. */
  private cut(): void {
    const spans = this.encoder.spanCount;
    const body = this.encoder.takeRequest();
    if (body) this.waiting.push({ body, spans });
    this.pump();
  }

  private pump(): void {
    while (this.inFlight < MAX_EXPORTS_IN_FLIGHT && this.waiting.length > 0) {
      const batch = this.waiting.shift()!;
      this.inFlight++;
      this.exporter.export(batch, (result) => this.done(batch, result));
    }
    if (this.inFlight === 0 && this.waiting.length === 0) {
      for (const resolve of this.idle.splice(0)) resolve();
    }
  }

  private done(batch: EncodedBatch, result: ExportResult): void {
    this.inFlight--;
    this.held -= batch.spans;
    if (result.code === ExportResultCode.SUCCESS) {
      this.counters.spansExported += batch.spans;
    } else {
      this.counters.spansFailed += batch.spans;
      this.counters.exportFailures++;
      this.counters.lastExportError = result.error?.message ?? String(result.error);
    }
    this.pump();
  }
}

/** The SDK's OTLP export delegate (transport, retries, timeout) around our pre-encoded request bodies. */
function createDelegate(options: TracingOptions) {
  const serializer = {
    serializeRequest: (batch: EncodedBatch) => batch.body,
    deserializeResponse: (data: Uint8Array) => ProtobufTraceSerializer.deserializeResponse(data),
  };
  const metricsHelper = { name: "span" as const, countItems: (batch: EncodedBatch) => batch.spans };
  if (options.protocol === "http/protobuf") {
    return createOtlpHttpExportDelegate(
      convertLegacyHttpOptions(httpExporterConfig(options), "TRACES", "v1/traces", {
        "Content-Type": "application/x-protobuf",
      }),
      serializer,
      "otlp_http_span_exporter",
      metricsHelper,
      undefined,
    );
  }
  return createOtlpNetworkExportDelegate(
    // The transport compresses and retries by itself; the delegate bounds concurrency and reports results.
    { timeoutMillis: options.timeoutMs, concurrencyLimit: 30, compression: "none" },
    serializer,
    new ExporterMetrics({
      componentType: "otlp_grpc_span_exporter",
      metricsHelper,
      url: options.endpoint,
      meterProvider: undefined,
      responseAttributesFromError: () => ({}),
    }),
    new GrpcTransport({ ...options, userAgent: USER_AGENT }),
  );
}
