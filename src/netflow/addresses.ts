/** Address formatting straight from the datagram bytes, without intermediate arrays. */

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
