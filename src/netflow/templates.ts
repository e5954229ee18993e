/**
 * v9/IPFIX templates compiled into decoding plans, and the record decoder that runs them.
 *
 * A template is compiled once, when it arrives: every field gets a handler code (which {@link Flow} field
 * or which attribute it fills), its length and its attribute key. Decoding a record is then a single
 * pass over the plan with a `switch` per field: no table or map lookups in the hot loop.
 */
import { hexAt, ipv4At, ipv6At, macAt } from "./addresses.ts";
import { elementInfo, ElementType, REVERSE_PEN } from "./elements.ts";
import { ICMP_SLOTS } from "./icmp.ts";
import type { Flow } from "./types.ts";

/** IPFIX field length meaning "variable length" (RFC 7011 §7). */
export const VARIABLE_LENGTH = 65535;

/** Field handler codes. `Opt*` are used in options-template plans only. */
export enum Kind {
  Skip,
  Bytes,
  Packets,
  Protocol,
  Tos,
  TcpFlags,
  SrcPort,
  DstPort,
  SrcV4,
  DstV4,
  SrcV6,
  DstV6,
  SrcMask,
  DstMask,
  InIf,
  OutIf,
  NextHopV4,
  NextHopV6,
  SrcAs,
  DstAs,
  Direction,
  IpVersion,
  First,
  Last,
  SysInit,
  SamplerId,
  SamplingInterval,
  // ICMP elements 32, 139, 176, 177, 178, 179: in the order of the slots in icmp.ts (kind − IcmpTypeCodeV4).
  IcmpTypeCodeV4,
  IcmpTypeCodeV6,
  IcmpTypeV4,
  IcmpCodeV4,
  IcmpTypeV6,
  IcmpCodeV6,
  StartSec,
  EndSec,
  StartMs,
  EndMs,
  StartNtp,
  EndNtp,
  StartDelta,
  EndDelta,
  DurMs,
  DurUs,
  XUint,
  XInt,
  XFloat,
  XBool,
  XMac,
  XString,
  XHex,
  XV4,
  XV6,
  XDateS,
  XDateMs,
  XDateNtp,
  OptSamplerId,
  OptInterval,
  OptAlgorithm,
  OptMode,
  OptRandomInterval,
  OptPacketInterval,
  OptPacketSpace,
  OptSize,
  OptPopulation,
  OptProbability,
  OptSysInit,
}

/** Slots of {@link RecordScratch.times}, in precedence order per side (SPEC §2). */
export const T_START_MS = 0, T_START_NTP = 1, T_START_S = 2, T_START_DELTA = 3;
export const T_END_MS = 4, T_END_NTP = 5, T_END_S = 6, T_END_DELTA = 7, T_DURATION = 8;

/** A template as it arrived: enough to recompile it (persistence) and to tell redefinitions apart. */
export interface TemplateSpec {
  /** 9 or 10. */
  version: number;
  templateId: number;
  /** True for options templates. */
  options: boolean;
  /** Number of leading scope fields (options templates; 0 otherwise). */
  scopeCount: number;
  /**
   * Two words per field: element id (enterprise bit cleared for IPFIX) << 16 | length, then the PEN (0 =
   * IANA / v9). One typed array: 8 bytes a field, held as long as the exporter keeps the template.
   */
  fields: Uint32Array;
}

/** Field `i` of a spec: element id, length, PEN. */
export const specId = (s: TemplateSpec, i: number): number => s.fields[2 * i] >>> 16;
export const specLength = (s: TemplateSpec, i: number): number => s.fields[2 * i] & 0xffff;
export const specPen = (s: TemplateSpec, i: number): number => s.fields[2 * i + 1];

/**
 * A compiled template. Fields are packed into one typed array (plus their keys) rather than held as one
 * object each: about 8× less heap per field, which is what a hostile wide template pins.
 * Fixed-length fields of length 0 carry nothing and are left out, so every decoded field consumes at
 * least one byte of the record (a variable-length field its length byte): decoding a set costs O(its
 * bytes), however many fields the template has.
 */
