/**
 * Self-metrics and health: the collector's counters (ingest, export, decoder state) as Prometheus text for
 * `/metrics`, and the `/healthz` verdict.
 *
 * Everything reads the live counter objects, so a scrape costs a few string concatenations and no
 * bookkeeping runs on the receive path.
 *
 * ```ts
 * import { startHttpServer } from "./http.ts";
 * import type { ExportStatus } from "./traces/export_status.ts";
 * declare const sources: MetricsSources; // the live counters: ingest, export, decoder state
 * declare const exportStatus: () => ExportStatus;
 * const health = new HealthTracker(exportStatus, () => true);
 * await startHttpServer("127.0.0.1", 9464, {
 *   metrics: () => prometheusText(sources),
 *   healthy: () => health.healthy(),
 *   healthDetail: () => health.detail(sources.exported),
 * });
 * ```
 */
import type { ExportCounters, IngestCounters } from "./counters.ts";
import type { TemplateDecoderStats } from "./netflow/decoder_stats.ts";
import type { ExportStatus } from "./traces/export_status.ts";
import { ProtobufWriter, WIRE_I64, WIRE_LEN, WIRE_VARINT } from "./protobuf.ts";

export interface MetricsSources {
  ingest: IngestCounters;
  exported: ExportCounters;
  decoder: TemplateDecoderStats;
  /** Spans waiting in the export queue now. */
  queueDepth: () => number;
  /** OTEL_BSP_MAX_QUEUE_SIZE. */
  queueCapacity: number;
  /** Seconds the exporter has been failing without a success in between (0 when it is not failing). */
  exportFailingSeconds?: () => number;
  /** The export state (last success, failures, spool). */
  exportStatus?: () => ExportStatus;
  /** 1 when healthy, 0 otherwise. */
  healthy?: () => boolean;
}

/** One metric: name (without the prefix), type, help, and how to read it. */
export interface MetricDef {
  name: string;
  type: "counter" | "gauge";
  help: string;
  /** A single value, or values by label value (for `label`). */
  read: (s: MetricsSources) => number | Record<string, number>;
  label?: string;
}

const METRIC_PREFIX = "netflow2traces_";

