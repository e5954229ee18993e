/**
 * The record loops that run a compiled {@link Plan}: a data record into a {@link Flow} (plus scratch
 * values for times, sampler id and ICMP), an options record into sampling values, and stepping over or
 * counting records without decoding them. A single pass with a `switch` per field: no table or map
 * lookups in the hot loop.
 */
import { hexAt, ipv4At, ipv6At, macAt } from "./addresses.ts";
import { Kind } from "./element_roles.ts";
import { ICMP_SLOTS } from "./icmp.ts";
import { MAX_NAME_LENGTH } from "./option_names.ts";
import type { Plan } from "./templates.ts";
import type { Flow } from "./types.ts";
import { clamp, intAt, isInt, MAX_INT, ntpAt, stringAt, uintAt } from "./values.ts";
import { VARIABLE_LENGTH, variableLength } from "./variable_length.ts";

/** Octets of an announced name read at most (UTF-8: room for MAX_NAME_LENGTH characters of most scripts). */
const MAX_NAME_BYTES = 4 * MAX_NAME_LENGTH;

/** Slots of {@link RecordScratch.times}, in precedence order per side (SPEC §2). */
export const T_START_MS = 0, T_START_NTP = 1, T_START_S = 2, T_START_DELTA = 3;
export const T_END_MS = 4, T_END_NTP = 5, T_END_S = 6, T_END_DELTA = 7, T_DURATION = 8, T_EVENT_MS = 9;

/** Per-record scratch values that are not Flow fields; reset by the caller when the plan needs it. */
export class RecordScratch {
  /** Times in ms (NaN = absent); the delta slots hold raw microseconds. */
  readonly times = new Float64Array(10);
  samplerId = -1;
  /** Raw ICMP element values in icmp.ts slot order (−1 = absent). */
  readonly icmp = new Float64Array(ICMP_SLOTS);
  // Options-record values (NaN / -1 = absent).
  optSamplerId = -1;
  optInterval = NaN;
  optAlgorithm = NaN;
  optMode = NaN;
  optRandomInterval = NaN;
  optPacketInterval = NaN;
  optPacketSpace = NaN;
  optSize = NaN;
  optPopulation = NaN;
  optProbability = NaN;
  optSysInit = NaN;
  // Options data naming ids (option_names.ts): −1 / undefined = absent.
  optIfIndex = -1;
  optVrfId = -1;
  optAppId: string | undefined = undefined;
  optIfName: string | undefined = undefined;
  optIfDescription: string | undefined = undefined;
  optVrfName: string | undefined = undefined;
  optAppName: string | undefined = undefined;
  optAppDescription: string | undefined = undefined;

  resetTimes(): void {
    this.times.fill(NaN);
  }

  resetIcmp(): void {
    this.icmp.fill(-1);
  }

  resetOptions(): void {
    this.optSamplerId = -1;
    this.optInterval =
      this.optAlgorithm =
      this.optMode =
      this.optRandomInterval =
        NaN;
    this.optPacketInterval =
      this.optPacketSpace =
      this.optSize =
      this.optPopulation =
        NaN;
    this.optProbability = this.optSysInit = NaN;
    this.optIfIndex = this.optVrfId = -1;
    this.optAppId = this.optIfName = this.optIfDescription = undefined;
    this.optVrfName = this.optAppName = this.optAppDescription = undefined;
  }
}

function setExtra(flow: Flow, key: string, value: string | number | boolean): void {
  const extra = flow.extra;
  if (extra === undefined) flow.extra = { [key]: value };
  else extra[key] = value;
}

/**
 * Decodes one data record at `off` into `flow` (and `rec` for times, sampler id and ICMP elements). Returns
 * the offset after the record, or −1 when a field would run past `end` (the caller reports it; nothing loops).
 */
