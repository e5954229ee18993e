/**
 * Wiring and lifecycle: socket → decoder → spans → exporter, periodic stats, template persistence, and an
 * orderly shutdown that loses nothing already received.
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { type Config, PRODUCT_VERSION } from "./config.ts";
import type { Logger } from "./log.ts";
import { NetflowDecoder } from "./netflow/decoder.ts";
import type { ExportPacket } from "./netflow/types.ts";
import { createTraceSink } from "./traces/sink.ts";
import type { ExportCounters } from "./traces/tracer.ts";
import { openDatagramSource } from "./udp/source.ts";
import { type HttpServer, startHttpServer } from "./http.ts";
import { HealthTracker, prometheusText } from "./metrics.ts";

/** How long shutdown keeps reading datagrams the kernel already holds (stops after this much quiet). */
const SHUTDOWN_DRAIN_MS = 100;
/** How often data waiting for its template is checked for expiry. */
const EXPIRE_INTERVAL_MS = 1_000;
/** How often templates are written to NETFLOW_TEMPLATE_CACHE_FILE (and at shutdown). */
const TEMPLATE_SAVE_INTERVAL_MS = 30_000;
/** At most one "waiting for templates" line per exporter and domain in this interval. */
const TEMPLATE_WAIT_LOG_INTERVAL_MS = 60_000;

export interface IngestCounters {
  datagrams: number;
  bytes: number;
  flows: number;
  /** Datagrams from sources outside NETFLOW_ALLOWED_EXPORTERS. */
  rejected: number;
  /** Decode errors by kind (`truncated`, `unknown_version`, …). */
  errors: Record<string, number>;
  sequenceLost: number;
}

export interface Collector {
  /** The bound listen address. */
  host: string;
  port: number;
  ingest: IngestCounters;
  export: ExportCounters;
  /** Stops receiving, decodes what arrived, flushes every span. Idempotent. */
  stop(): Promise<void>;
}

