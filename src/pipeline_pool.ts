/**
 * The pipeline Workers (NETFLOW_WORKERS) as one pipeline, seen from the socket thread: each datagram goes
 * to the Worker that owns its exporter and domain (shard.ts), batched per Worker; the Workers' snapshots
 * are summed into one view (stats line, /metrics, /healthz); their template parts go to one file. Posting
 * never waits on a Worker, so a slow one does not stall the socket.
 */
import type { Config } from "./config.ts";
import type { EnrichmentTable } from "./enrichment.ts";
import { type ExporterSummary, mergeSummaries } from "./exporter_activity.ts";
import {
  addCounts,
  type DecodeCounters,
  type ExportCounters,
  zeroDecodeCounters,
  zeroExportCounters,
} from "./counters.ts";
import type { Logger } from "./log.ts";
import { type TemplateDecoderStats, zeroDecoderStats } from "./netflow/decoder_stats.ts";
import {
  BatchWriter,
  type Look,
  lookMerge,
  pipelineSettings,
  type PipelineSnapshot,
  type WorkerReply,
  type WorkerRequest,
} from "./pipeline_protocol.ts";
import { inBunSingleBinary } from "./runtime.ts";
import { datagramDomain, shardOf } from "./shard.ts";
import { readTemplateFile, TemplateFileWriter } from "./template_file.ts";
import { combinedExportStatus } from "./traces/export_status.ts";
import { adoptSpools } from "./traces/spool.ts";

/**
 * A partly filled batch goes to its Worker after at most this long. Each batch costs a message and a wake-up
 * of the Worker, which at low rates outweighs the datagrams in it: at 10k flows/s, Deno's collector used 23 %
 * of a core with a 2 ms linger (one datagram per batch), 16 % with 20 ms and 12–14 % with 50 ms (the Bun
 * binary 30 % and 20 %; `deno task bench:e2e -- --rates 10000,30000`). Spans wait for up to
 * OTEL_BSP_SCHEDULE_DELAY (1 s) before export anyway, so 50 ms adds little to their latency.
 */
const BATCH_LINGER_MS = 50;
/**
 * A Worker this many batches behind (up to 32 MiB of datagrams in its inbox) gets no more until it catches
 * up: the datagrams are dropped and counted (`overloaded`), so a Worker that cannot keep up costs bounded
 * memory instead of growing its inbox without end. Normal backlog is well under this: a Worker reports
 * every 250 ms, and at 150k v5 flows/s that is about 30 full 64 KiB batches.
 */
const MAX_BATCHES_BEHIND = 512;
/** A status-page question waits this long for the Workers; one that has not answered is left out. */
const LOOK_TIMEOUT_MS = 2_000;

/** A status-page question on its way to the Workers: their answers (JSON text). */
interface PendingLook {
  answers: string[];
  waiting: number;
  done: () => void;
}

export class PipelinePool {
  readonly size: number;
  /** Route by exporter and domain; by exporter alone while NETFLOW_RATE_LIMIT is set (one budget per exporter). */
  private readonly byDomain: boolean;
  private readonly workers: Worker[] = [];
  private readonly batches: BatchWriter[] = [];
  private readonly snapshots: (PipelineSnapshot | undefined)[];
  /** Each Worker's latest exporter summaries (the status page). */
  private readonly summaries: ExporterSummary[][];
  /** Batches posted to each Worker, and how many it has said it handled. */
  private readonly posted: number[];
  private readonly handled: number[];
  private readonly templateFile: TemplateFileWriter | undefined;
  private lingering: ReturnType<typeof setTimeout> | undefined;
  private readonly looks = new Map<number, PendingLook>();
  private lookId = 0;
  private readonly ready: Promise<void>;
  private readonly stopped: Promise<void>;

