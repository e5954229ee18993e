/**
 * IPFIX variable-length fields (RFC 7011 §7): a template length of 65535 means each record gives the
 * field's length in a prefix of 1 octet, or of 3 (255, then 16 bits) for 255 octets or more. One reader
 * for every loop that steps over fields (decoding data and options records, counting records).
 */

/** Template field length meaning "variable length". */
export const VARIABLE_LENGTH = 65535;

/**
 * The prefix at `off`: the field's length × 4 + the prefix's own octets (1 or 3), packed in one number so
 * the record loops allocate nothing; −1 when the prefix runs past `end`. Callers:
 * `off += v & 3; len = v >> 2`.
 */
export function variableLength(bytes: Uint8Array, off: number, end: number): number {
  if (off >= end) return -1;
  const first = bytes[off];
  if (first < 255) return first << 2 | 1;
  if (off + 3 > end) return -1;
  return ((bytes[off + 1] << 8) | bytes[off + 2]) << 2 | 3;
}
