/**
 * Which pipeline Worker a datagram goes to. Everything a decoder remembers (templates, options data,
 * sampling, sequence numbers) is kept per exporter address and per source ID / observation domain (v5:
 * engine), so sending every datagram of one such stream to the same Worker keeps that state whole in
 * one place, and the Workers never need to share it. Read on the socket thread: a few header bytes, no
 * decoding.
 */

/**
 * The stream a datagram belongs to within its exporter: the v9 source ID (RFC 3954 §5.1), the IPFIX
 * observation domain ID (RFC 7011 §3.1), the v5 engine type and ID; 0 for v1 and anything too short to say.
 */
export function datagramDomain(d: Uint8Array): number {
  const version = d.length >= 2 ? (d[0] << 8) | d[1] : 0;
  if (version === 9 && d.length >= 20) return ((d[16] << 24) | (d[17] << 16) | (d[18] << 8) | d[19]) >>> 0;
  if (version === 10 && d.length >= 16) return ((d[12] << 24) | (d[13] << 16) | (d[14] << 8) | d[15]) >>> 0;
  if (version === 5 && d.length >= 22) return (d[20] << 8) | d[21];
  return 0;
}

/** The Worker (0 … `shards` − 1) for an exporter address and domain: FNV-1a over both, so stable across runs. */
export function shardOf(address: string, domain: number, shards: number): number {
  if (shards <= 1) return 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < address.length; i++) h = Math.imul(h ^ address.charCodeAt(i), 0x01000193);
  for (let s = 24; s >= 0; s -= 8) h = Math.imul(h ^ ((domain >>> s) & 0xff), 0x01000193);
  return (h >>> 0) % shards;
}
