/**
 * Data sets that arrived before their template: held (bounded in sets and bytes, per exporter and in
 * total, and in time) so that a template arriving a moment later still decodes them. Only the store:
 * what to do with released sets is the decoder's business; what is dropped is counted and reported as a
 * `template_missing` error packet (the original header, `deferred: true`).
 */
import type { TemplateDecoderOptions } from "./decoder_options.ts";
import type { TemplateDecoderStats } from "./decoder_stats.ts";
import type { DomainState, ExporterState, PendingEntry, PendingSet } from "./exporter_state.ts";
import type { Plan } from "./templates.ts";
import { type ExportPacket, fail } from "./types.ts";

/** Error packets kept for the next `expire()`; drops beyond it are counted, not reported. */
const MAX_REPORTS = 1_024;

/** Held sets of one original packet whose templates are now known, with what decodes them. */
export interface ReleasedSets {
  /** Header-only copy of the original packet, `deferred: true`, to decode into. */
  packet: ExportPacket;
  sets: PendingSet[];
  plans: Plan[];
  domains: DomainState[];
}

export class HeldData {
  readonly #opts: TemplateDecoderOptions;
  readonly #stats: TemplateDecoderStats;
  /** Every entry, oldest first (expiry order); done entries are filtered out lazily. */
  #pending: PendingEntry[] = [];
  /** Error packets for dropped held data, handed out by the next {@link expire}. */
  #reports: ExportPacket[] = [];

  constructor(options: TemplateDecoderOptions, stats: TemplateDecoderStats) {
    this.#opts = options;
    this.#stats = stats;
  }

  /**
   * Holds the data set `bytes[start, end)` of `packet` (template `templateId` unknown yet), in `entry`
   * (the packet's entry so far, or a new one). Returns the entry; when there is no room the set is
   * dropped (counted, `template_missing` on the packet).
   */
  hold(
    exporter: ExporterState,
    domain: DomainState,
    packet: ExportPacket,
    entry: PendingEntry | undefined,
    templateId: number,
    bytes: Uint8Array,
    start: number,
    end: number,
  ): PendingEntry | undefined {
    const o = this.#opts;
    const stats = this.#stats;
    const size = end - start;
    const totalFull = stats.pendingSets >= o.maxPendingSets || stats.pendingBytes + size > o.maxPendingBytes;
    if (
      totalFull || exporter.pendingSets >= o.maxPendingSetsPerExporter ||
      exporter.pendingBytes + size > o.maxPendingBytesPerExporter
    ) {
      stats.pendingDropped++;
      if (!totalFull) stats.pendingDroppedExporterFull++;
      fail(packet, "template_missing", `no template ${templateId} yet and no room to hold its data`);
      return entry;
    }
    if (entry === undefined) {
      entry = {
        exporter,
        packet: headerCopy(packet),
        sets: [],
        expiresAt: packet.receivedAtMs + o.pendingTimeoutMs,
        done: false,
      };
      if (this.#pending.length >= 2 * o.maxPendingSets) this.#pending = this.#pending.filter((e) => !e.done);
      this.#pending.push(entry);
      exporter.pending.push(entry);
    }
    entry.sets.push({ domainKey: domain.key, templateId, body: bytes.slice(start, end) });
    exporter.pendingSets++;
    exporter.pendingBytes += size;
    stats.pendingSets++;
    stats.pendingBytes += size;
    return entry;
  }

  /**
   * Takes the exporter's held sets whose template is now known out of the store (counted as released),
   * one {@link ReleasedSets} per original packet, in arrival order.
   */
  release(exporter: ExporterState): ReleasedSets[] {
    const out: ReleasedSets[] = [];
    const stats = this.#stats;
    for (const entry of exporter.pending) {
      if (entry.done) continue;
      const sets: PendingSet[] = [], plans: Plan[] = [], domains: DomainState[] = [];
      const remaining: PendingSet[] = [];
      for (const set of entry.sets) {
        const domain = exporter.domains.get(set.domainKey);
        const plan = domain && exporter.templates.get(set.domainKey * 65536 + set.templateId);
        if (domain === undefined || plan === undefined) {
          remaining.push(set);
          continue;
        }
        sets.push(set);
        plans.push(plan);
        domains.push(domain);
        exporter.pendingSets--;
        exporter.pendingBytes -= set.body.length;
        stats.pendingSets--;
        stats.pendingBytes -= set.body.length;
        stats.pendingReleased++;
      }
      if (sets.length === 0) continue;
      entry.sets = remaining;
      if (remaining.length === 0) entry.done = true;
      out.push({ packet: { ...headerCopy(entry.packet), deferred: true }, sets, plans, domains });
    }
    exporter.pending = exporter.pending.filter((e) => !e.done);
    return out;
  }

  /** Drops all held data of an exporter whose state is evicted (reported by the next {@link expire}). */
  dropExporter(exporter: ExporterState): void {
    for (const entry of [...exporter.pending]) this.#drop(entry, this.#reports, "exporter state evicted");
  }

  /**
   * Held data sets that waited longer than `pendingTimeoutMs` (or were dropped for space): one error
   * packet (`template_missing`, `deferred: true`, the original header) per original packet.
   */
  expire(nowMs: number): ExportPacket[] {
    const out = this.#reports;
    this.#reports = [];
    const keep: PendingEntry[] = [];
    for (const entry of this.#pending) {
      if (entry.done) continue;
      if (entry.expiresAt <= nowMs) this.#drop(entry, out, "expired");
      else keep.push(entry);
    }
    this.#pending = keep;
    return out;
  }

  /** Drops a held entry: counted, and reported as a `template_missing` error packet. */
  #drop(entry: PendingEntry, sink: ExportPacket[], why: string): void {
    if (entry.done) return;
    entry.done = true;
    const exporter = entry.exporter;
    const stats = this.#stats;
    let bytes = 0;
    const ids = new Set<number>();
    for (const set of entry.sets) {
      bytes += set.body.length;
      ids.add(set.templateId);
    }
    const n = entry.sets.length;
    exporter.pendingSets -= n;
    exporter.pendingBytes -= bytes;
    stats.pendingSets -= n;
    stats.pendingBytes -= bytes;
    stats.pendingDropped += n;
    const i = exporter.pending.indexOf(entry);
    if (i >= 0) exporter.pending.splice(i, 1);
    if (sink.length >= MAX_REPORTS) return;
    const report: ExportPacket = { ...headerCopy(entry.packet), deferred: true };
    report.error = {
      kind: "template_missing",
      message: `${n} data set(s) dropped (${why}): template ${[...ids].join(", ")} never arrived`,
    };
    sink.push(report);
  }
}

/** The packet's header fields only, for deferred copies and error reports. */
function headerCopy(p: ExportPacket): ExportPacket {
  const c: ExportPacket = {
    version: p.version,
    exporterAddress: p.exporterAddress,
    exporterPort: p.exporterPort,
    sizeBytes: p.sizeBytes,
    receivedAtMs: p.receivedAtMs,
    flows: [],
  };
  if (p.sysUptimeMs !== undefined) c.sysUptimeMs = p.sysUptimeMs;
  if (p.exportTimeMs !== undefined) c.exportTimeMs = p.exportTimeMs;
  if (p.sequence !== undefined) c.sequence = p.sequence;
  if (p.sourceId !== undefined) c.sourceId = p.sourceId;
  if (p.observationDomainId !== undefined) c.observationDomainId = p.observationDomainId;
  if (p.collectorPort !== undefined) {
    c.collectorHost = p.collectorHost;
    c.collectorPort = p.collectorPort;
  }
  return c;
}
