/**
 * NetFlow v9 (RFC 3954) and IPFIX (RFC 7011): one set walker and one record decoder for both, a bounded
 * template cache per (exporter address, source id / observation domain, template id), options data
 * (sampling, system init time), data sets held until their template arrives, and sequence accounting.
 *
 * Bounded by size as well as by count, so hostile datagrams cannot exhaust memory or a core: fields per
 * template, template bytes per exporter and in total (options templates and restored snapshots alike),
 * held bytes per exporter and in total, flows per datagram, and O(1) amortised work per record (a
 * withdraw-all touches only what it removes; zero-length fields are not walked). What is refused or
 * evicted is counted in {@link TemplateDecoderStats} and shown on the packet (`template_refused`,
 * `too_many_flows`).
 *
 * Pure decoding: no I/O, no clocks, no logging. The application reads {@link TemplateDecoder.stats}, the
 * fields of each {@link ExportPacket}, persists {@link TemplateDecoder.snapshot} and calls
 * {@link TemplateDecoder.expire} periodically.
 *
 * @example
 * ```ts
 * const td = new TemplateDecoder({ samplingDefault: 1 });
 * const packets = td.decode(bytes, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), packet);
 * // packets[0] is `packet`; further entries are earlier packets released now that a template arrived.
 * ```
 */
import {
  announcedInterval,
  type CompileOptions,
  compilePlan,
  countRecords,
  decodeDataRecord,
  decodeOptionsRecord,
  type Plan,
  RecordScratch,
  recordsEnd,
  sameSpec,
  specId,
  specLength,
  specPen,
  T_DURATION,
  T_END_DELTA,
  T_END_MS,
  T_END_NTP,
  T_END_S,
  T_START_DELTA,
  T_START_MS,
  T_START_NTP,
  T_START_S,
  takeClampedCount,
  type TemplateSpec,
} from "./templates.ts";
import {
  observeSequence,
  PACKET_LIMITS,
  RECORD_LIMITS,
  SEQ_REORDER,
  SEQ_RESTART,
  type SequenceStream,
} from "./sequence.ts";
import { type IcmpState, resolveIcmp } from "./icmp.ts";
import type { DecodeError, ExportPacket, Flow } from "./types.ts";

export interface TemplateDecoderOptions {
  /** Emit elements the table does not know as `netflow.field.<id>` / `netflow.field.<pen>.<id>` hex. Default true. */
  unknownFields: boolean;
  /** 1-in-N interval for exporters that never announce one (v1/v5/v9/IPFIX). Default: none. */
  samplingDefault?: number;
  /**
   * Configured per-exporter interval; when it returns a number > 0 it beats anything announced. Called
   * once per datagram, so it should be cheap (e.g. a small CIDR list).
   */
  samplingOverride?: (exporterAddress: string) => number | undefined;
  /** Exporter addresses with state (templates, options, sequence); the least recently seen is evicted. Default 10,000. */
  maxExporters: number;
  /** Source ids / observation domains (and v5 engines) per exporter; the oldest is evicted. Default 256. */
  maxDomainsPerExporter: number;
  /** Templates per exporter, over all its domains; the least recently (re)defined is evicted. Default 1,024. */
  maxTemplatesPerExporter: number;
  /** Templates in total; least recently seen exporters are evicted beyond it. Default 100,000. */
  maxTemplates: number;
  /**
   * Fields per template or options template. A template with more is refused (`template_refused` on the
   * packet, counted) and an earlier definition of its id is dropped. Default 512: RFC 7011 allows 65,535,
   * but real exporters send tens of fields (the widest, e.g. nProbe with every plugin, a few hundred).
   */
  maxFieldsPerTemplate: number;
  /**
   * Bytes of templates and options templates per exporter (over all its domains), as charged by
   * `templateCost` in templates.ts (wire size plus the compiled plan's heap; a 20-field template is
   * charged about 1.3 KiB, a 512-field one 15 KiB). Beyond it the exporter's least recently defined
   * templates are evicted; a template bigger than the whole budget is refused. Default 1 MiB: about 780
   * templates of 20 fields (real exporters define tens), or 69 of the widest allowed.
   */
  maxTemplateBytesPerExporter: number;
  /**
   * Bytes of templates in total; the least recently seen exporters are evicted beyond it. Default 64 MiB:
   * about 50,000 templates of 20 fields (thousands of real exporters), and all a spoofing flood of
   * maximal templates can pin (the count bound alone let it pin gigabytes).
   */
  maxTemplateBytes: number;
  /** Data sets held waiting for a template, in total. 0 disables holding. Default 1,024. */
  maxPendingSets: number;
  /** Data sets held per exporter. Default 64. */
  maxPendingSetsPerExporter: number;
  /** Bytes held waiting for templates, in total. Default 4 MiB. */
  maxPendingBytes: number;
  /**
   * Bytes held waiting for templates per exporter, so one exporter cannot take the whole buffer. Default
   * 1 MiB (a quarter of the total; 64 full 16 KiB datagrams).
   */
  maxPendingBytesPerExporter: number;
  /**
   * Flow records one datagram (or one released deferred copy of it) may yield. A datagram that would
   * yield more yields none: it carries a `too_many_flows` error with the count, so it becomes one ERROR
   * export span instead of tens of thousands of flow spans (a 1-octet template makes 65,000 records out
   * of one datagram). Counted before any record is decoded. Default 10,000: a full 64 KiB datagram of
   * real records (≥ 20 octets each) holds fewer than 3,300.
   */
  maxFlowsPerPacket: number;
  /**
   * How long a held data set waits for its template, from its receive time. Default 30 s: exporters
   * re-send templates every few seconds to a minute; data older than this is not worth the memory.
   */
  pendingTimeoutMs: number;
}