  /**
   * Starts the Workers. `onSnapshot` gets the summed view whenever a Worker reports (every 250 ms each);
   * `onFailure` a Worker's uncaught error (the process cannot go on without it).
   */
  constructor(
    config: Config,
    listeners: { host: string; port: number }[],
    scope: { name: string; version: string },
    log: Logger,
    private readonly onSnapshot: (merged: PipelineSnapshot) => void,
    onFailure: (message: string) => void,
  ) {
    const n = this.size = config.workers;
    this.byDomain = config.rateLimit === undefined;
    this.snapshots = new Array(n).fill(undefined);
    this.summaries = Array.from({ length: n }, () => []);
    this.posted = new Array(n).fill(0);
    this.handled = new Array(n).fill(0);
    if (config.spoolDir !== undefined) {
      const moved = adoptSpools(config.spoolDir, n);
      if (moved > 0) {
        log.info("spool batches handed over to this run's workers", { batches: moved, workers: n });
      }
    }
    const restored = config.templateCacheFile
      ? readTemplateFile(config.templateCacheFile, n, this.byDomain, log)
      : undefined;
    if (config.templateCacheFile) {
      this.templateFile = new TemplateFileWriter(config.templateCacheFile, restored, n, log);
    }
    const ready: Promise<void>[] = [], stopped: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      const worker = startPipelineWorker();
      const up = Promise.withResolvers<void>(), down = Promise.withResolvers<void>();
      ready.push(up.promise);
      stopped.push(down.promise);
      worker.onmessage = (event: MessageEvent<WorkerReply>) => {
        const msg = event.data;
        switch (msg.type) {
          case "ready":
            up.resolve();
            break;
          case "templates":
            this.templateFile?.update(i, msg.exporters);
            break;
          case "exporters":
            this.summaries[i] = msg.list;
            break;
          case "look": {
            const look = this.looks.get(msg.id);
            if (look === undefined) break; // answered after the timeout
            look.answers.push(msg.json);
            if (--look.waiting === 0) look.done();
            break;
          }
          case "stopped":
            if (msg.exporters !== undefined) this.templateFile?.update(i, msg.exporters);
            this.apply(i, msg.snapshot);
            down.resolve();
            break;
          case "snapshot":
            this.apply(i, msg.snapshot);
        }
      };
      worker.onerror = (event: ErrorEvent) => {
        event.preventDefault?.();
        const error = new Error(`pipeline worker failed: ${event.message}`);
        up.reject(error);
        down.reject(error);
        onFailure(event.message);
      };
      const settings = pipelineSettings(config, listeners, scope, {
        index: i,
        restoredTemplates: restored?.[i],
      });
      worker.postMessage({ type: "init", settings } satisfies WorkerRequest);
      this.workers.push(worker);
      this.batches.push(new BatchWriter());
    }
    this.ready = Promise.all(ready).then(() => {});
    this.stopped = Promise.all(stopped).then(() => {});
  }

  /** Resolves when every Worker has started (restored its templates and opened its spool). */
  whenReady(): Promise<void> {
    return this.ready;
  }

  /**
   * Queues one datagram for its Worker (`data` is copied; the source may reuse its buffer). False when that
   * Worker is {@link MAX_BATCHES_BEHIND} behind: the datagram is not taken.
   */
  add(data: Uint8Array, address: string, port: number, receivedAtMs: number, listener = 0): boolean {
    const i = this.size === 1 ? 0 : shardOf(address, this.byDomain ? datagramDomain(data) : 0, this.size);
    if (this.posted[i] - this.handled[i] >= MAX_BATCHES_BEHIND) return false;
    const batch = this.batches[i];
    if (!batch.add(data, address, port, receivedAtMs, listener)) {
      this.send(i);
      batch.add(data, address, port, receivedAtMs, listener);
    }
    this.lingering ??= setTimeout(() => this.flush(), BATCH_LINGER_MS);
    return true;
  }

  /** Every exporter's summary, merged over the Workers, busiest first (at most a second old). */
  exporters(): ExporterSummary[] {
    return mergeSummaries(this.summaries);
  }

  /**
   * Asks every Worker for its top talkers (all windows, or the one of `minutes`) or last flows, and resolves
   * with the answer as JSON text from the Workers that answered within {@link LOOK_TIMEOUT_MS}: a busy
   * Worker delays the page, never the pipeline.
   */
  look(what: Look, minutes?: number): Promise<string> {
    const id = ++this.lookId;
    const final = this.size === 1;
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.looks.delete(id);
        const { answers } = look;
        if (final && answers.length === 1) return resolve(answers[0]);
        resolve(JSON.stringify(lookMerge(what, answers.map((a) => JSON.parse(a)))));
      };
      const timer = setTimeout(finish, LOOK_TIMEOUT_MS);
      const look: PendingLook = { answers: [], waiting: this.size, done: finish };
      this.looks.set(id, look);
      const request: WorkerRequest = { type: "look", id, what, final, ...(minutes ? { minutes } : {}) };
      for (const w of this.workers) w.postMessage(request);
    });
  }

  /** A new enrichment table (the file re-read on SIGHUP), for every Worker. */
  setEnrichment(table: EnrichmentTable): void {
    for (const w of this.workers) w.postMessage({ type: "enrich", table } satisfies WorkerRequest);
  }

  /** Sends every partly filled batch now. */
  flush(): void {
    if (this.lingering !== undefined) clearTimeout(this.lingering);
    this.lingering = undefined;
    for (let i = 0; i < this.size; i++) this.send(i);
  }

  /** Sends what is batched, asks every Worker to deliver what it holds, and waits for all of them. */
  async stop(): Promise<void> {
    this.flush();
    for (const w of this.workers) w.postMessage({ type: "stop" } satisfies WorkerRequest);
    await this.stopped;
    for (const w of this.workers) w.terminate();
    await this.templateFile?.flush();
  }

  /** Ends the Workers at once (start-up failed). */
  terminate(): void {
    for (const w of this.workers) w.terminate();
  }

  private send(i: number): void {
    const batch = this.batches[i];
    if (batch.count === 0) return;
    const { buffer, count } = batch.take();
    this.posted[i]++;
    this.workers[i].postMessage({ type: "batch", buffer, count } satisfies WorkerRequest, [buffer]);
  }

  private apply(i: number, snapshot: PipelineSnapshot): void {
    this.snapshots[i] = snapshot;
    this.handled[i] = snapshot.batches;
    this.onSnapshot(this.size === 1 ? snapshot : mergeSnapshots(this.snapshots));
  }
}

