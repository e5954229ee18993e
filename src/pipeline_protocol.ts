/**
 * What the socket thread and the pipeline Worker say to each other, and the batch format that carries
 * datagrams between them in one transferable buffer (no per-datagram message, no copy on transfer).
 */
import type { Config } from "./config.ts";
import type { EnrichmentTable } from "./enrichment.ts";
import type { ExporterSummary } from "./exporter_activity.ts";
import type { DecodeCounters, ExportCounters } from "./counters.ts";
import type { TemplateDecoderStats } from "./netflow/decoder_stats.ts";
import type { ExportStatus } from "./traces/export_status.ts";
import { workerSpoolDir } from "./traces/spool.ts";
import { mergeTopWindows, type TopWindow } from "./top_talkers.ts";
import { mergeRecentFlows, type RecentFlow } from "./recent_flows.ts";

/** What the status page can ask a Worker for. */
export type Look = "top" | "flows";

/** The Workers' answers to a look as one. */
export function lookMerge(what: Look, parts: unknown[]): TopWindow[] | RecentFlow[] {
  return what === "top" ? mergeTopWindows(parts as TopWindow[][]) : mergeRecentFlows(parts as RecentFlow[][]);
}

/**
 * Everything the pipeline needs: the configuration itself (plain data, so it crosses into the Worker as it
 * is) and what start-up adds to it: the bound address (a span attribute), the instrumentation scope, and
 * this Worker's place among NETFLOW_WORKERS with the templates restored for its exporters.
 */
export interface PipelineSettings extends Config {
  collectorHost: string;
  collectorPort: number;
  scopeName: string;
  scopeVersion: string;
  /** 0 … `workers` − 1. */
  workerIndex: number;
  /** The bound listen addresses (NETFLOW_LISTEN), by the batch records' listener index. */
  listeners: { host: string; port: number }[];
  /** This Worker's part of NETFLOW_TEMPLATE_CACHE_FILE, parsed (restore() validates it). */
  restoredTemplates?: unknown;
}

/** One Worker's settings. The queue and spool bounds are the process's, shared out: each Worker gets its part. */
export function pipelineSettings(
  config: Config,
  collectorPort: number | { host: string; port: number }[],
  scope: { name: string; version: string },
  worker: { index: number; restoredTemplates?: unknown } = { index: 0 },
): PipelineSettings {
  const n = config.workers;
  const listeners = typeof collectorPort === "number"
    ? [{ host: config.listenHost, port: collectorPort }]
    : collectorPort;
  const maxQueueSize = Math.max(1, Math.floor(config.bsp.maxQueueSize / n));
  return {
    ...config,
    bsp: {
      ...config.bsp,
      maxQueueSize,
      maxExportBatchSize: Math.min(config.bsp.maxExportBatchSize, maxQueueSize),
    },
    spoolDir: config.spoolDir === undefined ? undefined : workerSpoolDir(config.spoolDir, worker.index, n),
    spoolMaxBytes: Math.max(MIN_SPOOL_SHARE, Math.floor(config.spoolMaxBytes / n)),
    collectorHost: listeners[0].host,
    collectorPort: listeners[0].port,
    listeners,
    scopeName: scope.name,
    scopeVersion: scope.version,
    workerIndex: worker.index,
    restoredTemplates: worker.restoredTemplates,
  };
}

/** The smallest spool a Worker gets (the floor of NETFLOW_SPOOL_MAX_BYTES). */
const MIN_SPOOL_SHARE = 1_048_576;

/** A point-in-time copy of the pipeline's counters, sent from the Worker to the socket side. */
export interface PipelineSnapshot {
  decode: DecodeCounters;
  export: ExportCounters;
  decoder: TemplateDecoderStats;
  queueDepth: number;
  exportStatus: ExportStatus;
  /** Batches the Worker has taken from its inbox so far. */
  batches: number;
}

export type WorkerRequest =
  | { type: "init"; settings: PipelineSettings }
  | { type: "batch"; buffer: ArrayBuffer; count: number }
  /** NETFLOW_ENRICH_FILE re-read (SIGHUP). */
  | { type: "enrich"; table: EnrichmentTable }
  /**
   * The status page asks for what only the Worker has: its top talkers (of one window, with `minutes`) or
   * its last flows; `final` when it is the only Worker (its answer is then the whole answer).
   */
  | { type: "look"; id: number; what: Look; final: boolean; minutes?: number }
  | { type: "stop" };

