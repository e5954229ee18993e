/**
 * Reading element values from the wire: big-endian integers of any length 1–8 (RFC 7011 §6.2 reduced-size
 * encodings), NTP timestamps, strings, and the clamp that keeps integers exact on the way to OTLP.
 */
import type { Flow } from "./types.ts";

/** True for the lengths an integer element may have on the wire (reduced-size encodings included). */
export const isInt = (len: number): boolean => len >= 1 && len <= 8;

// Integers are big-endian; reduced-size encodings (RFC 7011 §6.2) of any length 1–8 work.
//
// Counters that fit: a JS number is exact only up to 2^53 − 1, and OTLP writes integers as signed int64,
// so a 64-bit value read as it is would come out inexact above 2^53 and, past 2^63, as a negative
// number. Counters and the other unsigned values that become attributes are therefore clamped to
// 2^53 − 1 (MAX_INT) where the record decoder reads them: exact below, never inexact by accident, never
// negative, and the flow carries `clamped = true`. Real counters stay far below (2^53 octets is 9 PB in
// one record); what reaches the clamp is hostile or broken. (The clamp sits in the handlers, not in
// uintAt: that is the record loop's hottest function and stays minimal.)

/** Largest integer a counter or attribute value takes (Number.MAX_SAFE_INTEGER); see above. */
export const MAX_INT = Number.MAX_SAFE_INTEGER;

/** Unsigned big-endian integer of 1–8 octets (inexact above 2^53: callers clamp what reaches the wire). */
export function uintAt(bytes: Uint8Array, view: DataView, off: number, len: number): number {
  switch (len) {
    case 1:
      return bytes[off];
    case 2:
      return (bytes[off] << 8) | bytes[off + 1];
    case 4:
      return view.getUint32(off);
    case 8:
      return view.getUint32(off) * 4294967296 + view.getUint32(off + 4);
    default: {
      let x = 0;
      for (let i = 0; i < len; i++) x = x * 256 + bytes[off + i];
      return x;
    }
  }
}

/** Signed (two's complement) big-endian integer of 1–8 octets, clamped to ±{@link MAX_INT}. */
export function intAt(bytes: Uint8Array, view: DataView, off: number, len: number): number {
  if (len === 8) {
    const hi = view.getInt32(off);
    if (hi > 0x1fffff) return MAX_INT;
    if (hi < -0x1fffff) return -MAX_INT;
    return hi * 4294967296 + view.getUint32(off + 4);
  }
  let x = bytes[off] & 0x80 ? -1 : 0; // sign extension: −1 × 256 + b adds the sign to the first octet
  for (let i = 0; i < len; i++) x = x * 256 + bytes[off + i];
  return x > MAX_INT ? MAX_INT : x < -MAX_INT ? -MAX_INT : x;
}

/** NTP timestamp (RFC 7011 §6.1.9/10) to Unix epoch ms; NaN for zero (absent). */
export function ntpAt(view: DataView, off: number): number {
  const secs = view.getUint32(off);
  const frac = view.getUint32(off + 4);
  if (secs === 0 && frac === 0) return NaN;
  // Era 0 (1900–2036) has the top bit set for any date after 1968; era 1 starts 2036-02-07.
  const unix = secs >= 0x80000000 ? secs - 2208988800 : secs + 2085978496;
  return unix * 1000 + frac / 4294967.296;
}

const utf8 = new TextDecoder("utf-8");

export function stringAt(bytes: Uint8Array, off: number, len: number): string {
  let end = off + len;
  while (end > off && bytes[end - 1] === 0) end--; // v9 exporters pad names with NULs
  let ascii = true;
  for (let i = off; i < end; i++) {
    if (bytes[i] >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (!ascii || end - off > 64) return utf8.decode(bytes.subarray(off, end));
  let s = "";
  for (let i = off; i < end; i++) s += String.fromCharCode(bytes[i]);
  return s;
}

/** Values clamped since the caller last took the count ({@link takeClampedCount}). */
let clampedCount = 0;

/** Marks the flow as carrying a clamped value (see MAX_INT) and returns the clamp. Out of line: rare. */
export function clamp(flow: Flow): number {
  flow.clamped = true;
  clampedCount++;
  return MAX_INT;
}

/** The number of values clamped since the last call (for the decoder's stats; read once per datagram). */
export function takeClampedCount(): number {
  const n = clampedCount;
  clampedCount = 0;
  return n;
}
