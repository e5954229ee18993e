/**
 * Community ID flow hashing, version 1 (the Zeek/Suricata/Elastic scheme), so flows can be joined with
 * other network data: "1:" + base64(SHA-1(seed ‖ addresses ‖ protocol ‖ 0 ‖ ports)), endpoints ordered.
 */

import { parseIpInto } from "../netflow/addresses.ts";

/** ICMP types that have a reply counterpart: the pair behaves like two ports of one conversation. */
const ICMP4_PAIRS: Record<number, number> = {
  8: 0,
  0: 8,
  13: 14,
  14: 13,
  15: 16,
  16: 15,
  10: 9,
  9: 10,
  17: 18,
  18: 17,
};
const ICMP6_PAIRS: Record<number, number> = {
  128: 129,
  129: 128,
  133: 134,
  134: 133,
  135: 136,
  136: 135,
  130: 131,
  131: 130,
  139: 140,
  140: 139,
  144: 145,
  145: 144,
};

/** The length of a Community ID v1 string: "1:" + base64 of 20 bytes. */
export const COMMUNITY_ID_LENGTH = 30;

/**
 * Community ID v1 for a flow. For ICMP (1) and ICMPv6 (58), pass the type as `srcPort` and the code as
 * `dstPort`. Returns undefined when an address cannot be parsed or the families differ.
 */
export function communityId(
  srcAddr: string,
  dstAddr: string,
  protocol: number,
  srcPort: number | undefined,
  dstPort: number | undefined,
  seed = 0,
): string | undefined {
  const out = new Uint8Array(COMMUNITY_ID_LENGTH);
  if (!communityIdInto(out, 0, srcAddr, dstAddr, protocol, srcPort, dstPort, seed)) return undefined;
  return String.fromCharCode.apply(null, out as unknown as number[]);
}

// Scratch for the two addresses: a flow's hash allocates nothing.
const ADDR_A = new Uint8Array(16), ADDR_B = new Uint8Array(16);

/**
 * Writes the flow's Community ID v1 ({@link COMMUNITY_ID_LENGTH} ASCII bytes) at `out[pos]`, as
 * {@link communityId} would return it; returns false (writing nothing) where that returns undefined. The
 * encoder's path: the hash goes straight into the request, with no string in between.
 */
export function communityIdInto(
  out: Uint8Array,
  pos: number,
  srcAddr: string,
  dstAddr: string,
  protocol: number,
  srcPort: number | undefined,
  dstPort: number | undefined,
  seed = 0,
): boolean {
  const na = parseIpInto(srcAddr, ADDR_A), nb = parseIpInto(dstAddr, ADDR_B);
  if (na === 0 || na !== nb) return false;
  let pa = srcPort, pb = dstPort;
  let oneWay = false;
  if ((protocol === 1 || protocol === 58) && pa !== undefined && pb !== undefined) {
    const pairs = protocol === 1 ? ICMP4_PAIRS : ICMP6_PAIRS;
    const counterpart = pairs[pa];
    if (counterpart === undefined) oneWay = true;
    else pb = counterpart;
  }
  const hasPorts = pa !== undefined && pb !== undefined;
  let a = ADDR_A, b = ADDR_B;
  if (!oneWay && compareEndpoints(a, pa ?? 0, b, pb ?? 0, na) > 0) {
    [a, b] = [b, a];
    [pa, pb] = [pb, pa];
  }
  // The input (at most 40 bytes) goes straight into the one SHA-1 block.
  const m = BLOCK;
  m.fill(0);
  m[0] = (seed >> 8) & 0xff;
  m[1] = seed & 0xff;
  for (let i = 0; i < na; i++) {
    m[2 + i] = a[i];
    m[2 + na + i] = b[i];
  }
  let off = 2 + na * 2;
  m[off++] = protocol;
  m[off++] = 0;
  if (hasPorts) {
    m[off++] = (pa! >> 8) & 0xff;
    m[off++] = pa! & 0xff;
    m[off++] = (pb! >> 8) & 0xff;
    m[off++] = pb! & 0xff;
  }
  sha1Block(off);
  out[pos] = 0x31; // "1"
  out[pos + 1] = 0x3a; // ":"
  base64Digest(out, pos + 2);
  return true;
}

function compareEndpoints(a: Uint8Array, pa: number, b: Uint8Array, pb: number, n: number): number {
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return pa - pb;
}

// A Community ID input is at most 40 bytes, so SHA-1 is always one 64-byte block. This direct version is
// about ten times cheaper per flow than a node:crypto hash object; a test checks it against node:crypto.
const W = new Int32Array(80);
const BLOCK = new Uint8Array(64);
/** The digest of the last {@link sha1Block}, as five big-endian words. */
const H = new Int32Array(5);