export async function startCollector(config: Config, log: Logger): Promise<Collector> {
  const source = await openDatagramSource(config.listenHost, config.listenPort);
  const decoder = new NetflowDecoder({
    unknownFields: config.unknownFields,
    samplingDefault: config.samplingDefault,
    samplingOverride: config.samplingOverrides.length ? (a) => config.samplingOverride(a) : undefined,
  });
  if (config.templateCacheFile) restoreTemplates(decoder, config.templateCacheFile, log);
  const sink = createTraceSink({
    ...config,
    collectorHost: config.listenHost,
    collectorPort: source.port,
    scopeName: "netflow2traces",
    scopeVersion: PRODUCT_VERSION,
  });
  const ingest: IngestCounters = {
    datagrams: 0,
    bytes: 0,
    flows: 0,
    rejected: 0,
    errors: {},
    sequenceLost: 0,
  };

  const templateWaitLogged = new Map<string, number>();
  const emit = (packet: ExportPacket) => {
    ingest.flows += packet.flows.length;
    if (packet.awaitingTemplateSets) logTemplateWait(packet);
    if (packet.sequenceLost) ingest.sequenceLost += packet.sequenceLost;
    if (packet.error) {
      ingest.errors[packet.error.kind] = (ingest.errors[packet.error.kind] ?? 0) + 1;
      if (log.enabled("DEBUG")) {
        log.debug("bad datagram", {
          exporter: `${packet.exporterAddress}:${packet.exporterPort}`,
          kind: packet.error.kind,
          error: packet.error.message,
        });
      }
    }
    sink.emit(packet);
  };

  // The first thing a new v9/IPFIX user meets: data arrives before the router has re-sent its templates.
  const logTemplateWait = (packet: ExportPacket) => {
    const domain = packet.sourceId ?? packet.observationDomainId ?? 0;
    const key = `${packet.exporterAddress}/${domain}`;
    const now = packet.receivedAtMs;
    if (now - (templateWaitLogged.get(key) ?? -Infinity) < TEMPLATE_WAIT_LOG_INTERVAL_MS) return;
    if (templateWaitLogged.size > 10_000) templateWaitLogged.clear(); // bounded under spoofing
    templateWaitLogged.set(key, now);
    log.info("waiting for templates: data held until the exporter sends its templates", {
      exporter: packet.exporterAddress,
      domain,
      held_sets: packet.awaitingTemplateSets,
    });
  };

  const allowed = config.allowedExporters;
  const receiving = source.run((data, address, port) => {
    if (allowed && !allowed.contains(address)) {
      ingest.rejected++;
      return;
    }
    ingest.datagrams++;
    ingest.bytes += data.length;
    // The source reuses its buffer; the decoder may keep data sets that wait for a template.
    for (const packet of decoder.decode(data.slice(), address, port, Date.now())) emit(packet);
  });

  let receiveRunning = true;
  receiving.then(() => (receiveRunning = false), () => (receiveRunning = false));

  const timers: ReturnType<typeof setInterval>[] = [];
  timers.push(setInterval(() => {
    for (const packet of decoder.expire(Date.now())) emit(packet);
  }, EXPIRE_INTERVAL_MS));
  const saveTemplates = () => {
    if (config.templateCacheFile) persistTemplates(decoder, config.templateCacheFile, log);
  };
  if (config.templateCacheFile) timers.push(setInterval(saveTemplates, TEMPLATE_SAVE_INTERVAL_MS));
  const stats = new StatsReporter(ingest, sink.counters, () => sink.queueDepth());
  if (config.statsIntervalMs > 0) {
    timers.push(setInterval(() => log.info(stats.line()), config.statsIntervalMs));
  }
  // Self-metrics and health (NETFLOW_HTTP_LISTEN): see src/metrics.ts.
  const health = new HealthTracker(sink.counters, () => receiveRunning);
  timers.push(setInterval(() => health.sample(), 1_000));
  let httpServer: HttpServer | undefined;
  if (config.httpListen) {
    try {
      httpServer = await startHttpServer(config.httpListen.host, config.httpListen.port, {
        metrics: () =>
          prometheusText({
            ingest,
            exported: sink.counters,
            decoder: decoder.templates.stats,
            queueDepth: () => sink.queueDepth(),
            queueCapacity: config.bsp.maxQueueSize,
            exportFailingSeconds: () => health.failingSeconds(),
            healthy: () => health.healthy(),
          }),
        healthy: () => health.healthy(),
      });
    } catch (err) {
      for (const t of timers) clearInterval(t);
      await source.close(0);
      await receiving.catch(() => {});
      throw err;
    }
  }
  for (const t of timers) (t as { unref?: () => void }).unref?.();

  log.info("listening", {
    listen: `udp://${formatHostPort(source.host, source.port)}`,
    exporter: config.tracesExporter === "otlp" ? config.endpoint : config.tracesExporter,
    protocol: config.tracesExporter === "otlp" ? config.protocol : undefined,
    ...(httpServer ? { http: `http://${formatHostPort(config.httpListen!.host, httpServer.port)}` } : {}),
  });

  let stopping: Promise<void> | undefined;
  return {
    host: source.host,
    port: source.port,
    ingest,
    export: sink.counters,
    stop() {
      stopping ??= (async () => {
        await source.close(SHUTDOWN_DRAIN_MS);
        await receiving.catch((err) => log.error("receive loop failed", { error: String(err) }));
        for (const t of timers) clearInterval(t);
        saveTemplates();
        await sink.shutdown();
        await httpServer?.close();
        log.info("stopped", { totals: stats.totals() });
      })();
      return stopping;
    },
  };
}

function formatHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
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
    return `stats packets/s=${pps.toFixed(1)} flows/s=${
      fps.toFixed(1)
    } ${this.totals()} queue=${this.queueDepth()}`;
  }

  totals(): string {
    const errors = Object.values(this.ingest.errors).reduce((a, b) => a + b, 0);
    const e = this.exported;
    return `packets=${this.ingest.datagrams} flows=${this.ingest.flows} errors=${errors} ` +
      `rejected=${this.ingest.rejected} sequence_lost=${this.ingest.sequenceLost} ` +
      `spans_exported=${e.spansExported} spans_dropped=${e.spansDropped} spans_failed=${e.spansFailed}`;
  }
}

function restoreTemplates(decoder: NetflowDecoder, path: string, log: Logger): void {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      log.warn("cannot read template cache file", { file: path, error: (err as Error).message });
    }
    return;
  }
  try {
    const restored = decoder.templates.restore(JSON.parse(text));
    log.info("templates restored", { file: path, templates: restored });
  } catch (err) {
    log.warn("ignoring unreadable template cache file", { file: path, error: (err as Error).message });
  }
}

function persistTemplates(decoder: NetflowDecoder, path: string, log: Logger): void {
  try {
    // Write then rename, so a crash mid-write never leaves a torn file behind.
    const tmp = `${path}.tmp`;
    writeFileSync(tmp, JSON.stringify(decoder.templates.snapshot()));
    renameSync(tmp, path);
  } catch (err) {
    log.warn("cannot write template cache file", { file: path, error: (err as Error).message });
  }
}
