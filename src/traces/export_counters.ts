/**
 * What the export side counts, and the books it keeps: every flow that reaches the sink is, at any moment,
 * exported, dropped, failed or still held (SPEC §6):
 *
 *   flows received + flows restored from the spool = exported + dropped + failed + held
 *
 * and the same for spans. Dropped: refused because the queue (or the spool) was full. Failed: the backend
 * rejected them (malformed request, partial success), or they were still held without a spool at shutdown.
 */
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

/** The export state a user (or a probe) asks about: `/healthz`, `/metrics`, the stats line. */
export interface ExportStatus {
  /** `ok`: the last attempt succeeded (or none was needed yet); `failing`: attempts fail since `failingSinceMs`. */
  state: "ok" | "failing";
  failingSinceMs?: number;
  lastSuccessMs?: number;
  /** Failed attempts since the last success. */
  consecutiveFailures: number;
  lastError?: string;
  spoolBytes: number;
  spoolBatches: number;
}

export function initialExportStatus(): ExportStatus {
  return { state: "ok", consecutiveFailures: 0, spoolBytes: 0, spoolBatches: 0 };
}
