/**
 * NetFlow v9 (RFC 3954) and IPFIX (RFC 7011): one set walker and one record decoder for both, a bounded
 * template cache per (exporter address, source id / observation domain, template id), options data
 * (sampling, system init time), data sets held until their template arrives, and sequence accounting.
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
  decodeDataRecord,
  decodeOptionsRecord,
  type Plan,
  RecordScratch,
  specSignature,
  T_DURATION,
  T_END_DELTA,
  T_END_MS,
  T_END_NTP,
  T_END_S,
  T_START_DELTA,
  T_START_MS,
  T_START_NTP,
  T_START_S,
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
import type { ExportPacket, Flow } from "./types.ts";

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
  /** Data sets held waiting for a template, in total. 0 disables holding. Default 1,024. */
  maxPendingSets: number;
  /** Data sets held per exporter. Default 64. */
  maxPendingSetsPerExporter: number;
  /** Bytes held waiting for templates, in total. Default 4 MiB. */
  maxPendingBytes: number;
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
  maxPendingSets: 1_024,
  maxPendingSetsPerExporter: 64,
  maxPendingBytes: 4 * 1024 * 1024,
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
  /** Templates evicted by the per-exporter bound. */
  templateEvictions: number;
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
}

interface ExporterState {
  address: string;
  /** domain key × 65536 + template id → plan; insertion order = least recently defined first. */
  templates: Map<number, Plan>;
  domains: Map<number, DomainState>;
  lastDomain: DomainState | undefined;
  pending: PendingEntry[];
  pendingSets: number;
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
    exporterEvictions: 0,
    domainEvictions: 0,
    pendingSets: 0,
    pendingBytes: 0,
    pendingReleased: 0,
    pendingDropped: 0,
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
        "maxPendingSets",
        "maxPendingSetsPerExporter",
        "maxPendingBytes",
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
    let records = 0;
    for (let i = 0; i < nSets; i++) {
      const plan = exporter.templates.get(base + sets[3 * i]);
      if (plan !== undefined && plan.spec.options) {
        records += this.#optionsSet(plan, bytes, view, sets[3 * i + 1], sets[3 * i + 2], domain, packet);
      }
    }
    // Pass 3: data sets.
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

    if (templatesArrived && exporter.pendingSets > 0) {
      const released = this.#release(exporter);
      if (released.length > 0) return [packet, ...released];
    }
    return [packet];
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
    let defined = false;
    while (end - off >= 4) {
      if (allZero(bytes, off, end)) break; // set padding
      const templateId = view.getUint16(off);
      let fieldCount: number, scopeCount = 0, p: number;
      if (!ipfix && options) {
        if (end - off < 6) {
          fail(packet, "bad_template", `options template ${templateId}: truncated header`);
          break;
        }
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
      } else {
        fieldCount = view.getUint16(off + 2);
        p = off + 4;
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
      const ids: number[] = [], lengths: number[] = [], pens: number[] = [];
      let overflow = false;
      for (let i = 0; i < fieldCount; i++) {
        if (end - p < 4) {
          overflow = true;
          break;
        }
        let id = view.getUint16(p);
        const length = view.getUint16(p + 2);
        p += 4;
        let pen = 0;
        if (ipfix && (id & 0x8000) !== 0) {
          if (end - p < 4) {
            overflow = true;
            break;
          }
          pen = view.getUint32(p);
          p += 4;
          id &= 0x7fff;
        }
        ids.push(id);
        lengths.push(length);
        pens.push(pen);
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
        ids,
        lengths,
        pens,
      };
      const error = this.#install(exporter, domain, spec);
      if (error !== undefined) {
        fail(packet, "bad_template", error);
        break;
      }
      defined = true;
      off = p;
    }
    return defined;
  }

  /** Adds or replaces a template. Returns an error message when it cannot be compiled. */
  #install(exporter: ExporterState, domain: DomainState, spec: TemplateSpec): string | undefined {
    const key = domain.key * 65536 + spec.templateId;
    const templates = exporter.templates;
    const existing = templates.get(key);
    let plan: Plan | string;
    if (existing !== undefined && existing.signature === specSignature(spec)) {
      plan = existing; // re-sent unchanged: no recompilation
    } else {
      plan = compilePlan(spec, this.#compile);
      if (typeof plan === "string") return plan;
    }
    if (existing !== undefined) {
      templates.delete(key); // re-inserted below: most recently defined last
    } else {
      if (templates.size >= this.#opts.maxTemplatesPerExporter) {
        const oldest = templates.keys().next().value!;
        templates.delete(oldest);
        this.stats.templates--;
        this.stats.templateEvictions++;
      }
      this.stats.templates++;
    }
    templates.set(key, plan);
    if (this.stats.templates > this.#opts.maxTemplates) {
      for (const other of this.#exporters.values()) {
        if (this.stats.templates <= this.#opts.maxTemplates) break;
        if (other !== exporter) this.#evictExporter(other);
      }
    }
    return undefined;
  }

  #withdraw(exporter: ExporterState, domain: DomainState, templateId: number): void {
    if (exporter.templates.delete(domain.key * 65536 + templateId)) {
      this.stats.templates--;
      this.stats.templatesWithdrawn++;
    }
  }