/** The Workers' snapshots as one: counts summed, export status combined (a Worker yet to report adds nothing). */
export function mergeSnapshots(snapshots: readonly (PipelineSnapshot | undefined)[]): PipelineSnapshot {
  const decode: DecodeCounters = zeroDecodeCounters();
  const exported: ExportCounters = zeroExportCounters();
  const decoder: TemplateDecoderStats = zeroDecoderStats();
  let queueDepth = 0, batches = 0;
  const statuses = [];
  for (const s of snapshots) {
    if (!s) continue;
    addCounts(decode, s.decode);
    addCounts(exported, s.export);
    addCounts(decoder, s.decoder);
    queueDepth += s.queueDepth;
    batches += s.batches;
    statuses.push(s.exportStatus);
  }
  return {
    decode,
    export: exported,
    decoder,
    queueDepth,
    exportStatus: combinedExportStatus(statuses),
    batches,
  };
}

/**
 * Starts one pipeline Worker. Source runs (Deno, Bun) resolve it next to this file; a Bun single binary
 * holds it as an extra entry point at its path within the project.
 */
function startPipelineWorker(): Worker {
  const url = inBunSingleBinary(import.meta.url)
    ? "./src/pipeline_worker.ts"
    : new URL("./pipeline_worker.ts", import.meta.url).href;
  return new Worker(url, { type: "module" });
}
