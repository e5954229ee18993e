/**
 * Community ID flow hashing, version 1 (the Zeek/Suricata/Elastic scheme), so flows can be joined with
 * other network data: "1:" + base64(SHA-1(seed ‖ addresses ‖ protocol ‖ 0 ‖ ports)), endpoints ordered.
 */

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
  let a = addressBytes(srcAddr);
  let b = addressBytes(dstAddr);
  if (!a || !b || a.length !== b.length) return undefined;
  let pa = srcPort, pb = dstPort;
  let oneWay = false;
  if ((protocol === 1 || protocol === 58) && pa !== undefined && pb !== undefined) {
    const pairs = protocol === 1 ? ICMP4_PAIRS : ICMP6_PAIRS;
    const counterpart = pairs[pa];
    if (counterpart === undefined) oneWay = true;
    else pb = counterpart;
  }
  const hasPorts = pa !== undefined && pb !== undefined;
  if (!oneWay && compareEndpoints(a, pa ?? 0, b, pb ?? 0) > 0) {
    [a, b] = [b, a];
    [pa, pb] = [pb, pa];
  }
  const buf = new Uint8Array(2 + a.length * 2 + 2 + (hasPorts ? 4 : 0));
  buf[0] = (seed >> 8) & 0xff;
  buf[1] = seed & 0xff;
  buf.set(a, 2);
  buf.set(b, 2 + a.length);
  let off = 2 + a.length * 2;
  buf[off++] = protocol;
  buf[off++] = 0;
  if (hasPorts) {
    buf[off++] = (pa! >> 8) & 0xff;
    buf[off++] = pa! & 0xff;
    buf[off++] = (pb! >> 8) & 0xff;
    buf[off++] = pb! & 0xff;
  }
  return "1:" + base64(sha1SingleBlock(buf));
}

function compareEndpoints(a: Uint8Array, pa: number, b: Uint8Array, pb: number): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return pa - pb;
}

/** Network-order bytes of a textual IPv4 or IPv6 address, or undefined when it is not one. */
export function addressBytes(text: string): Uint8Array | undefined {
  if (!text.includes(":")) return ipv4Bytes(text);
  let head = text, tail = "";
  const dbl = text.indexOf("::");
  if (dbl >= 0) {
    head = text.slice(0, dbl);
    tail = text.slice(dbl + 2);
    if (tail.includes("::")) return undefined;
  }
  const groups = (part: string): number[] | undefined => {
    if (part === "") return [];
    const out: number[] = [];
    const items = part.split(":");
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      if (i === items.length - 1 && item.includes(".")) {
        const v4 = ipv4Bytes(item);
        if (!v4) return undefined;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(item)) return undefined;
        out.push(parseInt(item, 16));
      }
    }
    return out;
  };
  const h = groups(head), t = groups(tail);
  if (!h || !t) return undefined;
  const missing = 8 - h.length - t.length;
  if (dbl >= 0 ? missing < 1 : missing !== 0) return undefined;
  const all = [...h, ...new Array<number>(missing).fill(0), ...t];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

function ipv4Bytes(text: string): Uint8Array | undefined {
  const out = new Uint8Array(4);
  let part = 0, value = 0, digits = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digits === 0 || part === 3) return undefined;
      out[part++] = value;
      value = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      value = value * 10 + (c - 48);
      if (value > 255) return undefined;
      digits++;
    } else {
      return undefined;
    }
  }
  if (part !== 3 || digits === 0) return undefined;
  out[3] = value;
  return out;
}

// A Community ID input is at most 40 bytes, so SHA-1 is always one 64-byte block. This direct version is
// about ten times cheaper per flow than a node:crypto hash object; a test checks it against node:crypto.
const W = new Int32Array(80);
const BLOCK = new Uint8Array(64);

/** SHA-1 of at most 55 bytes (one padded block). */
export function sha1SingleBlock(data: Uint8Array): Uint8Array {
  if (data.length > 55) throw new RangeError("sha1SingleBlock takes at most 55 bytes");
  BLOCK.fill(0);
  BLOCK.set(data);
  BLOCK[data.length] = 0x80;
  const bits = data.length * 8;
  BLOCK[62] = bits >>> 8;
  BLOCK[63] = bits & 0xff;
  for (let i = 0; i < 16; i++) {
    W[i] = (BLOCK[4 * i] << 24) | (BLOCK[4 * i + 1] << 16) | (BLOCK[4 * i + 2] << 8) | BLOCK[4 * i + 3];
  }
  for (let i = 16; i < 80; i++) {
    const x = W[i - 3] ^ W[i - 8] ^ W[i - 14] ^ W[i - 16];
    W[i] = (x << 1) | (x >>> 31);
  }
  let a = 0x67452301, b = 0xefcdab89 | 0, c = 0x98badcfe | 0, d = 0x10325476, e = 0xc3d2e1f0 | 0;
  for (let i = 0; i < 80; i++) {
    let f: number, k: number;
    if (i < 20) {
      f = (b & c) | (~b & d);
      k = 0x5a827999;
    } else if (i < 40) {
      f = b ^ c ^ d;
      k = 0x6ed9eba1;
    } else if (i < 60) {
      f = (b & c) | (b & d) | (c & d);
      k = 0x8f1bbcdc | 0;
    } else {
      f = b ^ c ^ d;
      k = 0xca62c1d6 | 0;
    }
    const t = (((a << 5) | (a >>> 27)) + f + e + k + W[i]) | 0;
    e = d;
    d = c;
    c = (b << 30) | (b >>> 2);
    b = a;
    a = t;
  }
  const out = new Uint8Array(20);
  const h = [
    (0x67452301 + a) | 0,
    (0xefcdab89 + b) | 0,
    (0x98badcfe + c) | 0,
    (0x10325476 + d) | 0,
    (0xc3d2e1f0 + e) | 0,
  ];
  for (let i = 0; i < 5; i++) {
    out[4 * i] = h[i] >>> 24;
    out[4 * i + 1] = (h[i] >>> 16) & 0xff;
    out[4 * i + 2] = (h[i] >>> 8) & 0xff;
    out[4 * i + 3] = h[i] & 0xff;
  }
  return out;
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Standard base64 with padding. */
function base64(bytes: Uint8Array): string {
  let out = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += B64[n >>> 18] + B64[(n >>> 12) & 63] + B64[(n >>> 6) & 63] + B64[n & 63];
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i] << 16;
    out += B64[n >>> 18] + B64[(n >>> 12) & 63] + "==";
  } else if (rest === 2) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
    out += B64[n >>> 18] + B64[(n >>> 12) & 63] + B64[(n >>> 6) & 63] + "=";
  }
  return out;
}
