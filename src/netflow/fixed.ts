/** NetFlow v1 and v5: Cisco's fixed formats (48-byte records after a 16- or 24-byte header). */
import { ipv4At } from "./addresses.ts";
import { resolveIcmp } from "./icmp.ts";
import type { ExportPacket, Flow } from "./types.ts";

const RECORD_SIZE = 48;
const V1_HEADER = 16;
const V5_HEADER = 24;

/** Decodes a v1 or v5 datagram into `packet` (version, exporter and sizes already set). */
export function decodeFixed(bytes: Uint8Array, view: DataView, packet: ExportPacket): void {
  const v5 = packet.version === 5;
  const headerSize = v5 ? V5_HEADER : V1_HEADER;
  if (bytes.length < headerSize) {
    packet.error = {
      kind: "truncated",
      message: `v${packet.version} header needs ${headerSize} bytes, datagram has ${bytes.length}`,
    };
    return;
  }
  const count = view.getUint16(2);
  packet.sysUptimeMs = view.getUint32(4);
  packet.exportTimeMs = view.getUint32(8) * 1000 + Math.floor(view.getUint32(12) / 1e6);
  let samplingInterval = 0;
  if (v5) {
    packet.sequence = view.getUint32(16);
    packet.engineType = bytes[20];
    packet.engineId = bytes[21];
    // Top two bits: sampling mode; low 14 bits: the interval.
    samplingInterval = view.getUint16(22) & 0x3fff;
    if (samplingInterval > 0) packet.samplingInterval = samplingInterval;
  }
  // Cisco documents at most 24 (v1) and 30 (v5) records, but real exporters exceed it (softflowd sends
  // 30-record v1 datagrams): the datagram's length is the bound that matters.
  const fits = Math.floor((bytes.length - headerSize) / RECORD_SIZE);
  const n = Math.min(count, fits);
  for (let i = 0, off = headerSize; i < n; i++, off += RECORD_SIZE) {
    const flow: Flow = {
      srcAddr: ipv4At(bytes, off),
      dstAddr: ipv4At(bytes, off + 4),
      nextHop: ipv4At(bytes, off + 8),
      inputIf: view.getUint16(off + 12),
      outputIf: view.getUint16(off + 14),
      packets: view.getUint32(off + 16),
      bytes: view.getUint32(off + 20),
      firstSwitched: view.getUint32(off + 24),
      lastSwitched: view.getUint32(off + 28),
      srcPort: view.getUint16(off + 32),
      dstPort: view.getUint16(off + 34),
      ipVersion: 4,
    };
    if (v5) {
      flow.tcpFlags = bytes[off + 37];
      flow.protocol = bytes[off + 38];
      flow.tos = bytes[off + 39];
      flow.srcAs = view.getUint16(off + 40);
      flow.dstAs = view.getUint16(off + 42);
      flow.srcMask = bytes[off + 44];
      flow.dstMask = bytes[off + 45];
      if (samplingInterval > 0) flow.samplingInterval = samplingInterval;
    } else {
      flow.protocol = bytes[off + 38];
      flow.tos = bytes[off + 39];
      flow.tcpFlags = bytes[off + 40];
    }
    // Type × 256 + code in the destination port; no swap state: these formats carry IPv4 (ICMP) only.
    const protocol = flow.protocol;
    if (protocol === 1 || protocol === 58) resolveIcmp(flow, undefined, undefined);
    packet.flows.push(flow);
  }
  if (n < count) {
    packet.error = {
      kind: "truncated",
      message: `v${packet.version} header announces ${count} records, datagram holds ${fits}`,
    };
  }
}