/** Every metric `/metrics` serves, in order. The README's list is written from this table. */
export const METRICS: readonly MetricDef[] = [
  m("datagrams_total", "counter", "UDP datagrams accepted for decoding", (s) => s.ingest.datagrams),
  m("bytes_total", "counter", "bytes of accepted datagrams", (s) => s.ingest.bytes),
  m("flows_total", "counter", "flow records decoded", (s) => s.ingest.flows),
  m(
    "datagrams_rejected_total",
    "counter",
    "datagrams dropped before decoding: source outside NETFLOW_ALLOWED_EXPORTERS",
    (s) => s.ingest.rejected,
  ),
  m(
    "datagrams_overloaded_total",
    "counter",
    "datagrams dropped before decoding: their pipeline Worker was 512 batches behind",
    (s) => s.ingest.overloaded,
  ),
  {
    name: "decode_errors_total",
    type: "counter",
    help: "datagrams (or held data sets) that could not be decoded, by kind",
    read: (s) => s.ingest.errors,
    label: "kind",
  },
  {
    name: "flows_rate_limited_total",
    type: "counter",
    help: "flows left out by NETFLOW_RATE_LIMIT (also in flows_dropped_total), by exporter",
    read: (s) => s.ingest.rateLimited,
    label: "exporter",
  },
  m(
    "sequence_lost_total",
    "counter",
    "records (v5, IPFIX) or packets (v9) missing according to exporters' sequence numbers",
    (s) => s.ingest.sequenceLost,
  ),
  m("templates", "gauge", "v9/IPFIX templates and options templates cached", (s) => s.decoder.templates),
  m("exporters", "gauge", "exporters with decoder state (templates, sequence)", (s) => s.decoder.exporters),
  m("templates_received_total", "counter", "template records received", (s) => s.decoder.templatesReceived),
  m(
    "template_evictions_total",
    "counter",
    "templates evicted by the per-exporter bound",
    (s) => s.decoder.templateEvictions,
  ),
  m(
    "exporter_evictions_total",
    "counter",
    "exporters evicted with their templates by the exporter or total-template bounds",
    (s) => s.decoder.exporterEvictions,
  ),
  m(
    "domain_evictions_total",
    "counter",
    "source ids / observation domains evicted by the per-exporter bound",
    (s) => s.decoder.domainEvictions,
  ),
  m("pending_sets", "gauge", "data sets held waiting for their template", (s) => s.decoder.pendingSets),
  m("pending_bytes", "gauge", "bytes held waiting for templates", (s) => s.decoder.pendingBytes),
  m(
    "pending_released_total",
    "counter",
    "held data sets decoded after their template arrived",
    (s) => s.decoder.pendingReleased,
  ),
  m(
    "pending_dropped_total",
    "counter",
    "held data sets dropped: template never came, or the holding buffer was full",
    (s) => s.decoder.pendingDropped,
  ),
  m(
    "template_bytes",
    "gauge",
    "bytes charged for the cached templates (bounded per exporter and in total)",
    (s) => s.decoder.templateBytes,
  ),
  m(
    "template_byte_evictions_total",
    "counter",
    "templates evicted to keep an exporter (or all) within the template byte budget",
    (s) => s.decoder.templateByteEvictions,
  ),
  m(
    "templates_refused_total",
    "counter",
    "template records refused: more fields than allowed, or larger than an exporter's whole budget",
    (s) => s.decoder.templatesRefused,
  ),
  m(
    "datagrams_over_flow_limit_total",
    "counter",
    "datagrams refused whole for holding more flow records than allowed (10,000)",
    (s) => s.decoder.packetsOverFlowLimit,
  ),
  m(
    "values_clamped_total",
    "counter",
    "64-bit values at or above 2^53 clamped to 2^53-1",
    (s) => s.decoder.valuesClamped,
  ),
  m("spans_queued_total", "counter", "spans accepted into the export queue", (s) => s.exported.spansQueued),
  m(
    "spans_dropped_total",
    "counter",
    "spans dropped: the export queue (OTEL_BSP_MAX_QUEUE_SIZE) or the spool was full",
    (s) => s.exported.spansDropped,
  ),
  m("spans_exported_total", "counter", "spans the OTLP endpoint accepted", (s) => s.exported.spansExported),
  m(
    "spans_failed_total",
    "counter",
    "spans the endpoint rejected (malformed request, partial success) or still held at shutdown without a spool",
    (s) => s.exported.spansFailed,
  ),
  m(
    "spans_held",
    "gauge",
    "spans built and not yet accepted: queued, in flight or spooled",
    (s) => s.exported.spansHeld,
  ),
  m(
    "spans_restored_total",
    "counter",
    "spans read back from the spool at start",
    (s) => s.exported.spansRestored,
  ),
  m(
    "flows_exported_total",
    "counter",
    "flow spans the OTLP endpoint accepted",
    (s) => s.exported.flowsExported,
  ),
  m(
    "flows_dropped_total",
    "counter",
    "flow spans dropped (queue or spool full)",
    (s) => s.exported.flowsDropped,
  ),
  m(
    "flows_failed_total",
    "counter",
    "flow spans rejected or lost at shutdown",
    (s) => s.exported.flowsFailed,
  ),
  m("flows_held", "gauge", "flow spans built and not yet accepted", (s) => s.exported.flowsHeld),
  m(
    "export_failures_total",
    "counter",
    "failed export attempts (each is retried unless malformed)",
    (s) => s.exported.exportFailures,
  ),
  m(
    "export_consecutive_failures",
    "gauge",
    "failed export attempts since the last success",
    (s) => s.exportStatus?.().consecutiveFailures ?? 0,
  ),
  m(
    "export_last_success_timestamp_seconds",
    "gauge",
    "unix time of the last accepted export request (0: none yet)",
    (s) => (s.exportStatus?.().lastSuccessMs ?? 0) / 1000,
  ),
  m(
    "spool_bytes",
    "gauge",
    "bytes of export batches in NETFLOW_SPOOL_DIR",
    (s) => s.exportStatus?.().spoolBytes ?? 0,
  ),
  m("export_queue_spans", "gauge", "spans waiting in the export queue", (s) => s.queueDepth()),
  m(
    "export_queue_capacity_spans",
    "gauge",
    "export queue size (OTEL_BSP_MAX_QUEUE_SIZE)",
    (s) => s.queueCapacity,
  ),
  m(
    "export_failing_seconds",
    "gauge",
    "seconds since export requests started failing without a success (0: exporting fine)",
    (s) => s.exportFailingSeconds?.() ?? 0,
  ),
  m("healthy", "gauge", "1 when /healthz answers ok, else 0", (s) => (s.healthy?.() ?? true) ? 1 : 0),
];

