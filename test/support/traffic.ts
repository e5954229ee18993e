/**
 * Deterministic traffic captures for interoperability tests: a classic pcap file (Ethernet link type) with
 * IPv4 and IPv6 conversations over TCP, UDP, ICMP and ICMPv6, with correct lengths and checksums, so real
 * flow exporters (softflowd, pmacctd) can turn it into NetFlow/IPFIX.
 *
 * ```ts
 * const traffic = writeTrafficPcap("/tmp/traffic.pcap");
 * // traffic.flows: what a flow meter should report (one entry per direction)
 * ```
 *
 * No dependencies: the frames are built byte by byte.
 */
import { writeFileSync } from "node:fs";

/** One unidirectional flow as a flow meter should see it (bytes are IP-layer bytes, as NetFlow counts them). */
export interface ExpectedFlow {
  ipVersion: 4 | 6;
  srcAddr: string;
  dstAddr: string;
  srcPort: number;
  dstPort: number;
  protocol: number;
  packets: number;
  bytes: number;
  /** OR of the TCP flags of every packet (TCP only). */
  tcpFlags?: number;
  tos: number;
  /** Capture times (epoch ms) of the first and last packet. */
  firstMs: number;
  lastMs: number;
  /**
   * First and last packet of the whole conversation (both directions). softflowd and pmacct's nfprobe
   * track a bidirectional flow and export both directions with these times.
   */
  conversationFirstMs: number;
  conversationLastMs: number;
}

export interface Traffic {
  path: string;
  /** Frames written. */
  frames: number;
  flows: ExpectedFlow[];
}

/** TCP flag bits. */
export const FIN = 0x01, SYN = 0x02, RST = 0x04, PSH = 0x08, ACK = 0x10;

/** Capture start: 2023-11-14T22:13:20Z. Times in the pcap are deterministic, not the wall clock. */
export const TRAFFIC_BASE_MS = 1_700_000_000_000;

const MAC_A = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x01];
const MAC_B = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x02];

function ipv4(addr: string): Uint8Array {
  const parts = addr.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !(p >= 0 && p <= 255))) throw new Error(`bad IPv4 ${addr}`);
  return Uint8Array.from(parts);
}

function ipv6(addr: string): Uint8Array {
  const [head, tail] = addr.includes("::") ? addr.split("::") : [addr, undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  if (groups.length !== 8) throw new Error(`bad IPv6 ${addr}`);
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  });
  return out;
}

