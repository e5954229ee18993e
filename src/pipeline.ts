/**
 * The work behind the socket: datagram → decoder → trace sink, plus what keeps decoder state healthy
 * (expiry of data awaiting templates, templates restored and handed out for persistence). It runs in a
 * Worker (pipeline_worker.ts) so the thread that reads the socket never waits on it; its settings are
 * therefore plain, cloneable data. With several Workers each runs one Pipeline for its share of exporters.
 */
import { type Logger, mistakeLogger, rateLimited, type RateLimitedLogger } from "./log.ts";
import { NetflowDecoder } from "./netflow/decoder.ts";
import type { ExportPacket } from "./netflow/types.ts";
import { createTraceSink, type TraceSink } from "./traces/sink.ts";
import type { PipelineSettings, PipelineSnapshot } from "./pipeline_protocol.ts";
import { countDropped, zeroDecodeCounters } from "./counters.ts";
import { RateLimiter } from "./rate_limit.ts";
import { ExporterActivity, type ExporterSummary } from "./exporter_activity.ts";
import { samplingOverrideLookup } from "./exporter_rules.ts";
import { Enrichment, type EnrichmentTable } from "./enrichment.ts";
import { TopTalkers, type TopWindow } from "./top_talkers.ts";
import { type RecentFlow, RecentFlows } from "./recent_flows.ts";

/** How often data waiting for its template is checked for expiry. */
const EXPIRE_INTERVAL_MS = 1_000;
/** How often templates go out for NETFLOW_TEMPLATE_CACHE_FILE (and at shutdown). */
const TEMPLATE_SAVE_INTERVAL_MS = 30_000;
/** Error kinds that mean an exporter sent more than the bounds allow: worth a WARN, once a minute each. */
const OVER_A_LIMIT = new Set(["template_refused", "too_many_flows"]);
const LIMIT_LOG_INTERVAL_MS = 60_000;
/** At most one "waiting for templates" line per exporter and domain in this interval. */
const TEMPLATE_WAIT_LOG_INTERVAL_MS = 60_000;
/** The shortest NetFlow/IPFIX header (v1, IPFIX: 16 octets); anything shorter is not a flow export at all. */
const SHORTEST_HEADER = 16;
/** Exporter / version / domain keys remembered for the first-contact line; the oldest is forgotten beyond. */
const MAX_EXPORTERS_REMEMBERED = 10_000;

/**
 * sFlow (v2, v4, v5: sFlow.org, "sFlow Version 5", 2004): a 32-bit version, then the agent address type
 * (1 IPv4, 2 IPv6). Its first two octets are 0, which NetFlow never has.
 */
function looksLikeSflow(d: Uint8Array): boolean {
  if (d.length < 8 || d[0] !== 0 || d[1] !== 0 || d[2] !== 0) return false;
  return (d[3] === 2 || d[3] === 4 || d[3] === 5) && d[4] === 0 && d[5] === 0 && d[6] === 0 &&
    (d[7] === 1 || d[7] === 2);
}

/** Exporters counted by name in `flows_rate_limited_total`; the rest as "other" (bounded label count). */
const RATE_LIMIT_LABELS = 1_000;

export class Pipeline {
  private readonly decoder: NetflowDecoder;
  private readonly sink: TraceSink;
  private readonly counters = zeroDecodeCounters();
  private enrichment: Enrichment | undefined;
  private readonly rateLimiter: RateLimiter | undefined;
  /** Exporter / version / domain keys seen, for the first-contact line. */
  private readonly seen = new Set<string>();
  private readonly mistakeLog: RateLimitedLogger;
  private readonly activity = new ExporterActivity();
  private readonly topTalkers = new TopTalkers();
  private readonly recentFlows = new RecentFlows();
  private readonly timers: ReturnType<typeof setInterval>[] = [];
  private readonly limitLog: RateLimitedLogger;
  /** Timed by each datagram's receipt (`receivedAtMs`), like the rest of the decoder. */
  private readonly templateWaitLog: RateLimitedLogger;

