/**
 * IPv4/IPv6 addresses and CIDR prefixes, for `NETFLOW_ALLOWED_EXPORTERS` and the per-exporter overrides of
 * `NETFLOW_SAMPLING_RATE`.
 *
 * Everything is parsed once; the per-datagram check is an integer compare for IPv4 (the common case) and a
 * byte compare for IPv6. IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`, what a socket bound to `::` reports
 * for an IPv4 sender) match IPv4 prefixes, and IPv4-mapped IPv6 prefixes (`::ffff:0:0/96` and longer) match
 * plain IPv4 addresses.
 *
 * @example
 * ```ts
 * const allowed = new CidrSet(["10.0.0.0/8", "2001:db8::/32"]);
 * allowed.contains("10.1.2.3"); // true
 * allowed.contains("::ffff:10.1.2.3"); // true
 * allowed.contains("192.0.2.1"); // false
 * ```
 */

import { ipBytes, ipv4At, ipv6At, parseIpv4Int } from "./netflow/addresses.ts";

export interface IpAddress {
  family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
}

export interface Cidr extends IpAddress {
  /** Prefix length: 0–32 for IPv4, 0–128 for IPv6. */
  prefix: number;
}

/**
 * Parses an IPv4 or IPv6 address literal. A zone (`fe80::1%eth0`) is ignored; surrounding brackets
 * (`[::1]`) are accepted. Returns undefined when `text` is not an address.
 */
export function parseIp(text: string): IpAddress | undefined {
  if (text.startsWith("[") && text.endsWith("]")) text = text.slice(1, -1);
  const zone = text.indexOf("%");
  if (zone === -1) {
    const bytes = ipBytes(text);
    return bytes && { family: bytes.length === 4 ? 4 : 6, bytes };
  }
  // Only IPv6 addresses have zones.
  if (zone === text.length - 1) return undefined;
  const bytes = ipBytes(text.slice(0, zone));
  return bytes?.length === 16 ? { family: 6, bytes } : undefined;
}

/**
 * Parses `address/prefix`; a bare address is a /32 (IPv4) or /128 (IPv6). Bits beyond the prefix are
 * cleared (`10.1.2.3/8` is `10.0.0.0/8`). Throws an Error saying what is wrong.
 */
export function parseCidr(text: string): Cidr {
  const t = text.trim();
  const slash = t.indexOf("/");
  const addrText = slash === -1 ? t : t.slice(0, slash);
  if (addrText.includes("%")) throw new Error(`"${text}" is not a CIDR: a zone is not allowed`);
  const addr = parseIp(addrText);
  if (!addr) throw new Error(`"${text}" is not an IPv4 or IPv6 address or CIDR`);
  const max = addr.family === 4 ? 32 : 128;
  let prefix = max;
  if (slash !== -1) {
    const p = t.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > max) {
      throw new Error(`"${text}" has an invalid prefix length: must be 0–${max}`);
    }
    prefix = Number(p);
  }
  const bytes = addr.bytes.slice();
  maskBytes(bytes, prefix);
  return { family: addr.family, bytes, prefix };
}

function maskBytes(bytes: Uint8Array, prefix: number): void {
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    bytes[i] &= (0xff00 >> keep) & 0xff;
  }
}

/** `a.b.c.d/p` or RFC 5952 IPv6 `x::/p`, for messages and snapshots. */
export function formatCidr(cidr: Cidr): string {
  return `${cidr.family === 4 ? ipv4At(cidr.bytes, 0) : ipv6At(cidr.bytes, 0)}/${cidr.prefix}`;
}

const isV4Mapped = (b: Uint8Array) =>
  b.length === 16 && b[10] === 0xff && b[11] === 0xff && b.subarray(0, 10).every((x) => x === 0);

/** A prefix in its fastest form: IPv4 as integers, IPv6 as bytes. */
interface Matcher {
  family: 4 | 6;
  /** IPv4: network and mask as unsigned 32-bit integers. */
  net: number;
  mask: number;
  /** IPv6: network bytes and prefix length. */
  bytes: Uint8Array;
  prefix: number;
}

function toMatcher(cidr: Cidr): Matcher {
  // An IPv4-mapped IPv6 prefix of /96 or longer is an IPv4 prefix in disguise.
  if (cidr.family === 6 && cidr.prefix >= 96 && isV4Mapped(cidr.bytes)) {
    const b = cidr.bytes;
    cidr = { family: 4, bytes: b.slice(12), prefix: cidr.prefix - 96 };
  }
  if (cidr.family === 4) {
    const b = cidr.bytes;
    const mask = cidr.prefix === 0 ? 0 : (0xffffffff << (32 - cidr.prefix)) >>> 0;
    const net = (((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) & mask) >>> 0;
    return { family: 4, net, mask, bytes: b, prefix: cidr.prefix };
  }
  return { family: 6, net: 0, mask: 0, bytes: cidr.bytes, prefix: cidr.prefix };
}

function matchV6(m: Matcher, b: Uint8Array): boolean {
  const full = m.prefix >> 3;
  for (let i = 0; i < full; i++) if (b[i] !== m.bytes[i]) return false;
  const rest = m.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff00 >> rest) & 0xff;
  return (b[full] & mask) === m.bytes[full];
}

