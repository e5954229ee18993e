/**
 * The envelope of the template snapshot (`NETFLOW_TEMPLATE_CACHE_FILE`, written by template_snapshot.ts):
 * `{format, version, exporters: [{address, templates: [{domain, …}], domains: [{domain, …}]}]}`. Only what
 * the socket side needs to split one file among pipeline Workers and join their parts again, without the
 * decoder: it never judges entries (restoring does).
 */

import { isObject } from "./untrusted.ts";

export const SNAPSHOT_FORMAT = "netflow2traces.templates";
export const SNAPSHOT_VERSION = 1;

/** A snapshot whose exporters are the JSON arrays `parts` (one per Worker) joined, with no parsing. */
export function joinSnapshotParts(parts: readonly string[]): string {
  const bodies = parts.map((p) => p.trim().slice(1, -1).trim()).filter((b) => b !== "");
  return `{"format":"${SNAPSHOT_FORMAT}","version":${SNAPSHOT_VERSION},"exporters":[${bodies.join(",")}]}`;
}

/**
 * The part of a parsed snapshot for the (exporter address, domain) pairs `keep` accepts: whatever is not
 * an object with an address, or an entry without a numeric domain, is left for the restore to refuse.
 */
export function selectSnapshot(state: unknown, keep: (address: string, domain: number) => boolean): unknown {
  if (!isObject(state) || !Array.isArray(state.exporters)) return state;
  const exporters = [];
  for (const e of state.exporters) {
    if (!isObject(e) || typeof e.address !== "string") continue;
    const address = e.address;
    const mine = (entry: unknown) =>
      isObject(entry) && typeof entry.domain === "number" && keep(address, entry.domain);
    const templates = Array.isArray(e.templates) ? e.templates.filter(mine) : [];
    const domains = Array.isArray(e.domains) ? e.domains.filter(mine) : [];
    if (templates.length > 0 || domains.length > 0) exporters.push({ ...e, templates, domains });
  }
  return { ...state, exporters };
}
