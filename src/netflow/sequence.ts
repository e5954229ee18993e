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
 *
 * softflowd numbers each IPFIX message with the data records sent *including* its own (RFC 7011 §3.1: those
 * sent before it). Where a stream allows it ({@link SequenceLimits.inclusiveNumbering}), the first message
 * whose number fits only that numbering settles the stream on it (and one that fits only the RFC's settles
 * it on the RFC's); such a stream is then read shifted by each message's own count, so a loss-free one
 * reports no loss, and a lost message is counted as exactly its records.
 */

export interface SequenceLimits {
  reorderWindow: number;
  maxGap: number;
  /** Recognise numbering that includes the message's own units (softflowd's IPFIX). */
  inclusiveNumbering?: boolean;
}

/** v9: packets. */
export const PACKET_LIMITS: SequenceLimits = { reorderWindow: 1_000, maxGap: 100_000 };
/** v5: records. */
export const RECORD_LIMITS: SequenceLimits = { reorderWindow: 100_000, maxGap: 1_000_000 };
/** IPFIX: records, numbered as RFC 7011 says or as softflowd does. */
export const IPFIX_LIMITS: SequenceLimits = { ...RECORD_LIMITS, inclusiveNumbering: true };

/** {@link SequenceStream.numbering}: not yet known, RFC (units before the message), or inclusive. */
export const NUMBERING_UNKNOWN = 0, NUMBERING_RFC = 1, NUMBERING_INCLUSIVE = 2;

/** Results of {@link observeSequence} other than a loss count (≥ 0). */
export const SEQ_REORDER = -1;
export const SEQ_RESTART = -2;

export interface SequenceStream {
  /** Expected next sequence number, or −1 when unknown. */
  next: number;
  /** What would follow the last backward (late) packet, or −1; used to spot restarts. */
  backNext: number;
  /** The previous message's sequence number as sent, or −1 (only where numbering is recognised). */
  last: number;
  /** One of NUMBERING_UNKNOWN, NUMBERING_RFC, NUMBERING_INCLUSIVE. */
  numbering: number;
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
  if (limits.inclusiveNumbering && count >= 0) seq = recogniseNumbering(s, seq, count);
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

/**
 * The RFC-numbered equivalent of `seq`: itself, or, on a stream numbered inclusively, `seq − count`. Settles
 * an unknown stream's numbering on the first message that tells the two apart.
 */
function recogniseNumbering(s: SequenceStream, seq: number, count: number): number {
  const last = s.last;
  s.last = seq;
  if (s.numbering === NUMBERING_UNKNOWN && last >= 0 && s.next >= 0) {
    const rfc = seq === s.next, inclusive = ((seq - count) >>> 0) === last;
    if (inclusive && !rfc) {
      s.numbering = NUMBERING_INCLUSIVE;
      s.next = last; // the previous message, read shifted by its own count, ended where it was numbered
    } else if (rfc && !inclusive) s.numbering = NUMBERING_RFC;
  }
  return s.numbering === NUMBERING_INCLUSIVE ? (seq - count) >>> 0 : seq;
}
