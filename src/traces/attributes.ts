/** Decoded flows and packets → span attributes: the public contract of SPEC §3. */
import { icmpCombined } from "../netflow/icmp.ts";
import type { ExportPacket, FieldValue, Flow } from "../netflow/types.ts";
import { communityId } from "./community_id.ts";
import { serverSide } from "./inference.ts";
import { hasPorts, isIcmp, protocolName } from "./protocols.ts";

export type Attributes = Record<string, string | number | boolean>;

const TCP_FLAG_NAMES: [number, string][] = [
  [0x02, "SYN"],
  [0x10, "ACK"],
  [0x01, "FIN"],
  [0x04, "RST"],
  [0x08, "PSH"],
  [0x20, "URG"],
  [0x40, "ECE"],
  [0x80, "CWR"],
];

/** TCP flags as names, e.g. 0x13 → "SYN,ACK,FIN". */
export function tcpFlagNames(flags: number): string {
  let out = "";
  for (const [bit, name] of TCP_FLAG_NAMES) if (flags & bit) out += (out ? "," : "") + name;
  return out;
}

/**
 * The SPEC §3 flow attribute keys, numbered in the order {@link writeSpecAttributes} sets them. Writers
 * take a key by its number, so a protobuf writer can hold each key's encoding in an array.
 */
export const K = {
  "netflow.version": 0,
  "netflow.flow.index": 1,
  "source.address": 2,
  "destination.address": 3,
  "network.peer.address": 4,
  "source.port": 5,
  "destination.port": 6,
  "network.peer.port": 7,
  "network.transport": 8,
  "network.protocol.name": 9,
  "network.protocol.number": 10,
  "network.type": 11,
  "netflow.icmp.type": 12,
  "netflow.icmp.code": 13,
  "client.address": 14,
  "client.port": 15,
  "server.address": 16,
  "server.port": 17,
  "netflow.flow.bytes": 18,
  "netflow.flow.packets": 19,
  "netflow.flow.reverse.bytes": 20,
  "netflow.flow.reverse.packets": 21,
  "netflow.flow.first_switched": 22,
  "netflow.flow.last_switched": 23,
  "netflow.flow.duration_ms": 24,
  "netflow.nexthop": 25,
  "netflow.interface.input": 26,
  "netflow.interface.output": 27,
  "netflow.tos": 28,
  "netflow.tcp_flags": 29,
  "netflow.tcp_flags.names": 30,
  "netflow.src_as": 31,
  "netflow.dst_as": 32,
  "netflow.src_mask": 33,
  "netflow.dst_mask": 34,
  "netflow.flow.direction": 35,
  "netflow.sampling.interval": 36,
  "netflow.flow.bytes.estimated": 37,
  "netflow.flow.packets.estimated": 38,
  "netflow.community_id": 39,
  "netflow.flow.time_adjusted": 40,
} as const;

/** {@link K}'s keys by number. */
export const FLOW_KEYS: readonly string[] = Object.keys(K);
const SPEC_KEYS: ReadonlySet<string> = new Set(FLOW_KEYS);

/** True when `key` is one of the SPEC flow attributes (an element of that name replaces it in place). */
export function isSpecFlowKey(key: string): boolean {
  return SPEC_KEYS.has(key);
}

/**
 * Where {@link writeSpecAttributes} puts a flow's SPEC attributes: an object ({@link flowAttributes}, for
 * plans, the console exporter and tests) or the OTLP encoder's span writer (the fast path). Keys are
 * {@link FLOW_KEYS} indexes.
 */
export interface AttributeSink {
  string(key: number, value: string): void;
  number(key: number, value: number): void;
  /** `netflow.community_id` of the flow's five-tuple (ICMP: type and code as the ports). */
  communityId(src: string, dst: string, protocol: number, srcPort?: number, dstPort?: number): void;
}

/**
 * The most attributes {@link writeSpecAttributes} sets (a TCP flow that carries everything, sampled). A test
 * holds it to that; while a count limit leaves this much room, the SPEC attributes need no counting.
 */
export const MAX_SPEC_FLOW_ATTRIBUTES = 38;

