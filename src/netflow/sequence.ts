/**
 * Sequence accounting per export stream (SPEC §3 `netflow.sequence.lost`).
 *
 * Streams and units: v5 exporter + engine type/id counts flows; v9 exporter + source id counts packets;
 * IPFIX exporter + observation domain counts data records (RFC 7011 §3.1). Sequence numbers are 32-bit
 * and wrap.
 *
 * - A forward jump up to `maxGap` is a loss of that many units.
 * - A small backward jump (up to `reorderWindow`) is a late packet: no loss, the expectation stays.
 * - A larger jump either way, or a second packet that continues from a backward jump, is an exporter
 *   restart: the stream re-synchronises without reporting a loss.
 */

export interface SequenceLimits {
  reorderWindow: number;
  maxGap: number;
}

/** v9: packets. */
export const PACKET_LIMITS: SequenceLimits = { reorderWindow: 1_000, maxGap: 100_000 };
/** v5 and IPFIX: records. */
export const RECORD_LIMITS: SequenceLimits = { reorderWindow: 100_000, maxGap: 1_000_000 };

/** Results of {@link observeSequence} other than a loss count (≥ 0). */
export const SEQ_REORDER = -1;
export const SEQ_RESTART = -2;

export interface SequenceStream {
  /** Expected next sequence number, or −1 when unknown. */
  next: number;
  /** What would follow the last backward (late) packet, or −1; used to spot restarts. */
  backNext: number;
}

/**
 * Checks `seq` against the stream and advances it by `count` units (−1 = unknown count: the next packet
 * re-synchronises). Returns the number of lost units (0 when in order or first), {@link SEQ_REORDER} or
 * {@link SEQ_RESTART}.
 */
export function observeSequence(
  s: SequenceStream,
  seq: number,
  count: number,
  limits: SequenceLimits,
): number {
  const after = count >= 0 ? (seq + count) >>> 0 : -1;
  if (s.next < 0) {
    s.next = after;
    s.backNext = -1;
    return 0;
  }
  const diff = (seq - s.next) | 0; // signed 32-bit distance, wrap-safe
  if (diff === 0) {
    s.next = after;
    s.backNext = -1;
    return 0;
  }
  if (diff > 0) {
    s.next = after;
    s.backNext = -1;
    return diff <= limits.maxGap ? diff : SEQ_RESTART;
  }
  if (seq === s.backNext || -diff > limits.reorderWindow) {
    s.next = after;
    s.backNext = -1;
    return SEQ_RESTART;
  }
  s.backNext = after;
  return SEQ_REORDER;
}
