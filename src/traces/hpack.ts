/**
 * HPACK (RFC 7541) for the HTTP/2 client (h2_session.ts): requests are encoded with literals never added to
 * the dynamic table and no Huffman (valid, simple); responses are decoded completely (dynamic table, size
 * updates, Huffman).
 */
/** RFC 7541 Appendix A, `name` or `name=value` (no static name or value contains "="). */
const STATIC_TABLE: readonly [string, string][] = (
  ":authority|:method=GET|:method=POST|:path=/|:path=/index.html|:scheme=http|:scheme=https|:status=200|" +
  ":status=204|:status=206|:status=304|:status=400|:status=404|:status=500|accept-charset|" +
  "accept-encoding=gzip, deflate|accept-language|accept-ranges|accept|access-control-allow-origin|age|" +
  "allow|authorization|cache-control|content-disposition|content-encoding|content-language|" +
  "content-length|content-location|content-range|content-type|cookie|date|etag|expect|expires|from|" +
  "host|if-match|if-modified-since|if-none-match|if-range|if-unmodified-since|last-modified|link|" +
  "location|max-forwards|proxy-authenticate|proxy-authorization|range|referer|refresh|retry-after|" +
  "server|set-cookie|strict-transport-security|transfer-encoding|user-agent|vary|via|www-authenticate"
).split("|").map((e) => {
  const i = e.indexOf("=");
  return i < 0 ? [e, ""] : [e.slice(0, i), e.slice(i + 1)];
});

/**
 * The Huffman code of RFC 7541 Appendix B as the code length of each symbol 0..256 (EOS), one base-32 digit
 * each. The code is canonical (within a length, codes ascend with the symbol; lengths ascend with the
 * code), so the lengths alone rebuild the table exactly.
 */
const HUFFMAN_LENGTHS = "dnsssssssoussussssssssusssssssss6aacd68baa8b8666555666666678f6ca" +
  "d67777777777777777777777878djde6f56565666577666567655677777fbeds" +
  "kmkkmmmnmnnnnnonoomnonnnnlmnmnnomlkmmnnlnmmolmnnllmlnmnnkmmmnmmn" +
  "qqkjmnmpqqqrrqopjlqrrqrollqqsrrrkoklmllnmmppooqnqrqqrrrrrsrrrrrq" + "u";
const EOS = 256;

/** Canonical decoding tables: for each length, its first code, how many codes, where its symbols start. */
const HUFF_FIRST = new Int32Array(32), HUFF_COUNT = new Int32Array(32), HUFF_OFFSET = new Int32Array(32);
const HUFF_SYMBOLS: number[] = [];
/** Code and length per symbol, for tests and anyone who wants to encode. */
export const HUFFMAN_CODES: readonly { code: number; length: number }[] = (() => {
  const lengths = Array.from(HUFFMAN_LENGTHS, (c) => parseInt(c, 32));
  for (let len = 1; len < 32; len++) {
    HUFF_OFFSET[len] = HUFF_SYMBOLS.length;
    lengths.forEach((l, sym) => l === len && HUFF_SYMBOLS.push(sym));
    HUFF_COUNT[len] = HUFF_SYMBOLS.length - HUFF_OFFSET[len];
    HUFF_FIRST[len] = len === 1 ? 0 : (HUFF_FIRST[len - 1] + HUFF_COUNT[len - 1]) * 2;
  }
  return lengths.map((length, sym) => {
    const rank = HUFF_SYMBOLS.indexOf(sym, HUFF_OFFSET[length]) - HUFF_OFFSET[length];
    return { code: HUFF_FIRST[length] + rank, length };
  });
})();

export class HpackError extends Error {}

/** Decodes a Huffman-coded string literal (RFC 7541 §5.2). Padding must be < 8 bits, all ones. */
export function huffmanDecode(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(b.length * 8 / 5));
  let n = 0, code = 0, len = 0;
  for (let i = 0; i < b.length; i++) {
    for (let bit = 7; bit >= 0; bit--) {
      code = (code << 1) | ((b[i] >> bit) & 1);
      len++;
      const rank = code - HUFF_FIRST[len];
      if (rank >= 0 && rank < HUFF_COUNT[len]) {
        const sym = HUFF_SYMBOLS[HUFF_OFFSET[len] + rank];
        if (sym === EOS) throw new HpackError("HPACK: EOS in a Huffman string");
        out[n++] = sym;
        code = len = 0;
      } else if (len >= 30) throw new HpackError("HPACK: invalid Huffman code");
    }
  }
  if (len > 7 || code !== (1 << len) - 1) throw new HpackError("HPACK: invalid Huffman padding");
  return out.subarray(0, n);
}

interface Entry {
  name: string;
  value: string;
  nameSize: number;
  /** RFC 7541 §4.1: octets of name and value + 32. */
  size: number;
}

const utf8 = new TextDecoder();
const utf8Encoder = new TextEncoder();

/** One connection's HPACK decoding context (RFC 7541 §2.3, §3, §6). */
export class HpackDecoder {
  /** Newest first. */
  private readonly table: Entry[] = [];
  private size = 0;
  private maxSize: number;