  #withdrawAll(exporter: ExporterState, domain: DomainState, options: boolean): void {
    for (const [key, plan] of exporter.templates) {
      if (Math.floor(key / 65536) === domain.key && plan.spec.options === options) {
        exporter.templates.delete(key);
        this.stats.templates--;
        this.stats.templatesWithdrawn++;
      }
    }
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
    if (end - off < min) {
      if (!allZero(bytes, off, end)) {
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
    while (end - off >= min) {
      const flow: Flow = {};
      if (hasTimes) rec.resetTimes();
      if (hasSamplerId) rec.samplerId = -1;
      if (hasIcmp) rec.resetIcmp();
      const next = decodeDataRecord(plan, bytes, view, off, end, flow, rec);
      if (next < 0) {
        if (!allZero(bytes, off, end)) {
          fail(packet, "bad_length", `record ${n} of template ${plan.spec.templateId} runs past its set`);
        }
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
    let n = 0;
    while (end - off >= min) {
      rec.resetOptions();
      const next = decodeOptionsRecord(plan, bytes, view, off, end, rec);
      if (next < 0) {
        if (!allZero(bytes, off, end)) {
          fail(
            packet,
            "bad_length",
            `options record ${n} of template ${plan.spec.templateId} runs past its set`,
          );
        }
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
    if (
      this.stats.pendingSets >= o.maxPendingSets || exporter.pendingSets >= o.maxPendingSetsPerExporter ||
      this.stats.pendingBytes + size > o.maxPendingBytes
    ) {
      this.stats.pendingDropped++;
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
    this.stats.pendingSets++;
    this.stats.pendingBytes += size;
    return entry;
  }

  /** Decodes held sets whose template is now known; one deferred packet copy per original packet. */
  #release(exporter: ExporterState): ExportPacket[] {
    const out: ExportPacket[] = [];
    for (const entry of exporter.pending) {
      if (entry.done) continue;
      let copy: ExportPacket | undefined;
      const remaining: PendingSet[] = [];
      for (const set of entry.sets) {
        const domain = exporter.domains.get(set.domainKey);
        const plan = domain && exporter.templates.get(set.domainKey * 65536 + set.templateId);
        if (domain === undefined || plan === undefined) {
          remaining.push(set);
          continue;
        }
        copy ??= { ...headerCopy(entry.packet), deferred: true };
        const body = set.body;
        const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
        if (plan.spec.options) this.#optionsSet(plan, body, view, 0, body.length, domain, copy);
        else this.#dataSet(plan, body, view, 0, body.length, this.#context(copy, domain));
        exporter.pendingSets--;
        this.stats.pendingSets--;
        this.stats.pendingBytes -= body.length;
        this.stats.pendingReleased++;
      }
      if (copy === undefined) continue;
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
      domains: new Map(),
      lastDomain: undefined,
      pending: [],
      pendingSets: 0,
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
        const oldest = domains.keys().next().value!;
        domains.delete(oldest);
        this.stats.domainEvictions++;
        for (const k of exporter.templates.keys()) {
          if (Math.floor(k / 65536) === oldest) {
            exporter.templates.delete(k);
            this.stats.templates--;
            this.stats.templateEvictions++;
          }
        }
      }
      d = {
        key,
        next: -1,
        backNext: -1,
        samplingDefault: 0,
        samplers: undefined,
        systemInitMs: NaN,
        icmp6Swapped: false,
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
          fields: s.ids.map((id, i) => [id, s.lengths[i], s.pens[i]]),
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
   * Restores a {@link snapshot}. Validates everything: malformed entries are skipped, bounds apply.
   * Returns the number of templates restored.
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
        if (
          !isUint(t.scope, 65535) || !Array.isArray(t.fields) || t.fields.length === 0 ||
          t.fields.length > 65535
        ) {
          continue;
        }
        const ids: number[] = [], lengths: number[] = [], pens: number[] = [];
        let ok = true;
        for (const f of t.fields) {
          if (!Array.isArray(f) || !isUint(f[0], 65535) || !isUint(f[1], 65535) || !isUint(f[2], TWO32 - 1)) {
            ok = false;
            break;
          }
          ids.push(f[0]);
          lengths.push(f[1]);
          pens.push(f[2]);
        }
        if (!ok || (t.options && (t.version === 10 ? t.scope < 1 : false)) || t.scope > ids.length) continue;
        const domain = this.#touchDomain(exporter, t.version, t.domain);
        const spec: TemplateSpec = {
          version: t.version,
          templateId: t.id,
          options: t.options,
          scopeCount: t.options ? t.scope : 0,
          ids,
          lengths,
          pens,
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
