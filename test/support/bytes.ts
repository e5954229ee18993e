/** A tiny byte builder for fixtures, independent of the decoder: big-endian writes appended to an array. */
export class B {
  readonly a: number[] = [];
  u8(...vs: number[]): this {
    for (const v of vs) this.a.push(v & 0xff);
    return this;
  }
  u16(...vs: number[]): this {
    for (const v of vs) this.a.push((v >>> 8) & 0xff, v & 0xff);
    return this;
  }
  u32(...vs: number[]): this {
    for (const v of vs) this.a.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
    return this;
  }
  /** A number (exact up to 2^53) or, for any 64-bit value, a bigint. */
  u64(v: number | bigint): this {
    if (typeof v === "number") return this.u32(Math.floor(v / 2 ** 32), v % 2 ** 32);
    for (let i = 7; i >= 0; i--) this.a.push(Number((v >> BigInt(8 * i)) & 0xffn));
    return this;
  }
  ip(s: string): this {
    return this.u8(...s.split(".").map(Number));
  }
  raw(bytes: ArrayLike<number>): this {
    for (let i = 0; i < bytes.length; i++) this.a.push(bytes[i]);
    return this;
  }
  str(s: string): this {
    return this.raw(new TextEncoder().encode(s));
  }
  zeros(n: number): this {
    for (let i = 0; i < n; i++) this.a.push(0);
    return this;
  }
  get length(): number {
    return this.a.length;
  }
  build(): Uint8Array {
    return Uint8Array.from(this.a);
  }
}
