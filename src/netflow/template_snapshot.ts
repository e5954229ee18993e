/**
 * Persistence of what exporters announced, so a restart does not lose every template until exporters
 * re-send them (minutes, for some): templates, options templates, announced sampling and system init
 * times, as JSON. Held data and sequence positions are left out (stale after a restart). A restored
 * snapshot is untrusted input: validated entry by entry and held to the same bounds as the wire.
 */
import type { TemplateDecoderOptions } from "./decoder_options.ts";
import type { TemplateDecoderStats } from "./decoder_stats.ts";
import { type ExporterTable, MAX_SAMPLERS_PER_DOMAIN, TWO32 } from "./exporter_state.ts";
import type { TemplateCache } from "./template_cache.ts";
import { specId, specLength, specPen, type TemplateSpec } from "./templates.ts";
import { SNAPSHOT_FORMAT, SNAPSHOT_VERSION } from "./snapshot_format.ts";
import { isObject, isUint } from "./untrusted.ts";
import { emptyNames, restoreNames, snapshotNames } from "./option_names.ts";

/** The JSON-serialisable state of every exporter that announced something worth keeping. */
export function snapshotTemplates(exporters: ExporterTable): unknown {
  const out = [];
  for (const e of exporters.values()) {
    const templates = [];
    for (const [key, plan] of e.templates) {
      const s = plan.spec;
      templates.push({
        domain: Math.floor(key / 65536) % TWO32,
        version: s.version,
        id: s.templateId,
        options: s.options,
        scope: s.scopeCount,
        fields: Array.from({ length: s.fields.length / 2 }, (_, i) => [
          specId(s, i),
          specLength(s, i),
          specPen(s, i),
        ]),
      });
    }
    const domains = [];
    for (const d of e.domains.values()) {
      const version = Math.floor(d.key / TWO32);
      if (version !== 9 && version !== 10) continue;
      const named = d.names !== undefined && d.names.count > 0;
      if (d.samplingDefault <= 0 && d.samplers === undefined && !(d.systemInitMs > 0) && !named) continue;
      domains.push({
        domain: d.key % TWO32,
        version,
        sampling: d.samplingDefault,
        samplers: d.samplers ? [...d.samplers] : [],
        systemInitMs: d.systemInitMs > 0 ? d.systemInitMs : 0,
        ...(named ? snapshotNames(d.names!) : {}),
      });
    }
    if (templates.length > 0 || domains.length > 0) {
      out.push({ address: e.address, templates, domains });
    }
  }
  return { format: SNAPSHOT_FORMAT, version: SNAPSHOT_VERSION, exporters: out };
}

/** Entries one exporter may have in a snapshot joined from several Workers (NETFLOW_WORKERS is at most 64). */
const MAX_PARTS_PER_EXPORTER = 64;

/**
 * Restores a {@link snapshotTemplates} snapshot. Malformed entries are skipped; what exceeds the bounds
 * (fields per template, template count and bytes per exporter and in total) is refused or evicted and
 * counted as it would be live. Returns the templates restored.
 */
export function restoreTemplates(
  state: unknown,
  exporters: ExporterTable,
  cache: TemplateCache,
  options: TemplateDecoderOptions,
  stats: TemplateDecoderStats,
): number {
  if (!isObject(state) || state.format !== SNAPSHOT_FORMAT || state.version !== SNAPSHOT_VERSION) return 0;
  if (!Array.isArray(state.exporters)) return 0;
  let restored = 0;
  // Bounded by distinct addresses: a file joined from several Workers' parts names an exporter once per
  // Worker that held some of its domains (at most 64), so entries are bounded by that many times as well.
  const addresses = new Set<string>();
  for (const ex of state.exporters.slice(0, options.maxExporters * MAX_PARTS_PER_EXPORTER)) {
    if (!isObject(ex) || typeof ex.address !== "string" || ex.address.length > 256) continue;
    if (!addresses.has(ex.address)) {
      if (addresses.size >= options.maxExporters) continue;
      addresses.add(ex.address);
    }
    const exporter = exporters.touchExporter(ex.address);
    if (Array.isArray(ex.domains)) {
      for (const d of ex.domains) {
        if (!isObject(d) || !isUint(d.domain, TWO32 - 1) || (d.version !== 9 && d.version !== 10)) continue;
        const domain = exporters.touchDomain(exporter, d.version, d.domain);
        if (isUint(d.sampling, TWO32) && d.sampling > 0) domain.samplingDefault = d.sampling;
        if (isUint(d.systemInitMs, Number.MAX_SAFE_INTEGER) && d.systemInitMs > 0) {
          domain.systemInitMs = d.systemInitMs;
        }
        restoreNames(d, domain.names ??= emptyNames(), { stats, max: options.maxOptionNames });
        if (domain.names.count === 0) domain.names = undefined;
        if (Array.isArray(d.samplers)) {
          for (const pair of d.samplers.slice(0, MAX_SAMPLERS_PER_DOMAIN)) {
            if (
              Array.isArray(pair) && isUint(pair[0], Number.MAX_SAFE_INTEGER) && isUint(pair[1], TWO32) &&
              pair[1] > 0
            ) {
              (domain.samplers ??= new Map()).set(pair[0], pair[1]);
            }
          }
        }
      }
    }
    if (!Array.isArray(ex.templates)) continue;
    for (const t of ex.templates.slice(0, options.maxTemplatesPerExporter)) {
      if (!isObject(t) || !isUint(t.domain, TWO32 - 1) || (t.version !== 9 && t.version !== 10)) continue;
      if (!isUint(t.id, 65535) || t.id < 256 || typeof t.options !== "boolean") continue;
      if (!isUint(t.scope, 65535) || !Array.isArray(t.fields) || t.fields.length === 0) continue;
      if (t.fields.length > options.maxFieldsPerTemplate) {
        stats.templatesRefused++; // the same bound as on the wire
        continue;
      }
      const n = t.fields.length;
      const fields = new Uint32Array(2 * n);
      let ok = true;
      for (let i = 0; i < n; i++) {
        const f = t.fields[i];
        if (!Array.isArray(f) || !isUint(f[0], 65535) || !isUint(f[1], 65535) || !isUint(f[2], TWO32 - 1)) {
          ok = false;
          break;
        }
        fields[2 * i] = (f[0] << 16 | f[1]) >>> 0;
        fields[2 * i + 1] = f[2];
      }
      if (!ok || (t.options && (t.version === 10 ? t.scope < 1 : false)) || t.scope > n) continue;
      const domain = exporters.touchDomain(exporter, t.version, t.domain);
      const spec: TemplateSpec = {
        version: t.version,
        templateId: t.id,
        options: t.options,
        scopeCount: t.options ? t.scope : 0,
        fields,
      };
      if (cache.install(exporter, domain, spec) === undefined) restored++;
    }
  }
  return restored;
}
