/**
 * NetFlow v1/v5/v9 and IPFIX encoders: plain values in, datagram bytes out. No I/O.
 * Shared by the tests, the benchmarks and the `send` subcommand.
 *
 * ```ts
 * const flows: EncodableFlow[] = [{ srcAddr: "10.0.0.1", dstAddr: "10.0.0.2", protocol: 6, bytes: 1500 }];
 * const t = standardTemplate(4);
 * const bytes = encodeIpfix({ exportTimeMs: Date.now(), sequence: 1, observationDomainId: 7 }, [
 *   { type: "templates", templates: [t] },
 *   { type: "data", template: t, records: flows.map((f) => flowRecord(f, t)) },
 * ]);
 * ```
 */

import { ipBytes } from "../netflow/addresses.ts";

// ---------------------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------------------

/**
 * One field value. Numbers and bigints are written big-endian, unsigned, in the field's length (a
 * non-integer number in a 4- or 8-byte field is written as float32/float64). Strings are IPv4 addresses
 * (4 bytes), IPv6 addresses (16 bytes), MAC addresses (6 bytes), or otherwise UTF-8 text, zero-padded to a
 * fixed length. Byte arrays are copied as they are.
 */
export type RawValue = number | bigint | string | Uint8Array;

/** Field length that marks an IPFIX variable-length field. */
export const VARIABLE_LENGTH = 0xffff;

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
const MAC = /^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$/i;

/** Parses a dotted IPv4 address into 4 bytes; throws when `addr` is not one. */
export function ipv4Bytes(addr: string): Uint8Array {
  const bytes = ipBytes(addr);
  if (bytes?.length !== 4) throw new Error(`bad IPv4 ${addr}`);
  return bytes;
}

/** Parses an IPv6 address (with `::` and an optional dotted IPv4 tail) into 16 bytes; throws when it is not one. */
export function ipv6Bytes(addr: string): Uint8Array {
  const bytes = ipBytes(addr);
  if (bytes?.length !== 16) throw new Error(`bad IPv6 ${addr}`);
  return bytes;
}

/** The bytes of `value` in a field of `length` bytes (or its natural length for variable-length fields). */
export function valueBytes(value: RawValue, length: number): Uint8Array {
  const variable = length === VARIABLE_LENGTH;
  if (value instanceof Uint8Array) {
    if (!variable && value.length !== length) {
      throw new Error(`value has ${value.length} bytes, field has ${length}`);
    }
    return value;
  }
  if (typeof value === "string") {
    if (IPV4.test(value) && (variable || length === 4)) return ipv4Bytes(value);
    if (value.includes(":") && (variable || length === 16) && !MAC.test(value)) return ipv6Bytes(value);
    if (MAC.test(value) && (variable || length === 6)) {
      return new Uint8Array(value.split(/[:-]/).map((h) => parseInt(h, 16)));
    }
    const text = new TextEncoder().encode(value);
    if (variable) return text;
    if (text.length > length) throw new Error(`"${value}" does not fit in ${length} bytes`);
    const out = new Uint8Array(length);
    out.set(text);
    return out;
  }
  if (variable) throw new Error("a number needs a fixed-length field");
  const out = new Uint8Array(length);
  const view = new DataView(out.buffer);
  if (typeof value === "number" && !Number.isInteger(value)) {
    if (length === 8) view.setFloat64(0, value);
    else if (length === 4) view.setFloat32(0, value);
    else throw new Error(`float ${value} needs a 4- or 8-byte field`);
    return out;
  }
  let v = BigInt(value);
  if (v < 0n || v >= 1n << BigInt(8 * length)) {
    throw new Error(`${value} does not fit in ${length} unsigned bytes`);
  }
  for (let i = length - 1; i >= 0; i--, v >>= 8n) out[i] = Number(v & 0xffn);
  return out;
}

/** A growable big-endian byte writer. */
class Writer {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private room(n: number): number {
    if (this.length + n > this.buf.length) {
      const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
      next.set(this.buf);
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }

