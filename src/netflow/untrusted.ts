/**
 * Shape checks for untrusted parsed data: a restored template snapshot, and the files the configuration
 * names (enrichment, fields). One definition, so every reader means the same by "a mapping" and "an id".
 */

/** A mapping (not null, not an array). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** An integer from 0 to `max`. */
export function isUint(v: unknown, max: number): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= max;
}
