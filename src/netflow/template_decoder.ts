/**
 * NetFlow v9 (RFC 3954) and IPFIX (RFC 7011): one decoder for both, putting together the parts that
 * each do one job: walking the message (set_walker.ts, template_sets.ts), the bounded template cache
 * per (exporter, source id / observation domain, template id) (exporter_state.ts, template_cache.ts),
 * records into flows (record_sets.ts), data sets held until their template arrives (held_data.ts),
 * sequence accounting, and persistence (template_snapshot.ts).
 *
 * Bounded by size as well as by count, so hostile datagrams cannot exhaust memory or a core (the bounds
 * are in decoder_options.ts); what is refused or evicted is counted in {@link TemplateDecoderStats} and
 * shown on the packet (`template_refused`, `too_many_flows`). Pure decoding: no I/O, no clocks, no
 * logging.
 *
 * @example
 * ```ts
 * import type { ExportPacket } from "./types.ts";
 * declare const bytes: Uint8Array, packet: ExportPacket; // a datagram, and its packet with the header read
 * const td = new TemplateDecoder({ samplingDefault: 1 });
 * const packets = td.decode(bytes, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), packet);
 * // packets[0] is `packet`; further entries are earlier packets released now that a template arrived.
 * ```
 */
import { decoderOptions, type TemplateDecoderOptions } from "./decoder_options.ts";
import { countSequence, type TemplateDecoderStats, zeroDecoderStats } from "./decoder_stats.ts";
import { type ExporterState, ExporterTable, type PendingEntry } from "./exporter_state.ts";
import { accountFixed } from "./fixed_accounting.ts";
import { HeldData } from "./held_data.ts";
import { RecordSetDecoder } from "./record_sets.ts";
import { observeSequence } from "./sequence.ts";
import { DataSetList, IPFIX_FORMAT, readMessageHeader, V9_FORMAT, walkSets } from "./set_walker.ts";
import { TemplateCache } from "./template_cache.ts";
import { TemplateSetReader } from "./template_sets.ts";
import { restoreTemplates, snapshotTemplates } from "./template_snapshot.ts";
import { countRecords } from "./records.ts";
import type { ExportPacket } from "./types.ts";
import { takeClampedCount } from "./values.ts";

// metrics.ts and pipeline_protocol.ts name the stats by this module.
export type { TemplateDecoderStats } from "./decoder_stats.ts";

/** One exporter's templates cached and the entries of its options names tables (option_names.ts). */
export interface KnownTables {
  templates: number;
  interfaces: number;
  vrfs: number;
  applications: number;
}

export class TemplateDecoder {
  /** Counters for the application's stats line and metrics. */
  readonly stats: TemplateDecoderStats = zeroDecoderStats();

  readonly #opts: TemplateDecoderOptions;
  readonly #exporters: ExporterTable;
  readonly #held: HeldData;
  readonly #cache: TemplateCache;
  readonly #templateSets: TemplateSetReader;
  readonly #records: RecordSetDecoder;
  readonly #dataSets = new DataSetList();

  constructor(options: Partial<TemplateDecoderOptions> = {}) {
    const o = this.#opts = decoderOptions(options);
    const held = this.#held = new HeldData(o, this.stats);
    this.#exporters = new ExporterTable(o, this.stats, (exporter) => held.dropExporter(exporter));
    this.#cache = new TemplateCache(o, this.stats, this.#exporters);
    this.#templateSets = new TemplateSetReader(this.#cache, this.stats, o.maxFieldsPerTemplate);
    this.#records = new RecordSetDecoder(o, this.stats);
  }

  /**
   * Decodes a v9 or IPFIX datagram into `packet` (version, exporter, size and receive time already set).
   * Returns `packet` first, then copies of earlier packets (`deferred: true`) whose held data sets this
   * datagram's templates made decodable.
   */
  decode(bytes: Uint8Array, view: DataView, packet: ExportPacket): ExportPacket[] {
    const format = packet.version === 10 ? IPFIX_FORMAT : V9_FORMAT;
    const end = readMessageHeader(format, bytes, view, packet);
    if (end < 0) return [packet];
    packet.templateCount = 0;
    const exporter = this.#exporters.touchExporter(packet.exporterAddress);
    const domain = this.#exporters.touchDomain(exporter, packet.version, format.domainId(packet));

    // Pass 1: templates now, data sets remembered.
    const sets = this.#dataSets;
    const templatesArrived = walkSets(
      format,
      bytes,
      view,
      end,
      packet,
      exporter,
      domain,
      this.#templateSets,
      sets,
    );

    // Pass 2: options data first (sampling, system init), so data in the same packet can use it.
    const base = domain.key * 65536;
    let records = 0, estimate = 0;
    for (let i = 0; i < sets.count; i++) {
      const plan = exporter.templates.get(base + sets.setId(i));
      if (plan === undefined) continue;
      if (plan.spec.options) {
        records += this.#records.optionsSet(plan, bytes, view, sets.start(i), sets.end(i), domain, packet);
      } else {
        // The flow limit's bound: set length / smallest record, one division per set.
        estimate += Math.floor((sets.end(i) - sets.start(i)) / plan.minLength);
      }
    }
    // Pass 3: data sets, unless they would yield more flows than allowed: past the bound, the records are
    // counted (without decoding), and over the limit nothing is decoded or held.
    const n = estimate > this.#opts.maxFlowsPerPacket && this.#overFlowLimit(packet, exporter, base, bytes)
      ? 0
      : sets.count;
    const ctx = this.#records.context(packet, domain);
    let awaiting = 0;
    let entry: PendingEntry | undefined;
    for (let i = 0; i < n; i++) {
      const setId = sets.setId(i);
      const plan = exporter.templates.get(base + setId);
      if (plan === undefined) {
        awaiting++;
        entry = this.#held.hold(exporter, domain, packet, entry, setId, bytes, sets.start(i), sets.end(i));
      } else if (!plan.spec.options) {
        records += this.#records.dataSet(plan, bytes, view, sets.start(i), sets.end(i), ctx);
      }
    }
    if (awaiting > 0) packet.awaitingTemplateSets = awaiting;

    // Sequence: v9 counts packets, IPFIX data records (unknown when some sets could not be decoded).
    const countKnown = awaiting === 0 && packet.error === undefined;
    const count = format.sequenceCountsRecords ? (countKnown ? records : -1) : 1;
    countSequence(
      this.stats,
      packet,
      observeSequence(domain, packet.sequence!, count, format.sequenceLimits),
    );

    let out = [packet];
    if (templatesArrived && exporter.pendingSets > 0) {
      const released = this.#release(exporter);
      if (released.length > 0) out = [packet, ...released];
    }
    const clamped = takeClampedCount(); // once per datagram, not per record
    if (clamped > 0) this.stats.valuesClamped += clamped;
    return out;
  }