/** A count limit for {@link flowAttributes}, reused across flows: `dropped` is set by each call. */
export interface AttributeCountLimit {
  maxCount: number;
  dropped: number;
}

const TCP_FLAG_TEXT: string[] = Array.from({ length: 256 }, (_, i) => tcpFlagNames(i));

/** The SPEC §3 attributes of one `netflow.flow` span (the record's further elements aside), into `out`. */
export function writeSpecAttributes(flow: Flow, index: number, version: number, out: AttributeSink): void {
  out.number(K["netflow.version"], version);
  out.number(K["netflow.flow.index"], index);
  const proto = flow.protocol;
  const ports = hasPorts(proto);
  const src = flow.srcAddr, dst = flow.dstAddr;
  if (src !== undefined) out.string(K["source.address"], src);
  if (dst !== undefined) {
    out.string(K["destination.address"], dst);
    out.string(K["network.peer.address"], dst);
  }
  const srcPort = ports ? flow.srcPort : undefined, dstPort = ports ? flow.dstPort : undefined;
  if (srcPort !== undefined) out.number(K["source.port"], srcPort);
  if (dstPort !== undefined) {
    out.number(K["destination.port"], dstPort);
    out.number(K["network.peer.port"], dstPort);
  }
  if (proto !== undefined) {
    const name = protocolName(proto);
    out.string(K["network.transport"], name);
    out.string(K["network.protocol.name"], name);
    out.number(K["network.protocol.number"], proto);
  }
  const ipVersion = flow.ipVersion ?? (src?.includes(":") ? 6 : src ? 4 : undefined);
  if (ipVersion) out.string(K["network.type"], ipVersion === 6 ? "ipv6" : "ipv4");
  let icmpType: number | undefined, icmpCode: number | undefined;
  const icmp = isIcmp(proto);
  if (icmp) {
    icmpType = flow.icmpType;
    icmpCode = flow.icmpCode;
    // The decoder sets both (icmp.ts); a flow built elsewhere may carry only NetFlow's destination port.
    if (icmpType === undefined && icmpCode === undefined && flow.dstPort !== undefined) {
      const v = icmpCombined(flow.dstPort, proto === 58, undefined);
      if (v >= 0) {
        icmpType = v >> 8;
        icmpCode = v & 0xff;
      }
    }
    if (icmpType !== undefined) out.number(K["netflow.icmp.type"], icmpType);
    if (icmpCode !== undefined) out.number(K["netflow.icmp.code"], icmpCode);
  }

  if (srcPort !== undefined && dstPort !== undefined) {
    const side = serverSide(srcPort, dstPort);
    if (side) {
      const toServer = side === "destination";
      const clientAddr = toServer ? src : dst, serverAddr = toServer ? dst : src;
      if (clientAddr !== undefined) out.string(K["client.address"], clientAddr);
      out.number(K["client.port"], toServer ? srcPort : dstPort);
      if (serverAddr !== undefined) out.string(K["server.address"], serverAddr);
      out.number(K["server.port"], toServer ? dstPort : srcPort);
    }
  }

  const bytes = flow.bytes, packets = flow.packets;
  if (bytes !== undefined) out.number(K["netflow.flow.bytes"], bytes);
  if (packets !== undefined) out.number(K["netflow.flow.packets"], packets);
  if (flow.reverseBytes !== undefined) out.number(K["netflow.flow.reverse.bytes"], flow.reverseBytes);
  if (flow.reversePackets !== undefined) out.number(K["netflow.flow.reverse.packets"], flow.reversePackets);
  const first = flow.firstSwitched, last = flow.lastSwitched;
  if (first !== undefined) out.number(K["netflow.flow.first_switched"], first);
  if (last !== undefined) out.number(K["netflow.flow.last_switched"], last);
  if (first !== undefined && last !== undefined) {
    out.number(K["netflow.flow.duration_ms"], (last - first) | 0);
  } else if (flow.startMs !== undefined && flow.endMs !== undefined) {
    // Absolute times can be anything an exporter writes (up to 2^64 ms): an impossible span has no duration.
    const d = Math.round(flow.endMs - flow.startMs);
    if (Number.isSafeInteger(d)) out.number(K["netflow.flow.duration_ms"], d);
  }
  if (flow.nextHop !== undefined) out.string(K["netflow.nexthop"], flow.nextHop);
  if (flow.inputIf !== undefined) out.number(K["netflow.interface.input"], flow.inputIf);
  if (flow.outputIf !== undefined) out.number(K["netflow.interface.output"], flow.outputIf);
  if (flow.tos !== undefined) out.number(K["netflow.tos"], flow.tos);
  const tcpFlags = flow.tcpFlags;
  if (tcpFlags !== undefined) {
    out.number(K["netflow.tcp_flags"], tcpFlags);
    const names = TCP_FLAG_TEXT[tcpFlags];
    out.string(K["netflow.tcp_flags.names"], names ?? tcpFlagNames(tcpFlags));
  }
  if (flow.srcAs !== undefined) out.number(K["netflow.src_as"], flow.srcAs);
  if (flow.dstAs !== undefined) out.number(K["netflow.dst_as"], flow.dstAs);
  if (flow.srcMask !== undefined) out.number(K["netflow.src_mask"], flow.srcMask);
  if (flow.dstMask !== undefined) out.number(K["netflow.dst_mask"], flow.dstMask);
  if (flow.direction === 0 || flow.direction === 1) {
    out.string(K["netflow.flow.direction"], flow.direction === 0 ? "ingress" : "egress");
  }
  const interval = flow.samplingInterval;
  if (interval !== undefined && interval > 0) {
    out.number(K["netflow.sampling.interval"], interval);
    if (interval > 1) {
      if (bytes !== undefined) out.number(K["netflow.flow.bytes.estimated"], estimatedCount(bytes, interval));
      if (packets !== undefined) {
        out.number(K["netflow.flow.packets.estimated"], estimatedCount(packets, interval));
      }
    }
  }
  if (src !== undefined && dst !== undefined && proto !== undefined) {
    // ICMP: the type and code stand in for the ports (Community ID spec).
    out.communityId(src, dst, proto, icmp ? icmpType : srcPort, icmp ? icmpCode : dstPort);
  }
}

