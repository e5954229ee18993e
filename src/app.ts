/**
 * Wiring and lifecycle. This thread owns the socket and does as little as possible per datagram (allow-list,
 * count, hand to the Worker that owns its exporter: pipeline_pool.ts); the pipeline Workers decode and export
 * (pipeline.ts). Also: periodic stats,
 * /metrics and /healthz, and an orderly shutdown that loses nothing already received.
 */
import process from "node:process";
import { type Config, PRODUCT_VERSION } from "./config.ts";
import { type Logger, mistakeLogger } from "./log.ts";
import { zeroDecoderStats } from "./netflow/decoder_stats.ts";
import { formatHostPort, plainAddress } from "./netflow/addresses.ts";
import type { PipelineSnapshot } from "./pipeline_protocol.ts";
import { PipelinePool } from "./pipeline_pool.ts";
import { readEnrichment } from "./enrichment.ts";
import {
  type ExportCounters,
  type IngestCounters,
  zeroExportCounters,
  zeroIngestCounters,
} from "./counters.ts";
import { exporterAllowList } from "./exporter_rules.ts";
import { type ExportStatus, initialExportStatus } from "./traces/export_status.ts";
import { type DatagramSource, openDatagramSource } from "./udp/source.ts";
import { type HttpServer, JsonText, startHttpServer } from "./http.ts";
import { TOP_WINDOWS } from "./top_talkers.ts";
import {
  HealthTracker,
  type MetricsSources,
  type OtlpMetrics,
  prometheusText,
  startOtlpMetrics,
} from "./metrics.ts";

/** How long shutdown keeps reading datagrams the kernel already holds (stops after this much quiet). */
const SHUTDOWN_DRAIN_MS = 100;

export interface Collector {
  /** The bound listen address. */
  host: string;
  port: number;
  ingest: IngestCounters;
  export: ExportCounters;
  /** Stops receiving, decodes what arrived, flushes every span. Idempotent. */
  stop(): Promise<void>;
  /** Re-reads NETFLOW_ENRICH_FILE (SIGHUP): a bad file is logged and the previous table stays. */
  reload(): void;
}