export interface Plan {
  spec: TemplateSpec;
  /** Per decoded field: handler ({@link Kind}) << 16 | octets (or {@link VARIABLE_LENGTH}, IPFIX). */
  code: Int32Array;
  /** Attribute key per decoded field, for `extra` (empty when the field fills a Flow field). */
  keys: string[];
  /** Smallest possible record: fixed lengths + 1 octet per variable-length field. Always ≥ 1. */
  minLength: number;
  /** True when some field has variable length. */
  variable: boolean;
  /** True when some field fills {@link RecordScratch.times}. */
  hasTimes: boolean;
  /** True when records carry a sampler/selector id (48/302) to match options data against. */
  hasSamplerId: boolean;
  /** True when some field fills {@link RecordScratch.icmp}. */
  hasIcmp: boolean;
  /** Bytes this template is charged against the template byte budgets ({@link templateCost}). */
  cost: number;
}

/**
 * What a cached template is charged against the byte budgets, fixed once at compile time: its wire size,
 * plus a constant per field and per template for the heap of the spec and the compiled plan. Measured
 * with `--expose-gc` (heap + external after GC, 2,000 templates of 20 fields and 200 of 500, all kinds of
 * elements; test/hardening_bytes.test.ts prints the figure): 20–23 bytes per field (8 spec, 4 plan, 8 key
 * pointer) and about 750 bytes per template (objects, typed-array headers, map and index entries). The
 * charge exceeds the measured heap by 15% (20 fields) to 35% (500 fields).
 */
const TEMPLATE_FIELD_COST = 24;
const TEMPLATE_BASE_COST = 768;

export function templateCost(spec: TemplateSpec): number {
  let wire = spec.options ? 6 : 4;
  const n = spec.fields.length / 2;
  for (let i = 0; i < n; i++) wire += specPen(spec, i) !== 0 ? 8 : 4;
  return TEMPLATE_BASE_COST + wire + n * TEMPLATE_FIELD_COST;
}

/** Per-record scratch values that are not Flow fields; reset by the caller when the plan needs it. */
export class RecordScratch {
  /** Times in ms (NaN = absent); the delta slots hold raw microseconds. */
  readonly times = new Float64Array(9);
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
  }
}

export interface CompileOptions {
  /** Emit unknown elements as `netflow.field.*` hex. */
  unknownFields: boolean;
}

const isInt = (len: number) => len >= 1 && len <= 8;

