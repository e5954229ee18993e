/** Flow start/end in absolute time (SPEC §2). Pure arithmetic, no clock reads. */
import type { ExportPacket, Flow } from "./types.ts";

/** A computed time later than export time + this is impossible. */
const FUTURE_SLACK_MS = 5_000;
/** A computed time earlier than export time − this is implausible. */
const MAX_AGE_MS = 24 * 3600 * 1000;
/**
 * The latest time the wire can carry, 2262-04-11: OTLP times are fixed64 nanoseconds since the epoch, but
 * readers that take them as signed int64 break at 2^63 ns.
 */
export const MAX_WIRE_TIME_MS = 9_223_372_036_854;

/** `ms` clamped to what the wire carries: 0 ("unknown" in OTLP) for NaN and times before the epoch. */
export function wireTimeMs(ms: number): number {
  return ms > 0 ? (ms <= MAX_WIRE_TIME_MS ? ms : MAX_WIRE_TIME_MS) : 0;
}

/**
 * The time a packet's times are checked against: its export time when that can be one, else the receive
 * time. An exporter with an unset clock sends 0; nothing before the epoch or after 2262 can be placed.
 */
export function referenceTimeMs(packet: ExportPacket): number {
  const t = packet.exportTimeMs;
  return t !== undefined && t > 0 && t <= MAX_WIRE_TIME_MS ? t : packet.receivedAtMs;
}

export interface FlowTimes {
  startMs: number;
  endMs: number;
  /** True when a computed time was replaced by the receive time or the end was clamped to the start. */
  adjusted: boolean;
}

/**
 * Milliseconds between two 32-bit uptime readings, `later − earlier`, as a signed 32-bit difference:
 * a counter that wrapped (every 49.7 days) between the two still gives the true small difference.
 */
export function uptimeDelta(later: number, earlier: number): number {
  return (later - earlier) | 0;
}

/**
 * Absolute start/end of `flow`, from the exporter's own clock, checked for plausibility. Written into `out`
 * when given (the span writers reuse one object per packet) and returned.
 */
export function flowTimes(flow: Flow, packet: ExportPacket, out?: FlowTimes): FlowTimes {
  const reference = referenceTimeMs(packet);
  let start: number | undefined = flow.startMs;
  let end: number | undefined = flow.endMs;
  if (start === undefined && flow.firstSwitched !== undefined) {
    start = fromUptime(flow.firstSwitched, flow, packet);
  }
  if (end === undefined && flow.lastSwitched !== undefined) {
    end = fromUptime(flow.lastSwitched, flow, packet);
  }
  // A time the record has but that is impossible, or that cannot be placed (uptime-relative with no system
  // init time known), is replaced by the receive time and marked; a record without times just takes it.
  let adjusted = false;
  if (!plausible(start, reference)) {
    adjusted = start !== undefined || flow.firstSwitched !== undefined;
    start = packet.receivedAtMs;
  }
  if (!plausible(end, reference)) {
    adjusted ||= end !== undefined || flow.lastSwitched !== undefined;
    end = packet.receivedAtMs;
  }
  if (end < start) {
    end = start;
    adjusted = true;
  }
  if (!out) return { startMs: start, endMs: end, adjusted };
  out.startMs = start;
  out.endMs = end;
  out.adjusted = adjusted;
  return out;
}

function plausible(t: number | undefined, reference: number): t is number {
  return t !== undefined && t > 0 && t <= MAX_WIRE_TIME_MS && t <= reference + FUTURE_SLACK_MS &&
    t >= reference - MAX_AGE_MS;
}

function fromUptime(uptimeMs: number, flow: Flow, packet: ExportPacket): number | undefined {
  if (packet.sysUptimeMs !== undefined && packet.exportTimeMs !== undefined) {
    return packet.exportTimeMs - uptimeDelta(packet.sysUptimeMs, uptimeMs);
  }
  if (flow.systemInitMs !== undefined) {
    // IPFIX flowStart/EndSysUpTime (22/21) are 32-bit milliseconds since systemInitTimeMilliseconds and
    // wrap every 49.7 days; the uptime at export time (from the full-width init time) tells which lap.
    const reference = packet.exportTimeMs ?? packet.receivedAtMs;
    // The export time has whole-second resolution, so within an exporter's first second it can lie just
    // before the init time: a small negative uptime, which the signed 32-bit difference handles too.
    const uptimeAtExport = reference - flow.systemInitMs;
    const lap = ((uptimeAtExport % 4294967296) + 4294967296) % 4294967296;
    return reference - uptimeDelta(lap, uptimeMs);
  }
  return undefined;
}
