/**
 * The records of one set, with a compiled plan: data records become flows (times, ICMP type/code and
 * sampling resolved per flow, from the domain's options data and the configuration); options records
 * update the domain's sampling and system init time. Also the per-datagram flow limit's refusal.
 */
import { configuredInterval, fallbackInterval, type TemplateDecoderOptions } from "./decoder_options.ts";
import type { TemplateDecoderStats } from "./decoder_stats.ts";
import { type DomainState, MAX_SAMPLERS_PER_DOMAIN } from "./exporter_state.ts";
import { resolveIcmp } from "./icmp.ts";
import { announce, emptyNames, keptName, nameFlow } from "./option_names.ts";
import type { Plan } from "./templates.ts";
import {
  announcedInterval,
  decodeDataRecord,
  decodeOptionsRecord,
  RecordScratch,
  recordsEnd,
  T_DURATION,
  T_END_DELTA,
  T_END_MS,
  T_END_NTP,
  T_END_S,
  T_EVENT_MS,
  T_START_DELTA,
  T_START_MS,
  T_START_NTP,
  T_START_S,
} from "./records.ts";
import { type ExportPacket, fail, type Flow } from "./types.ts";

/** Per-packet values the record loop needs. */
export interface PacketContext {
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

export class RecordSetDecoder {
  readonly #opts: TemplateDecoderOptions;
  readonly #stats: TemplateDecoderStats;
  readonly #rec = new RecordScratch();

  constructor(options: TemplateDecoderOptions, stats: TemplateDecoderStats) {
    this.#opts = options;
    this.#stats = stats;
  }

  /** What the data sets of `packet` from `domain` need: its times and the sampling that applies. */
  context(packet: ExportPacket, domain: DomainState): PacketContext {
    const override = configuredInterval(this.#opts, packet.exporterAddress);
    let fallback = domain.samplingDefault;
    const samplers = domain.samplers;
    if (fallback <= 0 && samplers !== undefined && samplers.size === 1) {
      fallback = samplers.values().next().value!;
    }
    if (fallback <= 0) fallback = fallbackInterval(this.#opts, packet.exporterAddress);
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

  /** Decodes the data records of one set into `ctx.packet.flows`. Returns the number of records. */
  dataSet(
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
      if (ctx.domain.names !== undefined) nameFlow(flow, ctx.domain.names);
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
  optionsSet(
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
      this.#announceNames(rec, domain);
      n++;
      off = next;
    }
    this.#stats.optionsRecords += n;
    packet.optionsRecordCount = (packet.optionsRecordCount ?? 0) + n;
    return n;
  }

  /** The interface, VRF or application an options record names, into the domain's tables. */
  #announceNames(rec: RecordScratch, domain: DomainState): void {
    const ifName = keptName(rec.optIfName), ifDescription = keptName(rec.optIfDescription);
    const vrfName = keptName(rec.optVrfName);
    const appName = keptName(rec.optAppName), appDescription = keptName(rec.optAppDescription);
    const ifEntry = rec.optIfIndex >= 0 && (ifName !== undefined || ifDescription !== undefined);
    const vrfEntry = rec.optVrfId >= 0 && vrfName !== undefined;
    const appEntry = rec.optAppId !== undefined && (appName !== undefined || appDescription !== undefined);
    if (!ifEntry && !vrfEntry && !appEntry) return;
    const names = domain.names ??= emptyNames();
    const budget = { stats: this.#stats, max: this.#opts.maxOptionNames };
    if (ifEntry) {
      announce(names, names.interfaces, rec.optIfIndex, { name: ifName, description: ifDescription }, budget);
    }
    if (vrfEntry) announce(names, names.vrfs, rec.optVrfId, vrfName!, budget);
    if (appEntry) {
      announce(
        names,
        names.applications,
        rec.optAppId!,
        { name: appName, description: appDescription },
        budget,
      );
    }
  }

  /** Packet refused by `maxFlowsPerPacket`: its error says why it has no flows (it overrides others). */
  refuseFlows(packet: ExportPacket, count: number): void {
    this.#stats.packetsOverFlowLimit++;
    packet.error = {
      kind: "too_many_flows",
      message: `${count} flow records in one datagram (limit ${this.#opts.maxFlowsPerPacket})`,
    };
  }
}

/**
 * Flow start/end from the time elements, with SPEC §2 precedence: milliseconds > micro/nanoseconds >
 * seconds > delta microseconds (relative to the export time). A duration (161/162) fills a missing side,
 * and then an event time (323) a missing end, or both sides of a record that has neither.
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
  // NSEL events (Cisco ASA/FTD): a record with only its event time spans that instant; a teardown with
  // its start (152) but no end ends at the event.
  const ev = t[T_EVENT_MS];
  if (ev === ev && e !== e && flow.lastSwitched === undefined) {
    if (s === s) e = ev;
    else if (flow.firstSwitched === undefined) s = e = ev;
  }
  if (s === s) flow.startMs = s;
  if (e === e) flow.endMs = e;
}