export type WorkerReply =
  | { type: "ready" }
  | { type: "snapshot"; snapshot: PipelineSnapshot }
  /** What each of the Worker's exporters has sent (the status page), every second. */
  | { type: "exporters"; list: ExporterSummary[] }
  /** The Worker's exporters for NETFLOW_TEMPLATE_CACHE_FILE, as the JSON text of an array. */
  | { type: "templates"; exporters: string }
  /** The answer as JSON text. */
  | { type: "look"; id: number; json: string }
  | { type: "stopped"; snapshot: PipelineSnapshot; exporters?: string };

/** Room for several full-size datagrams; a batch is sent when the next datagram would not fit. */
const BATCH_BYTES = 64 * 1024;
/** Per record: receive time (f64), port (u16), listener (u8), address length (u8), payload length (u32). */
const RECORD_HEADER = 8 + 2 + 1 + 1 + 4;

/**
 * Packs datagrams into a buffer: `[f64 receivedAtMs][u16 port][u8 listener][u8 n][n bytes address][u32 len]
 * [len bytes]`; `listener` indexes {@link PipelineSettings.listeners}.
 */
export class BatchWriter {
  private buffer = new ArrayBuffer(BATCH_BYTES);
  private bytes = new Uint8Array(this.buffer);
  private view = new DataView(this.buffer);
  private pos = 0;
  count = 0;

  /** False when the datagram does not fit: take() the batch, then add again. */
  add(data: Uint8Array, address: string, port: number, receivedAtMs: number, listener = 0): boolean {
    const need = RECORD_HEADER + address.length + data.length;
    if (this.pos + need > this.buffer.byteLength) {
      if (this.count > 0) return false;
      this.grow(need); // a lone datagram larger than the batch size
    }
    const v = this.view;
    let p = this.pos;
    v.setFloat64(p, receivedAtMs);
    v.setUint16(p + 8, port);
    v.setUint8(p + 10, listener);
    v.setUint8(p + 11, address.length);
    p += 12;
    for (let i = 0; i < address.length; i++) this.bytes[p++] = address.charCodeAt(i);
    v.setUint32(p, data.length);
    this.bytes.set(data, p + 4);
    this.pos = p + 4 + data.length;
    this.count++;
    return true;
  }

  /** Hands the filled buffer over (for transfer) and starts a fresh one. */
  take(): { buffer: ArrayBuffer; count: number } {
    const out = { buffer: this.buffer, count: this.count };
    this.buffer = new ArrayBuffer(BATCH_BYTES);
    this.bytes = new Uint8Array(this.buffer);
    this.view = new DataView(this.buffer);
    this.pos = 0;
    this.count = 0;
    return out;
  }

  private grow(size: number): void {
    this.buffer = new ArrayBuffer(size);
    this.bytes = new Uint8Array(this.buffer);
    this.view = new DataView(this.buffer);
  }
}

/** Calls `fn` for each datagram of a batch; each datagram is a view of the batch's own (unshared) buffer. */
export function readBatch(
  buffer: ArrayBuffer,
  count: number,
  fn: (datagram: Uint8Array, address: string, port: number, receivedAtMs: number, listener: number) => void,
): void {
  const bytes = new Uint8Array(buffer);
  const view = new DataView(buffer);
  let p = 0;
  for (let i = 0; i < count; i++) {
    const receivedAtMs = view.getFloat64(p);
    const port = view.getUint16(p + 8);
    const listener = view.getUint8(p + 10);
    const n = view.getUint8(p + 11);
    p += 12;
    const address = String.fromCharCode.apply(null, bytes.subarray(p, p + n) as unknown as number[]);
    p += n;
    const len = view.getUint32(p);
    p += 4;
    // The decoder may hold a datagram until its template arrives: a copy keeps the batch buffer collectable.
    fn(bytes.slice(p, p + len), address, port, receivedAtMs, listener);
    p += len;
  }
}
