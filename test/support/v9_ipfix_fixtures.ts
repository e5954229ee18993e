/**
 * Byte fixtures for v9 and IPFIX decoder tests: sets, template records and message headers, written with
 * the builder in bytes.ts, independent of the decoder; and a decoder with one-packet decoding.
 */
import assert from "node:assert/strict";
import { NetflowDecoder } from "../../src/netflow/decoder.ts";
import type { ExportPacket } from "../../src/netflow/types.ts";
import type { TemplateDecoderOptions } from "../../src/netflow/decoder_options.ts";
import { B } from "./bytes.ts";

export type Field = [id: number, length: number, pen?: number];

export const EXPORT_S = 1_700_000_000;
export const NOW = EXPORT_S * 1000 + 250;
export const E1 = "192.0.2.1";
export const E2 = "192.0.2.2";

/** A set: id, length, body, then `pad` zero bytes counted in the length. */
export function set(id: number, body: Uint8Array, pad = 0): Uint8Array {
  return new B().u16(id, 4 + body.length + pad).raw(body).raw(new Uint8Array(pad)).build();
}

export function fieldSpecs(b: B, fields: Field[], ipfix: boolean): void {
  for (const [id, len, pen] of fields) {
    if (ipfix && pen) b.u16(id | 0x8000, len).u32(pen);
    else b.u16(id, len);
  }
}

/** Template record (v9 set 0 / IPFIX set 2). */
export function tpl(id: number, fields: Field[], ipfix = true): Uint8Array {
  const b = new B().u16(id, fields.length);
  fieldSpecs(b, fields, ipfix);
  return b.build();
}

/** IPFIX options template record (set 3). */
export function optTplIpfix(id: number, scope: Field[], fields: Field[]): Uint8Array {
  const b = new B().u16(id, scope.length + fields.length, scope.length);
  fieldSpecs(b, [...scope, ...fields], true);
  return b.build();
}

/** v9 options template record (set 1). */
export function optTplV9(id: number, scope: Field[], fields: Field[]): Uint8Array {
  const b = new B().u16(id, scope.length * 4, fields.length * 4);
  fieldSpecs(b, [...scope, ...fields], false);
  return b.build();
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const b = new B();
  for (const p of parts) b.raw(p);
  return b.build();
}

export function ipfix(domain: number, seq: number, sets: Uint8Array[], exportS = EXPORT_S): Uint8Array {
  const body = concat(...sets);
  return concat(new B().u16(10, 16 + body.length).u32(exportS, seq, domain).build(), body);
}

export function v9(
  sourceId: number,
  seq: number,
  uptimeMs: number,
  sets: Uint8Array[],
  exportS = EXPORT_S,
): Uint8Array {
  return concat(new B().u16(9, sets.length).u32(uptimeMs, exportS, seq, sourceId).build(), ...sets);
}

export function decoder(options: Partial<TemplateDecoderOptions> = {}): NetflowDecoder {
  return new NetflowDecoder(options);
}

export function one(d: NetflowDecoder, bytes: Uint8Array, exporter = E1, now = NOW): ExportPacket {
  const out = d.decode(bytes, exporter, 2055, now);
  assert.equal(out.length, 1, "exactly one packet");
  return out[0];
}