export const DEFAULT_TEMPLATE_DECODER_OPTIONS: Readonly<TemplateDecoderOptions> = {
  unknownFields: true,
  maxExporters: 10_000,
  maxDomainsPerExporter: 256,
  maxTemplatesPerExporter: 1_024,
  maxTemplates: 100_000,
  maxFieldsPerTemplate: 512,
  maxTemplateBytesPerExporter: 1024 * 1024,
  maxTemplateBytes: 64 * 1024 * 1024,
  maxPendingSets: 1_024,
  maxPendingSetsPerExporter: 64,
  maxPendingBytes: 4 * 1024 * 1024,
  maxPendingBytesPerExporter: 1024 * 1024,
  maxFlowsPerPacket: 10_000,
  pendingTimeoutMs: 30_000,
};

/** Counters, updated in place; cheap to read at any time. */
export interface TemplateDecoderStats {
  /** Exporters with state now. */
  exporters: number;
  /** Templates and options templates cached now. */
  templates: number;
  /** Template and options template records received (including re-sent ones). */
  templatesReceived: number;
  /** Templates removed by IPFIX withdrawals. */
  templatesWithdrawn: number;
  /** Templates evicted by the per-exporter count bound (and with evicted domains). */
  templateEvictions: number;
  /** Bytes charged for the templates cached now (see `maxTemplateBytes`). */
  templateBytes: number;
  /** Templates evicted to keep an exporter within `maxTemplateBytesPerExporter` (or the total). */
  templateByteEvictions: number;
  /**
   * Template and options template records refused: more fields than `maxFieldsPerTemplate`, or bigger
   * than `maxTemplateBytesPerExporter` on their own.
   */
  templatesRefused: number;
  /** Exporters evicted (with their templates) by the exporter or total-template bounds. */
  exporterEvictions: number;
  /** Domains evicted by the per-exporter domain bound. */
  domainEvictions: number;
  /** Data sets held waiting for a template now, and their bytes. */
  pendingSets: number;
  pendingBytes: number;
  /** Held data sets decoded after their template arrived. */
  pendingReleased: number;
  /** Data sets whose template never arrived (expired, evicted, or the holding buffer was full). */
  pendingDropped: number;
  /**
   * Of `pendingDropped`: data sets not held because their exporter's share was full
   * (`maxPendingSetsPerExporter` or `maxPendingBytesPerExporter`) while the total had room.
   */
  pendingDroppedExporterFull: number;
  /** Datagrams (or released deferred copies) refused whole by `maxFlowsPerPacket`. */
  packetsOverFlowLimit: number;
  /** Integers (counters, attribute values) clamped to ±(2^53 − 1); their flows carry `clamped`. */
  valuesClamped: number;
  /** Options data records processed. */
  optionsRecords: number;
  /** Records (v5, IPFIX) or packets (v9) missing according to sequence numbers, in total. */
  sequenceLostTotal: number;
  /** Late packets (small backward sequence jumps). */
  sequenceReorders: number;
  /** Sequence re-synchronisations (exporter restarts, large jumps). */
  sequenceResets: number;
}

/** `icmp6Swapped`: IOS-XR byte-swapped ICMPv6 seen from this exporter + domain (icmp.ts); never reset. */
interface DomainState extends SequenceStream, IcmpState {
  /** version × 2^32 + source id / observation domain id / (v5) engine type << 8 | engine id. */
  key: number;
  /** Interval announced without a sampler id (0 = none). */
  samplingDefault: number;
  /** Sampler / selector id → interval. */
  samplers: Map<number, number> | undefined;
  /** systemInitTimeMilliseconds from options data (NaN = unknown). */
  systemInitMs: number;
  /**
   * Ids of this domain's cached data templates and options templates: a withdraw-all or the domain's
   * eviction touches only what it removes, never the exporter's other templates.
   */
  dataTemplates: Set<number> | undefined;
  optionTemplates: Set<number> | undefined;
}

interface ExporterState {
  address: string;
  /** domain key × 65536 + template id → plan; insertion order = least recently defined first. */
  templates: Map<number, Plan>;
  /** Sum of the templates' `cost`. */
  templateBytes: number;
  domains: Map<number, DomainState>;
  lastDomain: DomainState | undefined;
  pending: PendingEntry[];
  pendingSets: number;
  pendingBytes: number;
}

interface PendingSet {
  domainKey: number;
  templateId: number;
  /** Copy of the set body (the datagram buffer may be reused by the receiver). */
  body: Uint8Array;
}

interface PendingEntry {
  exporter: ExporterState;
  /** Header-only copy of the original packet. */
  packet: ExportPacket;
  sets: PendingSet[];
  expiresAt: number;
  done: boolean;
}

/** Per-packet values the record loop needs. */
interface PacketContext {
  packet: ExportPacket;
  exportTimeMs: number;
  systemInitMs: number;
  /** Configured override (0 = none). */
  override: number;
  /** Interval for flows without a matching sampler id (0 = none). */
  fallback: number;
  samplers: Map<number, number> | undefined;
  /** The data's exporter + domain: ICMPv6 byte-order state. */
  domain: DomainState;
}

const TWO32 = 4294967296;
const MAX_SETS_PER_PACKET = 16_384; // a 64 KiB datagram holds at most this many 4-byte set headers
const MAX_SAMPLERS_PER_DOMAIN = 256;
const MAX_REPORTS = 1_024;
const SNAPSHOT_FORMAT = "netflow2traces.templates";

export class TemplateDecoder {
  /** Counters for the application's stats line and metrics. */
  readonly stats: TemplateDecoderStats = {
    exporters: 0,
    templates: 0,
    templatesReceived: 0,
    templatesWithdrawn: 0,
    templateEvictions: 0,
    templateBytes: 0,
    templateByteEvictions: 0,
    templatesRefused: 0,
    exporterEvictions: 0,
    domainEvictions: 0,
    pendingSets: 0,
    pendingBytes: 0,
    pendingReleased: 0,
    pendingDropped: 0,
    pendingDroppedExporterFull: 0,
    packetsOverFlowLimit: 0,
    valuesClamped: 0,
    optionsRecords: 0,
    sequenceLostTotal: 0,
    sequenceReorders: 0,
    sequenceResets: 0,
  };