  /** v1/v5 datagrams (decoded by fixed.ts): configured sampling and v5 sequence accounting. */
  accountFixed(packet: ExportPacket): void {
    accountFixed(packet, this.#opts, this.#exporters, this.stats);
  }

  /**
   * Held data sets that waited longer than `pendingTimeoutMs` (or were dropped for space): one error
   * packet (`template_missing`, `deferred: true`, the original header) per original packet.
   */
  expire(nowMs: number): ExportPacket[] {
    return this.#held.expire(nowMs);
  }

  /** What is known per exporter address now: templates (data and options) and the options names tables. */
  knownTables(): Map<string, KnownTables> {
    const out = new Map<string, KnownTables>();
    for (const e of this.#exporters.values()) { // one state per address
      const k: KnownTables = { templates: e.templates.size, interfaces: 0, vrfs: 0, applications: 0 };
      for (const d of e.domains.values()) {
        k.interfaces += d.names?.interfaces.size ?? 0;
        k.vrfs += d.names?.vrfs.size ?? 0;
        k.applications += d.names?.applications.size ?? 0;
      }
      out.set(e.address, k);
    }
    return out;
  }

  /**
   * JSON-serialisable state: templates, options templates, announced sampling and system init times.
   * Held data and sequence positions are not included (they are stale after a restart).
   */
  snapshot(): unknown {
    return snapshotTemplates(this.#exporters);
  }

  /**
   * Restores a {@link snapshot}. Validates everything: malformed entries are skipped, and the bounds of
   * the wire apply (fields per template, template count and bytes per exporter and in total): what
   * exceeds them is refused or evicted and counted as it would be live. Returns the templates restored.
   */
  restore(state: unknown): number {
    return restoreTemplates(state, this.#exporters, this.#cache, this.#opts, this.stats);
  }

  /**
   * Decodes held sets whose template is now known; one deferred packet copy per original packet. The
   * flow limit applies to each copy as to a datagram: over it, the copy's data sets are consumed unread.
   */
  #release(exporter: ExporterState): ExportPacket[] {
    const out: ExportPacket[] = [];
    const maxFlows = this.#opts.maxFlowsPerPacket;
    for (const { packet, sets, plans, domains } of this.#held.release(exporter)) {
      let estimate = 0;
      for (let i = 0; i < sets.length; i++) {
        if (!plans[i].spec.options) estimate += Math.floor(sets[i].body.length / plans[i].minLength);
      }
      let refused = false;
      if (estimate > maxFlows) {
        let count = 0;
        for (let i = 0; i < sets.length; i++) {
          const body = sets[i].body;
          if (!plans[i].spec.options) count += countRecords(plans[i], body, 0, body.length);
        }
        if (count > maxFlows) {
          this.#records.refuseFlows(packet, count);
          refused = true;
        }
      }
      for (let i = 0; i < sets.length; i++) {
        const plan = plans[i], domain = domains[i], body = sets[i].body;
        const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
        if (plan.spec.options) this.#records.optionsSet(plan, body, view, 0, body.length, domain, packet);
        else if (!refused) {
          this.#records.dataSet(plan, body, view, 0, body.length, this.#records.context(packet, domain));
        }
      }
      if (packet.flows.length > 0 || packet.error !== undefined) out.push(packet);
    }
    return out;
  }

  /**
   * The flow limit, past its bound: counts the records of the datagram's data sets (without decoding)
   * and, over the limit, marks the packet refused. Returns true when it is.
   */
  #overFlowLimit(packet: ExportPacket, exporter: ExporterState, base: number, bytes: Uint8Array): boolean {
    const sets = this.#dataSets;
    let count = 0;
    for (let i = 0; i < sets.count; i++) {
      const plan = exporter.templates.get(base + sets.setId(i));
      if (plan !== undefined && !plan.spec.options) {
        count += countRecords(plan, bytes, sets.start(i), sets.end(i));
      }
    }
    if (count <= this.#opts.maxFlowsPerPacket) return false;
    this.#records.refuseFlows(packet, count);
    return true;
  }
}