  u8(v: number): this {
    const at = this.room(1);
    this.view.setUint8(at, v);
    return this;
  }
  u16(v: number): this {
    const at = this.room(2);
    this.view.setUint16(at, v);
    return this;
  }
  u32(v: number): this {
    const at = this.room(4);
    this.view.setUint32(at, v);
    return this;
  }
  bytes(b: Uint8Array): this {
    const at = this.room(b.length);
    this.buf.set(b, at);
    return this;
  }
  zeros(n: number): this {
    const at = this.room(n);
    this.buf.fill(0, at, this.length);
    return this;
  }
  // (Each method reserves room first: `room` may replace `buf` and `view`.)
  /** Writes a 16-bit value at an earlier offset (for lengths known only at the end). */
  patch16(at: number, v: number): void {
    this.view.setUint16(at, v);
  }
  done(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

/** Export time in seconds and nanoseconds from either form of the header fields. */
function exportTime(h: { exportTimeMs?: number; unixSecs?: number; unixNsecs?: number }): [number, number] {
  if (h.unixSecs !== undefined) return [h.unixSecs, h.unixNsecs ?? 0];
  const ms = h.exportTimeMs ?? 0;
  return [Math.floor(ms / 1000), Math.round((ms % 1000) * 1e6)];
}

// ---------------------------------------------------------------------------------------------------------
// NetFlow v1 and v5
// ---------------------------------------------------------------------------------------------------------

/** Header fields for v1 (uptime and time only) and v5. The export time is `exportTimeMs` or `unixSecs`+`unixNsecs`. */
export interface FixedHeader {
  sysUptimeMs: number;
  exportTimeMs?: number;
  unixSecs?: number;
  unixNsecs?: number;
  /** v5: flow_sequence (total flows seen before this packet). */
  sequence?: number;
  engineType?: number;
  engineId?: number;
  /** v5: 14-bit interval and 2-bit mode (default 1 = deterministic when an interval is given). */
  samplingInterval?: number;
  samplingMode?: number;
  /** Overrides the record count written in the header (for malformed-packet tests). */
  count?: number;
}

/** One v1/v5 record. Missing values are written as 0 (AS and masks exist only in v5). */
export interface FixedFlow {
  srcAddr?: string;
  dstAddr?: string;
  nextHop?: string;
  inputIf?: number;
  outputIf?: number;
  packets?: number;
  bytes?: number;
  firstSwitched?: number;
  lastSwitched?: number;
  srcPort?: number;
  dstPort?: number;
  tcpFlags?: number;
  protocol?: number;
  tos?: number;
  srcAs?: number;
  dstAs?: number;
  srcMask?: number;
  dstMask?: number;
}

function fixedRecordStart(w: Writer, f: FixedFlow): void {
  w.bytes(ipv4Bytes(f.srcAddr ?? "0.0.0.0")).bytes(ipv4Bytes(f.dstAddr ?? "0.0.0.0"))
    .bytes(ipv4Bytes(f.nextHop ?? "0.0.0.0"))
    .u16(f.inputIf ?? 0).u16(f.outputIf ?? 0).u32(f.packets ?? 0).u32(f.bytes ?? 0)
    .u32(f.firstSwitched ?? 0).u32(f.lastSwitched ?? 0).u16(f.srcPort ?? 0).u16(f.dstPort ?? 0);
}

/** NetFlow v1: 16-byte header, 48-byte records (…, pad1(2), prot, tos, tcp_flags, pad2(7)). */
export function encodeV1(header: FixedHeader, flows: FixedFlow[]): Uint8Array {
  const [secs, nsecs] = exportTime(header);
  const w = new Writer().u16(1).u16(header.count ?? flows.length).u32(header.sysUptimeMs).u32(secs).u32(
    nsecs,
  );
  for (const f of flows) {
    fixedRecordStart(w, f);
    w.zeros(2).u8(f.protocol ?? 0).u8(f.tos ?? 0).u8(f.tcpFlags ?? 0).zeros(7);
  }
  return w.done();
}

/**
 * NetFlow v5: 24-byte header, 48-byte records
 * (…, pad1, tcp_flags, prot, tos, src_as(2), dst_as(2), src_mask, dst_mask, pad2(2)).
 */
export function encodeV5(header: FixedHeader, flows: FixedFlow[]): Uint8Array {
  const [secs, nsecs] = exportTime(header);
  const interval = header.samplingInterval ?? 0;
  const mode = header.samplingMode ?? (interval > 0 ? 1 : 0);
  const w = new Writer().u16(5).u16(header.count ?? flows.length).u32(header.sysUptimeMs).u32(secs).u32(nsecs)
    .u32(header.sequence ?? 0).u8(header.engineType ?? 0).u8(header.engineId ?? 0)
    .u16(((mode & 0x3) << 14) | (interval & 0x3fff));
  for (const f of flows) {
    fixedRecordStart(w, f);
    w.zeros(1).u8(f.tcpFlags ?? 0).u8(f.protocol ?? 0).u8(f.tos ?? 0).u16(f.srcAs ?? 0).u16(f.dstAs ?? 0)
      .u8(f.srcMask ?? 0).u8(f.dstMask ?? 0).zeros(2);
  }
  return w.done();
}

// ---------------------------------------------------------------------------------------------------------
// NetFlow v9 and IPFIX
// ---------------------------------------------------------------------------------------------------------

/** A template field: element id, length in bytes ({@link VARIABLE_LENGTH} for IPFIX variable length). */
export interface FieldSpec {
  id: number;
  length: number;
  /** IPFIX private enterprise number: sets the enterprise bit and writes the PEN. */
  enterprise?: number;
}

/** A (data) template, or an options template when `scopeFields` is present. */
export interface Template {
  id: number;
  /** Option fields for an options template; all fields otherwise. */
  fields: FieldSpec[];
  scopeFields?: FieldSpec[];
}

/** Zero bytes appended to a set (counted in its length), or `"align"` to pad to a multiple of 4. */
export type Padding = number | "align";

export type SetSpec =
  /** Template set (v9 flowset 0, IPFIX set 2). A template with no fields is an IPFIX withdrawal. */
  | { type: "templates"; templates: Template[]; padding?: Padding }
  /** Options template set (v9 flowset 1, IPFIX set 3); every template needs `scopeFields`. */
  | { type: "options"; templates: Template[]; padding?: Padding }
  /** Data set with id `template.id`; each record lists values for scope fields, then fields, in order. */
  | { type: "data"; template: Template; records: RawValue[][]; padding?: Padding }
  /** Any set id and body, for malformed or unusual input. */
  | { type: "raw"; setId: number; body: Uint8Array };

export interface V9Header {
  sysUptimeMs: number;
  exportTimeMs?: number;
  unixSecs?: number;
  sequence?: number;
  sourceId?: number;
  /** Overrides the record count (default: all template, options template and data records). */
  count?: number;
}

export interface IpfixHeader {
  exportTimeMs?: number;
  unixSecs?: number;
  sequence?: number;
  observationDomainId?: number;
  /** Overrides the message length (default: the real length). */
  length?: number;
}

function allFields(t: Template): FieldSpec[] {
  return [...(t.scopeFields ?? []), ...t.fields];
}

function fieldSpec(w: Writer, f: FieldSpec, ipfix: boolean): void {
  if (f.enterprise !== undefined && !ipfix) throw new Error("enterprise fields exist only in IPFIX");
  w.u16(f.enterprise !== undefined ? f.id | 0x8000 : f.id).u16(f.length);
  if (f.enterprise !== undefined) w.u32(f.enterprise);
}

function fieldValue(w: Writer, f: FieldSpec, value: RawValue, ipfix: boolean): void {
  const bytes = valueBytes(value, f.length);
  if (f.length === VARIABLE_LENGTH) {
    if (!ipfix) throw new Error("variable-length fields exist only in IPFIX");
    if (bytes.length < 255) w.u8(bytes.length);
    else w.u8(255).u16(bytes.length);
  }
  w.bytes(bytes);
}

/** Writes one set; returns the number of records it holds (for the v9 header count). */
function writeSet(w: Writer, set: SetSpec, ipfix: boolean): number {
  const start = w.length;
  if (set.type === "raw") {
    w.u16(set.setId).u16(4 + set.body.length).bytes(set.body);
    return 0;
  }
  let records = 0;
  if (set.type === "templates") {
    w.u16(ipfix ? 2 : 0).u16(0);
    for (const t of set.templates) {
      w.u16(t.id).u16(t.fields.length);
      for (const f of t.fields) fieldSpec(w, f, ipfix);
      records++;
    }
  } else if (set.type === "options") {
    w.u16(ipfix ? 3 : 1).u16(0);
    for (const t of set.templates) {
      const scope = t.scopeFields ?? [];
      // v9 gives scope and option lengths in bytes; IPFIX gives the field count and the scope field count.
      if (ipfix) w.u16(t.id).u16(scope.length + t.fields.length).u16(scope.length);
      else w.u16(t.id).u16(scope.length * 4).u16(t.fields.length * 4);
      for (const f of allFields(t)) fieldSpec(w, f, ipfix);
      records++;
    }
  } else {
    w.u16(set.template.id).u16(0);
    const fields = allFields(set.template);
    for (const record of set.records) {
      if (record.length !== fields.length) {
        throw new Error(
          `record has ${record.length} values, template ${set.template.id} has ${fields.length}`,
        );
      }
      fields.forEach((f, i) => fieldValue(w, f, record[i], ipfix));
      records++;
    }
  }
  const padding = set.padding === "align" ? (4 - ((w.length - start) % 4)) % 4 : set.padding ?? 0;
  w.zeros(padding);
  w.patch16(start + 2, w.length - start);
  return records;
}

/** NetFlow v9 (RFC 3954): 20-byte header, then the flowsets. */
export function encodeV9(header: V9Header, sets: SetSpec[]): Uint8Array {
  const [secs] = exportTime(header);
  const w = new Writer().u16(9).u16(0).u32(header.sysUptimeMs).u32(secs).u32(header.sequence ?? 0)
    .u32(header.sourceId ?? 0);
  let count = 0;
  for (const s of sets) count += writeSet(w, s, false);
  w.patch16(2, header.count ?? count);
  return w.done();
}

/** IPFIX (RFC 7011): 16-byte message header, then the sets. */
export function encodeIpfix(header: IpfixHeader, sets: SetSpec[]): Uint8Array {
  const [secs] = exportTime(header);
  const w = new Writer().u16(10).u16(0).u32(secs).u32(header.sequence ?? 0).u32(
    header.observationDomainId ?? 0,
  );
  for (const s of sets) writeSet(w, s, true);
  w.patch16(2, header.length ?? w.length);
  return w.done();
}

// ---------------------------------------------------------------------------------------------------------
// A typical flow template
// ---------------------------------------------------------------------------------------------------------

/** A flow as the high-level helpers take it (the decoder's `Flow` fields, plus raw values by element id). */
export interface EncodableFlow extends FixedFlow {
  /** Epoch milliseconds, for flowStart/EndMilliseconds (152/153) and flowStart/EndSeconds (150/151). */
  startMs?: number;
  endMs?: number;
  direction?: number;
  /** Values for further template fields, by element id (`"pen/id"` for enterprise fields). */
  fields?: Record<string, RawValue>;
}

/** Information element ids used by {@link standardTemplate} (same numbers in v9 and IPFIX). */
export const IE = {
  octetDeltaCount: 1,
  packetDeltaCount: 2,
  protocolIdentifier: 4,
  ipClassOfService: 5,
  tcpControlBits: 6,
  sourceTransportPort: 7,
  sourceIPv4Address: 8,
  sourceIPv4PrefixLength: 9,
  ingressInterface: 10,
  destinationTransportPort: 11,
  destinationIPv4Address: 12,
  destinationIPv4PrefixLength: 13,
  egressInterface: 14,
  ipNextHopIPv4Address: 15,
  bgpSourceAsNumber: 16,
  bgpDestinationAsNumber: 17,
  flowEndSysUpTime: 21,
  flowStartSysUpTime: 22,
  sourceIPv6Address: 27,
  destinationIPv6Address: 28,
  sourceIPv6PrefixLength: 29,
  destinationIPv6PrefixLength: 30,
  flowDirection: 61,
  ipNextHopIPv6Address: 62,
  flowStartSeconds: 150,
  flowEndSeconds: 151,
  flowStartMilliseconds: 152,
  flowEndMilliseconds: 153,
} as const;

/** Which flow property fills each element of the standard template. */
const FLOW_VALUE: Record<number, (f: EncodableFlow) => RawValue | undefined> = {
  [IE.octetDeltaCount]: (f) => f.bytes,
  [IE.packetDeltaCount]: (f) => f.packets,
  [IE.protocolIdentifier]: (f) => f.protocol,
  [IE.ipClassOfService]: (f) => f.tos,
  [IE.tcpControlBits]: (f) => f.tcpFlags,
  [IE.sourceTransportPort]: (f) => f.srcPort,
  [IE.sourceIPv4Address]: (f) => f.srcAddr,
  [IE.sourceIPv4PrefixLength]: (f) => f.srcMask,
  [IE.ingressInterface]: (f) => f.inputIf,
  [IE.destinationTransportPort]: (f) => f.dstPort,
  [IE.destinationIPv4Address]: (f) => f.dstAddr,
  [IE.destinationIPv4PrefixLength]: (f) => f.dstMask,
  [IE.egressInterface]: (f) => f.outputIf,
  [IE.ipNextHopIPv4Address]: (f) => f.nextHop,
  [IE.bgpSourceAsNumber]: (f) => f.srcAs,
  [IE.bgpDestinationAsNumber]: (f) => f.dstAs,
  [IE.flowEndSysUpTime]: (f) => f.lastSwitched,
  [IE.flowStartSysUpTime]: (f) => f.firstSwitched,
  [IE.sourceIPv6Address]: (f) => f.srcAddr,
  [IE.destinationIPv6Address]: (f) => f.dstAddr,
  [IE.sourceIPv6PrefixLength]: (f) => f.srcMask,
  [IE.destinationIPv6PrefixLength]: (f) => f.dstMask,
  [IE.flowDirection]: (f) => f.direction,
  [IE.ipNextHopIPv6Address]: (f) => f.nextHop,
  [IE.flowStartSeconds]: (f) => (f.startMs === undefined ? undefined : Math.floor(f.startMs / 1000)),
  [IE.flowEndSeconds]: (f) => (f.endMs === undefined ? undefined : Math.floor(f.endMs / 1000)),
  [IE.flowStartMilliseconds]: (f) => f.startMs,
  [IE.flowEndMilliseconds]: (f) => f.endMs,
};

export interface StandardTemplateOptions {
  /** Template id (default 256 for IPv4, 257 for IPv6). */
  id?: number;
  /** `uptime`: first/last switched (22/21, v9 and IPFIX); `milliseconds`: flowStart/EndMilliseconds (IPFIX). */
  times?: "uptime" | "milliseconds";
  /** Fields appended after the standard ones; fill them through `EncodableFlow.fields`. */
  extra?: FieldSpec[];
}

/**
 * A typical exporter template: addresses, ports, protocol, ToS, TCP flags, 8-byte counters, interfaces,
 * AS numbers, masks, next hop, and flow times. Valid for both v9 and IPFIX.
 */
export function standardTemplate(ipVersion: 4 | 6, options: StandardTemplateOptions = {}): Template {
  const v4 = ipVersion === 4;
  const addr = v4 ? 4 : 16;
  const times = options.times === "milliseconds"
    ? [{ id: IE.flowStartMilliseconds, length: 8 }, { id: IE.flowEndMilliseconds, length: 8 }]
    : [{ id: IE.flowStartSysUpTime, length: 4 }, { id: IE.flowEndSysUpTime, length: 4 }];
  return {
    id: options.id ?? (v4 ? 256 : 257),
    fields: [
      { id: v4 ? IE.sourceIPv4Address : IE.sourceIPv6Address, length: addr },
      { id: v4 ? IE.destinationIPv4Address : IE.destinationIPv6Address, length: addr },
      { id: v4 ? IE.ipNextHopIPv4Address : IE.ipNextHopIPv6Address, length: addr },
      { id: IE.sourceTransportPort, length: 2 },
      { id: IE.destinationTransportPort, length: 2 },
      { id: IE.protocolIdentifier, length: 1 },
      { id: IE.ipClassOfService, length: 1 },
      { id: IE.tcpControlBits, length: 1 },
      { id: IE.octetDeltaCount, length: 8 },
      { id: IE.packetDeltaCount, length: 8 },
      { id: IE.ingressInterface, length: 4 },
      { id: IE.egressInterface, length: 4 },
      { id: IE.bgpSourceAsNumber, length: 4 },
      { id: IE.bgpDestinationAsNumber, length: 4 },
      { id: v4 ? IE.sourceIPv4PrefixLength : IE.sourceIPv6PrefixLength, length: 1 },
      { id: v4 ? IE.destinationIPv4PrefixLength : IE.destinationIPv6PrefixLength, length: 1 },
      ...times,
      ...(options.extra ?? []),
    ],
  };
}

/**
 * The record values of `flow` for `template` (default: the standard template for the flow's address family).
 * Fields the flow does not carry are 0 (or empty, for variable-length fields).
 */
export function flowRecord(flow: EncodableFlow, template?: Template): RawValue[] {
  const t = template ?? standardTemplate(flow.srcAddr?.includes(":") ? 6 : 4);
  return allFields(t).map((f) => {
    const key = f.enterprise !== undefined ? `${f.enterprise}/${f.id}` : String(f.id);
    const value = flow.fields?.[key] ?? (f.enterprise === undefined ? FLOW_VALUE[f.id]?.(flow) : undefined);
    if (value !== undefined) return value;
    return f.length === VARIABLE_LENGTH ? new Uint8Array(0) : 0;
  });
}
