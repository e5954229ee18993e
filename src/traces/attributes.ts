/** Decoded flows and packets → span attributes: the public contract of SPEC §3. */
import { icmpCombined } from "../netflow/icmp.ts";
import type { ExportPacket, Flow } from "../netflow/types.ts";
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
 * The most attributes {@link flowAttributes} sets before the record's further elements (a TCP flow that
 * carries everything, sampled). A test holds it to that; while a count limit leaves this much room, the
 * SPEC attributes need no counting.
 */
export const MAX_SPEC_FLOW_ATTRIBUTES = 36;

/** A count limit for {@link flowAttributes}, reused across flows: `dropped` is set by each call. */
export interface AttributeCountLimit {
  maxCount: number;
  dropped: number;
}

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
  const a: Attributes = { "netflow.version": version, "netflow.flow.index": index };
  const proto = flow.protocol;
  const ports = hasPorts(proto);
  if (flow.srcAddr !== undefined) {
    a["source.address"] = flow.srcAddr;
  }
  if (flow.dstAddr !== undefined) {
    a["destination.address"] = flow.dstAddr;
    a["network.peer.address"] = flow.dstAddr;
  }
  if (ports && flow.srcPort !== undefined) a["source.port"] = flow.srcPort;
  if (ports && flow.dstPort !== undefined) {
    a["destination.port"] = flow.dstPort;
    a["network.peer.port"] = flow.dstPort;
  }
  if (proto !== undefined) {
    const name = protocolName(proto);
    a["network.transport"] = name;
    a["network.protocol.name"] = name;
    a["network.protocol.number"] = proto;
  }
  const ipVersion = flow.ipVersion ?? (flow.srcAddr?.includes(":") ? 6 : flow.srcAddr ? 4 : undefined);
  if (ipVersion) a["network.type"] = ipVersion === 6 ? "ipv6" : "ipv4";
  let icmpType: number | undefined, icmpCode: number | undefined;
  if (isIcmp(proto)) {
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
    set(a, "netflow.icmp.type", icmpType);
    set(a, "netflow.icmp.code", icmpCode);
  }

  if (ports && flow.srcPort !== undefined && flow.dstPort !== undefined) {
    const side = serverSide(flow.srcPort, flow.dstPort);
    if (side) {
      const [client, server] = side === "destination" ? ["source", "destination"] : ["destination", "source"];
      const clientAddr = a[`${client}.address`], serverAddr = a[`${server}.address`];
      if (clientAddr !== undefined) a["client.address"] = clientAddr;
      a["client.port"] = a[`${client}.port`];
      if (serverAddr !== undefined) a["server.address"] = serverAddr;
      a["server.port"] = a[`${server}.port`];
    }
  }

  set(a, "netflow.flow.bytes", flow.bytes);
  set(a, "netflow.flow.packets", flow.packets);
  set(a, "netflow.flow.first_switched", flow.firstSwitched);
  set(a, "netflow.flow.last_switched", flow.lastSwitched);
  if (flow.firstSwitched !== undefined && flow.lastSwitched !== undefined) {
    a["netflow.flow.duration_ms"] = (flow.lastSwitched - flow.firstSwitched) | 0;
  } else if (flow.startMs !== undefined && flow.endMs !== undefined) {
    // Absolute times can be anything an exporter writes (up to 2^64 ms): an impossible span has no duration.
    const d = Math.round(flow.endMs - flow.startMs);
    if (Number.isSafeInteger(d)) a["netflow.flow.duration_ms"] = d;
  }
  set(a, "netflow.nexthop", flow.nextHop);
  set(a, "netflow.interface.input", flow.inputIf);
  set(a, "netflow.interface.output", flow.outputIf);
  set(a, "netflow.tos", flow.tos);
  if (flow.tcpFlags !== undefined) {
    a["netflow.tcp_flags"] = flow.tcpFlags;
    a["netflow.tcp_flags.names"] = tcpFlagNames(flow.tcpFlags);
  }
  set(a, "netflow.src_as", flow.srcAs);
  set(a, "netflow.dst_as", flow.dstAs);
  set(a, "netflow.src_mask", flow.srcMask);
  set(a, "netflow.dst_mask", flow.dstMask);
  if (flow.direction === 0 || flow.direction === 1) {
    a["netflow.flow.direction"] = flow.direction === 0 ? "ingress" : "egress";
  }
  const interval = flow.samplingInterval;
  if (interval !== undefined && interval > 0) {
    a["netflow.sampling.interval"] = interval;
    if (interval > 1) {
      if (flow.bytes !== undefined) a["netflow.flow.bytes.estimated"] = estimate(flow.bytes, interval);
      if (flow.packets !== undefined) a["netflow.flow.packets.estimated"] = estimate(flow.packets, interval);
    }
  }
  if (flow.srcAddr !== undefined && flow.dstAddr !== undefined && proto !== undefined) {
    // ICMP: the type and code stand in for the ports (Community ID spec).
    const icmp = isIcmp(proto);
    const sp = icmp ? icmpType : ports ? flow.srcPort : undefined;
    const dp = icmp ? icmpCode : ports ? flow.dstPort : undefined;
    const id = communityId(flow.srcAddr, flow.dstAddr, proto, sp, dp);
    if (id) a["netflow.community_id"] = id;
  }
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
      const v = extra[k];
      // Only decoded elements (variable-length strings, unknown fields as hex) can be long.
      a[k] = typeof v === "string" && v.length * 3 > maxValueBytes ? truncateUtf8(v, maxValueBytes) : v;
    }
  }
  if (limit) limit.dropped = dropped;
  return a;
}

/**
 * counter × sampling interval as a whole number in [0, 2^53 − 1] (Number.MAX_SAFE_INTEGER): above it a
 * double no longer holds every integer, so the estimate is clamped there rather than rounded at random or
 * wrapped on the wire. Only absurd input gets near it (a 2^53-byte counter at 1-in-1000).
 */
function estimate(count: number, interval: number): number {
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
    "netflow.collector.host": collectorHost,
    "netflow.collector.port": collectorPort,
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
