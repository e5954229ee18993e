/**
 * IP addresses between bytes and text, in one place: the decoder formats them straight from the datagram
 * bytes (no intermediate arrays); CIDR matching, the Community ID hash and the test encoder parse text with
 * the same grammar. It lives in src/netflow/ because the decoder needs it and src/netflow/ imports nothing
 * from outside.
 */

/** Dotted-quad IPv4 address from 4 bytes at `offset`. */
export function ipv4At(bytes: Uint8Array, offset: number): string {
  return bytes[offset] + "." + bytes[offset + 1] + "." + bytes[offset + 2] + "." + bytes[offset + 3];
}

/** IPv6 address from 16 bytes at `offset`, in RFC 5952 canonical form (lowercase, longest zero run compressed). */
export function ipv6At(bytes: Uint8Array, offset: number): string {
  const groups = new Array<number>(8);
  for (let i = 0; i < 8; i++) groups[i] = (bytes[offset + 2 * i] << 8) | bytes[offset + 2 * i + 1];
  // IPv4-mapped (::ffff:a.b.c.d) keeps its dotted tail, as RFC 5952 §5 recommends.
  if (
    groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 &&
    groups[5] === 0xffff
  ) {
    return "::ffff:" + ipv4At(bytes, offset + 12);
  }
  // Longest run of two or more zero groups; the first one wins a tie (RFC 5952 §4.2.3).
  let bestStart = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  let out = "";
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      out += "::";
      i += bestLen - 1;
      continue;
    }
    if (out !== "" && !out.endsWith(":")) out += ":";
    out += groups[i].toString(16);
  }
  return out;
}

/**
 * An IPv4 exporter that reaches a dual-stack `::` socket shows as `::ffff:a.b.c.d`: the plain `a.b.c.d`,
 * as users write it (SPEC §3: spans, the allow-list, template keys, logs).
 */
export function plainAddress(address: string): string {
  return address.startsWith("::ffff:") && address.indexOf(".", 7) > 0 ? address.slice(7) : address;
}

/** `host:port` for messages and URLs; an IPv6 literal is bracketed (`[::1]:4317`), as in a URL. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * The inverse of {@link formatHostPort}, lenient on the host: `host:port`, `[v6]:port`, `:port` or `port`.
 * The host comes back as written ("" when absent, brackets kept) and the port unchecked, so each caller
 * judges both; undefined when the text has none of these shapes.
 */
export function splitHostPort(text: string): { host: string; port: number } | undefined {
  const m = /^(?:(\[[^\]]*\]|[^:]*):)?([0-9]+)$/.exec(text);
  return m ? { host: m[1] ?? "", port: Number(m[2]) } : undefined;
}

/** MAC address (6 bytes) as lowercase colon-separated hex. */
export function macAt(bytes: Uint8Array, offset: number): string {
  let out = "";
  for (let i = 0; i < 6; i++) {
    const b = bytes[offset + i];
    out += (i ? ":" : "") + (b < 16 ? "0" : "") + b.toString(16);
  }
  return out;
}

/** Lowercase hex of `length` bytes at `offset` (for unknown elements). */
export function hexAt(bytes: Uint8Array, offset: number, length: number): string {
  let out = "";
  for (let i = 0; i < length; i++) {
    const b = bytes[offset + i];
    out += (b < 16 ? "0" : "") + b.toString(16);
  }
  return out;
}

/**
 * Parses a dotted-quad IPv4 address in `text[start, end)` into an unsigned 32-bit integer, or returns -1.
 * Strict: four decimal parts 0–255, no leading zeros (they read as octal in some tools, so they are
 * ambiguous), nothing else.
 */
export function parseIpv4Int(text: string, start = 0, end = text.length): number {
  let value = 0, part = 0, digits = 0, dots = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits === 1 && part === 0) return -1; // leading zero
      part = part * 10 + (c - 48);
      if (part > 255) return -1;
      digits++;
    } else if (c === 46) {
      if (digits === 0 || ++dots > 3) return -1;
      value = value * 256 + part;
      part = 0;
      digits = 0;
    } else {
      return -1;
    }
  }
  if (digits === 0 || dots !== 3) return -1;
  return value * 256 + part;
}

/**
 * Parses an IPv4 or IPv6 address literal (`::` compression, an optional trailing dotted quad; no brackets,
 * no zone) into `out` at `offset`, network order. Returns the length written, 4 or 16, or 0 when `text` is
 * not an address. Allocates nothing: the Community ID hash runs it twice per flow into scratch buffers.
 */
export function parseIpInto(text: string, out: Uint8Array, offset = 0): 0 | 4 | 16 {
  const v4 = parseIpv4Int(text);
  if (v4 >= 0) {
    writeIpv4(v4, out, offset);
    return 4;
  }
  return parseIpv6Into(text, out, offset) ? 16 : 0;
}

/** {@link parseIpInto} into a new array of 4 or 16 bytes; undefined when `text` is not an address. */
export function ipBytes(text: string): Uint8Array | undefined {
  const v4 = parseIpv4Int(text);
  if (v4 >= 0) {
    const out = new Uint8Array(4);
    writeIpv4(v4, out, 0);
    return out;
  }
  const out = new Uint8Array(16);
  return parseIpv6Into(text, out, 0) ? out : undefined;
}

function writeIpv4(v4: number, out: Uint8Array, offset: number): void {
  out[offset] = v4 >>> 24;
  out[offset + 1] = (v4 >>> 16) & 0xff;
  out[offset + 2] = (v4 >>> 8) & 0xff;
  out[offset + 3] = v4 & 0xff;
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * IPv6 text into 16 bytes at `out[offset]`. Groups are written in order as they are read; the ones after a
 * `::` are then moved to the end and the gap zeroed, so nothing is allocated.
 */
function parseIpv6Into(text: string, out: Uint8Array, offset: number): boolean {
  const n = text.length;
  let groups = 0, gap = -1, i = 0;
  if (n >= 2 && text.charCodeAt(0) === 58 && text.charCodeAt(1) === 58) {
    gap = 0;
    i = 2;
  }
  while (i < n) {
    let j = i, group = 0;
    for (let d; j < n && j - i < 5 && (d = hexDigit(text.charCodeAt(j))) >= 0; j++) group = group * 16 + d;
    if (j < n && text.charCodeAt(j) === 46) {
      // A dotted quad may only end the address, where it stands for two groups.
      const v4 = groups <= 6 ? parseIpv4Int(text, i, n) : -1;
      if (v4 < 0) return false;
      writeIpv4(v4, out, offset + groups * 2);
      groups += 2;
      break;
    }
    if (j === i || j - i > 4 || groups === 8) return false;
    out[offset + groups * 2] = group >> 8;
    out[offset + groups * 2 + 1] = group & 0xff;
    groups++;
    if (j === n) break;
    if (text.charCodeAt(j) !== 58 || ++j === n) return false;
    if (text.charCodeAt(j) === 58) {
      if (gap !== -1) return false;
      gap = groups;
      j++;
    }
    i = j;
  }
  if (gap === -1) return groups === 8;
  if (groups > 7) return false;
  // Slide the groups after the gap to the end, then zero the gap.
  const shift = (8 - groups) * 2;
  for (let k = offset + groups * 2 - 1; k >= offset + gap * 2; k--) out[k + shift] = out[k];
  out.fill(0, offset + gap * 2, offset + gap * 2 + shift);
  return true;
}