/** Collects SPEC attributes into an object. */
class ObjectSink implements AttributeSink {
  a: Attributes = {};
  string(key: number, value: string): void {
    this.a[FLOW_KEYS[key]] = value;
  }
  number(key: number, value: number): void {
    this.a[FLOW_KEYS[key]] = value;
  }
  communityId(src: string, dst: string, protocol: number, srcPort?: number, dstPort?: number): void {
    const id = communityId(src, dst, protocol, srcPort, dstPort);
    if (id) this.a["netflow.community_id"] = id;
  }
}
const objectSink = new ObjectSink();

/**
 * Attributes of one `netflow.flow` span. `index` is the record's position in its packet. With `limit`, at
 * most `limit.maxCount` attributes: the SPEC attributes first, then the record's further elements in their
 * order while there is room; `limit.dropped` tells how many were left out.
 */
export function flowAttributes(
  flow: Flow,
  index: number,
  version: number,
  maxValueBytes = Infinity,
  limit?: AttributeCountLimit,
): Attributes {
  objectSink.a = {};
  writeSpecAttributes(flow, index, version, objectSink);
  const a = objectSink.a;
  const maxCount = limit ? limit.maxCount : Infinity;
  // Extras that surely fit: counting keys costs, so the exact count is taken only once this runs out (never,
  // for records under the default limit).
  let room = maxCount - MAX_SPEC_FLOW_ATTRIBUTES;
  let count = -1, dropped = 0;
  if (room < 0) {
    // A limit below the SPEC attributes' own maximum: even they may not all fit.
    count = keyCount(a);
    if (count > maxCount) {
      dropped = count - maxCount;
      dropLast(a, dropped);
      count = maxCount;
    }
  }
  if (flow.extra) {
    const extra = flow.extra;
    for (const k in extra) {
      if (room > 0) {
        room--;
      } else {
        if (count < 0) count = keyCount(a);
        if (!(k in a)) {
          if (count >= maxCount) {
            dropped++;
            continue;
          }
          count++;
        }
      }
      a[k] = extraValue(extra[k], maxValueBytes);
    }
  }
  if (limit) limit.dropped = dropped;
  return a;
}

