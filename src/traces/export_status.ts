/**
 * The export state a user (or a probe) asks about: whether exports succeed, since when they fail, and how
 * much waits in the spool. Kept by delivery.ts; read by `/healthz`, `/metrics` and the stats line. (The
 * export counters and their books: src/counters.ts.)
 */
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

/**
 * One status for several pipeline Workers, each exporting on its own: failing while any of them fails
 * (since the earliest, with its last error and the most consecutive failures), the latest success, and
 * the spools summed.
 */
export function combinedExportStatus(statuses: readonly ExportStatus[]): ExportStatus {
  if (statuses.length === 1) return statuses[0];
  const out = initialExportStatus();
  for (const s of statuses) {
    out.spoolBytes += s.spoolBytes;
    out.spoolBatches += s.spoolBatches;
    if (s.lastSuccessMs !== undefined) out.lastSuccessMs = Math.max(out.lastSuccessMs ?? 0, s.lastSuccessMs);
    if (s.state !== "failing") continue;
    if (out.state !== "failing" || (s.failingSinceMs ?? Infinity) < (out.failingSinceMs ?? Infinity)) {
      out.failingSinceMs = s.failingSinceMs;
      out.lastError = s.lastError;
    }
    out.state = "failing";
    out.consecutiveFailures = Math.max(out.consecutiveFailures, s.consecutiveFailures);
  }
  return out;
}