  readonly #opts: TemplateDecoderOptions;
  readonly #compile: CompileOptions;
  readonly #exporters = new Map<string, ExporterState>();
  #lastExporter: ExporterState | undefined;
  #pending: PendingEntry[] = [];
  /** Error packets for dropped held data, handed out by the next {@link expire}. */
  #reports: ExportPacket[] = [];
  readonly #rec = new RecordScratch();
  /** (set id, body start, set end) per data set of the current datagram. */
  readonly #sets = new Int32Array(3 * MAX_SETS_PER_PACKET);

  constructor(options: Partial<TemplateDecoderOptions> = {}) {
    const o = { ...DEFAULT_TEMPLATE_DECODER_OPTIONS, ...options };
    for (
      const k of [
        "maxExporters",
        "maxDomainsPerExporter",
        "maxTemplatesPerExporter",
        "maxTemplates",
        "maxFieldsPerTemplate",
        "maxTemplateBytesPerExporter",
        "maxTemplateBytes",
        "maxPendingSets",
        "maxPendingSetsPerExporter",
        "maxPendingBytes",
        "maxPendingBytesPerExporter",
        "maxFlowsPerPacket",
        "pendingTimeoutMs",
      ] as const
    ) {
      const v = o[k];
      o[k] = Number.isFinite(v) && v >= 0 ? Math.floor(v) : DEFAULT_TEMPLATE_DECODER_OPTIONS[k];
    }
    o.maxExporters = Math.max(1, o.maxExporters);
    o.maxDomainsPerExporter = Math.max(1, o.maxDomainsPerExporter);
    o.maxTemplatesPerExporter = Math.max(1, o.maxTemplatesPerExporter);
    o.maxTemplates = Math.max(1, o.maxTemplates);
    o.maxFieldsPerTemplate = Math.max(1, o.maxFieldsPerTemplate);
    this.#opts = o;
    this.#compile = { unknownFields: o.unknownFields !== false };
  }

  // -------------------------------------------------------------------------------------------------
  // Decoding

  /**
   * Decodes a v9 or IPFIX datagram into `packet` (version, exporter, size and receive time already set).
   * Returns `packet` first, then copies of earlier packets (`deferred: true`) whose held data sets this
   * datagram's templates made decodable.
   */
  decode(bytes: Uint8Array, view: DataView, packet: ExportPacket): ExportPacket[] {
    const ipfix = packet.version === 10;
    const headerLen = ipfix ? 16 : 20;
    if (bytes.length < headerLen) {
      fail(
        packet,
        "truncated",
        `v${packet.version} header needs ${headerLen} bytes, datagram has ${bytes.length}`,
      );
      return [packet];
    }
    let end = bytes.length;
    let domainId: number;
    if (ipfix) {
      const length = view.getUint16(2);
      packet.exportTimeMs = view.getUint32(4) * 1000;
      packet.sequence = view.getUint32(8);
      domainId = packet.observationDomainId = view.getUint32(12);
      if (length < headerLen) {
        fail(packet, "bad_length", `IPFIX message length ${length} is shorter than its header`);
        return [packet];
      }
      if (length > bytes.length) {
        fail(packet, "truncated", `IPFIX message length ${length}, datagram has ${bytes.length} bytes`);
      } else {
        end = length;
      }
    } else {
      packet.sysUptimeMs = view.getUint32(4);
      packet.exportTimeMs = view.getUint32(8) * 1000;
      packet.sequence = view.getUint32(12);
      domainId = packet.sourceId = view.getUint32(16);
    }
    packet.templateCount = 0;
    const exporter = this.#touchExporter(packet.exporterAddress);
    const domain = this.#touchDomain(exporter, packet.version, domainId);

    // Pass 1: templates now, data sets remembered.
    const sets = this.#sets;
    let nSets = 0;
    let templatesArrived = false;
    let off = headerLen;
    while (off < end) {
      if (end - off < 4) {
        if (!allZero(bytes, off, end)) fail(packet, "bad_set", `${end - off} stray bytes after the last set`);
        break;
      }
      const setId = view.getUint16(off);
      const setLength = view.getUint16(off + 2);
      if (setLength < 4) {
        fail(packet, "bad_set", `set ${setId} has length ${setLength}`);
        break;
      }
      let setEnd = off + setLength;
      if (setEnd > end) {
        fail(
          packet,
          "truncated",
          `set ${setId} of ${setLength} bytes runs ${setEnd - end} bytes past the end`,
        );
        setEnd = end;
      }
      const body = off + 4;
      if (setId >= 256) {
        if (nSets < MAX_SETS_PER_PACKET) {
          sets[3 * nSets] = setId;
          sets[3 * nSets + 1] = body;
          sets[3 * nSets + 2] = setEnd;
          nSets++;
        }
      } else if (setId === (ipfix ? 2 : 0) || setId === (ipfix ? 3 : 1)) {
        if (this.#templateSet(bytes, view, body, setEnd, setId, packet, exporter, domain)) {
          templatesArrived = true;
        }
      } // other set ids below 256 are reserved (RFC 3954 §5, RFC 7011 §3.3.2): skipped
      off = setEnd;
    }

    // Pass 2: options data first (sampling, system init), so data in the same packet can use it.
    const base = domain.key * 65536;
    let records = 0, estimate = 0;
    for (let i = 0; i < nSets; i++) {
      const plan = exporter.templates.get(base + sets[3 * i]);
      if (plan === undefined) continue;
      if (plan.spec.options) {
        records += this.#optionsSet(plan, bytes, view, sets[3 * i + 1], sets[3 * i + 2], domain, packet);
      } else {
        // The flow limit's bound: set length / smallest record, one division per set.
        estimate += Math.floor((sets[3 * i + 2] - sets[3 * i + 1]) / plan.minLength);
      }
    }
    // Pass 3: data sets, unless they would yield more flows than allowed: past the bound, the records are
    // counted (without decoding), and over the limit nothing is decoded or held.
    if (
      estimate > this.#opts.maxFlowsPerPacket && this.#overFlowLimit(packet, exporter, base, bytes, nSets)
    ) {
      nSets = 0;
    }
    const ctx = this.#context(packet, domain);
    let awaiting = 0;
    let entry: PendingEntry | undefined;
    for (let i = 0; i < nSets; i++) {
      const setId = sets[3 * i];
      const plan = exporter.templates.get(base + setId);
      if (plan === undefined) {
        awaiting++;
        entry = this.#hold(exporter, domain, packet, entry, setId, bytes, sets[3 * i + 1], sets[3 * i + 2]);
      } else if (!plan.spec.options) {
        records += this.#dataSet(plan, bytes, view, sets[3 * i + 1], sets[3 * i + 2], ctx);
      }
    }
    if (awaiting > 0) packet.awaitingTemplateSets = awaiting;

    // Sequence: v9 counts packets, IPFIX data records (unknown when some sets could not be decoded).
    const seq = packet.sequence;
    const countKnown = awaiting === 0 && packet.error === undefined;
    const result = ipfix
      ? observeSequence(domain, seq, countKnown ? records : -1, RECORD_LIMITS)
      : observeSequence(domain, seq, 1, PACKET_LIMITS);
    this.#sequenceResult(packet, result);

    let out = [packet];
    if (templatesArrived && exporter.pendingSets > 0) {
      const released = this.#release(exporter);
      if (released.length > 0) out = [packet, ...released];
    }
    const clamped = takeClampedCount(); // once per datagram, not per record
    if (clamped > 0) this.stats.valuesClamped += clamped;
    return out;
  }