function m(name: string, type: MetricDef["type"], help: string, read: MetricDef["read"]): MetricDef {
  return { name, type, help, read };
}

/** Label values: backslash, double quote and newline escaped (exposition format 0.0.4). */
function labelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** Prometheus text exposition format 0.0.4, with HELP and TYPE lines. */
export function prometheusText(sources: MetricsSources): string {
  let out = "";
  for (const def of METRICS) {
    const name = METRIC_PREFIX + def.name;
    out += `# HELP ${name} ${def.help}\n# TYPE ${name} ${def.type}\n`;
    const value = def.read(sources);
    if (typeof value === "number") {
      out += `${name} ${value}\n`;
    } else {
      for (const [k, v] of Object.entries(value).sort(([a], [b]) => a.localeCompare(b))) {
        out += `${name}{${def.label}="${labelValue(k)}"} ${v}\n`;
      }
    }
  }
  return out;
}

/** `/healthz` turns unhealthy once exports have failed for this long without a success in between. */
const HEALTH_EXPORT_FAILING_MS = 5 * 60_000;

/**
 * The health verdict: healthy while the receive loop runs and exports have not been failing for more than
 * {@link HEALTH_EXPORT_FAILING_MS} (5 minutes: long enough to ride out a backend restart, short enough for an
 * orchestrator to notice a collector whose backend is gone or whose credentials are wrong). Held spans are
 * not lost meanwhile: they wait in the queue (and the spool) and are retried.
 */
export class HealthTracker {
  constructor(
    private readonly status: () => ExportStatus,
    private readonly receiving: () => boolean,
    private readonly limitMs = HEALTH_EXPORT_FAILING_MS,
    private readonly now: () => number = Date.now,
  ) {}

  failingSeconds(): number {
    const since = this.status().failingSinceMs;
    return since === undefined ? 0 : Math.max(0, (this.now() - since) / 1000);
  }

  healthy(): boolean {
    return this.receiving() && this.failingSeconds() * 1000 <= this.limitMs;
  }

  /** The lines after `ok` / `unhealthy` in `/healthz`: the export state as `key=value`. */
  detail(exported: ExportCounters): string {
    const s = this.status();
    const iso = (ms?: number) => (ms === undefined ? undefined : new Date(ms).toISOString());
    const lines: [string, unknown][] = [
      ["receiving", this.receiving()],
      ["export_state", s.state],
      ["export_failing_since", iso(s.failingSinceMs)],
      ["export_last_success", iso(s.lastSuccessMs)],
      ["export_consecutive_failures", s.consecutiveFailures],
      ["export_last_error", s.state === "failing" ? s.lastError : undefined],
      ["spans_held", exported.spansHeld],
      ["spool_bytes", s.spoolBytes],
      ["spool_batches", s.spoolBatches],
    ];
    return lines.filter(([, v]) => v !== undefined).map(([k, v]) =>
      `${k}=${typeof v === "string" && /[\s"=]/.test(v) ? JSON.stringify(v) : v}\n`
    ).join("");
  }
}

// ---------------------------------------------------------------------------------------------------------
// The same metrics over OTLP (OTEL_METRICS_EXPORTER=otlp)
// ---------------------------------------------------------------------------------------------------------

/** KeyValue { key (1), value (2): AnyValue { string_value (1) } } as field `field` of the enclosing message. */
function keyValue(w: ProtobufWriter, field: number, key: string, value: string): void {
  w.tag(field, WIRE_LEN);
  const kv = w.begin();
  w.tag(1, WIRE_LEN);
  w.string(key);
  w.tag(2, WIRE_LEN);
  const any = w.begin();
  w.tag(1, WIRE_LEN);
  w.string(value);
  w.end(any);
  w.end(kv);
}

/** OTLP metric names: `netflow2traces.<name>` without Prometheus' `_total` (exporters to Prometheus add it). */
function otlpMetricName(def: MetricDef): string {
  return "netflow2traces." + def.name.replace(/_total$/, "");
}

/**
 * An `ExportMetricsServiceRequest` with every metric of {@link METRICS}: counters as cumulative monotonic sums
 * (from `startNs`), gauges as gauges, all values as doubles.
 */