export async function startCollector(config: Config, log: Logger): Promise<Collector> {
  // Every listen address (NETFLOW_LISTEN), or the one of NETFLOW_LISTEN_HOST/PORT; any bind failure undoes the rest.
  const sources: DatagramSource[] = [];
  try {
    for (const l of config.listen) {
      sources.push(await openDatagramSource(l.host, l.port, { reusePort: config.reusePort }));
    }
  } catch (err) {
    await Promise.all(sources.map((s) => s.close(0)));
    throw err;
  }
  const source = sources[0];
  const listeners = sources.map((s) => ({ host: s.host, port: s.port }));
  const ingest = zeroIngestCounters();
  // Mirrors of the Worker's counters, refreshed by its snapshots (same objects throughout, for /metrics).
  const exported: ExportCounters = zeroExportCounters();
  const decoderStats = zeroDecoderStats();
  let queueDepth = 0;
  let exportStatus: ExportStatus = initialExportStatus();
  const applySnapshot = (s: PipelineSnapshot) => {
    Object.assign(ingest, s.decode);
    Object.assign(exported, s.export);
    Object.assign(decoderStats, s.decoder);
    queueDepth = s.queueDepth;
    exportStatus = s.exportStatus;
  };

  const pool = new PipelinePool(
    config,
    listeners,
    { name: "netflow2traces", version: PRODUCT_VERSION },
    log,
    applySnapshot,
    (message) => {
      log.critical("pipeline worker failed", { error: message });
      process.exit(1);
    },
  );

  const allowed = exporterAllowList(config.allowedExporters);
  // A misconfigured allow-list is a first-hour mistake: say so once a minute per source, not at DEBUG.
  const rejections = mistakeLogger(log);
  const onDatagram = (listener: number) => (data: Uint8Array, from: string, port: number) => {
    const address = plainAddress(from);
    if (allowed && !allowed.contains(address)) {
      ingest.rejected++;
      rejections.log("WARNING", address, "datagram from outside NETFLOW_ALLOWED_EXPORTERS: dropped", {
        exporter: address,
      });
      return;
    }
    if (!pool.add(data, address, port, Date.now(), listener)) {
      ingest.overloaded++;
      return;
    }
    ingest.datagrams++;
    ingest.bytes += data.length;
  };
  const receiving = Promise.all(sources.map((s, i) => s.run(onDatagram(i))));

  let receiveRunning = true;
  receiving.then(() => (receiveRunning = false), () => (receiveRunning = false));

  const timers: ReturnType<typeof setInterval>[] = [];
  const stats = new StatsReporter(ingest, exported, () => queueDepth);
  if (config.statsIntervalMs > 0) {
    timers.push(setInterval(() => log.info(stats.line()), config.statsIntervalMs));
  }
  // Self-metrics and health (NETFLOW_HTTP_LISTEN): see src/metrics.ts.
  const health = new HealthTracker(() => exportStatus, () => receiveRunning);
  const metricsSources: MetricsSources = {
    ingest,
    exported,
    decoder: decoderStats,
    queueDepth: () => queueDepth,
    queueCapacity: config.bsp.maxQueueSize,
    exportFailingSeconds: () => health.failingSeconds(),
    exportStatus: () => exportStatus,
    healthy: () => health.healthy(),
  };
  // The status page's JSON (src/status_page.ts): summaries only, never flows.
  const statusApi = (path: string, query: URLSearchParams): unknown => {
    if (path === "/api/exporters") return { nowMs: Date.now(), exporters: pool.exporters() };
    if (path === "/api/top") {
      // ?minutes=1|5|15: that window only (what the page shows); else all three.
      const minutes = query.has("minutes") ? Number(query.get("minutes")) : undefined;
      if (minutes !== undefined && !(TOP_WINDOWS as readonly number[]).includes(minutes)) return undefined;
      return pool.look("top", minutes).then((json) =>
        new JsonText(`{"nowMs":${Date.now()},"windows":${json}}`)
      );
    }
    if (path === "/api/flows") {
      return pool.look("flows").then((json) => new JsonText(`{"nowMs":${Date.now()},"flows":${json}}`));
    }
    if (path === "/api/export") {
      return {
        exporter: config.tracesExporter,
        endpoint: config.tracesExporter === "otlp" ? config.endpoint : undefined,
        protocol: config.tracesExporter === "otlp" ? config.protocol : undefined,
        ...exportStatus,
        flowsReceived: ingest.flows,
        books: exported,
        queueDepth,
        queueCapacity: config.bsp.maxQueueSize,
      };
    }
    return undefined;
  };
  let httpServer: HttpServer | undefined;
  try {
    await pool.whenReady();
    if (config.httpListen) {
      httpServer = await startHttpServer(config.httpListen.host, config.httpListen.port, {
        metrics: () => prometheusText(metricsSources),
        healthy: () => health.healthy(),
        healthDetail: () => health.detail(exported),
        api: statusApi,
        auth: config.httpAuth,
      });
    }
  } catch (err) {
    for (const t of timers) clearInterval(t);
    await Promise.all(sources.map((s) => s.close(0)));
    await receiving.catch(() => {});
    pool.terminate();
    throw err;
  }
  for (const t of timers) (t as { unref?: () => void }).unref?.();
  // The same metrics over OTLP to the traces endpoint (OTEL_METRICS_EXPORTER=otlp).
  let otlpMetrics: OtlpMetrics | undefined;
  if (config.metricsExporter === "otlp" && config.tracesExporter === "otlp") {
    otlpMetrics = await startOtlpMetrics(
      metricsSources,
      { ...config, intervalMs: config.metricExportIntervalMs },
      (error) => log.debug("metrics export failed", { error }),
    );
  }

  log.info("listening", {
    listen: listeners.map((l) => `udp://${formatHostPort(l.host, l.port)}`).join(","),
    exporter: config.tracesExporter === "otlp" ? config.endpoint : config.tracesExporter,
    protocol: config.tracesExporter === "otlp" ? config.protocol : undefined,
    workers: config.workers,
    ...(config.reusePort ? { reuse_port: true } : {}),
    ...(httpServer ? { http: `http://${formatHostPort(config.httpListen!.host, httpServer.port)}` } : {}),
  });

  let stopping: Promise<void> | undefined;
  return {
    host: source.host,
    port: source.port,
    ingest,
    export: exported,
    reload() {
      if (!config.enrichFile) {
        log.info("SIGHUP: nothing to re-read (NETFLOW_ENRICH_FILE is not set)");
        return;
      }
      try {
        const table = readEnrichment(config.enrichFile);
        pool.setEnrichment(table);
        log.info("enrichment file re-read", { file: config.enrichFile, exporters: table.exporters.length });
      } catch (err) {
        log.error("enrichment file not re-read: keeping the previous one", {
          file: config.enrichFile,
          error: (err as Error).message,
        });
      }
    },
    stop() {
      stopping ??= (async () => {
        await Promise.all(sources.map((s) => s.close(SHUTDOWN_DRAIN_MS)));
        await receiving.catch((err) => log.error("receive loop failed", { error: String(err) }));
        for (const t of timers) clearInterval(t);
        await pool.stop();
        await httpServer?.close();
        await otlpMetrics?.shutdown();
        log.info("stopped", { totals: stats.totals() });
      })();
      return stopping;
    },
  };
}