  /** `limit`: our SETTINGS_HEADER_TABLE_SIZE (4096 by default), the most a size update may ask for. */
  constructor(private readonly limit = 4096) {
    this.maxSize = limit;
  }

  /** The dynamic table, newest first, and its size (for tests). */
  get dynamicTable(): { entries: [string, string][]; size: number } {
    return { entries: this.table.map((e) => [e.name, e.value]), size: this.size };
  }

  /** Decodes one complete header block, calling `emit` for each field in order. Throws HpackError. */
  decode(b: Uint8Array, emit: (name: string, value: string) => void): void {
    let p = 0, fields = 0;
    const int = (prefixBits: number): number => {
      const max = (1 << prefixBits) - 1;
      let v = b[p++] & max;
      if (v < max) return v;
      for (let shift = 0;; shift += 7) {
        if (p >= b.length) throw new HpackError("HPACK: truncated integer");
        if (shift > 28) throw new HpackError("HPACK: integer too large");
        const x = b[p++];
        v += (x & 0x7f) * 2 ** shift;
        if (x < 0x80) return v;
      }
    };
    const str = (): [string, number] => {
      if (p >= b.length) throw new HpackError("HPACK: truncated string");
      const huffman = (b[p] & 0x80) !== 0;
      const n = int(7);
      if (p + n > b.length) throw new HpackError("HPACK: truncated string");
      const raw = b.subarray(p, p + n);
      p += n;
      const bytes = huffman ? huffmanDecode(raw) : raw;
      return [utf8.decode(bytes), bytes.length];
    };
    const entry = (index: number): Entry => {
      if (index === 0) throw new HpackError("HPACK: index 0");
      if (index <= STATIC_TABLE.length) {
        const [name, value] = STATIC_TABLE[index - 1];
        return { name, value, nameSize: name.length, size: 32 + name.length + value.length };
      }
      const e = this.table[index - STATIC_TABLE.length - 1];
      if (!e) throw new HpackError(`HPACK: index ${index} beyond the table`);
      return e;
    };
    while (p < b.length) {
      const x = b[p];
      if (x & 0x80) { // indexed field
        const e = entry(int(7));
        emit(e.name, e.value);
      } else if ((x & 0xe0) === 0x20) { // dynamic table size update: only before the block's first field
        if (fields > 0) throw new HpackError("HPACK: table size update after a field");
        const size = int(5);
        if (size > this.limit) throw new HpackError(`HPACK: table size ${size} above ${this.limit}`);
        this.maxSize = size;
        this.evict(0);
        continue;
      } else { // literal: with incremental indexing (01), without (0000) or never indexed (0001)
        const indexing = (x & 0x40) !== 0;
        const nameIndex = int(indexing ? 6 : 4);
        let name: string, nameSize: number;
        if (nameIndex) {
          const e = entry(nameIndex);
          name = e.name;
          nameSize = e.nameSize;
        } else [name, nameSize] = str();
        const [value, valueSize] = str();
        if (indexing) this.add({ name, value, nameSize, size: 32 + nameSize + valueSize });
        emit(name, value);
      }
      fields++;
    }
  }

  private add(e: Entry): void {
    // An entry larger than the table empties it and is not added (RFC 7541 §4.4).
    this.evict(e.size);
    if (e.size > this.maxSize) return;
    this.table.unshift(e);
    this.size += e.size;
  }

  private evict(room: number): void {
    while (this.table.length && this.size + room > this.maxSize) this.size -= this.table.pop()!.size;
  }
}

const STATIC_FIELD = new Map<string, number>();
const STATIC_NAME = new Map<string, number>();
STATIC_TABLE.forEach(([name, value], i) => {
  if (value) STATIC_FIELD.set(`${name}\0${value}`, i + 1);
  if (!STATIC_NAME.has(name)) STATIC_NAME.set(name, i + 1);
});

/**
 * Encodes a header list: static-table fields by index, the rest as literals without indexing (names from
 * the static table where there), no Huffman. Never touches the peer's dynamic table, so needs no state.
 */
export function encodeHeaderBlock(headers: readonly [string, string][]): Uint8Array {
  const out: number[] = [];
  const int = (v: number, prefixBits: number, flags: number) => {
    const max = (1 << prefixBits) - 1;
    if (v < max) return void out.push(flags | v);
    out.push(flags | max);
    for (v -= max; v >= 128; v = Math.floor(v / 128)) out.push((v % 128) | 0x80);
    out.push(v);
  };
  const str = (s: string) => {
    const bytes = utf8Encoder.encode(s);
    int(bytes.length, 7, 0);
    for (const x of bytes) out.push(x);
  };
  for (const [name, value] of headers) {
    const full = STATIC_FIELD.get(`${name}\0${value}`);
    if (full) {
      int(full, 7, 0x80);
      continue;
    }
    const nameIndex = STATIC_NAME.get(name);
    if (nameIndex) int(nameIndex, 4, 0);
    else {
      out.push(0);
      str(name);
    }
    str(value);
  }
  return Uint8Array.from(out);
}