/** An address reduced to what matching needs: an IPv4 integer (also for mapped IPv6) or IPv6 bytes. */
type Key = { v4: number; v6?: undefined } | { v4: -1; v6: Uint8Array };

function addressKey(address: string): Key | undefined {
  const v4 = parseIpv4Int(address);
  if (v4 >= 0) return { v4 };
  const ip = parseIp(address);
  if (!ip) return undefined;
  if (ip.family === 4 || isV4Mapped(ip.bytes)) {
    const b = ip.bytes, o = b.length - 4;
    return { v4: ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0 };
  }
  return { v4: -1, v6: ip.bytes };
}

/** Results are cached per address string; the cache is cleared when it grows past this many entries. */
const CACHE_LIMIT = 4096;

/**
 * Prefixes mapped to values, looked up by longest-prefix match. Used for per-exporter overrides.
 *
 * @example
 * ```ts
 * const rates = new CidrMap([["10.0.0.0/8", 1000], ["10.1.0.0/16", 10]]);
 * rates.get("10.1.2.3"); // 10
 * ```
 */
export class CidrMap<T> {
  readonly #entries: { m: Matcher; value: T }[];
  readonly #cache = new Map<string, T | undefined>();

  /** Throws an Error on an invalid CIDR. Later duplicates of the same prefix replace earlier ones. */
  constructor(entries: Iterable<[string | Cidr, T]>) {
    const byKey = new Map<string, { m: Matcher; value: T }>();
    for (const [c, value] of entries) {
      const m = toMatcher(typeof c === "string" ? parseCidr(c) : c);
      byKey.set(`${m.family}|${m.net}|${m.bytes.join(".")}|${m.prefix}`, { m, value });
    }
    // Most specific first, so the first match is the longest prefix.
    this.#entries = [...byKey.values()].sort((a, b) => b.m.prefix - a.m.prefix);
  }

  get size(): number {
    return this.#entries.length;
  }

  /** The value of the longest prefix containing `address`, or undefined (also for a non-address). */
  get(address: string): T | undefined {
    const cached = this.#cache.get(address);
    if (cached !== undefined || this.#cache.has(address)) return cached;
    const value = this.#lookup(address);
    if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear();
    this.#cache.set(address, value);
    return value;
  }

  #lookup(address: string): T | undefined {
    const key = addressKey(address);
    if (!key) return undefined;
    for (const { m, value } of this.#entries) {
      if (key.v4 >= 0) {
        if (m.family === 4 && ((key.v4 & m.mask) >>> 0) === m.net) return value;
      } else if (m.family === 6 && matchV6(m, key.v6!)) {
        return value;
      }
    }
    return undefined;
  }
}

/**
 * A set of IPv4/IPv6 prefixes. `contains` is meant for every datagram: IPv4 addresses are matched with
 * integer compares, and answers are cached per address string.
 */
export class CidrSet {
  readonly #v4: Matcher[] = [];
  readonly #v6: Matcher[] = [];
  readonly #cache = new Map<string, boolean>();
  /** The prefixes as given, normalised (`10.0.0.0/8`, `2001:db8::/32`). */
  readonly cidrs: readonly string[];

  /** Throws an Error naming the first invalid entry. */
  constructor(list: Iterable<string | Cidr>) {
    const cidrs: string[] = [];
    for (const item of list) {
      const cidr = typeof item === "string" ? parseCidr(item) : item;
      cidrs.push(formatCidr(cidr));
      const m = toMatcher(cidr);
      (m.family === 4 ? this.#v4 : this.#v6).push(m);
    }
    this.cidrs = cidrs;
  }

  get size(): number {
    return this.cidrs.length;
  }

  /** True when `address` (IPv4, IPv6, or IPv4-mapped IPv6) lies in one of the prefixes. */
  contains(address: string): boolean {
    const cached = this.#cache.get(address);
    if (cached !== undefined) return cached;
    const result = this.#match(address);
    if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear();
    this.#cache.set(address, result);
    return result;
  }

  #match(address: string): boolean {
    const key = addressKey(address);
    if (!key) return false;
    if (key.v4 >= 0) {
      for (const m of this.#v4) if (((key.v4 & m.mask) >>> 0) === m.net) return true;
      return false;
    }
    for (const m of this.#v6) if (matchV6(m, key.v6!)) return true;
    return false;
  }
}