export function decodeDataRecord(
  plan: Plan,
  bytes: Uint8Array,
  view: DataView,
  off: number,
  end: number,
  flow: Flow,
  rec: RecordScratch,
): number {
  const code = plan.code, keys = plan.keys;
  const times = rec.times;
  for (let i = 0; i < code.length; i++) {
    const c = code[i];
    let len = c & 0xffff;
    if (len === VARIABLE_LENGTH) {
      const v = variableLength(bytes, off, end);
      if (v < 0) return -1;
      off += v & 3;
      len = v >> 2;
    }
    if (off + len > end) return -1;
    const kind: Kind = c >> 16;
    switch (kind) {
      case Kind.Skip:
        break;
      case Kind.Bytes: {
        const v = uintAt(bytes, view, off, len);
        flow.bytes = v > MAX_INT ? clamp(flow) : v;
        break;
      }
      case Kind.Packets: {
        const v = uintAt(bytes, view, off, len);
        flow.packets = v > MAX_INT ? clamp(flow) : v;
        break;
      }
      // A fallback element fills the reverse counter only where the preferred one has not.
      case Kind.RevBytesFallback:
        if (flow.reverseBytes !== undefined) break;
        // falls through
      case Kind.RevBytes: {
        const v = uintAt(bytes, view, off, len);
        flow.reverseBytes = v > MAX_INT ? clamp(flow) : v;
        break;
      }
      case Kind.RevPacketsFallback:
        if (flow.reversePackets !== undefined) break;
        // falls through
      case Kind.RevPackets: {
        const v = uintAt(bytes, view, off, len);
        flow.reversePackets = v > MAX_INT ? clamp(flow) : v;
        break;
      }
      case Kind.Protocol:
        flow.protocol = uintAt(bytes, view, off, len);
        break;
      case Kind.Tos:
        flow.tos = uintAt(bytes, view, off, len);
        break;
      case Kind.TcpFlags:
        flow.tcpFlags = uintAt(bytes, view, off, len);
        break;
      case Kind.SrcPort:
        flow.srcPort = uintAt(bytes, view, off, len);
        break;
      case Kind.DstPort:
        flow.dstPort = uintAt(bytes, view, off, len);
        break;
      // An all-zero address never overrides one already set (templates carrying both v4 and v6 fields).
      case Kind.SrcV4:
        if (flow.srcAddr === undefined || view.getUint32(off) !== 0) {
          flow.srcAddr = ipv4At(bytes, off);
          flow.ipVersion = 4;
        }
        break;
      case Kind.DstV4:
        if (flow.dstAddr === undefined || view.getUint32(off) !== 0) flow.dstAddr = ipv4At(bytes, off);
        break;
      case Kind.SrcV6:
        if (flow.srcAddr === undefined || !zero16(view, off)) {
          flow.srcAddr = ipv6At(bytes, off);
          flow.ipVersion = 6;
        }
        break;
      case Kind.DstV6:
        if (flow.dstAddr === undefined || !zero16(view, off)) flow.dstAddr = ipv6At(bytes, off);
        break;
      case Kind.SrcMask:
        flow.srcMask = uintAt(bytes, view, off, len);
        break;
      case Kind.DstMask:
        flow.dstMask = uintAt(bytes, view, off, len);
        break;
      case Kind.InIf:
        flow.inputIf = uintAt(bytes, view, off, len);
        break;
      case Kind.OutIf:
        flow.outputIf = uintAt(bytes, view, off, len);
        break;
      case Kind.NextHopV4:
        if (flow.nextHop === undefined || view.getUint32(off) !== 0) flow.nextHop = ipv4At(bytes, off);
        break;
      case Kind.NextHopV6:
        if (flow.nextHop === undefined || !zero16(view, off)) flow.nextHop = ipv6At(bytes, off);
        break;
      case Kind.SrcAs:
        flow.srcAs = uintAt(bytes, view, off, len);
        break;
      case Kind.DstAs:
        flow.dstAs = uintAt(bytes, view, off, len);
        break;
      case Kind.Direction:
        flow.direction = uintAt(bytes, view, off, len);
        break;
      case Kind.IpVersion: {
        const v = uintAt(bytes, view, off, len);
        if (v === 4 || v === 6) flow.ipVersion = v;
        break;
      }
      case Kind.First:
        flow.firstSwitched = uintAt(bytes, view, off, len);
        break;
      case Kind.Last:
        flow.lastSwitched = uintAt(bytes, view, off, len);
        break;
      case Kind.SysInit: {
        const v = uintAt(bytes, view, off, len);
        if (v > 0) flow.systemInitMs = v;
        break;
      }
      case Kind.SamplerId:
        rec.samplerId = uintAt(bytes, view, off, len);
        setExtra(flow, keys[i], rec.samplerId);
        break;
      case Kind.SamplingInterval: {
        const v = uintAt(bytes, view, off, len);
        if (v > 0) flow.samplingInterval = v;
        break;
      }
      case Kind.IcmpTypeCodeV4:
      case Kind.IcmpTypeCodeV6:
      case Kind.IcmpTypeV4:
      case Kind.IcmpCodeV4:
      case Kind.IcmpTypeV6:
      case Kind.IcmpCodeV6: {
        const v = uintAt(bytes, view, off, len);
        rec.icmp[kind - Kind.IcmpTypeCodeV4] = v;
        setExtra(flow, keys[i], v);
        break;
      }
      case Kind.StartSec: {
        const v = uintAt(bytes, view, off, len);
        if (v > 0) times[T_START_S] = v * 1000;
        break;
      }
      case Kind.EndSec: {
        const v = uintAt(bytes, view, off, len);
        if (v > 0) times[T_END_S] = v * 1000;
        break;
      }
      case Kind.StartMs: {
        const v = uintAt(bytes, view, off, len);
        if (v > 0) times[T_START_MS] = v;
        break;
      }
      case Kind.EndMs: {
        const v = uintAt(bytes, view, off, len);
        if (v > 0) times[T_END_MS] = v;
        break;
      }
      case Kind.StartNtp:
        times[T_START_NTP] = ntpAt(view, off);
        break;
      case Kind.EndNtp:
        times[T_END_NTP] = ntpAt(view, off);
        break;
      case Kind.StartDelta:
        times[T_START_DELTA] = uintAt(bytes, view, off, len);
        break;
      case Kind.EndDelta:
        times[T_END_DELTA] = uintAt(bytes, view, off, len);
        break;
      case Kind.DurMs:
        times[T_DURATION] = uintAt(bytes, view, off, len);
        break;
      case Kind.DurUs:
        times[T_DURATION] = uintAt(bytes, view, off, len) / 1000;
        break;
      case Kind.EventMs: {
        const v = uintAt(bytes, view, off, len);
        if (v > 0) times[T_EVENT_MS] = v;
        break;
      }
      case Kind.XUint:
        if (isInt(len)) {
          const v = uintAt(bytes, view, off, len);
          setExtra(flow, keys[i], v > MAX_INT ? clamp(flow) : v);
        } else setExtra(flow, keys[i], hexAt(bytes, off, len));
        break;
      case Kind.XInt:
        if (isInt(len)) {
          const v = intAt(bytes, view, off, len);
          if (v === MAX_INT || v === -MAX_INT) clamp(flow); // intAt clamps; this marks the flow
          setExtra(flow, keys[i], v);
        } else setExtra(flow, keys[i], hexAt(bytes, off, len));
        break;
      case Kind.XFloat:
        setExtra(
          flow,
          keys[i],
          len === 4 ? view.getFloat32(off) : len === 8 ? view.getFloat64(off) : hexAt(bytes, off, len),
        );
        break;
      case Kind.XBool:
        // RFC 7011 §6.1.5: 1 = true, 2 = false.
        if (len === 1 && (bytes[off] === 1 || bytes[off] === 2)) setExtra(flow, keys[i], bytes[off] === 1);
        else setExtra(flow, keys[i], hexAt(bytes, off, len));
        break;
      case Kind.XMac:
        setExtra(flow, keys[i], len === 6 ? macAt(bytes, off) : hexAt(bytes, off, len));
        break;
      case Kind.XString:
        setExtra(flow, keys[i], stringAt(bytes, off, len));
        break;
      case Kind.XV4:
        setExtra(flow, keys[i], len === 4 ? ipv4At(bytes, off) : hexAt(bytes, off, len));
        break;
      case Kind.XV6:
        setExtra(flow, keys[i], len === 16 ? ipv6At(bytes, off) : hexAt(bytes, off, len));
        break;
      case Kind.XDateS:
        if (isInt(len)) {
          const v = uintAt(bytes, view, off, len) * 1000;
          setExtra(flow, keys[i], v > MAX_INT ? clamp(flow) : v);
        } else setExtra(flow, keys[i], hexAt(bytes, off, len));
        break;
      case Kind.XDateMs:
        if (isInt(len)) {
          const v = uintAt(bytes, view, off, len);
          setExtra(flow, keys[i], v > MAX_INT ? clamp(flow) : v);
        } else setExtra(flow, keys[i], hexAt(bytes, off, len));
        break;
      case Kind.XDateNtp:
        if (len === 8) {
          const t = ntpAt(view, off);
          if (t === t) setExtra(flow, keys[i], t);
        } else setExtra(flow, keys[i], hexAt(bytes, off, len));
        break;
      default: // XHex and anything unforeseen
        setExtra(flow, keys[i], hexAt(bytes, off, len));
    }
    off += len;
  }
  return off;
}