function encodeMetricsRequest(
  sources: MetricsSources,
  resource: Record<string, string>,
  scope: { name: string; version: string },
  startNs: bigint,
  nowNs: bigint,
): Uint8Array {
  const w = new ProtobufWriter(8192);
  // ExportMetricsServiceRequest.resource_metrics (1) { resource (1), scope_metrics (2) }
  w.tag(1, WIRE_LEN);
  const resourceMetrics = w.begin();
  w.tag(1, WIRE_LEN);
  const res = w.begin();
  for (const [k, v] of Object.entries(resource)) keyValue(w, 1, k, v);
  w.end(res);
  w.tag(2, WIRE_LEN);
  const scopeMetrics = w.begin();
  w.tag(1, WIRE_LEN);
  const scopeMark = w.begin();
  w.tag(1, WIRE_LEN);
  w.string(scope.name);
  w.tag(2, WIRE_LEN);
  w.string(scope.version);
  w.end(scopeMark);
  for (const def of METRICS) {
    const value = def.read(sources);
    const points = typeof value === "number" ? [[undefined, value] as const] : Object.entries(value);
    // ScopeMetrics.metrics (2) { name (1), description (2), unit (3), gauge (5) | sum (7) }
    w.tag(2, WIRE_LEN);
    const metric = w.begin();
    w.tag(1, WIRE_LEN);
    w.string(otlpMetricName(def));
    w.tag(2, WIRE_LEN);
    w.string(def.help);
    w.tag(3, WIRE_LEN);
    w.string("1");
    w.tag(def.type === "counter" ? 7 : 5, WIRE_LEN);
    const data = w.begin();
    for (const [label, v] of points) {
      // data_points (1) { start_time_unix_nano (2), time_unix_nano (3), as_double (4), attributes (7) }
      w.tag(1, WIRE_LEN);
      const point = w.begin();
      if (def.type === "counter") {
        w.tag(2, WIRE_I64);
        w.fixed64(startNs);
      }
      w.tag(3, WIRE_I64);
      w.fixed64(nowNs);
      w.tag(4, WIRE_I64);
      w.double(v);
      if (label !== undefined) keyValue(w, 7, def.label!, label);
      w.end(point);
    }
    if (def.type === "counter") {
      w.tag(2, WIRE_VARINT);
      w.varint(2); // aggregation_temporality: CUMULATIVE
      w.tag(3, WIRE_VARINT);
      w.varint(1); // is_monotonic
    }
    w.end(data);
    w.end(metric);
  }
  w.end(scopeMetrics);
  w.end(resourceMetrics);
  return w.take();
}

/** The OTLP/HTTP metrics URL next to a traces URL: `…/v1/traces` → `…/v1/metrics`, else `<origin>/v1/metrics`. */
function metricsUrl(tracesUrl: string): string {
  if (/\/v1\/traces\/?$/.test(tracesUrl)) return tracesUrl.replace(/\/v1\/traces\/?$/, "/v1/metrics");
  return new URL("/v1/metrics", tracesUrl).href;
}

export interface OtlpMetrics {
  /** Exports once more, then stops. */
  shutdown(): Promise<void>;
}

/**
 * Pushes {@link METRICS} every `intervalMs` to the traces endpoint's OTLP metrics service (same protocol,
 * headers, TLS, timeout and retries as the traces). The OTLP code is loaded only when this is used.
 */
export async function startOtlpMetrics(
  sources: MetricsSources,
  options: import("./traces/tracing_options.ts").TracingOptions & { intervalMs: number },
  onError: (message: string) => void,
): Promise<OtlpMetrics> {
  const { createTransport } = await import("./traces/otlp_export.ts");
  const { resourceAttributes } = await import("./traces/tracing_options.ts");
  const transport = createTransport(
    options.protocol === "http/protobuf" ? { ...options, endpoint: metricsUrl(options.endpoint) } : options,
    "metrics",
  );
  const resource = resourceAttributes(options);
  const startNs = BigInt(Date.now()) * 1_000_000n;
  // Cumulative values: a failed push is not retried, the next one carries the same totals.
  const push = async () => {
    const body = encodeMetricsRequest(
      sources,
      resource,
      { name: "netflow2traces", version: options.serviceVersion },
      startNs,
      BigInt(Date.now()) * 1_000_000n,
    );
    const outcome = await transport.send(body, options.timeoutMs);
    if (outcome.kind !== "accepted") onError(outcome.problem.message);
  };
  const timer = setInterval(push, options.intervalMs);
  (timer as { unref?: () => void }).unref?.();
  return {
    async shutdown() {
      clearInterval(timer);
      await push();
      transport.close();
    },
  };
}
