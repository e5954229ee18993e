/**
 * Where decoded packets go: a {@link TraceSink} turns each packet into its trace and exports it.
 *
 * - `otlp`: {@link OtlpSpanSink} encodes spans straight to OTLP protobuf (otlp_encoder.ts) and hands the
 *   requests to delivery.ts (bounded queue, retries until accepted, optional spool, visible trouble), which
 *   sends them over HTTP or gRPC (http_transport.ts, grpc_transport.ts).
 * - `console`: {@link ConsoleSink} prints the same trace plans as JSON lines; `none`: {@link DiscardingSink}
 *   drops them unbuilt (console_sink.ts).
 */
import type { Logger } from "../log.ts";
import type { ExportPacket } from "../netflow/types.ts";
import { Delivery } from "./delivery.ts";
import { countDropped, countQueued, type ExportCounters, zeroExportCounters } from "../counters.ts";
import type { ExportStatus } from "./export_status.ts";
import { createTransport } from "./otlp_export.ts";
import { OtlpTraceEncoder } from "./otlp_encoder.ts";
import type { TracePlanOptions } from "./spans.ts";
import { Spool } from "./spool.ts";
import { ConsoleSink, DiscardingSink } from "./console_sink.ts";
import { resourceAttributes, type TracingOptions } from "./tracing_options.ts";

export interface TraceSink {
  /** Builds the packet's trace and queues it for export (or counts it as dropped when the queue is full). */
  emit(packet: ExportPacket): void;
  readonly counters: ExportCounters;
  /** Spans built and not yet handed to the backend. */
  queueDepth(): number;
  /** Whether exports succeed, and since when they fail. */
  exportStatus(): ExportStatus;
  /** Exports everything queued, then releases the exporter. */
  shutdown(): Promise<void>;
}

export interface SinkOptions extends TracingOptions, TracePlanOptions {
  scopeName: string;
  scopeVersion: string;
  /** Bytes per OTLP request at most (NETFLOW_MAX_REQUEST_BYTES). */
  maxRequestBytes: number;
}

export function createTraceSink(options: SinkOptions, log: Logger): TraceSink {
  switch (options.tracesExporter) {
    case "otlp":
      return new OtlpSpanSink(options, log);
    case "console":
      return new ConsoleSink(options);
    case "none":
      return new DiscardingSink();
  }
}

/** Requests in flight at once while the backend answers: keeps the link busy while one waits. */
const MAX_EXPORTS_IN_FLIGHT = 8;

/**
 * The fast path: spans encoded directly into OTLP requests of at most OTEL_BSP_MAX_EXPORT_BATCH_SIZE spans
 * (a packet may straddle requests; its trace stays whole), delivered by {@link Delivery}: retried until
 * accepted, spooled when NETFLOW_SPOOL_DIR is set.
 */
export class OtlpSpanSink implements TraceSink {
  readonly counters: ExportCounters = zeroExportCounters();
  private readonly encoder: OtlpTraceEncoder;
  private readonly delivery: Delivery;
  /**
   * Request buffers to write the next requests into. Recycling them keeps about 70 MB/s of short-lived
   * external memory (at 100k flows/s) from piling up between garbage collections.
   */
  private readonly spareBuffers: Uint8Array[] = [];
  private readonly timer: ReturnType<typeof setInterval>;
  /** Spans each exporter (address) holds in the queue: its share. */
  private readonly heldByExporter = new Map<string, number>();
  /** Spans per exporter in the request being encoded. */
  private owners = new Map<string, number>();
  /** The exporter whose packet is being written, and the request's span count when it started. */
  private writing: string | undefined;
  private writingFrom = 0;
  private readonly spooled: boolean;

