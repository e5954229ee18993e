/**
 * What the collector counts, in one place: the socket side's ingest counters, the pipeline's decode
 * counters (which the socket side mirrors), and the export side's books (SPEC §6). Every flow that reaches
 * the trace sink is, at any moment, exported, dropped, failed or still held:
 *
 *   flows received + flows restored from the spool = exported + dropped + failed + held
 *
 * and the same for spans. Dropped: refused because the queue (or the spool) was full. Failed: the backend
 * rejected them (malformed request, partial success), or they were still held without a spool at shutdown.
 *
 * The counters are plain objects (they cross from the pipeline Worker in snapshots, and /metrics reads them
 * live); the functions below are the only code that moves a span from one column of the books to another.
 */

/** What the decoding side counts (the socket side counts datagrams, bytes and rejections). */
export interface DecodeCounters {
  flows: number;
  /** Decode errors by kind (`truncated`, `unknown_version`, …). */
  errors: Record<string, number>;
  sequenceLost: number;
  /** Flows left out by NETFLOW_RATE_LIMIT, by exporter address (at most 1,000 addresses, then "other"). */
  rateLimited: Record<string, number>;
}

/** The socket side's counters, with the decoding side's mirrored in. */
export interface IngestCounters extends DecodeCounters {
  datagrams: number;
  bytes: number;
  /** Datagrams from sources outside NETFLOW_ALLOWED_EXPORTERS. */
  rejected: number;
  /** Datagrams dropped before decoding because their pipeline Worker was too far behind (see pipeline_pool.ts). */
  overloaded: number;
}

/** What the export side counts; see the books above. */
export interface ExportCounters {
  /** Spans (flows) accepted for export. */
  spansQueued: number;
  flowsQueued: number;
  /** Spans (flows) read back from the spool at start: a previous run's, delivered by this one. */
  spansRestored: number;
  flowsRestored: number;
  spansDropped: number;
  flowsDropped: number;
  spansExported: number;
  flowsExported: number;
  spansFailed: number;
  flowsFailed: number;
  /** Spans (flows) built and not yet answered by the backend: encoding, queued, in flight or spooled. */
  spansHeld: number;
  flowsHeld: number;
  /** Failed attempts to send a request (each retry counts). */
  exportFailures: number;
  /** Requests sent again after a failed attempt. */
  exportRetries: number;
  lastExportError?: string;
}

export function zeroDecodeCounters(): DecodeCounters {
  return { flows: 0, errors: {}, sequenceLost: 0, rateLimited: {} };
}

export function zeroIngestCounters(): IngestCounters {
  return { datagrams: 0, bytes: 0, rejected: 0, overloaded: 0, ...zeroDecodeCounters() };
}

export function zeroExportCounters(): ExportCounters {
  return {
    spansQueued: 0,
    flowsQueued: 0,
    spansRestored: 0,
    flowsRestored: 0,
    spansDropped: 0,
    flowsDropped: 0,
    spansExported: 0,
    flowsExported: 0,
    spansFailed: 0,
    flowsFailed: 0,
    spansHeld: 0,
    flowsHeld: 0,
    exportFailures: 0,
    exportRetries: 0,
  };
}

/** Spans (and the flows among them) accepted into the export queue: queued, and held until answered. */
export function countQueued(c: ExportCounters, spans: number, flows: number): void {
  c.spansQueued += spans;
  c.flowsQueued += flows;
  c.spansHeld += spans;
  c.flowsHeld += flows;
}

/** Spans read back from the spool at start: restored, and held until answered. */
export function countRestored(c: ExportCounters, spans: number, flows: number): void {
  c.spansRestored += spans;
  c.flowsRestored += flows;
  c.spansHeld += spans;
  c.flowsHeld += flows;
}

/**
 * Spans dropped: refused because the queue was full, or evicted by the spool's bound. Spans that were held
 * are also {@link countReleased}.
 */
export function countDropped(c: ExportCounters, spans: number, flows: number): void {
  c.spansDropped += spans;
  c.flowsDropped += flows;
}

/**
 * Spans given up on without an answer (unreadable in the spool, or still held without a spool at
 * shutdown): failed, with no failed attempt. They are also {@link countReleased}.
 */
export function countLost(c: ExportCounters, spans: number, flows: number): void {
  c.spansFailed += spans;
  c.flowsFailed += flows;
}

/** A failed attempt that will be retried: the spans stay held, no column changes. */
export function countRetry(c: ExportCounters, error: string): void {
  c.exportFailures++;
  c.exportRetries++;
  c.lastExportError = error;
}

/** Spans answered by the backend (or given up on): no longer held. Their column: {@link countExportResult}. */
export function countReleased(c: ExportCounters, spans: number, flows: number): void {
  c.spansHeld -= spans;
  c.flowsHeld -= flows;
}

/**
 * The backend's answer to one request: accepted, with `rejectedSpans` of its spans refused (partial
 * success), or failed as a whole (`error`).
 */
export type ExportResult = { accepted: true; rejectedSpans: number } | { accepted: false; error: string };

/**
 * Books the answer to a request of `spans` spans (`flows` of them flow spans): exported and/or failed; a
 * failed request is also a failed attempt. The spans stay held until {@link countReleased}.
 */
export function countExportResult(
  c: ExportCounters,
  spans: number,
  flows: number,
  result: ExportResult,
): void {
  if (result.accepted) {
    const rejected = Math.min(result.rejectedSpans, spans);
    const rejectedFlows = Math.min(rejected, flows);
    c.spansExported += spans - rejected;
    c.flowsExported += flows - rejectedFlows;
    c.spansFailed += rejected;
    c.flowsFailed += rejectedFlows;
  } else {
    c.exportFailures++;
    c.spansFailed += spans;
    c.flowsFailed += flows;
    c.lastExportError = result.error;
  }
}

/**
 * Adds every count of `from` into `into`, nested records (errors by kind) included: how the socket side
 * sums the snapshots of several pipeline Workers. Strings (the last error) are taken from `from` when set.
 */
export function addCounts<T extends object>(into: T, from: T): T {
  const a = into as Record<string, unknown>, b = from as Record<string, unknown>;
  for (const key in b) {
    const v = b[key];
    if (typeof v === "number") a[key] = ((a[key] as number | undefined) ?? 0) + v;
    else if (typeof v === "string") a[key] = v;
    else if (v !== null && typeof v === "object") {
      a[key] = addCounts((a[key] ?? {}) as Record<string, unknown>, v as Record<string, unknown>);
    }
  }
  return into;
}