/** The periodic stats line: rates since the previous line, totals since start. */
class StatsReporter {
  private last = { at: performance.now(), datagrams: 0, flows: 0 };
  constructor(
    private readonly ingest: IngestCounters,
    private readonly exported: ExportCounters,
    private readonly queueDepth: () => number,
  ) {}

  line(): string {
    const now = performance.now();
    const seconds = Math.max((now - this.last.at) / 1000, 1e-3);
    const pps = (this.ingest.datagrams - this.last.datagrams) / seconds;
    const fps = (this.ingest.flows - this.last.flows) / seconds;
    this.last = { at: now, datagrams: this.ingest.datagrams, flows: this.ingest.flows };
    const mem = process.memoryUsage();
    const mb = (n: number) => Math.round(n / 1048576);
    return `stats packets/s=${pps.toFixed(1)} flows/s=${fps.toFixed(1)} ${this.totals()} ` +
      `queue=${this.queueDepth()} rss_mb=${mb(mem.rss)} heap_mb=${mb(mem.heapUsed)}`;
  }

  /**
   * Totals since start, with the books: flows (decoded) + flows_restored (from the spool) = flows_exported +
   * flows_dropped + flows_failed + flows_held, and the same for spans.
   */
  totals(): string {
    const errors = Object.values(this.ingest.errors).reduce((a, b) => a + b, 0);
    const e = this.exported;
    return `packets=${this.ingest.datagrams} flows=${this.ingest.flows} errors=${errors} ` +
      `rejected=${this.ingest.rejected} overloaded=${this.ingest.overloaded} ` +
      `sequence_lost=${this.ingest.sequenceLost} ` +
      `flows_exported=${e.flowsExported} flows_dropped=${e.flowsDropped} flows_failed=${e.flowsFailed} ` +
      `flows_held=${e.flowsHeld} flows_restored=${e.flowsRestored} ` +
      `spans_exported=${e.spansExported} spans_dropped=${e.spansDropped} spans_failed=${e.spansFailed} ` +
      `spans_held=${e.spansHeld} spans_restored=${e.spansRestored}`;
  }
}