function zero16(view: DataView, off: number): boolean {
  return (view.getUint32(off) | view.getUint32(off + 4) | view.getUint32(off + 8) |
    view.getUint32(off + 12)) === 0;
}

/** Decodes one options data record into `rec`'s `opt*` values. Same contract as {@link decodeDataRecord}. */
export function decodeOptionsRecord(
  plan: Plan,
  bytes: Uint8Array,
  view: DataView,
  off: number,
  end: number,
  rec: RecordScratch,
): number {
  const code = plan.code;
  for (let i = 0; i < code.length; i++) {
    const c = code[i];
    let len = c & 0xffff;
    if (len === VARIABLE_LENGTH) {
      const v = variableLength(bytes, off, end);
      if (v < 0) return -1;
      off += v & 3;
      len = v >> 2;
    }
    if (off + len > end) return -1;
    const kind: Kind = c >> 16;
    if (kind >= Kind.OptAppId) {
      // Names: text (a bounded prefix: option_names.ts keeps at most MAX_NAME_LENGTH characters of it).
      if (kind === Kind.OptAppId) rec.optAppId = len <= 32 ? hexAt(bytes, off, len) : undefined;
      else {
        const text = stringAt(bytes, off, Math.min(len, MAX_NAME_BYTES));
        if (kind === Kind.OptIfName) rec.optIfName = text;
        else if (kind === Kind.OptIfDescription) rec.optIfDescription = text;
        else if (kind === Kind.OptVrfName) rec.optVrfName = text;
        else if (kind === Kind.OptAppName) rec.optAppName = text;
        else rec.optAppDescription = text;
      }
    } else if (kind !== Kind.Skip) {
      if (kind === Kind.OptProbability) {
        if (len === 4) rec.optProbability = view.getFloat32(off);
        else if (len === 8) rec.optProbability = view.getFloat64(off);
      } else if (isInt(len)) {
        const v = uintAt(bytes, view, off, len);
        switch (kind) {
          case Kind.OptSamplerId:
            rec.optSamplerId = v;
            break;
          case Kind.OptInterval:
            rec.optInterval = v;
            break;
          case Kind.OptAlgorithm:
            rec.optAlgorithm = v;
            break;
          case Kind.OptMode:
            rec.optMode = v;
            break;
          case Kind.OptRandomInterval:
            rec.optRandomInterval = v;
            break;
          case Kind.OptPacketInterval:
            rec.optPacketInterval = v;
            break;
          case Kind.OptPacketSpace:
            rec.optPacketSpace = v;
            break;
          case Kind.OptSize:
            rec.optSize = v;
            break;
          case Kind.OptPopulation:
            rec.optPopulation = v;
            break;
          case Kind.OptSysInit:
            rec.optSysInit = v;
            break;
          case Kind.OptIfIndex:
            rec.optIfIndex = v;
            break;
          case Kind.OptVrfId:
            rec.optVrfId = v;
            break;
        }
      }
    }
    off += len;
  }
  return off;
}