/** A further element's value as an attribute: strings cut to `maxValueBytes` of UTF-8. */
export function extraValue(v: FieldValue, maxValueBytes: number): FieldValue {
  // Only decoded elements (variable-length strings, unknown fields as hex) can be long.
  return typeof v === "string" && v.length * 3 > maxValueBytes ? truncateUtf8(v, maxValueBytes) : v;
}

/**
 * counter × sampling interval as a whole number in [0, 2^53 − 1] (Number.MAX_SAFE_INTEGER): above it a
 * double no longer holds every integer, so the estimate is clamped there rather than rounded at random or
 * wrapped on the wire. Only absurd input gets near it (a 2^53-byte counter at 1-in-1000).
 */
/** A sampled count scaled by the 1-in-N interval, rounded, within 0 … 2^53 − 1. */
export function estimatedCount(count: number, interval: number): number {
  const e = Math.round(count * interval);
  return e >= 0 ? (e < Number.MAX_SAFE_INTEGER ? e : Number.MAX_SAFE_INTEGER) : 0;
}

function keyCount(a: Attributes): number {
  let n = 0;
  for (const _ in a) n++;
  return n;
}

/** Removes the `n` attributes set last (for a limit below {@link MAX_SPEC_FLOW_ATTRIBUTES} only). */
function dropLast(a: Attributes, n: number): void {
  const keys = Object.keys(a);
  for (let i = keys.length - n; i < keys.length; i++) delete a[keys[i]];
}

const utf8 = new TextEncoder();
let truncateBuffer = new Uint8Array(0);

/** The longest prefix of `s` that fits in `maxBytes` of UTF-8, never splitting a character. */
export function truncateUtf8(s: string, maxBytes: number): string {
  if (truncateBuffer.length < maxBytes) truncateBuffer = new Uint8Array(maxBytes);
  const { read } = utf8.encodeInto(s, truncateBuffer.subarray(0, maxBytes));
  return read >= s.length ? s : s.slice(0, read);
}

function set(a: Attributes, key: string, value: string | number | undefined): void {
  if (value !== undefined) a[key] = value;
}

/** Attributes of the `netflow.export` span (times and flow count are added by the span builder). */
export function exportAttributes(
  packet: ExportPacket,
  collectorHost: string,
  collectorPort: number,
): Attributes {
  const a: Attributes = {
    "netflow.exporter.address": packet.exporterAddress,
    "netflow.exporter.port": packet.exporterPort,
    ...(packet.exporterName !== undefined ? { "netflow.exporter.name": packet.exporterName } : {}),
    "netflow.collector.host": packet.collectorHost ?? collectorHost,
    "netflow.collector.port": packet.collectorPort ?? collectorPort,
    "netflow.collector.protocol": "udp",
    "netflow.packet.size_bytes": packet.sizeBytes,
    "netflow.flow.count": packet.flows.length,
  };
  if (packet.version !== 0) a["netflow.version"] = packet.version;
  set(a, "netflow.sequence", packet.sequence);
  set(a, "netflow.source_id", packet.sourceId);
  set(a, "netflow.observation_domain_id", packet.observationDomainId);
  set(a, "netflow.sys_uptime_ms", packet.sysUptimeMs);
  // From the exporter's own export time even where the span times fall back to the receive time (an unset
  // clock sends 0): a skew of decades is what tells the user the exporter's clock is wrong.
  if (packet.exportTimeMs !== undefined && Number.isFinite(packet.exportTimeMs)) {
    a["netflow.export_time"] = Math.floor(packet.exportTimeMs / 1000);
    a["netflow.exporter.clock_skew_ms"] = Math.round(packet.receivedAtMs - packet.exportTimeMs);
  }
  set(a, "netflow.template.count", packet.templateCount);
  if (packet.sequenceLost) a["netflow.sequence.lost"] = packet.sequenceLost;
  return a;
}