  /**
   * `onTemplates` receives the exporters worth persisting (JSON text of an array) every 30 s while
   * NETFLOW_TEMPLATE_CACHE_FILE is set; the socket side joins the Workers' parts and writes the file.
   */
  constructor(
    private readonly settings: PipelineSettings,
    private readonly log: Logger,
    onTemplates: (exporters: string) => void = () => {},
  ) {
    this.limitLog = rateLimited(log, LIMIT_LOG_INTERVAL_MS);
    this.mistakeLog = mistakeLogger(log);
    this.templateWaitLog = rateLimited(log, TEMPLATE_WAIT_LOG_INTERVAL_MS, Date.now, {
      reportSuppressed: false,
    });
    this.setEnrichment(settings.enrichment);
    this.rateLimiter = settings.rateLimit ? new RateLimiter(settings.rateLimit) : undefined;
    this.decoder = new NetflowDecoder({
      unknownFields: settings.unknownFields,
      samplingDefault: settings.samplingDefault,
      samplingOverride: samplingOverrideLookup(settings.samplingOverrides),
      samplingFallback: (address) => this.enrichment?.samplingRate(address),
      customFields: settings.customFields,
    });
    if (settings.restoredTemplates !== undefined) this.restoreTemplates(settings.restoredTemplates);
    this.sink = createTraceSink(settings, log);
    this.timers.push(setInterval(() => {
      for (const packet of this.decoder.expire(Date.now())) this.emit(packet);
    }, EXPIRE_INTERVAL_MS));
    if (settings.templateCacheFile) {
      this.timers.push(setInterval(() => onTemplates(this.templates()), TEMPLATE_SAVE_INTERVAL_MS));
    }
    for (const t of this.timers) (t as { unref?: () => void }).unref?.();
  }

  /** Decodes one datagram (which the pipeline may keep: pass a buffer nobody reuses) and emits its trace. */
  handle(datagram: Uint8Array, address: string, port: number, receivedAtMs: number, listener = 0): void {
    // With several listen addresses, each packet names the one it came in on (netflow.collector.port).
    const listeners = this.settings.listeners;
    const collector = listeners !== undefined && listeners.length > 1 ? listeners[listener] : undefined;
    for (const packet of this.decoder.decode(datagram, address, port, receivedAtMs, collector)) {
      const kind = packet.error?.kind;
      if (kind === "unknown_version" || (kind === "truncated" && datagram.length < SHORTEST_HEADER)) {
        this.logMistake(datagram, packet);
      }
      this.emit(packet);
    }
  }

  /** `batches`: how many batches the Worker has handled (the pool's measure of how far behind it is). */
  snapshot(batches = 0): PipelineSnapshot {
    return {
      batches,
      decode: this.counters,
      export: this.sink.counters,
      decoder: this.decoder.stats,
      queueDepth: this.sink.queueDepth(),
      exportStatus: this.sink.exportStatus(),
    };
  }

  /** The enrichment file's table (at start, and again after a SIGHUP re-read it); undefined: none. */
  setEnrichment(table: EnrichmentTable | undefined): void {
    this.enrichment = table === undefined || table.exporters.length === 0 ? undefined : new Enrichment(table);
  }

  /** What each exporter of this pipeline has sent (the status page). */
  exporterSummaries(nowMs = Date.now()): ExporterSummary[] {
    return this.activity.summaries(this.decoder.knownTables(), nowMs);
  }

  /** The top talkers of the last 1, 5 and 15 minutes (the status page asks; nothing is sent unasked). */
  topWindows(only?: number, nowMs = Date.now()): TopWindow[] {
    return this.topTalkers.windows(nowMs, only);
  }

  /** The last flows with their span attributes as exported, newest first. */
  lastFlows(): RecentFlow[] {
    return this.recentFlows.list(this.settings);
  }

  /** What NETFLOW_TEMPLATE_CACHE_FILE keeps of this pipeline's exporters: the JSON text of an array. */
  templates(): string {
    return JSON.stringify((this.decoder.snapshot() as { exporters: unknown[] }).exporters);
  }