/**
 * Where the records of a set end: the offset after its last non-zero octet. Trailing zero octets are
 * padding (RFC 7011 §3.3.1, RFC 3954 §5.3: padding octets are zero), never records, so a template whose
 * smallest record fits in the padding (variable-length fields only) does not turn it into empty flows.
 * One backward scan per set, then an O(1) test per record.
 */
export function recordsEnd(bytes: Uint8Array, off: number, end: number): number {
  while (end > off && bytes[end - 1] === 0) end--;
  return end;
}

/** True when `bytes[from, to)` are all zero octets (padding). */
export function allZero(bytes: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** The offset after the record at `off`, without decoding it, or −1 when it runs past `end`. */
export function skipRecord(plan: Plan, bytes: Uint8Array, off: number, end: number): number {
  if (!plan.variable) return off + plan.minLength <= end ? off + plan.minLength : -1;
  const code = plan.code;
  for (let i = 0; i < code.length; i++) {
    let len = code[i] & 0xffff;
    if (len === VARIABLE_LENGTH) {
      const v = variableLength(bytes, off, end);
      if (v < 0) return -1;
      off += v & 3;
      len = v >> 2;
    }
    if (off + len > end) return -1;
    off += len;
  }
  return off;
}

/**
 * How many records the set body `off`–`end` yields, by the rules the record loops follow (a record
 * starts before {@link recordsEnd} and leaves at least `minLength` octets; a record that runs past the
 * set ends the count). Costs O(set bytes) at most, and O(1) for templates without variable-length fields.
 */
export function countRecords(plan: Plan, bytes: Uint8Array, off: number, end: number): number {
  const stop = recordsEnd(bytes, off, end);
  const min = plan.minLength;
  if (!plan.variable) {
    if (stop <= off || end - off < min) return 0;
    // Records start at off + k·min: they must start before `stop` and end by `end`.
    return Math.min(Math.floor((end - off) / min), Math.ceil((stop - off) / min));
  }
  let n = 0;
  while (off < stop && end - off >= min) {
    const next = skipRecord(plan, bytes, off, end);
    if (next < 0) break;
    n++;
    off = next;
  }
  return n;
}

/**
 * The 1-in-N interval an options record announces, or 0 when it announces none. Precedence: Cisco's
 * samplerRandomInterval (50), samplingInterval (34), systematic count-based interval/space (305/306,
 * N = (interval + space) / interval), random n-out-of-N (309/310, N = population / size), probability
 * (311, N = 1 / p). Non-integral results are rounded.
 */
export function announcedInterval(rec: RecordScratch): number {
  let n = 0;
  if (rec.optRandomInterval > 0) n = rec.optRandomInterval;
  else if (rec.optInterval > 0) n = rec.optInterval;
  else if (rec.optPacketInterval > 0 && rec.optPacketSpace >= 0) {
    n = (rec.optPacketInterval + rec.optPacketSpace) / rec.optPacketInterval;
  } else if (rec.optSize > 0 && rec.optPopulation > 0) n = rec.optPopulation / rec.optSize;
  else if (rec.optProbability > 0 && rec.optProbability <= 1) n = 1 / rec.optProbability;
  if (!(n >= 1) || !Number.isFinite(n)) return 0;
  return Math.round(n);
}
