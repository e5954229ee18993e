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