  /**
   * v1/v5 datagrams (decoded by fixed.ts): applies the configured sampling (override beats the header,
   * the header beats the default) and v5 sequence accounting (exporter + engine type/id, counting flows).
   */
  accountFixed(packet: ExportPacket): void {
    const override = this.#override(packet.exporterAddress);
    const fallback = this.#opts.samplingDefault ?? 0;
    const interval = override > 0
      ? override
      : (packet.samplingInterval ?? 0) > 0
      ? 0
      : fallback > 0
      ? fallback
      : 0;
    if (interval > 0) { for (const flow of packet.flows) flow.samplingInterval = interval; }
    if (packet.version !== 5 || packet.sequence === undefined) return;
    const exporter = this.#touchExporter(packet.exporterAddress);
    const domain = this.#touchDomain(exporter, 5, ((packet.engineType ?? 0) << 8) | (packet.engineId ?? 0));
    this.#sequenceResult(
      packet,
      observeSequence(domain, packet.sequence, packet.flows.length, RECORD_LIMITS),
    );
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

  // -------------------------------------------------------------------------------------------------
  // Templates

  /** Parses one template or options template set. Returns true when some template was (re)defined. */
  #templateSet(
    bytes: Uint8Array,
    view: DataView,
    off: number,
    end: number,
    setId: number,
    packet: ExportPacket,
    exporter: ExporterState,
    domain: DomainState,
  ): boolean {
    const ipfix = packet.version === 10;
    const options = setId === (ipfix ? 3 : 1);
    const maxFields = this.#opts.maxFieldsPerTemplate;
    let defined = false;
    // Padding (RFC 7011 §3.3.1, RFC 3954 §5): zero octets, or a tail too short for a record header, ends
    // the set. So does a zero field count after a definition in the same set: `01 00 00 00` there is
    // padding, not a withdrawal of template 256. Exporters do not follow definitions with withdrawals in
    // one set, and over UDP (RFC 7011 §8.4) they are not meant to send withdrawals at all; a set that
    // starts with withdrawals is still honoured (SPEC §1).
    while (end - off >= 4) {
      if (allZero(bytes, off, end)) break; // O(1) per record: a record starts with a non-zero id or count
      const templateId = view.getUint16(off);
      let fieldCount: number, scopeCount = 0, p: number;
      if (!ipfix && options) {
        if (end - off < 6) break; // too short for a v9 options template header: padding
        const scopeLength = view.getUint16(off + 2), optionLength = view.getUint16(off + 4);
        if (scopeLength % 4 !== 0 || optionLength % 4 !== 0) {
          fail(
            packet,
            "bad_template",
            `options template ${templateId}: scope/option lengths ${scopeLength}/${optionLength}`,
          );
          break;
        }
        scopeCount = scopeLength / 4;
        fieldCount = scopeCount + optionLength / 4;
        p = off + 6;
        if (fieldCount === 0 && defined) break; // padding after a definition (above)
      } else {
        fieldCount = view.getUint16(off + 2);
        p = off + 4;
        if (fieldCount === 0 && defined) break; // padding after a definition (above)
        if (fieldCount === 0 && ipfix) {
          // Withdrawal (RFC 7011 §8.1): template id = set id withdraws all of that kind.
          packet.templateCount!++;
          this.stats.templatesReceived++;
          if (templateId === setId) this.#withdrawAll(exporter, domain, options);
          else if (templateId >= 256) this.#withdraw(exporter, domain, templateId);
          else {
            fail(packet, "bad_template", `withdrawal of reserved template id ${templateId}`);
            break;
          }
          off = p;
          continue;
        }
        if (ipfix && options && fieldCount > 0) {
          if (end - p < 2) {
            if (defined) break; // too short for an options template header: padding
            fail(packet, "bad_template", `options template ${templateId}: truncated header`);
            break;
          }
          scopeCount = view.getUint16(p);
          p += 2;
          if (scopeCount === 0 || scopeCount > fieldCount) {
            fail(
              packet,
              "bad_template",
              `options template ${templateId}: scope field count ${scopeCount} of ${fieldCount}`,
            );
            break;
          }
        }
      }
      if (fieldCount === 0) {
        fail(packet, "bad_template", `template ${templateId} has zero fields`);
        break;
      }
      if (templateId < 256) {
        fail(packet, "bad_template", `template id ${templateId} is reserved`);
        break;
      }
      if (fieldCount * 4 > end - p) {
        fail(packet, "bad_template", `template ${templateId}: ${fieldCount} fields overflow the set`);
        break;
      }
      if (fieldCount > maxFields) {
        // Refused before anything is kept; the record is skipped so the rest of the set still counts.
        p = skipFieldSpecs(view, p, end, fieldCount, ipfix);
        if (p < 0) {
          fail(packet, "bad_template", `template ${templateId}: ${fieldCount} fields overflow the set`);
          break;
        }
        packet.templateCount!++;
        this.stats.templatesReceived++;
        this.#refused(
          packet,
          this.#refuse(
            exporter,
            domain,
            templateId,
            `template ${templateId} has ${fieldCount} fields (limit ${maxFields})`,
          ),
        );
        off = p;
        continue;
      }
      const fields = new Uint32Array(2 * fieldCount);
      let overflow = false;
      for (let i = 0; i < fieldCount; i++) {
        if (end - p < 4) {
          overflow = true;
          break;
        }
        const id = view.getUint16(p);
        fields[2 * i] = ((id & (ipfix ? 0x7fff : 0xffff)) << 16 | view.getUint16(p + 2)) >>> 0;
        p += 4;
        if (ipfix && (id & 0x8000) !== 0) {
          if (end - p < 4) {
            overflow = true;
            break;
          }
          fields[2 * i + 1] = view.getUint32(p);
          p += 4;
        }
      }
      if (overflow) {
        fail(packet, "bad_template", `template ${templateId}: ${fieldCount} fields overflow the set`);
        break;
      }
      packet.templateCount!++;
      this.stats.templatesReceived++;
      const spec: TemplateSpec = {
        version: packet.version,
        templateId,
        options,
        scopeCount,
        fields,
      };
      const error = this.#install(exporter, domain, spec);
      if (error !== undefined) {
        if (error.kind !== "template_refused") {
          fail(packet, error.kind, error.message);
          break;
        }
        this.#refused(packet, error);
      } else defined = true;
      off = p;
    }
    return defined;
  }

  /** A refused template, as the packet shows it: counted, and a `template_refused` error saying why. */
  #refused(packet: ExportPacket, error: DecodeError): void {
    packet.templatesRefused = (packet.templatesRefused ?? 0) + 1;
    fail(packet, error.kind, error.message);
  }

  /**
   * Refuses a template: counted, and an earlier definition of the same id is dropped, since data that
   * follows is laid out by the refused one (decoding it with the old layout would give garbage).
   */
  #refuse(exporter: ExporterState, domain: DomainState, templateId: number, message: string): DecodeError {
    const key = domain.key * 65536 + templateId;
    const existing = exporter.templates.get(key);
    if (existing !== undefined) this.#remove(exporter, key, existing);
    this.stats.templatesRefused++;
    return { kind: "template_refused", message };
  }

  /**
   * Adds or replaces a template within the count and byte bounds. Returns why it was not installed: a
   * `bad_template` (cannot be compiled) or a `template_refused` (over a limit) error.
   */
  #install(exporter: ExporterState, domain: DomainState, spec: TemplateSpec): DecodeError | undefined {
    const o = this.#opts;
    const id = spec.templateId;
    const fieldCount = spec.fields.length / 2;
    if (fieldCount > o.maxFieldsPerTemplate) {
      return this.#refuse(
        exporter,
        domain,
        id,
        `template ${id} has ${fieldCount} fields (limit ${o.maxFieldsPerTemplate})`,
      );
    }
    const key = domain.key * 65536 + id;
    const templates = exporter.templates;
    const existing = templates.get(key);
    let plan: Plan;
    if (existing !== undefined && sameSpec(existing.spec, spec)) {
      plan = existing; // re-sent unchanged: no recompilation
    } else {
      const compiled = compilePlan(spec, this.#compile);
      if (typeof compiled === "string") {
        if (existing !== undefined) this.#remove(exporter, key, existing); // no stale layout stays
        return { kind: "bad_template", message: compiled };
      }
      plan = compiled;
      if (plan.cost > o.maxTemplateBytesPerExporter) {
        return this.#refuse(
          exporter,
          domain,
          id,
          `template ${id} needs ${plan.cost} bytes (limit ${o.maxTemplateBytesPerExporter} per exporter)`,
        );
      }
    }
    // Re-inserted below, most recently defined last; a data template may replace an options template of
    // the same id (or the reverse): the old plan and its domain index entry go.
    if (existing !== undefined) this.#remove(exporter, key, existing);
    while (templates.size >= o.maxTemplatesPerExporter) {
      this.#evictOldest(exporter);
      this.stats.templateEvictions++;
    }
    while (templates.size > 0 && exporter.templateBytes + plan.cost > o.maxTemplateBytesPerExporter) {
      this.#evictOldest(exporter);
      this.stats.templateByteEvictions++;
    }
    templates.set(key, plan);
    exporter.templateBytes += plan.cost;
    this.stats.templates++;
    this.stats.templateBytes += plan.cost;
    if (plan.spec.options) (domain.optionTemplates ??= new Set()).add(id);
    else (domain.dataTemplates ??= new Set()).add(id);
    // The totals: the least recently seen exporters go first, then (with limits set oddly low) this
    // exporter's oldest templates.
    if (this.stats.templates > o.maxTemplates || this.stats.templateBytes > o.maxTemplateBytes) {
      for (const other of this.#exporters.values()) {
        if (this.stats.templates <= o.maxTemplates && this.stats.templateBytes <= o.maxTemplateBytes) break;
        if (other !== exporter) this.#evictExporter(other);
      }
      while (
        templates.size > 1 &&
        (this.stats.templates > o.maxTemplates || this.stats.templateBytes > o.maxTemplateBytes)
      ) {
        this.#evictOldest(exporter);
        this.stats.templateByteEvictions++;
      }
    }
    return undefined;
  }

  /** Removes one cached template and its accounting. */
  #remove(exporter: ExporterState, key: number, plan: Plan): void {
    exporter.templates.delete(key);
    exporter.templateBytes -= plan.cost;
    this.stats.templates--;
    this.stats.templateBytes -= plan.cost;
    const domain = exporter.domains.get(Math.floor(key / 65536));
    if (domain !== undefined) {
      (plan.spec.options ? domain.optionTemplates : domain.dataTemplates)?.delete(key % 65536);
    }
  }

  #evictOldest(exporter: ExporterState): void {
    const [key, plan] = exporter.templates.entries().next().value!;
    this.#remove(exporter, key, plan);
  }

  #withdraw(exporter: ExporterState, domain: DomainState, templateId: number): void {
    const key = domain.key * 65536 + templateId;
    const plan = exporter.templates.get(key);
    if (plan !== undefined) {
      this.#remove(exporter, key, plan);
      this.stats.templatesWithdrawn++;
    }
  }

  /**
   * Withdraws all (options) templates of the domain. Touches only the domain's own index, which it
   * empties: a repeat in the same message (a storm of withdraw-all records) finds nothing, in O(1).
   */
  #withdrawAll(exporter: ExporterState, domain: DomainState, options: boolean): void {
    this.stats.templatesWithdrawn += this.#removeDomainTemplates(
      exporter,
      domain,
      options ? domain.optionTemplates : domain.dataTemplates,
    );
  }

  /** Removes the templates `ids` of `domain` from the cache and empties `ids`. Returns how many went. */
  #removeDomainTemplates(exporter: ExporterState, domain: DomainState, ids: Set<number> | undefined): number {
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
    this.stats.templateBytes -= bytes;
    this.stats.templates -= n;
    return n;
  }

  /**
   * The flow limit, past its bound: counts the records of the datagram's data sets (without decoding)
   * and, over the limit, marks the packet refused. Returns true when it is.
   */
  #overFlowLimit(packet: ExportPacket, exporter: ExporterState, base: number, bytes: Uint8Array, n: number) {
    const sets = this.#sets;
    let count = 0;
    for (let i = 0; i < n; i++) {
      const plan = exporter.templates.get(base + sets[3 * i]);
      if (plan !== undefined && !plan.spec.options) {
        count += countRecords(plan, bytes, sets[3 * i + 1], sets[3 * i + 2]);
      }
    }
    if (count <= this.#opts.maxFlowsPerPacket) return false;
    this.#refuseFlows(packet, count);
    return true;
  }

  /** Packet refused by `maxFlowsPerPacket`: its error says why it has no flows (it overrides others). */
  #refuseFlows(packet: ExportPacket, count: number): void {
    this.stats.packetsOverFlowLimit++;
    packet.error = {
      kind: "too_many_flows",
      message: `${count} flow records in one datagram (limit ${this.#opts.maxFlowsPerPacket})`,
    };
  }

  // -------------------------------------------------------------------------------------------------
  // Records

  #context(packet: ExportPacket, domain: DomainState): PacketContext {
    const override = this.#override(packet.exporterAddress);
    let fallback = domain.samplingDefault;
    const samplers = domain.samplers;
    if (fallback <= 0 && samplers !== undefined && samplers.size === 1) {
      fallback = samplers.values().next().value!;
    }
    if (fallback <= 0) fallback = this.#opts.samplingDefault ?? 0;
    return {
      packet,
      exportTimeMs: packet.exportTimeMs ?? packet.receivedAtMs,
      systemInitMs: domain.systemInitMs,
      override,
      fallback: fallback > 0 ? fallback : 0,
      samplers,
      domain,
    };
  }

  #override(address: string): number {
    const fn = this.#opts.samplingOverride;
    if (fn === undefined) return 0;
    const v = fn(address);
    return typeof v === "number" && v > 0 && Number.isFinite(v) ? v : 0;
  }

  /** Decodes the data records of one set into `ctx.packet.flows`. Returns the number of records. */
  #dataSet(
    plan: Plan,
    bytes: Uint8Array,
    view: DataView,
    off: number,
    end: number,
    ctx: PacketContext,
  ): number {
    const packet = ctx.packet;
    const flows = packet.flows;
    const rec = this.#rec;
    const min = plan.minLength;
    // Records start before `stop`: the zero octets after it are padding (recordsEnd, inlined: per set).
    let stop = end;
    while (stop > off && bytes[stop - 1] === 0) stop--;
    if (end - off < min) {
      if (stop > off) {
        fail(
          packet,
          "bad_length",
          `set of ${
            end - off
          } bytes is shorter than one record of template ${plan.spec.templateId} (${min} bytes)`,
        );
      }
      return 0;
    }
    const hasTimes = plan.hasTimes, hasSamplerId = plan.hasSamplerId, hasIcmp = plan.hasIcmp;
    let n = 0;
    while (off < stop && end - off >= min) {
      const flow: Flow = {};
      if (hasTimes) rec.resetTimes();
      if (hasSamplerId) rec.samplerId = -1;
      if (hasIcmp) rec.resetIcmp();
      const next = decodeDataRecord(plan, bytes, view, off, end, flow, rec);
      if (next < 0) {
        fail(packet, "bad_length", `record ${n} of template ${plan.spec.templateId} runs past its set`);
        break;
      }
      if (hasTimes) resolveTimes(flow, rec.times, ctx.exportTimeMs);
      const protocol = flow.protocol;
      if (protocol === 1 || protocol === 58) resolveIcmp(flow, hasIcmp ? rec.icmp : undefined, ctx.domain);
      if (
        flow.systemInitMs === undefined && ctx.systemInitMs > 0 &&
        (flow.firstSwitched !== undefined || flow.lastSwitched !== undefined)
      ) {
        flow.systemInitMs = ctx.systemInitMs;
      }
      if (ctx.override > 0) flow.samplingInterval = ctx.override;
      else if (flow.samplingInterval === undefined) {
        let interval = ctx.fallback;
        if (hasSamplerId && rec.samplerId >= 0 && ctx.samplers !== undefined) {
          interval = ctx.samplers.get(rec.samplerId) ?? interval;
        }
        if (interval > 0) flow.samplingInterval = interval;
      }
      flows.push(flow);
      n++;
      off = next;
    }
    return n;
  }

  /** Applies the options records of one set to the domain's state. Returns the number of records. */
  #optionsSet(
    plan: Plan,
    bytes: Uint8Array,
    view: DataView,
    off: number,
    end: number,
    domain: DomainState,
    packet: ExportPacket,
  ): number {
    const rec = this.#rec;
    const min = plan.minLength;
    const stop = recordsEnd(bytes, off, end);
    let n = 0;
    while (off < stop && end - off >= min) {
      rec.resetOptions();
      const next = decodeOptionsRecord(plan, bytes, view, off, end, rec);
      if (next < 0) {
        fail(
          packet,
          "bad_length",
          `options record ${n} of template ${plan.spec.templateId} runs past its set`,
        );
        break;
      }
      const interval = announcedInterval(rec);
      if (interval > 0) {
        if (rec.optSamplerId >= 0) {
          const samplers = domain.samplers ??= new Map();
          if (!samplers.has(rec.optSamplerId) && samplers.size >= MAX_SAMPLERS_PER_DOMAIN) {
            samplers.delete(samplers.keys().next().value!);
          }
          samplers.set(rec.optSamplerId, interval);
        } else {
          domain.samplingDefault = interval;
        }
      }
      if (rec.optSysInit > 0) domain.systemInitMs = rec.optSysInit;
      n++;
      off = next;
    }
    this.stats.optionsRecords += n;
    packet.optionsRecordCount = (packet.optionsRecordCount ?? 0) + n;
    return n;
  }

  #sequenceResult(packet: ExportPacket, result: number): void {
    if (result > 0) {
      packet.sequenceLost = result;
      this.stats.sequenceLostTotal += result;
    } else if (result === SEQ_REORDER) this.stats.sequenceReorders++;
    else if (result === SEQ_RESTART) this.stats.sequenceResets++;
  }

  // -------------------------------------------------------------------------------------------------
  // Data waiting for templates

  #hold(
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
    const size = end - start;
    const totalFull = this.stats.pendingSets >= o.maxPendingSets ||
      this.stats.pendingBytes + size > o.maxPendingBytes;
    if (
      totalFull || exporter.pendingSets >= o.maxPendingSetsPerExporter ||
      exporter.pendingBytes + size > o.maxPendingBytesPerExporter
    ) {
      this.stats.pendingDropped++;
      if (!totalFull) this.stats.pendingDroppedExporterFull++;
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
    this.stats.pendingSets++;
    this.stats.pendingBytes += size;
    return entry;
  }

  /**
   * Decodes held sets whose template is now known; one deferred packet copy per original packet. The
   * flow limit applies to each copy as to a datagram: over it, the copy's data sets are consumed unread.
   */
  #release(exporter: ExporterState): ExportPacket[] {
    const out: ExportPacket[] = [];
    const maxFlows = this.#opts.maxFlowsPerPacket;
    for (const entry of exporter.pending) {
      if (entry.done) continue;
      const ready: PendingSet[] = [], plans: Plan[] = [], domains: DomainState[] = [];
      const remaining: PendingSet[] = [];
      let estimate = 0;
      for (const set of entry.sets) {
        const domain = exporter.domains.get(set.domainKey);
        const plan = domain && exporter.templates.get(set.domainKey * 65536 + set.templateId);
        if (domain === undefined || plan === undefined) {
          remaining.push(set);
          continue;
        }
        ready.push(set);
        plans.push(plan);
        domains.push(domain);
        if (!plan.spec.options) estimate += Math.floor(set.body.length / plan.minLength);
      }
      if (ready.length === 0) continue;
      const copy: ExportPacket = { ...headerCopy(entry.packet), deferred: true };
      let refused = false;
      if (estimate > maxFlows) {
        let count = 0;
        for (let i = 0; i < ready.length; i++) {
          const body = ready[i].body;
          if (!plans[i].spec.options) count += countRecords(plans[i], body, 0, body.length);
        }
        if (count > maxFlows) {
          this.#refuseFlows(copy, count);
          refused = true;
        }
      }
      for (let i = 0; i < ready.length; i++) {
        const plan = plans[i], domain = domains[i], body = ready[i].body;
        const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
        if (plan.spec.options) this.#optionsSet(plan, body, view, 0, body.length, domain, copy);
        else if (!refused) this.#dataSet(plan, body, view, 0, body.length, this.#context(copy, domain));
        exporter.pendingSets--;
        exporter.pendingBytes -= body.length;
        this.stats.pendingSets--;
        this.stats.pendingBytes -= body.length;
        this.stats.pendingReleased++;
      }
      entry.sets = remaining;
      if (remaining.length === 0) entry.done = true;
      if (copy.flows.length > 0 || copy.error !== undefined) out.push(copy);
    }
    exporter.pending = exporter.pending.filter((e) => !e.done);
    return out;
  }

  /** Drops a held entry: counted, and reported as a `template_missing` error packet. */
  #drop(entry: PendingEntry, sink: ExportPacket[], why: string): void {
    if (entry.done) return;
    entry.done = true;
    const exporter = entry.exporter;
    let bytes = 0;
    const ids = new Set<number>();
    for (const set of entry.sets) {
      bytes += set.body.length;
      ids.add(set.templateId);
    }
    const n = entry.sets.length;
    exporter.pendingSets -= n;
    exporter.pendingBytes -= bytes;
    this.stats.pendingSets -= n;
    this.stats.pendingBytes -= bytes;
    this.stats.pendingDropped += n;
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

  // -------------------------------------------------------------------------------------------------
  // State and bounds

  #touchExporter(address: string): ExporterState {
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
      this.#evictExporter(exporters.values().next().value!);
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
    this.stats.exporters = exporters.size;
    return e;
  }

  #evictExporter(e: ExporterState): void {
    if (!this.#exporters.delete(e.address)) return;
    this.stats.exporters = this.#exporters.size;
    this.stats.templates -= e.templates.size;
    this.stats.templateBytes -= e.templateBytes;
    this.stats.exporterEvictions++;
    if (this.#lastExporter === e) this.#lastExporter = undefined;
    for (const entry of [...e.pending]) this.#drop(entry, this.#reports, "exporter state evicted");
  }

  #touchDomain(exporter: ExporterState, version: number, id: number): DomainState {
    const key = version * TWO32 + id;
    const last = exporter.lastDomain;
    if (last !== undefined && last.key === key) return last;
    const domains = exporter.domains;
    let d = domains.get(key);
    if (d === undefined) {
      if (domains.size >= this.#opts.maxDomainsPerExporter) {
        const oldest = domains.values().next().value!;
        domains.delete(oldest.key);
        this.stats.domainEvictions++;
        // Its templates go with it: through its own index, not a scan of the exporter's templates.
        this.stats.templateEvictions += this.#removeDomainTemplates(exporter, oldest, oldest.dataTemplates) +
          this.#removeDomainTemplates(exporter, oldest, oldest.optionTemplates);
        if (exporter.lastDomain === oldest) exporter.lastDomain = undefined;
      }
      d = {
        key,
        next: -1,
        backNext: -1,
        samplingDefault: 0,
        samplers: undefined,
        systemInitMs: NaN,
        icmp6Swapped: false,
        dataTemplates: undefined,
        optionTemplates: undefined,
      };
      domains.set(key, d);
    }
    exporter.lastDomain = d;
    return d;
  }

  // -------------------------------------------------------------------------------------------------
  // Persistence

  /**
   * JSON-serialisable state: templates, options templates, announced sampling and system init times.
   * Held data and sequence positions are not included (they are stale after a restart).
   */
  snapshot(): unknown {
    const exporters = [];
    for (const e of this.#exporters.values()) {
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
        if (d.samplingDefault <= 0 && d.samplers === undefined && !(d.systemInitMs > 0)) continue;
        domains.push({
          domain: d.key % TWO32,
          version,
          sampling: d.samplingDefault,
          samplers: d.samplers ? [...d.samplers] : [],
          systemInitMs: d.systemInitMs > 0 ? d.systemInitMs : 0,
        });
      }
      if (templates.length > 0 || domains.length > 0) {
        exporters.push({ address: e.address, templates, domains });
      }
    }
    return { format: SNAPSHOT_FORMAT, version: 1, exporters };
  }

  /**
   * Restores a {@link snapshot}. Validates everything: malformed entries are skipped, and the bounds of
   * the wire apply (fields per template, template count and bytes per exporter and in total): what
   * exceeds them is refused or evicted and counted as it would be live. Returns the templates restored.
   */
  restore(state: unknown): number {
    if (!isObject(state) || state.format !== SNAPSHOT_FORMAT || state.version !== 1) return 0;
    if (!Array.isArray(state.exporters)) return 0;
    let restored = 0;
    for (const ex of state.exporters.slice(0, this.#opts.maxExporters)) {
      if (!isObject(ex) || typeof ex.address !== "string" || ex.address.length > 256) continue;
      const exporter = this.#touchExporter(ex.address);
      if (Array.isArray(ex.domains)) {
        for (const d of ex.domains) {
          if (!isObject(d) || !isUint(d.domain, TWO32 - 1) || (d.version !== 9 && d.version !== 10)) continue;
          const domain = this.#touchDomain(exporter, d.version, d.domain);
          if (isUint(d.sampling, TWO32) && d.sampling > 0) domain.samplingDefault = d.sampling;
          if (isUint(d.systemInitMs, Number.MAX_SAFE_INTEGER) && d.systemInitMs > 0) {
            domain.systemInitMs = d.systemInitMs;
          }
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
      for (const t of ex.templates.slice(0, this.#opts.maxTemplatesPerExporter)) {
        if (!isObject(t) || !isUint(t.domain, TWO32 - 1) || (t.version !== 9 && t.version !== 10)) continue;
        if (!isUint(t.id, 65535) || t.id < 256 || typeof t.options !== "boolean") continue;
        if (!isUint(t.scope, 65535) || !Array.isArray(t.fields) || t.fields.length === 0) continue;
        if (t.fields.length > this.#opts.maxFieldsPerTemplate) {
          this.stats.templatesRefused++; // the same bound as on the wire
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
        const domain = this.#touchDomain(exporter, t.version, t.domain);
        const spec: TemplateSpec = {
          version: t.version,
          templateId: t.id,
          options: t.options,
          scopeCount: t.options ? t.scope : 0,
          fields,
        };
        if (this.#install(exporter, domain, spec) === undefined) restored++;
      }
    }
    return restored;
  }
}

// ---------------------------------------------------------------------------------------------------
// Helpers

/** Sets the packet's error unless an earlier one is already there (the first problem is the cause). */
function fail(packet: ExportPacket, kind: string, message: string): void {
  if (packet.error === undefined) packet.error = { kind, message };
}

/**
 * The offset after `count` field specifiers from `p` (IPFIX: 8 octets when the enterprise bit is set), or
 * −1 when they run past `end`. Lets a refused template be stepped over without keeping anything.
 */
function skipFieldSpecs(view: DataView, p: number, end: number, count: number, ipfix: boolean): number {
  for (let i = 0; i < count; i++) {
    if (end - p < 4) return -1;
    const enterprise = ipfix && (view.getUint8(p) & 0x80) !== 0;
    p += enterprise ? 8 : 4;
    if (p > end) return -1;
  }
  return p;
}

function allZero(bytes: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (bytes[i] !== 0) return false;
  return true;
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
  return c;
}

/**
 * Flow start/end from the time elements, with SPEC §2 precedence: milliseconds > micro/nanoseconds >
 * seconds > delta microseconds (relative to the export time). A duration (161/162) fills a missing side.
 * Uptime-based times (21/22) stay in first/lastSwitched for time.ts.
 */
function resolveTimes(flow: Flow, t: Float64Array, exportTimeMs: number): void {
  let s = t[T_START_MS];
  if (s !== s) s = t[T_START_NTP];
  if (s !== s) s = t[T_START_S];
  if (s !== s && t[T_START_DELTA] === t[T_START_DELTA]) s = exportTimeMs - t[T_START_DELTA] / 1000;
  let e = t[T_END_MS];
  if (e !== e) e = t[T_END_NTP];
  if (e !== e) e = t[T_END_S];
  if (e !== e && t[T_END_DELTA] === t[T_END_DELTA]) e = exportTimeMs - t[T_END_DELTA] / 1000;
  const d = t[T_DURATION];
  if (d === d) {
    if (s === s && e !== e && flow.lastSwitched === undefined) e = s + d;
    else if (e === e && s !== s && flow.firstSwitched === undefined) s = e - d;
  }
  if (s === s) flow.startMs = s;
  if (e === e) flow.endMs = e;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isUint(v: unknown, max: number): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= max;
}
