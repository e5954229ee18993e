/**
 * Protobuf wire format, writing side: the one writer the OTLP trace encoder (traces/otlp_encoder.ts, which
 * adds the span-specific fast paths on top) and the OTLP metrics request (metrics.ts) share.
 *
 * Messages are written in place, front to back, into one growable buffer: {@link ProtobufWriter.begin}
 * reserves a length byte and {@link ProtobufWriter.end} fills it in (moving the body when the length takes
 * more than one byte), so nested messages cost no intermediate buffers.
 *
 * ```ts
 * import { ProtobufWriter, WIRE_LEN, WIRE_VARINT } from "./protobuf.ts";
 * const w = new ProtobufWriter(64);
 * w.tag(1, WIRE_LEN);
 * const mark = w.begin();
 * w.tag(1, WIRE_VARINT);
 * w.varint(150);
 * w.end(mark);
 * const bytes: Uint8Array = w.take(); // 0a 03 08 96 01
 * ```
 */

export const WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_I32 = 5;

const TWO_32 = 0x1_0000_0000;
const utf8 = new TextEncoder();

/** A growable protobuf writer with the wire types OTLP needs. */
export class ProtobufWriter {
  buf: Uint8Array;
  pos = 0;
  protected view: DataView;
  /** A new buffer of `capacity` bytes, or writing into `storage` from its start. */
  constructor(capacity: number | Uint8Array = 1 << 16) {
    this.buf = typeof capacity === "number" ? new Uint8Array(capacity) : capacity;
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** Unsigned varint; negative integers as 10-byte two's complement (int64). */
  varint(v: number): void {
    this.ensure(10);
    const b = this.buf;
    if (v >= 0 && v < 0x80) {
      b[this.pos++] = v;
      return;
    }
    let lo: number, hi: number;
    if (v >= 0) {
      lo = v >>> 0;
      hi = Math.floor(v / TWO_32) >>> 0;
    } else {
      const a = -v;
      lo = a >>> 0;
      hi = Math.floor(a / TWO_32) >>> 0;
      lo = (~lo + 1) >>> 0;
      hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0;
    }
    while (hi > 0 || lo > 0x7f) {
      b[this.pos++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi = hi >>> 7;
    }
    b[this.pos++] = lo;
  }

  tag(field: number, wireType: number): void {
    this.varint((field << 3) | wireType);
  }

  fixed32(v: number): void {
    this.ensure(4);
    this.view.setUint32(this.pos, v, true);
    this.pos += 4;
  }

  fixed64(v: bigint): void {
    this.ensure(8);
    this.view.setBigUint64(this.pos, v, true);
    this.pos += 8;
  }

  double(v: number): void {
    this.ensure(8);
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }

  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** A length-delimited string; ASCII (addresses, names) is copied without an encoder call. */
  string(s: string): void {
    const n = s.length;
    let ascii = n < 0x80;
    if (ascii) {
      for (let i = 0; i < n; i++) {
        if (s.charCodeAt(i) > 0x7f) {
          ascii = false;
          break;
        }
      }
    }
    if (ascii) {
      this.ensure(1 + n);
      const b = this.buf;
      b[this.pos++] = n;
      for (let i = 0; i < n; i++) b[this.pos++] = s.charCodeAt(i);
      return;
    }
    const bytes = utf8.encode(s);
    this.varint(bytes.length);
    this.raw(bytes);
  }

  /** Starts a length-delimited field: reserves one length byte, widened in {@link end} if needed. */
  begin(): number {
    this.ensure(1);
    return this.pos++;
  }

  /** Ends the field {@link begin} started at `mark`: writes its length. */
  end(mark: number): void {
    const len = this.pos - mark - 1;
    if (len < 0x80) {
      this.buf[mark] = len;
      return;
    }
    let extra = 0;
    for (let v = len >>> 7; v > 0; v >>>= 7) extra++;
    this.ensure(extra);
    this.buf.copyWithin(mark + 1 + extra, mark + 1, this.pos);
    this.pos += extra;
    let p = mark, v = len;
    while (v >= 0x80) {
      this.buf[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[p] = v;
  }

  /** A copy of what was written; the writer starts over. */
  take(): Uint8Array {
    const out = this.buf.slice(0, this.pos);
    this.pos = 0;
    return out;
  }

  /** Copies `n` bytes of `src` from `from` (short runs: a loop is cheaper than `set` for them). */
  copy(src: Uint8Array, from: number, n: number): void {
    const b = this.buf;
    let p = this.pos;
    for (let i = from, e = from + n; i < e; i++) b[p++] = src[i];
    this.pos = p;
  }
}

/** Bytes the varint of `v` (non-negative) takes. */
export function varintSize(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}