/** Internet checksum (RFC 1071) over the concatenation of `parts` (each part of even length but the last). */
function checksum(...parts: Uint8Array[]): number {
  let sum = 0;
  for (const p of parts) {
    for (let i = 0; i < p.length; i += 2) sum += (p[i] << 8) | (p[i + 1] ?? 0);
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

interface Endpoint {
  addr: string;
  port: number;
}

interface PacketSpec {
  /** true: from the conversation's initiator (a → b). */
  forward: boolean;
  /** TCP flags; ICMP type for ICMP. */
  flags?: number;
  payload: number;
  /** Milliseconds after the conversation's start. */
  atMs: number;
}

interface Conversation {
  a: Endpoint;
  b: Endpoint;
  protocol: 6 | 17 | 1 | 58;
  tos: number;
  startMs: number;
  packets: PacketSpec[];
}

/** Transport header + payload for one packet, checksum filled in. */
function transport(
  c: Conversation,
  p: PacketSpec,
  src: Uint8Array,
  dst: Uint8Array,
  seq: number,
  tcp: { seq: number; ack: number },
): Uint8Array {
  const from = p.forward ? c.a : c.b;
  const to = p.forward ? c.b : c.a;
  const payload = new Uint8Array(p.payload);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 7 + seq) & 0xff;
  let seg: Uint8Array;
  let csumAt: number;
  if (c.protocol === 6) {
    seg = new Uint8Array(20 + payload.length);
    const v = new DataView(seg.buffer);
    v.setUint16(0, from.port);
    v.setUint16(2, to.port);
    v.setUint32(4, tcp.seq);
    v.setUint32(8, (p.flags ?? 0) & ACK ? tcp.ack : 0);
    seg[12] = 5 << 4; // data offset: 5 words
    seg[13] = p.flags ?? 0;
    v.setUint16(14, 65535); // window
    csumAt = 16;
    seg.set(payload, 20);
  } else if (c.protocol === 17) {
    seg = new Uint8Array(8 + payload.length);
    const v = new DataView(seg.buffer);
    v.setUint16(0, from.port);
    v.setUint16(2, to.port);
    v.setUint16(4, seg.length);
    csumAt = 6;
    seg.set(payload, 8);
  } else {
    // ICMP / ICMPv6 echo: type, code, checksum, identifier, sequence number.
    seg = new Uint8Array(8 + payload.length);
    const v = new DataView(seg.buffer);
    seg[0] = p.flags ?? 8;
    v.setUint16(4, c.a.port); // identifier
    v.setUint16(6, seq);
    csumAt = 2;
    seg.set(payload, 8);
  }
  let sum: number;
  if (c.protocol === 1) {
    sum = checksum(seg);
  } else {
    const pseudo = new Uint8Array(src.length === 4 ? 12 : 40);
    const pv = new DataView(pseudo.buffer);
    pseudo.set(src, 0);
    pseudo.set(dst, src.length);
    if (src.length === 4) {
      pseudo[9] = c.protocol;
      pv.setUint16(10, seg.length);
    } else {
      pv.setUint32(32, seg.length);
      pseudo[39] = c.protocol;
    }
    sum = checksum(pseudo, seg);
    if (c.protocol === 17 && sum === 0) sum = 0xffff;
  }
  new DataView(seg.buffer).setUint16(csumAt, sum);
  return seg;
}

/** Ethernet + IP frame around a transport segment. Returns the frame and its IP-layer length. */
function frame(
  c: Conversation,
  p: PacketSpec,
  seq: number,
  tcp: { seq: number; ack: number },
): { bytes: Uint8Array; ipLength: number } {
  const v6 = c.a.addr.includes(":");
  const src = v6 ? ipv6((p.forward ? c.a : c.b).addr) : ipv4((p.forward ? c.a : c.b).addr);
  const dst = v6 ? ipv6((p.forward ? c.b : c.a).addr) : ipv4((p.forward ? c.b : c.a).addr);
  const seg = transport(c, p, src, dst, seq, tcp);
  const ipHeader = v6 ? 40 : 20;
  const out = new Uint8Array(14 + ipHeader + seg.length);
  const v = new DataView(out.buffer);
  out.set(p.forward ? MAC_B : MAC_A, 0);
  out.set(p.forward ? MAC_A : MAC_B, 6);
  v.setUint16(12, v6 ? 0x86dd : 0x0800);
  if (v6) {
    v.setUint32(14, (6 << 28) | (c.tos << 20) | 0x12345); // version, traffic class, flow label
    v.setUint16(18, seg.length);
    out[20] = c.protocol;
    out[21] = 64;
    out.set(src, 22);
    out.set(dst, 38);
  } else {
    out[14] = 0x45;
    out[15] = c.tos;
    v.setUint16(16, ipHeader + seg.length);
    v.setUint16(18, seq & 0xffff); // identification
    v.setUint16(20, 0x4000); // don't fragment
    out[22] = 64;
    out[23] = c.protocol;
    out.set(src, 26);
    out.set(dst, 30);
    v.setUint16(24, checksum(out.subarray(14, 34)));
  }
  out.set(seg, 14 + ipHeader);
  return { bytes: out, ipLength: ipHeader + seg.length };
}

function tcpConversation(
  a: Endpoint,
  b: Endpoint,
  startMs: number,
  tos: number,
  data: number[],
): Conversation {
  const packets: PacketSpec[] = [
    { forward: true, flags: SYN, payload: 0, atMs: 0 },
    { forward: false, flags: SYN | ACK, payload: 0, atMs: 12 },
    { forward: true, flags: ACK, payload: 0, atMs: 25 },
  ];
  let t = 40;
  data.forEach((n, i) => {
    packets.push({ forward: i % 2 === 0, flags: PSH | ACK, payload: n, atMs: t });
    t += 150;
  });
  packets.push({ forward: true, flags: FIN | ACK, payload: 0, atMs: t });
  packets.push({ forward: false, flags: FIN | ACK, payload: 0, atMs: t + 10 });
  packets.push({ forward: true, flags: ACK, payload: 0, atMs: t + 20 });
  return { a, b, protocol: 6, tos, startMs, packets };
}

function requestResponse(
  a: Endpoint,
  b: Endpoint,
  protocol: 17 | 1 | 58,
  startMs: number,
  tos: number,
  rounds: number,
  sizes: [number, number],
): Conversation {
  const echo = protocol === 1 ? [8, 0] : protocol === 58 ? [128, 129] : [0, 0];
  const packets: PacketSpec[] = [];
  for (let i = 0; i < rounds; i++) {
    packets.push({ forward: true, flags: echo[0], payload: sizes[0], atMs: i * 400 });
    packets.push({ forward: false, flags: echo[1], payload: sizes[1], atMs: i * 400 + 30 });
  }
  return { a, b, protocol, tos, startMs, packets };
}

/** The fixed conversation mix: varied protocols, families, sizes, ToS values and times over ~4 s. */
export function conversations(options: TrafficOptions = {}): Conversation[] {
  const ep = (addr: string, port = 0): Endpoint => ({ addr, port });
  return [
    tcpConversation(ep("10.1.0.1", 40001), ep("192.0.2.10", 443), 0, 0, [517, 1448, 1448, 230, 1200]),
    tcpConversation(ep("10.1.0.2", 40002), ep("192.0.2.20", 80), 300, 0x28, [320, 1448, 64]),
    requestResponse(ep("10.1.0.3", 53001), ep("192.0.2.53", 53), 17, 500, 0, 3, [42, 120]),
    requestResponse(ep("10.1.0.4", 0x1234), ep("192.0.2.4"), 1, 800, 0, 4, [56, 56]),
    tcpConversation(ep("10.1.0.5", 51515), ep("198.51.100.7", 5432), 1200, 0xb8, [100, 2000 - 40, 77]),
    requestResponse(ep("10.1.0.6", 5353), ep("10.1.0.7", 5353), 17, 1500, 0x10, 2, [300, 300]),
    tcpConversation(ep("2001:db8::1", 50000), ep("2001:db8:1::2", 22), 1800, 0x48, [40, 1200, 60]),
    requestResponse(ep("2001:db8::3", 53002), ep("2001:db8:1::53", 53), 17, 2200, 0, 2, [50, 200]),
    requestResponse(ep("2001:db8::4", 0x0abc), ep("2001:db8:1::4"), 58, 2500, 0, 3, [56, 56]),
    tcpConversation(ep("fd00::10", 44444), ep("fd00:0:0:1::20", 8443), 3000, 0, [600, 900]),
    // Enough further small conversations that v5 (30 records per packet) and v9/IPFIX need several datagrams.
    ...(options.small ? [] : moreConversations()),
  ];
}

function moreConversations(): Conversation[] {
  const ep = (addr: string, port = 0): Endpoint => ({ addr, port });
  return [
    ...Array.from(
      { length: 12 },
      (_, i) =>
        requestResponse(
          ep(`10.3.${i}.${10 + i}`, 20000 + 37 * i),
          ep("203.0.113.123", 123),
          17,
          3200 + 40 * i,
          0,
          1 + (i % 3),
          [
            48 + i,
            48,
          ],
        ),
    ),
    ...Array.from(
      { length: 4 },
      (_, i) =>
        requestResponse(
          ep(`2001:db8:3::${i + 1}`, 30000 + i),
          ep("2001:db8:ff::123", 123),
          17,
          3700 + 50 * i,
          0,
          1 + i,
          [
            60 + 10 * i,
            60,
          ],
        ),
    ),
  ];
}

export interface TrafficOptions {
  /** Only the first ten conversations (12 IPv4 + 8 IPv6 unidirectional flows): one v1 datagram's worth. */
  small?: boolean;
  /** Capture start in epoch ms (default {@link TRAFFIC_BASE_MS}); end-to-end tests use a recent time. */
  baseMs?: number;
}

/** Writes the traffic mix as a pcap file at `path` and returns what a flow meter should report. */
export function writeTrafficPcap(path: string, options: TrafficOptions = {}): Traffic {
  const frames: { timeMs: number; bytes: Uint8Array }[] = [];
  const flows = new Map<string, ExpectedFlow>();
  let seq = 0;
  const byConversation = new Map<Conversation, ExpectedFlow[]>();
  for (const c of conversations(options)) {
    // Next sequence number of each side (initiator, responder): SYN and FIN count as one byte.
    const next = [1_000_000 + seq * 7919, 5_000_000 + seq * 104_729];
    for (const p of c.packets) {
      seq++;
      const [me, peer] = p.forward ? [0, 1] : [1, 0];
      const { bytes, ipLength } = frame(c, p, seq, { seq: next[me], ack: next[peer] });
      next[me] += p.payload + ((p.flags ?? 0) & SYN ? 1 : 0) + ((p.flags ?? 0) & FIN ? 1 : 0);
      const timeMs = (options.baseMs ?? TRAFFIC_BASE_MS) + c.startMs + p.atMs;
      frames.push({ timeMs, bytes });
      const from = p.forward ? c.a : c.b;
      const to = p.forward ? c.b : c.a;
      const key = `${from.addr}|${to.addr}|${p.forward}|${c.protocol}|${c.a.port}`;
      let f = flows.get(key);
      if (!f) {
        const ports = c.protocol === 6 || c.protocol === 17;
        f = {
          ipVersion: c.a.addr.includes(":") ? 6 : 4,
          srcAddr: from.addr,
          dstAddr: to.addr,
          srcPort: ports ? from.port : 0,
          dstPort: ports ? to.port : 0,
          protocol: c.protocol,
          packets: 0,
          bytes: 0,
          tcpFlags: c.protocol === 6 ? 0 : undefined,
          tos: c.tos,
          firstMs: timeMs,
          lastMs: timeMs,
          conversationFirstMs: timeMs,
          conversationLastMs: timeMs,
        };
        flows.set(key, f);
        byConversation.set(c, [...(byConversation.get(c) ?? []), f]);
      }
      f.packets++;
      f.bytes += ipLength;
      if (f.tcpFlags !== undefined) f.tcpFlags |= p.flags ?? 0;
      f.lastMs = Math.max(f.lastMs, timeMs);
    }
  }
  for (const both of byConversation.values()) {
    const first = Math.min(...both.map((f) => f.firstMs));
    const last = Math.max(...both.map((f) => f.lastMs));
    for (const f of both) Object.assign(f, { conversationFirstMs: first, conversationLastMs: last });
  }
  frames.sort((x, y) => x.timeMs - y.timeMs);

  const size = 24 + frames.reduce((n, f) => n + 16 + f.bytes.length, 0);
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0xa1b2c3d4, true); // magic (microsecond timestamps), little endian
  v.setUint16(4, 2, true);
  v.setUint16(6, 4, true);
  v.setUint32(16, 65535, true); // snaplen
  v.setUint32(20, 1, true); // LINKTYPE_ETHERNET
  let off = 24;
  for (const f of frames) {
    v.setUint32(off, Math.floor(f.timeMs / 1000), true);
    v.setUint32(off + 4, (f.timeMs % 1000) * 1000, true);
    v.setUint32(off + 8, f.bytes.length, true);
    v.setUint32(off + 12, f.bytes.length, true);
    out.set(f.bytes, off + 16);
    off += 16 + f.bytes.length;
  }
  writeFileSync(path, out);
  return { path, frames: frames.length, flows: [...flows.values()] };
}
