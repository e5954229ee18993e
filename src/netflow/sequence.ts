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
 * sent before it). Where a stream allows it ({@link SequenceLimits.inclusiveNumbering}), messages whose
 * record count differs from the previous one's tell the two apart: two in a row that fit only one
 * numbering (with no gap between) settle the stream on it, and two that fit only the other later switch it
 * back; a restart forgets it. An inclusive stream is read shifted by each message's own count, so a
 * loss-free one reports no loss, and a lost message counts as exactly its records. Until the stream is
 * settled, a message that fits either numbering reports no loss.
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
  /** The previous message's sequence number as sent and its count, or −1 (only where numbering is recognised). */
  last: number;
  lastCount: number;
  /** One of NUMBERING_UNKNOWN, NUMBERING_RFC, NUMBERING_INCLUSIVE. */
  numbering: number;
  /** Messages in a row that fitted only the RFC's numbering (> 0) or only the inclusive one (< 0). */
  votes: number;
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
  const raw = seq;
  if (limits.inclusiveNumbering && count >= 0) seq = recogniseNumbering(s, seq, count);
  const result = follow(s, seq, count, limits);
  if (result === SEQ_RESTART && limits.inclusiveNumbering) {
    // A restarted exporter may be another program: learn its numbering again, in the RFC's terms.
    s.numbering = NUMBERING_UNKNOWN;
    s.votes = 0;
    s.next = count >= 0 ? (raw + count) >>> 0 : -1;
  }
  return result;
}

function follow(s: SequenceStream, seq: number, count: number, limits: SequenceLimits): number {
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

/** Messages in a row that fit only one numbering before the stream is settled on it. */
const VOTES_TO_SETTLE = 2;

/**
 * The RFC-numbered equivalent of `seq`: itself, or, on a stream numbered inclusively, `seq − count`. Counts
 * the evidence for either numbering (see the module comment) and re-bases the expectation when it settles.
 */
function recogniseNumbering(s: SequenceStream, seq: number, count: number): number {
  const last = s.last, lastCount = s.lastCount;
  s.last = seq;
  s.lastCount = count;
  if (last < 0 || lastCount < 0 || s.next < 0) {
    return s.numbering === NUMBERING_INCLUSIVE ? (seq - count) >>> 0 : seq;
  }
  const rfc = seq === ((last + lastCount) >>> 0), inclusive = seq === ((last + count) >>> 0);
  if (rfc !== inclusive) {
    s.votes = rfc ? Math.max(s.votes, 0) + 1 : Math.min(s.votes, 0) - 1;
    const wanted = s.votes >= VOTES_TO_SETTLE
      ? NUMBERING_RFC
      : s.votes <= -VOTES_TO_SETTLE
      ? NUMBERING_INCLUSIVE
      : -1;
    if (wanted !== -1 && wanted !== s.numbering) {
      s.numbering = wanted;
      // The expectation in the new numbering's terms: where the previous message ended.
      s.next = wanted === NUMBERING_INCLUSIVE ? last : (last + lastCount) >>> 0;
    } else if (s.numbering === NUMBERING_UNKNOWN && inclusive) {
      s.next = seq; // not settled yet: a message that fits one numbering is no loss
    }
  } else if (!rfc) s.votes = 0; // a gap or a late message: no evidence either way
  return s.numbering === NUMBERING_INCLUSIVE ? (seq - count) >>> 0 : seq;
}
