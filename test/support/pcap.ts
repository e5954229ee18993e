/**
 * A minimal pcap writer (classic libpcap format, Ethernet link type) for UDP datagrams, so tests can hand
 * their bytes to tshark or to real collectors and replay tools.
 *
 * ```ts
 * const payload = new Uint8Array([0, 5, 0, 0]); // a datagram's bytes
 * writePcap("/tmp/x.pcap", [{ src: "10.0.0.1", srcPort: 50000, dst: "10.0.0.2", dstPort: 2055, payload }]);
 * ```
 */
import { writeFileSync } from "node:fs";
import { ipv4Bytes, ipv6Bytes } from "../../src/tools/encode.ts";

export interface PcapDatagram {
  /** IPv4 or IPv6 addresses (both of the same family). */
  src: string;
  srcPort: number;
  dst: string;
  dstPort: number;
  payload: Uint8Array;
  /** Capture time in epoch milliseconds (default: 1 ms apart from 1,700,000,000,000). */
  timeMs?: number;
}

const SRC_MAC = [0x02, 0, 0, 0, 0, 0x01];
const DST_MAC = [0x02, 0, 0, 0, 0, 0x02];

/** Internet checksum (RFC 1071) over `parts`. */
function checksum(...parts: Uint8Array[]): number {
  let sum = 0;
  for (const p of parts) {
    for (let i = 0; i < p.length; i += 2) sum += (p[i] << 8) | (p[i + 1] ?? 0);
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Ethernet + IPv4/IPv6 + UDP frame around the payload, with correct lengths and checksums. */
export function udpFrame(d: PcapDatagram): Uint8Array {
  const v6 = d.src.includes(":");
  const src = v6 ? ipv6Bytes(d.src) : ipv4Bytes(d.src);
  const dst = v6 ? ipv6Bytes(d.dst) : ipv4Bytes(d.dst);
  if (src.length !== dst.length) throw new Error("src and dst must be of the same address family");
  const udpLen = 8 + d.payload.length;
  const ipLen = v6 ? 40 : 20;
  const frame = new Uint8Array(14 + ipLen + udpLen);
  const view = new DataView(frame.buffer);
  frame.set(DST_MAC, 0);
  frame.set(SRC_MAC, 6);
  view.setUint16(12, v6 ? 0x86dd : 0x0800);

  const ip = frame.subarray(14, 14 + ipLen);
  const ipView = new DataView(ip.buffer, ip.byteOffset, ip.byteLength);
  if (v6) {
    ipView.setUint32(0, 0x60000000); // version 6
    ipView.setUint16(4, udpLen);
    ip[6] = 17; // next header: UDP
    ip[7] = 64; // hop limit
    ip.set(src, 8);
    ip.set(dst, 24);
  } else {
    ip[0] = 0x45; // version 4, IHL 5
    ipView.setUint16(2, ipLen + udpLen);
    ipView.setUint16(6, 0x4000); // don't fragment
    ip[8] = 64; // TTL
    ip[9] = 17; // UDP
    ip.set(src, 12);
    ip.set(dst, 16);
    ipView.setUint16(10, checksum(ip));
  }

  const udp = frame.subarray(14 + ipLen);
  const udpView = new DataView(udp.buffer, udp.byteOffset, udp.byteLength);
  udpView.setUint16(0, d.srcPort);
  udpView.setUint16(2, d.dstPort);
  udpView.setUint16(4, udpLen);
  udp.set(d.payload, 8);
  const pseudo = new Uint8Array(src.length * 2 + (v6 ? 8 : 4));
  const pseudoView = new DataView(pseudo.buffer);
  pseudo.set(src, 0);
  pseudo.set(dst, src.length);
  if (v6) {
    pseudoView.setUint32(32, udpLen);
    pseudo[39] = 17;
  } else {
    pseudo[9] = 17;
    pseudoView.setUint16(10, udpLen);
  }
  udpView.setUint16(6, checksum(pseudo, udp) || 0xffff);
  return frame;
}

/** The bytes of a pcap file holding `datagrams`, in order. */
export function pcapBytes(datagrams: PcapDatagram[]): Uint8Array {
  const frames = datagrams.map(udpFrame);
  const out = new Uint8Array(24 + frames.reduce((n, f) => n + 16 + f.length, 0));
  const view = new DataView(out.buffer);
  // Global header, little-endian: magic, version 2.4, thiszone, sigfigs, snaplen, linktype 1 (Ethernet).
  view.setUint32(0, 0xa1b2c3d4, true);
  view.setUint16(4, 2, true);
  view.setUint16(6, 4, true);
  view.setUint32(16, 262144, true);
  view.setUint32(20, 1, true);
  let off = 24;
  frames.forEach((frame, i) => {
    const ms = datagrams[i].timeMs ?? 1_700_000_000_000 + i;
    view.setUint32(off, Math.floor(ms / 1000), true);
    view.setUint32(off + 4, Math.round((ms % 1000) * 1000), true);
    view.setUint32(off + 8, frame.length, true);
    view.setUint32(off + 12, frame.length, true);
    out.set(frame, off + 16);
    off += 16 + frame.length;
  });
  return out;
}

/** Writes `datagrams` to a pcap file at `path`. */
export function writePcap(path: string, datagrams: PcapDatagram[]): void {
  writeFileSync(path, pcapBytes(datagrams));
}
