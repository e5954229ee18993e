/**
 * What the v9/IPFIX decoder remembers per exporter address and per source id / observation domain (and
 * v5 engine), and the bounds on how many of each it keeps: the least recently seen exporter and the
 * oldest domain go first. One table, so every path that creates state (datagrams, v5 accounting, restored
 * snapshots) is bounded the same way.
 */
import type { TemplateDecoderOptions } from "./decoder_options.ts";
import type { TemplateDecoderStats } from "./decoder_stats.ts";
import type { IcmpState } from "./icmp.ts";
import type { DomainNames } from "./option_names.ts";
import { NUMBERING_UNKNOWN, type SequenceStream } from "./sequence.ts";
import type { Plan } from "./templates.ts";
import type { ExportPacket } from "./types.ts";

/** Sampler / selector ids remembered per domain; the oldest goes beyond it. */
export const MAX_SAMPLERS_PER_DOMAIN = 256;

/** The domain key's version factor: version × 2^32 + domain id. */
export const TWO32 = 4294967296;

/** `icmp6Swapped`: IOS-XR byte-swapped ICMPv6 seen from this exporter + domain (icmp.ts); never reset. */
export interface DomainState extends SequenceStream, IcmpState {
  /** version × 2^32 + source id / observation domain id / (v5) engine type << 8 | engine id. */
  key: number;
  /** Interval announced without a sampler id (0 = none). */
  samplingDefault: number;
  /** Sampler / selector id → interval. */
  samplers: Map<number, number> | undefined;
  /** systemInitTimeMilliseconds from options data (NaN = unknown). */
  systemInitMs: number;
  /** Interface, VRF and application names from options data (option_names.ts); undefined until one comes. */
  names: DomainNames | undefined;
  /**
   * Ids of this domain's cached data templates and options templates: a withdraw-all or the domain's
   * eviction touches only what it removes, never the exporter's other templates.
   */
  dataTemplates: Set<number> | undefined;
  optionTemplates: Set<number> | undefined;
}

export interface ExporterState {
  address: string;
  /** domain key × 65536 + template id → plan; insertion order = least recently defined first. */
  templates: Map<number, Plan>;
  /** Sum of the templates' `cost`. */
  templateBytes: number;
  domains: Map<number, DomainState>;
  lastDomain: DomainState | undefined;
  /** Held data of this exporter (held_data.ts keeps it). */
  pending: PendingEntry[];
  pendingSets: number;
  pendingBytes: number;
}

/** One held data set: its template had not arrived. */
export interface PendingSet {
  domainKey: number;
  templateId: number;
  /** Copy of the set body (the datagram buffer may be reused by the receiver). */
  body: Uint8Array;
}

/** The held data sets of one datagram. */
export interface PendingEntry {
  exporter: ExporterState;
  /** Header-only copy of the original packet. */
  packet: ExportPacket;
  sets: PendingSet[];
  expiresAt: number;
  done: boolean;
}

export class ExporterTable {
  readonly #exporters = new Map<string, ExporterState>();
  #lastExporter: ExporterState | undefined;
  readonly #opts: TemplateDecoderOptions;
  readonly #stats: TemplateDecoderStats;
  /** Called for an evicted exporter, after its templates are forgotten: its held data goes. */
  readonly #evicted: (exporter: ExporterState) => void;

  constructor(
    options: TemplateDecoderOptions,
    stats: TemplateDecoderStats,
    evicted: (exporter: ExporterState) => void,
  ) {
    this.#opts = options;
    this.#stats = stats;
    this.#evicted = evicted;
  }

  /** Exporters, least recently seen first. */
  values(): Iterable<ExporterState> {
    return this.#exporters.values();
  }

  /** The exporter's state, created (evicting the least recently seen beyond the bound) when new. */
  touchExporter(address: string): ExporterState {
    const exporters = this.#exporters;
    let e = exporters.get(address);
    if (e !== undefined) {
      if (this.#lastExporter !== e) {
        exporters.delete(address); // most recently seen last
        exporters.set(address, e);
        this.#lastExporter = e;
      }
      return e;
    }
    while (exporters.size >= this.#opts.maxExporters) {
      this.evictExporter(exporters.values().next().value!);
    }
    e = {
      address,
      templates: new Map(),
      templateBytes: 0,
      domains: new Map(),
      lastDomain: undefined,
      pending: [],
      pendingSets: 0,
      pendingBytes: 0,
    };
    exporters.set(address, e);
    this.#lastExporter = e;
    this.#stats.exporters = exporters.size;
    return e;
  }

  /** Forgets an exporter: its templates, domains and held data. */
  evictExporter(e: ExporterState): void {
    if (!this.#exporters.delete(e.address)) return;
    const stats = this.#stats;
    stats.exporters = this.#exporters.size;
    stats.templates -= e.templates.size;
    stats.templateBytes -= e.templateBytes;
    stats.exporterEvictions++;
    for (const d of e.domains.values()) stats.optionNames -= d.names?.count ?? 0;
    if (this.#lastExporter === e) this.#lastExporter = undefined;
    this.#evicted(e);
  }

  /** The domain's state, created (evicting the exporter's oldest domain beyond the bound) when new. */
  touchDomain(exporter: ExporterState, version: number, id: number): DomainState {
    const key = version * TWO32 + id;
    const last = exporter.lastDomain;
    if (last !== undefined && last.key === key) return last;
    const domains = exporter.domains;
    let d = domains.get(key);
    if (d === undefined) {
      if (domains.size >= this.#opts.maxDomainsPerExporter) {
        const oldest = domains.values().next().value!;
        domains.delete(oldest.key);
        this.#stats.domainEvictions++;
        this.#stats.optionNames -= oldest.names?.count ?? 0;
        // Its templates go with it: through its own index, not a scan of the exporter's templates.
        this.#stats.templateEvictions +=
          removeDomainTemplates(this.#stats, exporter, oldest, oldest.dataTemplates) +
          removeDomainTemplates(this.#stats, exporter, oldest, oldest.optionTemplates);
        if (exporter.lastDomain === oldest) exporter.lastDomain = undefined;
      }
      d = {
        key,
        next: -1,
        backNext: -1,
        last: -1,
        lastCount: -1,
        numbering: NUMBERING_UNKNOWN,
        votes: 0,
        samplingDefault: 0,
        samplers: undefined,
        systemInitMs: NaN,
        names: undefined,
        icmp6Swapped: false,
        dataTemplates: undefined,
        optionTemplates: undefined,
      };
      domains.set(key, d);
    }
    exporter.lastDomain = d;
    return d;
  }
}

/** Removes the templates `ids` of `domain` from the cache and empties `ids`. Returns how many went. */
export function removeDomainTemplates(
  stats: TemplateDecoderStats,
  exporter: ExporterState,
  domain: DomainState,
  ids: Set<number> | undefined,
): number {
  if (ids === undefined || ids.size === 0) return 0;
  const base = domain.key * 65536;
  let n = 0, bytes = 0;
  for (const id of ids) {
    const plan = exporter.templates.get(base + id);
    if (plan === undefined) continue;
    exporter.templates.delete(base + id);
    bytes += plan.cost;
    n++;
  }
  ids.clear();
  exporter.templateBytes -= bytes;
  stats.templateBytes -= bytes;
  stats.templates -= n;
  return n;
}
