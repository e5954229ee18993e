/**
 * Community ID flow hashing, version 1 (the Zeek/Suricata/Elastic scheme), so flows can be joined with
 * other network data: "1:" + base64(SHA-1(seed ‖ addresses ‖ protocol ‖ 0 ‖ ports)), endpoints ordered.
 */
import { createHash } from "node:crypto";

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
  return "1:" + createHash("sha1").update(buf).digest("base64");
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
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    if (!/^\d{1,3}$/.test(parts[i])) return undefined;
    const n = Number(parts[i]);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}