  /** Exports every queued span and stops the timers. */
  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    await this.sink.shutdown();
  }

  private emit(packet: ExportPacket): void {
    const c = this.counters;
    if (packet.error === undefined && !packet.deferred) this.logFirstContact(packet);
    c.flows += packet.flows.length;
    if (packet.awaitingTemplateSets) this.logTemplateWait(packet);
    if (packet.sequenceLost) c.sequenceLost += packet.sequenceLost;
    if (packet.error) {
      c.errors[packet.error.kind] = (c.errors[packet.error.kind] ?? 0) + 1;
      if (OVER_A_LIMIT.has(packet.error.kind)) {
        this.limitLog.log(
          "WARNING",
          `${packet.error.kind}/${packet.exporterAddress}`,
          "datagram over a limit: refused",
          { exporter: packet.exporterAddress, kind: packet.error.kind, error: packet.error.message },
        );
      }
      if (this.log.enabled("DEBUG")) {
        this.log.debug("bad datagram", {
          exporter: `${packet.exporterAddress}:${packet.exporterPort}`,
          kind: packet.error.kind,
          error: packet.error.message,
        });
      }
    }
    if (this.rateLimiter !== undefined) {
      const left = this.rateLimiter.apply(packet);
      if (left > 0) this.countRateLimited(packet.exporterAddress, left);
    }
    this.enrichment?.apply(packet);
    this.activity.record(packet);
    this.topTalkers.record(packet);
    this.recentFlows.record(packet);
    this.sink.emit(packet);
  }

  /** Flows left out by the rate limit: dropped in the books (SPEC §6), and counted per exporter. */
  private countRateLimited(exporter: string, flows: number): void {
    countDropped(this.sink.counters, 0, flows);
    const by = this.counters.rateLimited;
    const key = by[exporter] !== undefined || Object.keys(by).length < RATE_LIMIT_LABELS ? exporter : "other";
    by[key] = (by[key] ?? 0) + flows;
  }

  /** The first datagram of an exporter, version and domain: one INFO line (bounded memory of who was seen). */
  private logFirstContact(packet: ExportPacket): void {
    const domain = packet.sourceId ?? packet.observationDomainId ??
      (packet.version === 5 ? ((packet.engineType ?? 0) << 8) | (packet.engineId ?? 0) : undefined);
    const key = `${packet.exporterAddress}/${packet.version}/${domain ?? ""}`;
    if (this.seen.has(key)) return;
    if (this.seen.size >= MAX_EXPORTERS_REMEMBERED) this.seen.delete(this.seen.values().next().value!);
    this.seen.add(key);
    this.log.info("first datagram from an exporter", {
      exporter: packet.exporterAddress,
      version: packet.version === 10 ? "IPFIX" : `NetFlow v${packet.version}`,
      domain,
    });
  }

  /** Datagrams that are not NetFlow or IPFIX at all: one WARN a minute per source, naming sFlow when it is. */
  private logMistake(datagram: Uint8Array, packet: ExportPacket): void {
    const exporter = packet.exporterAddress;
    if (looksLikeSflow(datagram)) {
      this.mistakeLog.log(
        "WARNING",
        `sflow/${exporter}`,
        "sFlow datagram on a NetFlow/IPFIX port: dropped (netflow2traces decodes NetFlow v1/v5/v9 and IPFIX; point sFlow at an sFlow collector, or configure NetFlow/IPFIX on the device)",
        { exporter, bytes: datagram.length },
      );
    } else if (packet.error?.kind === "unknown_version") {
      this.mistakeLog.log(
        "WARNING",
        `version/${exporter}`,
        "datagram of an unknown version: dropped (expected NetFlow v1, v5, v9 or IPFIX)",
        { exporter, version: packet.version, bytes: datagram.length },
      );
    } else {
      this.mistakeLog.log(
        "WARNING",
        `short/${exporter}`,
        "datagram too short to be NetFlow or IPFIX: dropped",
        {
          exporter,
          bytes: datagram.length,
        },
      );
    }
  }

  // The first thing a new v9/IPFIX user meets: data arrives before the router has re-sent its templates.
  private logTemplateWait(packet: ExportPacket): void {
    const domain = packet.sourceId ?? packet.observationDomainId ?? 0;
    this.templateWaitLog.log(
      "INFO",
      `${packet.exporterAddress}/${domain}`,
      "waiting for templates: data held until the exporter sends its templates",
      {
        exporter: packet.exporterAddress,
        domain,
        held_sets: packet.awaitingTemplateSets,
      },
      packet.receivedAtMs,
    );
  }

  private restoreTemplates(state: unknown): void {
    try {
      const restored = this.decoder.restore(state);
      const several = this.settings.workers > 1;
      if (restored > 0 || !several) {
        this.log.info("templates restored", {
          file: this.settings.templateCacheFile,
          templates: restored,
          ...(several ? { worker: this.settings.workerIndex } : {}),
        });
      }
    } catch (err) {
      this.log.warn("ignoring unreadable template cache file", {
        file: this.settings.templateCacheFile,
        error: (err as Error).message,
      });
    }
  }
}