/** True when two specs describe the same template (a re-sent template needs no recompilation). */
export function sameSpec(a: TemplateSpec, b: TemplateSpec): boolean {
  const x = a.fields, y = b.fields, n = x.length;
  if (a.version !== b.version || a.options !== b.options || a.scopeCount !== b.scopeCount || n !== y.length) {
    return false;
  }
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** Compiles a template into a plan, or returns an error message (bad template). */
export function compilePlan(spec: TemplateSpec, options: CompileOptions): Plan | string {
  const n = spec.fields.length / 2;
  if (n === 0) return `template ${spec.templateId} has no fields`;
  const ipfix = spec.version === 10;
  const present = new Set<number>();
  let decoded = 0;
  for (let i = 0; i < n; i++) {
    if (specLength(spec, i) === 0) continue;
    decoded++;
    if (specPen(spec, i) === 0) present.add(specId(spec, i));
  }
  const code = new Int32Array(decoded);
  const keys: string[] = new Array(decoded);
  let minLength = 0, variable = false, hasTimes = false, hasSamplerId = false, hasIcmp = false;
  let j = 0;
  for (let i = 0; i < n; i++) {
    const id = specId(spec, i), len = specLength(spec, i), pen = specPen(spec, i);
    if (len === 0) continue; // e.g. empty structured data (IEs 291–293): nothing to read, no attribute
    const isVariable = ipfix && len === VARIABLE_LENGTH;
    if (isVariable) {
      variable = true;
      minLength += 1;
    } else {
      minLength += len;
    }
    let kind: Kind, key = "";
    if (spec.options) {
      // v9 scope fields are scope *types* (system, interface, …), not information elements.
      const scopeV9 = !ipfix && i < spec.scopeCount;
      kind = scopeV9 || pen !== 0 ? Kind.Skip : optionKind(id, len);
    } else {
      kind = dataField(id, len, pen, present, options);
      key = compiledKey;
    }
    if (kind >= Kind.StartSec && kind <= Kind.DurUs) hasTimes = true;
    if (kind === Kind.SamplerId) hasSamplerId = true;
    if (kind >= Kind.IcmpTypeCodeV4 && kind <= Kind.IcmpCodeV6) hasIcmp = true;
    code[j] = (kind << 16) | len;
    keys[j] = key;
    j++;
  }
  if (minLength === 0) return `template ${spec.templateId} describes zero-length records`;
  return {
    spec,
    code,
    keys,
    minLength,
    variable,
    hasTimes,
    hasSamplerId,
    hasIcmp,
    cost: templateCost(spec),
  };
}

function optionKind(id: number, len: number): Kind {
  const int = isInt(len) || len === VARIABLE_LENGTH;
  switch (id) {
    case 48:
    case 302:
      return int ? Kind.OptSamplerId : Kind.Skip;
    case 34:
      return int ? Kind.OptInterval : Kind.Skip;
    case 35:
    case 304:
      return int ? Kind.OptAlgorithm : Kind.Skip;
    case 49:
      return int ? Kind.OptMode : Kind.Skip;
    case 50:
      return int ? Kind.OptRandomInterval : Kind.Skip;
    case 305:
      return int ? Kind.OptPacketInterval : Kind.Skip;
    case 306:
      return int ? Kind.OptPacketSpace : Kind.Skip;
    case 309:
      return int ? Kind.OptSize : Kind.Skip;
    case 310:
      return int ? Kind.OptPopulation : Kind.Skip;
    case 311:
      return len === 4 || len === 8 || len === VARIABLE_LENGTH ? Kind.OptProbability : Kind.Skip;
    case 160:
      return int ? Kind.OptSysInit : Kind.Skip;
    default:
      return Kind.Skip;
  }
}

/** Counter precedence: the first of these present in the template fills Flow.bytes / Flow.packets. */
const BYTE_COUNTERS = [1, 85, 23, 171];
const PACKET_COUNTERS = [2, 86, 24, 172];

function firstPresent(ids: number[], present: Set<number>): number {
  for (const id of ids) if (present.has(id)) return id;
  return -1;
}

/** The attribute key of the field {@link dataField} compiled last ("" when it fills a Flow field). */
let compiledKey = "";

/**
 * Keys built per field (unknown and reverse elements) are interned, so a thousand templates naming the
 * same element share one string. Bounded: past the limit keys are built fresh (and charged per field).
 */
const KEY_CACHE = new Map<string, string>();
const KEY_CACHE_LIMIT = 16_384;

function internKey(key: string): string {
  const known = KEY_CACHE.get(key);
  if (known !== undefined) return known;
  if (KEY_CACHE.size < KEY_CACHE_LIMIT) KEY_CACHE.set(key, key);
  return key;
}

/** The handler of one data-template field; its attribute key is left in {@link compiledKey}. */
function dataField(
  id: number,
  len: number,
  pen: number,
  present: Set<number>,
  options: CompileOptions,
): Kind {
  compiledKey = "";
  if (pen !== 0) {
    const info = pen === REVERSE_PEN ? elementInfo(id) : undefined;
    if (info) {
      compiledKey = internKey("netflow.reverse." + info.snake);
      return extraKind(info.type, len);
    }
    if (!options.unknownFields) return Kind.Skip;
    compiledKey = internKey(`netflow.field.${pen}.${id}`);
    return Kind.XHex;
  }
  const info = elementInfo(id);
  if (!info) {
    if (!options.unknownFields) return Kind.Skip;
    compiledKey = internKey(`netflow.field.${id}`);
    return Kind.XHex;
  }
  const int = isInt(len); // variable-length fields never fill Flow fields
  let role = Kind.Skip;
  switch (id) {
    case 1:
    case 85:
    case 23:
    case 171:
      if (int && firstPresent(BYTE_COUNTERS, present) === id) role = Kind.Bytes;
      break;
    case 2:
    case 86:
    case 24:
    case 172:
      if (int && firstPresent(PACKET_COUNTERS, present) === id) role = Kind.Packets;
      break;
    case 4:
      if (int) role = Kind.Protocol;
      break;
    case 5:
      if (int) role = Kind.Tos;
      break;
    case 6:
      if (int) role = Kind.TcpFlags;
      break;
    case 7:
      if (int) role = Kind.SrcPort;
      break;
    case 11:
      if (int) role = Kind.DstPort;
      break;
    case 8:
      if (len === 4) role = Kind.SrcV4;
      break;
    case 12:
      if (len === 4) role = Kind.DstV4;
      break;
    case 27:
      if (len === 16) role = Kind.SrcV6;
      break;
    case 28:
      if (len === 16) role = Kind.DstV6;
      break;
    case 9:
    case 29:
      if (int) role = Kind.SrcMask;
      break;
    case 13:
    case 30:
      if (int) role = Kind.DstMask;
      break;
    case 10:
      if (int) role = Kind.InIf;
      break;
    case 14:
      if (int) role = Kind.OutIf;
      break;
    case 15:
      if (len === 4) role = Kind.NextHopV4;
      break;
    case 62:
      if (len === 16) role = Kind.NextHopV6;
      break;
    case 16:
      if (int) role = Kind.SrcAs;
      break;
    case 17:
      if (int) role = Kind.DstAs;
      break;
    case 61:
      if (int) role = Kind.Direction;
      break;
    case 60:
      if (int) role = Kind.IpVersion;
      break;
    case 22:
      if (int) role = Kind.First;
      break;
    case 21:
      if (int) role = Kind.Last;
      break;
    case 160:
      if (int) role = Kind.SysInit;
      break;
    case 48:
    case 302:
      if (int) role = Kind.SamplerId; // also written to extra, below
      break;
    case 34:
      if (int) role = Kind.SamplingInterval;
      break;
    // ICMP type/code: remembered for icmp.ts and also written to extra, below.
    case 32:
      if (int) role = Kind.IcmpTypeCodeV4;
      break;
    case 139:
      if (int) role = Kind.IcmpTypeCodeV6;
      break;
    case 176:
      if (int) role = Kind.IcmpTypeV4;
      break;
    case 177:
      if (int) role = Kind.IcmpCodeV4;
      break;
    case 178:
      if (int) role = Kind.IcmpTypeV6;
      break;
    case 179:
      if (int) role = Kind.IcmpCodeV6;
      break;
    case 150:
      if (int) role = Kind.StartSec;
      break;
    case 151:
      if (int) role = Kind.EndSec;
      break;
    case 152:
      if (int) role = Kind.StartMs;
      break;
    case 153:
      if (int) role = Kind.EndMs;
      break;
    case 154:
    case 156:
      if (len === 8) role = Kind.StartNtp;
      break;
    case 155:
    case 157:
      if (len === 8) role = Kind.EndNtp;
      break;
    case 158:
      if (int) role = Kind.StartDelta;
      break;
    case 159:
      if (int) role = Kind.EndDelta;
      break;
    case 161:
      if (int) role = Kind.DurMs;
      break;
    case 162:
      if (int) role = Kind.DurUs;
      break;
    case 210: // paddingOctets: never an attribute
      return Kind.Skip;
  }
  if (role === Kind.SamplerId || (role >= Kind.IcmpTypeCodeV4 && role <= Kind.IcmpCodeV6)) {
    compiledKey = info.key;
    return role;
  }
  if (role !== Kind.Skip) return role;
  compiledKey = info.key;
  return extraKind(info.type, len);
}

function extraKind(type: ElementType, len: number): Kind {
  switch (type) {
    case ElementType.Unsigned:
      return isInt(len) || len === VARIABLE_LENGTH ? Kind.XUint : Kind.XHex;
    case ElementType.Signed:
      return isInt(len) || len === VARIABLE_LENGTH ? Kind.XInt : Kind.XHex;
    case ElementType.Float:
      return Kind.XFloat;
    case ElementType.Boolean:
      return Kind.XBool;
    case ElementType.Mac:
      return Kind.XMac;
    case ElementType.String:
      return Kind.XString;
    case ElementType.Ipv4:
      return Kind.XV4;
    case ElementType.Ipv6:
      return Kind.XV6;
    case ElementType.DateSeconds:
      return Kind.XDateS;
    case ElementType.DateMillis:
      return Kind.XDateMs;
    case ElementType.DateNtp:
      return Kind.XDateNtp;
    default:
      return Kind.XHex;
  }
}

// ---------------------------------------------------------------------------------------------------
// Value readers. Integers are big-endian; reduced-size encodings (RFC 7011 §6.2) of any length 1–8 work.
//
// Counters that fit: a JS number is exact only up to 2^53 − 1, and OTLP writes integers as signed int64,
// so a 64-bit value read as it is would come out inexact above 2^53 and, past 2^63, as a negative
// number. Counters and the other unsigned values that become attributes are therefore clamped to
// 2^53 − 1 (MAX_INT) where the record decoder reads them: exact below, never inexact by accident, never
// negative, and the flow carries `clamped = true`. Real counters stay far below (2^53 octets is 9 PB in
// one record); what reaches the clamp is hostile or broken. (The clamp sits in the handlers, not in
// uintAt: that is the record loop's hottest function and stays minimal.)

/** Largest integer a counter or attribute value takes (Number.MAX_SAFE_INTEGER); see above. */
const MAX_INT = Number.MAX_SAFE_INTEGER;

/** Unsigned big-endian integer of 1–8 octets (inexact above 2^53: callers clamp what reaches the wire). */
function uintAt(bytes: Uint8Array, view: DataView, off: number, len: number): number {
  switch (len) {
    case 1:
      return bytes[off];
    case 2:
      return (bytes[off] << 8) | bytes[off + 1];
    case 4:
      return view.getUint32(off);
    case 8:
      return view.getUint32(off) * 4294967296 + view.getUint32(off + 4);
    default: {
      let x = 0;
      for (let i = 0; i < len; i++) x = x * 256 + bytes[off + i];
      return x;
    }
  }
}

/** Signed (two's complement) big-endian integer of 1–8 octets, clamped to ±{@link MAX_INT}. */
function intAt(bytes: Uint8Array, view: DataView, off: number, len: number): number {
  if (len === 8) {
    const hi = view.getInt32(off);
    if (hi > 0x1fffff) return MAX_INT;
    if (hi < -0x1fffff) return -MAX_INT;
    return hi * 4294967296 + view.getUint32(off + 4);
  }
  let x = bytes[off] & 0x80 ? -1 : 0; // sign extension: −1 × 256 + b adds the sign to the first octet
  for (let i = 0; i < len; i++) x = x * 256 + bytes[off + i];
  return x > MAX_INT ? MAX_INT : x < -MAX_INT ? -MAX_INT : x;
}

/** NTP timestamp (RFC 7011 §6.1.9/10) to Unix epoch ms; NaN for zero (absent). */
function ntpAt(view: DataView, off: number): number {
  const secs = view.getUint32(off);
  const frac = view.getUint32(off + 4);
  if (secs === 0 && frac === 0) return NaN;
  // Era 0 (1900–2036) has the top bit set for any date after 1968; era 1 starts 2036-02-07.
  const unix = secs >= 0x80000000 ? secs - 2208988800 : secs + 2085978496;
  return unix * 1000 + frac / 4294967.296;
}

const utf8 = new TextDecoder("utf-8");

function stringAt(bytes: Uint8Array, off: number, len: number): string {
  let end = off + len;
  while (end > off && bytes[end - 1] === 0) end--; // v9 exporters pad names with NULs
  let ascii = true;
  for (let i = off; i < end; i++) {
    if (bytes[i] >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (!ascii || end - off > 64) return utf8.decode(bytes.subarray(off, end));
  let s = "";
  for (let i = off; i < end; i++) s += String.fromCharCode(bytes[i]);
  return s;
}

/** Values clamped since the caller last took the count ({@link takeClampedCount}). */
let clampedCount = 0;

/** Marks the flow as carrying a clamped value (see MAX_INT) and returns the clamp. Out of line: rare. */
function clamp(flow: Flow): number {
  flow.clamped = true;
  clampedCount++;
  return MAX_INT;
}

/** The number of values clamped since the last call (for the decoder's stats; read once per datagram). */
export function takeClampedCount(): number {
  const n = clampedCount;
  clampedCount = 0;
  return n;
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
      if (off >= end) return -1;
      len = bytes[off++];
      if (len === 255) {
        if (off + 2 > end) return -1;
        len = (bytes[off] << 8) | bytes[off + 1];
        off += 2;
      }
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
      if (off >= end) return -1;
      len = bytes[off++];
      if (len === 255) {
        if (off + 2 > end) return -1;
        len = (bytes[off] << 8) | bytes[off + 1];
        off += 2;
      }
    }
    if (off + len > end) return -1;
    const kind: Kind = c >> 16;
    if (kind !== Kind.Skip) {
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

/** The offset after the record at `off`, without decoding it, or −1 when it runs past `end`. */
function skipRecord(plan: Plan, bytes: Uint8Array, off: number, end: number): number {
  if (!plan.variable) return off + plan.minLength <= end ? off + plan.minLength : -1;
  const code = plan.code;
  for (let i = 0; i < code.length; i++) {
    let len = code[i] & 0xffff;
    if (len === VARIABLE_LENGTH) {
      if (off >= end) return -1;
      len = bytes[off++];
      if (len === 255) {
        if (off + 2 > end) return -1;
        len = (bytes[off] << 8) | bytes[off + 1];
        off += 2;
      }
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