/** SHA-1 of at most 55 bytes (one padded block). */
export function sha1SingleBlock(data: Uint8Array): Uint8Array {
  if (data.length > 55) throw new RangeError("sha1SingleBlock takes at most 55 bytes");
  BLOCK.fill(0);
  BLOCK.set(data);
  sha1Block(data.length);
  const out = new Uint8Array(20);
  for (let i = 0; i < 5; i++) {
    out[4 * i] = H[i] >>> 24;
    out[4 * i + 1] = (H[i] >>> 16) & 0xff;
    out[4 * i + 2] = (H[i] >>> 8) & 0xff;
    out[4 * i + 3] = H[i] & 0xff;
  }
  return out;
}

/** SHA-1 of the first `length` (≤ 55) bytes of {@link BLOCK}, whose other bytes are zero, into {@link H}. */
function sha1Block(length: number): void {
  const m = BLOCK;
  m[length] = 0x80;
  const bits = length * 8;
  m[62] = bits >>> 8;
  m[63] = bits & 0xff;
  for (let i = 0; i < 16; i++) {
    W[i] = (m[4 * i] << 24) | (m[4 * i + 1] << 16) | (m[4 * i + 2] << 8) | m[4 * i + 3];
  }
  for (let i = 16; i < 20; i++) {
    const x = W[i - 3] ^ W[i - 8] ^ W[i - 14] ^ W[i - 16];
    W[i] = (x << 1) | (x >>> 31);
  }
  let a = 0x67452301, b = 0xefcdab89 | 0, c = 0x98badcfe | 0, d = 0x10325476, e = 0xc3d2e1f0 | 0;
  // Four loops, one per round function (no branch per step); from round 20 on the schedule is extended as the rounds go.
  for (let i = 0; i < 20; i++) {
    const t = (((a << 5) | (a >>> 27)) + ((b & c) | (~b & d)) + e + 0x5a827999 + W[i]) | 0;
    e = d;
    d = c;
    c = (b << 30) | (b >>> 2);
    b = a;
    a = t;
  }
  for (let i = 20; i < 40; i++) {
    const x = W[i - 3] ^ W[i - 8] ^ W[i - 14] ^ W[i - 16];
    const w = (x << 1) | (x >>> 31);
    W[i] = w;
    const t = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + 0x6ed9eba1 + w) | 0;
    e = d;
    d = c;
    c = (b << 30) | (b >>> 2);
    b = a;
    a = t;
  }
  for (let i = 40; i < 60; i++) {
    const x = W[i - 3] ^ W[i - 8] ^ W[i - 14] ^ W[i - 16];
    const w = (x << 1) | (x >>> 31);
    W[i] = w;
    const t = (((a << 5) | (a >>> 27)) + ((b & c) | (b & d) | (c & d)) + e + (0x8f1bbcdc | 0) + w) | 0;
    e = d;
    d = c;
    c = (b << 30) | (b >>> 2);
    b = a;
    a = t;
  }
  for (let i = 60; i < 80; i++) {
    const x = W[i - 3] ^ W[i - 8] ^ W[i - 14] ^ W[i - 16];
    const w = (x << 1) | (x >>> 31);
    W[i] = w;
    const t = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + (0xca62c1d6 | 0) + w) | 0;
    e = d;
    d = c;
    c = (b << 30) | (b >>> 2);
    b = a;
    a = t;
  }
  H[0] = (0x67452301 + a) | 0;
  H[1] = (0xefcdab89 + b) | 0;
  H[2] = (0x98badcfe + c) | 0;
  H[3] = (0x10325476 + d) | 0;
  H[4] = (0xc3d2e1f0 + e) | 0;
}

const B64 = new TextEncoder().encode("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");

/** The digest in {@link H} as standard padded base64 (28 ASCII bytes) at out[pos]. */
function base64Digest(out: Uint8Array, pos: number): void {
  // 20 bytes: six 3-byte groups, then 2 bytes and "=".
  let carry = 0, bits = 0, p = pos;
  for (let i = 0; i < 5; i++) {
    const w = H[i];
    for (let s = 24; s >= 0; s -= 8) {
      carry = (carry << 8) | ((w >>> s) & 0xff);
      bits += 8;
      while (bits >= 6) {
        bits -= 6;
        out[p++] = B64[(carry >>> bits) & 63];
      }
      carry &= (1 << bits) - 1;
    }
  }
  out[p++] = B64[(carry << (6 - bits)) & 63];
  out[p] = 0x3d; // "="
}
