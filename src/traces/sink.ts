/**
 * Where decoded packets go: a {@link TraceSink} turns each packet into its trace and exports it.
 *
 * - `otlp`: {@link OtlpSpanSink} encodes spans straight to OTLP protobuf (otlp_encoder.ts) and sends the
 *   batches through the OpenTelemetry exporter transports (HTTP or gRPC: retries with backoff, timeouts,
 *   compression, TLS, headers), with a bounded queue and several exports in flight.
 * - `console` and `none`: the OpenTelemetry SDK Tracer and batch processor (tracer.ts).
 */
import { type ExportResult, ExportResultCode } from "@opentelemetry/core";
import { OTLPExporterBase } from "@opentelemetry/otlp-exporter-base";
import type { ExportPacket } from "../netflow/types.ts";
import { createOtlpDelegate, type EncodedRequest } from "./otlp_export.ts";
import { OtlpTraceEncoder } from "./otlp_encoder.ts";
import { planTrace, SpanBuilder, type SpanBuilderOptions } from "./spans.ts";
import { createTracing, type ExportCounters, type TracingOptions } from "./tracer.ts";

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
  private readonly exporter: OTLPExporterBase<EncodedRequest>;
  private readonly waiting: EncodedRequest[] = [];
  /**
   * Request buffers to write the next requests into. Recycling them keeps about 70 MB/s of short-lived
   * external memory (at 100k flows/s) from piling up between garbage collections.
   */
  private readonly spareBuffers: Uint8Array[] = [];
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
    this.exporter = new OTLPExporterBase(createOtlpDelegate(options, "traces"));
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
    const spare = this.spareBuffers.pop();
    const body = this.encoder.takeRequest(spare);
    if (spare && body?.buffer !== spare.buffer) this.spareBuffers.push(spare);
    if (body) this.waiting.push({ body, items: spans });
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

  private done(batch: EncodedRequest, result: ExportResult): void {
    this.inFlight--;
    // The transport is done with the body (sent and answered, or abandoned): its buffer can be reused.
    if (this.spareBuffers.length < MAX_EXPORTS_IN_FLIGHT) {
      this.spareBuffers.push(new Uint8Array(batch.body.buffer, batch.body.byteOffset));
    }
    this.held -= batch.items;
    if (result.code === ExportResultCode.SUCCESS) {
      this.counters.spansExported += batch.items;
    } else {
      this.counters.spansFailed += batch.items;
      this.counters.exportFailures++;
      this.counters.lastExportError = result.error?.message ?? String(result.error);
    }
    this.pump();
  }
}