  constructor(private readonly options: SinkOptions, log: Logger) {
    this.encoder = new OtlpTraceEncoder({
      resource: resourceAttributes(options),
      scopeName: options.scopeName,
      scopeVersion: options.scopeVersion,
    }, {
      maxSpans: options.bsp.maxExportBatchSize,
      // The OpenTelemetry Collector's gRPC receiver refuses messages over 4 MiB by default (the default
      // here): a refused request would take every packet in it down.
      maxBytes: options.maxRequestBytes,
      onFull: () => this.cut(),
    });
    this.delivery = new Delivery({
      transport: createTransport(options, "traces"),
      timeoutMs: options.timeoutMs,
      concurrency: MAX_EXPORTS_IN_FLIGHT,
      memorySpans: options.bsp.maxQueueSize,
      spool: options.spoolDir !== undefined
        ? { store: new Spool(options.spoolDir), maxBytes: options.spoolMaxBytes }
        : undefined,
      endpoint: options.endpoint,
      log,
      counters: this.counters,
      release: (body) => {
        if (this.spareBuffers.length < MAX_EXPORTS_IN_FLIGHT) {
          this.spareBuffers.push(new Uint8Array(body.buffer, body.byteOffset));
        }
      },
    });
    this.spooled = options.spoolDir !== undefined;
    this.delivery.restore();
    this.timer = setInterval(() => this.cut(), options.bsp.scheduleDelayMs);
    (this.timer as { unref?: () => void }).unref?.();
  }

  emit(packet: ExportPacket): void {
    const flows = packet.flows.length;
    const spans = flows + 2;
    const key = packet.exporterAddress;
    if (!this.admit(key, spans)) {
      countDropped(this.counters, spans, flows);
      return;
    }
    countQueued(this.counters, spans, flows);
    this.heldByExporter.set(key, (this.heldByExporter.get(key) ?? 0) + spans);
    this.writing = key;
    this.writingFrom = this.encoder.spanCount;
    this.encoder.writePacket(packet, this.options);
    this.credit();
    this.writing = undefined;
  }

  /**
   * The queue bound refuses the newest packet, whole. With a spool, requests on disk leave memory, so it
   * bites only when the spool cannot be written (the spool's own bound evicts the oldest). Once the queue
   * is half full, an exporter holding more than its fair share (the queue over the exporters holding spans)
   * is refused too, so one flooding router cannot take the room of the others (without a spool; with one,
   * the spool's bound applies to all alike).
   */
  private admit(key: string, spans: number): boolean {
    const capacity = this.options.bsp.maxQueueSize;
    const resident = this.delivery.residentSpans + this.encoder.spanCount;
    if (resident + spans > capacity) return false;
    // With a spool the queue is on disk (bounded by its own size): the share is a memory bound.
    if (this.spooled || resident * 2 <= capacity) return true;
    const mine = this.heldByExporter.get(key) ?? 0;
    const holders = this.heldByExporter.size + (mine === 0 ? 1 : 0);
    return mine + spans <= capacity / holders;
  }

  /** Records what the packet being written put into the current request, for its exporter's share. */
  private credit(): void {
    if (this.writing === undefined) return;
    const n = this.encoder.spanCount - this.writingFrom;
    if (n > 0) this.owners.set(this.writing, (this.owners.get(this.writing) ?? 0) + n);
    this.writingFrom = 0;
  }

  /** A request is done with (accepted, failed or evicted): its exporters hold that much less. */
  private release(owners: Map<string, number>): void {
    for (const [key, n] of owners) {
      const left = (this.heldByExporter.get(key) ?? 0) - n;
      if (left > 0) this.heldByExporter.set(key, left);
      else this.heldByExporter.delete(key);
    }
  }

  queueDepth(): number {
    return this.counters.spansHeld;
  }

  exportStatus(): ExportStatus {
    return this.delivery.status();
  }

  async shutdown(): Promise<void> {
    clearInterval(this.timer);
    this.cut();
    await this.delivery.drain(Date.now() + this.options.bsp.exportTimeoutMs);
  }

  /** Closes the current request and hands it to delivery. */
  private cut(): void {
    this.credit();
    const spare = this.spareBuffers.pop();
    const request = this.encoder.takeRequest(spare);
    if (spare && request?.body.buffer !== spare.buffer) this.spareBuffers.push(spare);
    if (!request) return;
    const owners = this.owners;
    this.owners = new Map();
    this.delivery.add(request, () => this.release(owners));
  }
}
