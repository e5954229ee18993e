/**
 * Hostile input, round two (issue 11), decoder side, byte by byte: memory bounded by bytes (fields per
 * template, template bytes per exporter and in total, held bytes per exporter, the snapshot), CPU bounded
 * per datagram (withdraw-all storms, zero-length fields), the per-packet flow limit, padding that is not
 * data, counters that fit, and the bug classes of nfdump's and pmacct's 2026 fixes (an options template
 * replaced by a data template of the same id, zero-size structured data, length wraps).
 */
import assert from "node:assert/strict";
import v8 from "node:v8";
import vm from "node:vm";
import { NetflowDecoder } from "../src/netflow/decoder.ts";
import {
  DEFAULT_TEMPLATE_DECODER_OPTIONS,
  type TemplateDecoderOptions,
} from "../src/netflow/decoder_options.ts";
import { TemplateDecoder } from "../src/netflow/template_decoder.ts";
import type { ExportPacket } from "../src/netflow/types.ts";
import { B } from "./support/bytes.ts";

v8.setFlagsFromString("--expose-gc");
const gc: () => void = vm.runInNewContext("gc");
/** Heap and off-heap (typed-array backing stores) after full collections. */
const heapBytes = () => {
  gc();
  gc();
  const m = Deno.memoryUsage();
  return m.heapUsed + m.external;
};

// ---------------------------------------------------------------------------------------------------
// Fixture helpers; bytes come from the builder in test/support/bytes.ts, independent of the decoder.

type Field = [id: number, length: number, pen?: number];

const EXPORT_S = 1_700_000_000;
const NOW = EXPORT_S * 1000 + 250;
const E1 = "192.0.2.1";
const E2 = "192.0.2.2";

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** A set: id, length (4 + body), body. */
function set(id: number, body: Uint8Array): Uint8Array {
  return concat(new B().u16(id, 4 + body.length).build(), body);
}

function fieldSpecs(b: B, fields: Field[], ipfix: boolean): B {
  for (const [id, len, pen] of fields) {
    if (ipfix && pen) b.u16(id | 0x8000, len).u32(pen);
    else b.u16(id, len);
  }
  return b;
}

/** Template record (v9 set 0 / IPFIX set 2); no fields = an IPFIX withdrawal. */
function tpl(id: number, fields: Field[], ipfix = true): Uint8Array {
  return fieldSpecs(new B().u16(id, fields.length), fields, ipfix).build();
}

/** IPFIX options template record (set 3). */
function optTpl(id: number, scope: Field[], fields: Field[]): Uint8Array {
  return fieldSpecs(new B().u16(id, scope.length + fields.length, scope.length), [...scope, ...fields], true)
    .build();
}

/** v9 options template record (set 1). */
function optTplV9(id: number, scope: Field[], fields: Field[]): Uint8Array {
  return fieldSpecs(new B().u16(id, scope.length * 4, fields.length * 4), [...scope, ...fields], false)
    .build();
}

function ipfix(domain: number, seq: number, sets: Uint8Array[]): Uint8Array {
  const body = concat(...sets);
  return concat(new B().u16(10, 16 + body.length).u32(EXPORT_S, seq, domain).build(), body);
}

function v9(sourceId: number, seq: number, sets: Uint8Array[]): Uint8Array {
  return concat(new B().u16(9, sets.length).u32(100_000, EXPORT_S, seq, sourceId).build(), ...sets);
}

function one(d: NetflowDecoder, bytes: Uint8Array, exporter = E1): ExportPacket {
  const out = d.decode(bytes, exporter, 2055, NOW);
  assert.equal(out.length, 1, "exactly one packet");
  return out[0];
}

/** `n` distinct known elements of 4 octets (ids 1–255 cycled, then unknown ids). */
function wideFields(n: number): Field[] {
  return Array.from({ length: n }, (_, i) => [1000 + i, 4] as Field);
}

const ADDRS: Field[] = [[8, 4], [12, 4]];
const addrRecord = (a: number) => new B().u8(10, 0, 0, a).u8(10, 0, 1, a).build();

/** Every cached template accounted once: per exporter sums match the totals. */
function assertAccounting(td: NetflowDecoder): void {
  const s = td.stats;
  assert.ok(s.templates >= 0 && s.templateBytes >= 0, JSON.stringify(s));
  if (s.templates === 0) assert.equal(s.templateBytes, 0);
}

// ---------------------------------------------------------------------------------------------------
// 1. Memory bounded by bytes

Deno.test("bytes: a 16,000-field template is refused (template_refused), its id's old layout dropped", () => {
  const d = new NetflowDecoder();
  const stats = d.stats;
  // First a real definition of 256, with data.
  let p = one(d, ipfix(1, 0, [set(2, tpl(256, ADDRS)), set(256, addrRecord(1))]));
  assert.equal(p.flows.length, 1);
  // Then 256 redefined with 16,000 fields: 64,000 bytes of field specifiers in one datagram.
  const wide = ipfix(1, 1, [set(2, tpl(256, wideFields(16_000)))]);
  assert.ok(wide.length <= 65_535, `${wide.length}`);
  p = one(d, wide);
  assert.equal(p.error?.kind, "template_refused");
  assert.equal(p.error?.message, "template 256 has 16000 fields (limit 512)");
  assert.equal(p.templatesRefused, 1);
  assert.equal(p.templateCount, 1);
  assert.equal(stats.templatesRefused, 1);
  assert.equal(stats.templates, 0, "the old 256 is gone: data now follows the refused layout");
  assert.equal(stats.templateBytes, 0);
  // Data for 256 is not decoded with the stale layout: it waits for a template.
  p = one(d, ipfix(1, 2, [set(256, addrRecord(2))]));
  assert.equal(p.flows.length, 0);
  assert.equal(p.awaitingTemplateSets, 1);
});

Deno.test("bytes: a refused template does not stop the rest of its set or the datagram", () => {
  const d = new NetflowDecoder({ maxFieldsPerTemplate: 8 });
  const p = one(
    d,
    ipfix(1, 0, [
      set(2, concat(tpl(300, wideFields(9)), tpl(301, ADDRS))),
      set(3, optTpl(302, [[48, 2]], wideFields(8))), // 9 fields with the scope: refused too
      set(301, concat(addrRecord(1), addrRecord(2))),
    ]),
  );
  assert.equal(p.error?.kind, "template_refused");
  assert.equal(p.error?.message, "template 300 has 9 fields (limit 8)");
  assert.equal(p.templatesRefused, 2);
  assert.equal(p.templateCount, 3);
  assert.equal(p.flows.length, 2);
  assert.equal(d.stats.templates, 1);
  // v9 counts fields from the scope and option lengths: the same limit.
  const q = one(d, v9(1, 0, [set(1, optTplV9(400, [[1, 4]], wideFields(8)))]));
  assert.equal(q.error?.kind, "template_refused");
  assert.equal(q.error?.message, "template 400 has 9 fields (limit 8)");
});

Deno.test("bytes: heap per template field, and the charge covers it", () => {
  const rows: string[] = [];
  for (const [fields, count] of [[20, 2_000], [500, 200]] as const) {
    const fresh = new NetflowDecoder({
      maxTemplatesPerExporter: 100_000,
      maxTemplates: 1_000_000,
      maxTemplateBytesPerExporter: 2 ** 40,
      maxTemplateBytes: 2 ** 40,
    });
    const datagrams = Array.from(
      { length: count },
      (_, t) =>
        ipfix(t >> 10, t, [
          set(2, tpl(256 + (t % 1024), Array.from({ length: fields }, (_, i) => [1 + ((i * 7) % 400), 4]))),
        ]),
    );
    const before = heapBytes();
    for (const g of datagrams) fresh.decode(g, E1, 2055, NOW);
    const after = heapBytes();
    const s = fresh.stats;
    assert.equal(s.templates, count);
    const heapPerTemplate = (after - before) / count;
    rows.push(
      `${count} templates × ${fields} fields: heap ${heapPerTemplate.toFixed(0)} B/template ` +
        `(${((after - before) / (count * fields)).toFixed(1)} B/field), charged ${
          (s.templateBytes / count).toFixed(0)
        } B/template`,
    );
    assert.ok(s.templateBytes >= after - before, rows[rows.length - 1]);
  }
  console.log(`template heap: ${rows.join("; ")}`);
});

Deno.test("bytes: one exporter's 1,024 maximal templates stay within its byte budget; others keep theirs", () => {
  const d = new NetflowDecoder();
  const s = d.stats;
  const limits = DEFAULT_TEMPLATE_DECODER_OPTIONS;
  one(d, ipfix(7, 0, [set(2, tpl(300, ADDRS))]), E2); // the legitimate exporter
  const before = heapBytes();
  for (let t = 0; t < 1_024; t++) {
    const p = one(d, ipfix(1, t, [set(2, tpl(256 + t, wideFields(512)))]));
    assert.equal(p.error, undefined);
  }
  const grown = heapBytes() - before;
  assert.ok(s.templateBytes <= limits.maxTemplateBytesPerExporter + 16_000, JSON.stringify(s));
  assert.ok(s.templateByteEvictions > 900, JSON.stringify(s));
  assert.ok(grown < 4 * 2 ** 20, `heap grew ${grown} bytes`);
  // The other exporter's template is untouched.
  const p = one(d, ipfix(7, 1, [set(300, addrRecord(9))]), E2);
  assert.equal(p.flows.length, 1);
  // The attack of the issue: 16,000-field templates, refused at once, pin nothing.
  const before2 = heapBytes();
  for (let t = 0; t < 64; t++) one(d, ipfix(1, 2_000 + t, [set(2, tpl(2_000 + t, wideFields(16_000)))]));
  const grown2 = heapBytes() - before2;
  assert.equal(s.templatesRefused, 64);
  assert.ok(grown2 < 2 * 2 ** 20, `heap grew ${grown2} bytes for 64 refused templates`);
  console.log(
    `one exporter, 1,024 × 512-field templates: ${s.templateBytes} bytes charged, ` +
      `${s.templateByteEvictions} evicted by bytes, heap +${(grown / 2 ** 20).toFixed(1)} MiB; ` +
      `64 × 16,000-field templates refused, heap +${(grown2 / 2 ** 20).toFixed(2)} MiB`,
  );
});

Deno.test("bytes: the total template budget evicts the least recently seen exporters", () => {
  const total = 2 * 2 ** 20;
  const d = new NetflowDecoder({ maxTemplateBytes: total });
  const s = d.stats;
  for (let e = 0; e < 6; e++) {
    for (let t = 0; t < 80; t++) one(d, ipfix(1, t, [set(2, tpl(256 + t, wideFields(500)))]), `10.0.0.${e}`);
    assert.ok(s.templateBytes <= total, JSON.stringify(s));
  }
  assert.ok(s.exporterEvictions >= 3, JSON.stringify(s));
  // Withdrawing everything returns the bytes.
  for (let e = 0; e < 6; e++) one(d, ipfix(1, 99, [set(2, tpl(2, []))]), `10.0.0.${e}`);
  assert.equal(s.templates, 0);
  assert.equal(s.templateBytes, 0);
  assertAccounting(d);
});

Deno.test("bytes: restore obeys the same bounds (fields per template, bytes per exporter)", () => {
  const d = new TemplateDecoder();
  const wideTemplate = (id: number, n: number) => ({
    domain: 1,
    version: 10,
    id,
    options: false,
    scope: 0,
    fields: Array.from({ length: n }, (_, i) => [1000 + i, 4, 0]),
  });
  const restored = d.restore({
    format: "netflow2traces.templates",
    version: 1,
    exporters: [{
      address: E1,
      domains: [],
      templates: [
        wideTemplate(256, 16_000),
        ...Array.from({ length: 200 }, (_, i) => wideTemplate(300 + i, 512)),
      ],
    }],
  });
  const s = d.stats;
  assert.equal(s.templatesRefused, 1);
  assert.ok(restored <= 200);
  assert.ok(
    s.templateBytes <= DEFAULT_TEMPLATE_DECODER_OPTIONS.maxTemplateBytesPerExporter,
    JSON.stringify(s),
  );
  assert.ok(s.templateByteEvictions > 100, JSON.stringify(s));
  // The snapshot holds what is cached, no more: its size follows the budget.
  const json = JSON.stringify(d.snapshot());
  assert.ok(json.length < 2 * DEFAULT_TEMPLATE_DECODER_OPTIONS.maxTemplateBytesPerExporter, `${json.length}`);
  // And a snapshot round-trips.
  const again = new TemplateDecoder();
  assert.equal(again.restore(JSON.parse(json)), s.templates);
  assert.equal(again.stats.templateBytes, s.templateBytes);
});

Deno.test("bytes: held data is bounded per exporter in bytes, so one exporter cannot take the buffer", () => {
  const d = new NetflowDecoder();
  const s = d.stats;
  const limits = DEFAULT_TEMPLATE_DECODER_OPTIONS;
  const body = new Uint8Array(60_000).fill(7);
  for (let i = 0; i < 40; i++) one(d, ipfix(1, i, [set(256 + i, body)]));
  assert.ok(s.pendingBytes <= limits.maxPendingBytesPerExporter, JSON.stringify(s));
  assert.ok(s.pendingDroppedExporterFull > 0, JSON.stringify(s));
  // Another exporter still gets room.
  const p = one(d, ipfix(1, 0, [set(256, body)]), E2);
  assert.equal(p.error, undefined);
  assert.equal(p.awaitingTemplateSets, 1);
  assert.ok(s.pendingBytes <= 2 * limits.maxPendingBytesPerExporter);
  // Released or dropped, held bytes are returned.
  const released = d.decode(ipfix(1, 1, [set(2, tpl(256, [[8, 4], [12, 4], [1, 4]]))]), E2, 2055, NOW);
  assert.equal(released.length, 2);
  assert.equal(released[1].flows.length, 5_000);
  d.expire(NOW + limits.pendingTimeoutMs + 1);
  assert.equal(s.pendingBytes, 0);
  assert.equal(s.pendingSets, 0);
});

// ---------------------------------------------------------------------------------------------------
// 2. CPU bounded per datagram

/** One message with `n` withdraw-all records (set id = template id = 2, or 3 for options templates). */
function withdrawStorm(domain: number, n: number, options = false): Uint8Array {
  const b = new B();
  for (let i = 0; i < n; i++) b.u16(options ? 3 : 2, 0);
  return ipfix(domain, 9, [set(options ? 3 : 2, b.build())]);
}

for (
  const [name, setup, storm] of [
    ["templates in another domain", 2, withdrawStorm(1, 16_000)],
    ["options templates of the same domain", 1, withdrawStorm(1, 16_000)],
  ] as const
) {
  Deno.test(`cpu: 16,000 withdraw-all records after 1,024 ${name} decode in a few ms`, () => {
    const d = new NetflowDecoder();
    for (let t = 0; t < 1_024; t++) {
      const record = setup === 2
        ? set(2, tpl(256 + t, ADDRS))
        : set(3, optTpl(256 + t, [[48, 2]], [[34, 4]]));
      one(d, ipfix(setup === 2 ? 2 : 1, t, [record]));
    }
    assert.equal(d.stats.templates, 1_024);
    assert.ok(storm.length > 64_000);
    one(d, storm); // warm-up
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const p = one(d, storm);
      times.push(performance.now() - t0);
      assert.equal(p.error, undefined);
      assert.equal(p.templateCount, 16_000);
    }
    const best = Math.min(...times), worst = Math.max(...times);
    console.log(`withdraw-all storm (${name}): best ${best.toFixed(2)} ms, worst ${worst.toFixed(2)} ms`);
    assert.ok(worst < 50, `${worst} ms`);
    assert.equal(d.stats.templates, 1_024, "the storm withdraws nothing of another kind or domain");
  });
}

Deno.test("cpu: withdraw-all, define, withdraw-all in one message removes the new definition too", () => {
  const d = new NetflowDecoder();
  one(d, ipfix(1, 0, [set(2, concat(tpl(256, ADDRS), tpl(257, ADDRS)))]));
  const p = one(d, ipfix(1, 1, [set(2, tpl(2, [])), set(2, tpl(258, ADDRS)), set(2, tpl(2, []))]));
  assert.equal(p.error, undefined);
  assert.equal(d.stats.templates, 0);
  assert.equal(d.stats.templatesWithdrawn, 3);
  assert.equal(d.stats.templateBytes, 0);
});

Deno.test("cpu: zero-length fields cost nothing per record (511 of them and one octet)", () => {
  const fields: Field[] = [...Array.from({ length: 511 }, (_, i) => [291 + (i % 3), 0] as Field), [4, 1]];
  const d = new NetflowDecoder();
  const body = new Uint8Array(9_000).fill(17);
  const msg = ipfix(1, 0, [set(2, tpl(256, fields)), set(256, body)]);
  one(d, msg);
  const t0 = performance.now();
  const p = one(d, msg);
  const ms = performance.now() - t0;
  console.log(`9,000 records of a 512-field template with 511 zero-length fields: ${ms.toFixed(2)} ms`);
  assert.equal(p.error, undefined);
  assert.equal(p.flows.length, 9_000);
  assert.equal(p.flows[0].protocol, 17);
  assert.equal(p.flows[0].extra, undefined, "zero-size structured data gives no attribute");
  assert.ok(ms < 100, `${ms} ms`);
});

// ---------------------------------------------------------------------------------------------------
// 3. Per-packet flow limit

Deno.test("flows: a 1-octet template and a 65,400-byte data set give no flows and a too_many_flows error", () => {
  const d = new NetflowDecoder();
  const body = new Uint8Array(65_400).fill(6);
  const msg = ipfix(1, 0, [set(2, tpl(256, [[4, 1]])), set(256, body)]);
  assert.ok(msg.length <= 65_535);
  const t0 = performance.now();
  const p = one(d, msg);
  const ms = performance.now() - t0;
  assert.equal(p.flows.length, 0);
  assert.equal(p.error?.kind, "too_many_flows");
  assert.equal(p.error?.message, "65400 flow records in one datagram (limit 10000)");
  assert.equal(d.stats.packetsOverFlowLimit, 1);
  console.log(`65,400-record datagram refused in ${ms.toFixed(2)} ms`);
  // The template it carried is kept: the next, reasonable datagram decodes.
  const q = one(d, ipfix(1, 1, [set(256, new Uint8Array(10_000).fill(6))]));
  assert.equal(q.error, undefined);
  assert.equal(q.flows.length, 10_000, "exactly the limit is allowed");
});

Deno.test("flows: the limit counts real records, not the bound, for variable-length templates", () => {
  const d = new NetflowDecoder({ maxFlowsPerPacket: 100 });
  const rec = new B().u8(255).u16(600).raw(new Uint8Array(600).fill(0x41)).build();
  const body = concat(...Array.from({ length: 90 }, () => rec)); // 54,270 bytes: bound 54,270, real 90
  const p = one(d, ipfix(1, 0, [set(2, tpl(256, [[82, 0xffff]])), set(256, body)]));
  assert.equal(p.error, undefined);
  assert.equal(p.flows.length, 90);
  const many = one(d, ipfix(1, 1, [set(256, new Uint8Array(300).fill(1))])); // 150 records of 1 + 1 octets
  assert.equal(many.error?.kind, "too_many_flows");
  assert.equal(many.error?.message, "150 flow records in one datagram (limit 100)");
});

Deno.test("flows: the limit holds for data released when its template arrives", () => {
  const d = new NetflowDecoder();
  const held = one(d, ipfix(1, 0, [set(256, new Uint8Array(30_000).fill(6))]));
  assert.equal(held.awaitingTemplateSets, 1);
  const out = d.decode(ipfix(1, 1, [set(2, tpl(256, [[4, 1]]))]), E1, 2055, NOW);
  assert.equal(out.length, 2);
  assert.equal(out[1].deferred, true);
  assert.equal(out[1].flows.length, 0);
  assert.equal(out[1].error?.kind, "too_many_flows");
  assert.equal(d.stats.pendingSets, 0);
  assert.equal(d.stats.pendingBytes, 0);
});

Deno.test("flows: a template of zero-length fields only is a bad template, never a flow factory", () => {
  const d = new NetflowDecoder();
  const p = one(d, ipfix(1, 0, [set(2, tpl(256, [[291, 0], [4, 0]])), set(256, new Uint8Array(100))]));
  assert.equal(p.error?.kind, "bad_template");
  assert.equal(p.flows.length, 0);
  assert.equal(d.stats.templates, 0);
});

// ---------------------------------------------------------------------------------------------------
// 4. Padding is not data

Deno.test("padding: zero octets after the last record of a variable-length-only template are not flows", () => {
  const d = new NetflowDecoder();
  const rec = (s: string) => new B().u8(s.length).raw(new TextEncoder().encode(s)).build();
  const p = one(
    d,
    ipfix(1, 0, [
      set(2, tpl(256, [[82, 0xffff]])),
      set(256, concat(rec("eth0"), rec("eth1"), new Uint8Array(3))),
    ]),
  );
  assert.equal(p.error, undefined);
  assert.equal(p.flows.length, 2);
  assert.deepEqual(p.flows.map((f) => f.extra?.["netflow.interface_name"]), ["eth0", "eth1"]);
  // A set of zeros only is padding too, with no error.
  const q = one(d, ipfix(1, 1, [set(256, new Uint8Array(8))]));
  assert.equal(q.error, undefined);
  assert.equal(q.flows.length, 0);
});

Deno.test("padding: trailing all-zero octets as long as records are padding, not empty flows", () => {
  const d = new NetflowDecoder();
  const p = one(
    d,
    ipfix(1, 0, [
      set(2, tpl(256, ADDRS)),
      set(256, concat(addrRecord(1), addrRecord(2), new Uint8Array(16))),
    ]),
  );
  assert.equal(p.error, undefined);
  assert.equal(p.flows.length, 2);
  // A zero record between real ones is still a record.
  const q = one(d, ipfix(1, 1, [set(256, concat(addrRecord(1), new Uint8Array(8), addrRecord(3)))]));
  assert.equal(q.flows.length, 3);
  // v9 (RFC 3954 §5: padding to a 32-bit boundary) the same.
  const v = one(
    d,
    v9(1, 0, [
      set(0, tpl(256, [[8, 4], [4, 1]], false)),
      set(256, new B().u8(10, 0, 0, 1, 6).zeros(11).build()),
    ]),
  );
  assert.equal(v.error, undefined);
  assert.equal(v.flows.length, 1);
});

Deno.test("padding: `01 00 00 00` after a template definition is not a withdrawal of 256", () => {
  const d = new NetflowDecoder();
  one(d, ipfix(1, 0, [set(2, tpl(256, ADDRS))]));
  const p = one(d, ipfix(1, 1, [set(2, concat(tpl(300, ADDRS), new B().u8(1, 0, 0, 0).build()))]));
  assert.equal(p.error, undefined);
  assert.equal(p.templateCount, 1);
  assert.equal(d.stats.templates, 2);
  assert.equal(d.stats.templatesWithdrawn, 0);
  assert.equal(one(d, ipfix(1, 2, [set(256, addrRecord(1))])).flows.length, 1);
  // Short non-zero tails are padding as well, in data and options template sets.
  const q = one(
    d,
    ipfix(1, 3, [
      set(2, concat(tpl(301, ADDRS), new B().u8(1, 2, 3).build())),
      set(3, new B().u8(9, 9).build()),
    ]),
  );
  assert.equal(q.error, undefined);
  // A withdrawal in a set of its own is still honoured (SPEC §1).
  const w = one(d, ipfix(1, 4, [set(2, tpl(256, []))]));
  assert.equal(w.error, undefined);
  assert.equal(d.stats.templatesWithdrawn, 1);
});

Deno.test("padding: options template sets — a zero field count after a definition, a short tail", () => {
  const d = new NetflowDecoder();
  const p = one(
    d,
    v9(1, 0, [
      set(0, concat(tpl(256, [[8, 4], [12, 4]], false), new B().u8(1, 0, 0, 0).build())),
      set(1, concat(optTplV9(257, [[1, 4]], [[34, 4]]), new B().u8(1, 1, 0, 0).build())),
      set(1, concat(optTplV9(258, [[1, 4]], [[34, 4]]), new B().u16(259, 0, 0).build())),
    ]),
  );
  assert.equal(p.error, undefined);
  assert.equal(p.templateCount, 3);
  assert.equal(d.stats.templates, 3);
  // IPFIX options template sets: a tail too short for an options template header.
  const q = one(
    d,
    ipfix(1, 0, [set(3, concat(optTpl(260, [[48, 2]], [[34, 4]]), new B().u16(261, 5).build()))]),
  );
  assert.equal(q.error, undefined);
  assert.equal(q.templateCount, 1);
});

// ---------------------------------------------------------------------------------------------------
// 5. Counters that fit

Deno.test("counters: 64-bit values at or above 2^53 are clamped to 2^53 − 1, flagged, never negative", () => {
  const d = new NetflowDecoder();
  const fields: Field[] = [[8, 4], [12, 4], [1, 8], [2, 8], [1, 8, 29305], [148, 8], [85, 7]];
  const rec = (bytes: bigint, packets: bigint, reverse: bigint, flowId: bigint, total7: number[]) =>
    new B().u8(10, 0, 0, 1, 10, 0, 0, 2).u64(bytes).u64(packets).u64(reverse).u64(flowId).u8(...total7)
      .build();
  const max = Number.MAX_SAFE_INTEGER;
  const p = one(
    d,
    ipfix(1, 0, [
      set(2, tpl(256, fields)),
      set(
        256,
        concat(
          rec(2n ** 53n + 1n, 2n ** 63n + 5n, 2n ** 64n - 1n, 2n ** 63n, [
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
          ]),
          rec(2n ** 53n - 2n, 12345n, 1n, 42n, [0, 0, 0, 0, 0, 1, 0]),
        ),
      ),
    ]),
  );
  assert.equal(p.error, undefined);
  const [a, b] = p.flows;
  assert.equal(a.bytes, max);
  assert.equal(a.packets, max);
  assert.equal(a.clamped, true);
  assert.equal(a.reverseBytes, max);
  assert.equal(a.extra?.["netflow.flow_id"], max);
  assert.equal(a.extra?.["netflow.octet_total_count"], max);
  for (const v of [a.bytes, a.packets, a.reverseBytes, ...Object.values(a.extra ?? {})]) {
    assert.ok(typeof v !== "number" || (Number.isSafeInteger(v) && v >= 0), `${v}`);
  }
  assert.equal(b.bytes, 2 ** 53 - 2, "exact below the clamp");
  assert.equal(b.packets, 12345);
  assert.equal(b.clamped, undefined);
  assert.equal(b.extra?.["netflow.octet_total_count"], 256);
  assert.equal(d.stats.valuesClamped, 5); // bytes, packets, reverse bytes, flow id, total
});

// ---------------------------------------------------------------------------------------------------
// 6. nfdump / pmacct bug classes

Deno.test("replace: an options template replaced by a data template of the same id (and back)", () => {
  const d = new NetflowDecoder();
  const stats = d.stats;
  // Options template 256 (sampler 48 → samplingInterval 34) and its data.
  let p = one(
    d,
    ipfix(1, 0, [set(3, optTpl(256, [[48, 2]], [[34, 4]])), set(256, new B().u16(1).u32(100).build())]),
  );
  assert.equal(p.optionsRecordCount, 1);
  // 256 becomes a data template: data decodes as flows with the new plan, no options record.
  p = one(d, ipfix(1, 1, [set(2, tpl(256, ADDRS)), set(256, addrRecord(5))]));
  assert.equal(p.error, undefined);
  assert.equal(p.optionsRecordCount, undefined);
  assert.equal(p.flows.length, 1);
  assert.equal(p.flows[0].srcAddr, "10.0.0.5");
  assert.equal(p.flows[0].samplingInterval, 100, "the options data announced before still applies");
  assert.equal(stats.templates, 1);
  // Withdrawing all options templates leaves the data template 256 alone.
  one(d, ipfix(1, 2, [set(3, tpl(3, []))]));
  assert.equal(stats.templates, 1);
  assert.equal(one(d, ipfix(1, 3, [set(256, addrRecord(6))])).flows.length, 1);
  // And back: 256 as an options template again; its data makes no flows.
  p = one(
    d,
    ipfix(1, 4, [set(3, optTpl(256, [[48, 2]], [[34, 4]])), set(256, new B().u16(2).u32(10).build())]),
  );
  assert.equal(p.flows.length, 0);
  assert.equal(p.optionsRecordCount, 1);
  one(d, ipfix(1, 5, [set(2, tpl(2, []))])); // withdraw all data templates: not this one
  assert.equal(stats.templates, 1);
  one(d, ipfix(1, 6, [set(3, tpl(3, []))]));
  assert.equal(stats.templates, 0);
  assert.equal(stats.templateBytes, 0);
  // v9 the same.
  one(d, v9(1, 0, [set(1, optTplV9(300, [[1, 4]], [[34, 4]]))]));
  p = one(d, v9(1, 1, [set(0, tpl(300, ADDRS, false)), set(300, addrRecord(7))]));
  assert.equal(p.flows.length, 1);
  assert.equal(p.flows[0].srcAddr, "10.0.0.7");
});

Deno.test("structured data: IEs 291–293 of length 0 (fixed) and empty (variable) decode without harm", () => {
  const d = new NetflowDecoder();
  const fixed: Field[] = [[291, 0], [8, 4], [292, 0], [12, 4], [293, 0]];
  let p = one(d, ipfix(1, 0, [set(2, tpl(256, fixed)), set(256, concat(addrRecord(1), addrRecord(2)))]));
  assert.equal(p.error, undefined);
  assert.equal(p.flows.length, 2);
  assert.equal(p.flows[1].dstAddr, "10.0.1.2");
  assert.equal(p.flows[0].extra, undefined);
  const variable: Field[] = [[8, 4], [291, 0xffff], [292, 0xffff], [293, 0xffff], [12, 4]];
  const rec = new B().u8(10, 0, 0, 3).u8(0, 0, 255).u16(0).u8(10, 0, 1, 3).build();
  p = one(d, ipfix(1, 1, [set(2, tpl(257, variable)), set(257, concat(rec, rec))]));
  assert.equal(p.error, undefined);
  assert.equal(p.flows.length, 2);
  assert.equal(p.flows[1].dstAddr, "10.0.1.3");
});

Deno.test("lengths that wrap and offsets that would overflow are errors, never reads past the datagram", () => {
  const d = new NetflowDecoder();
  const cases: [string, Uint8Array, string][] = [
    // Message length 0xffff, datagram far shorter.
    [
      "message length",
      concat(new B().u16(10, 0xffff).u32(EXPORT_S, 0, 1).build(), set(2, tpl(256, ADDRS))),
      "truncated",
    ],
    // Set length 0xffff.
    ["set length", ipfix(1, 0, [new B().u16(2, 0xffff).raw(tpl(256, ADDRS)).build()]), "truncated"],
    // Field count 0xffff in a small set.
    ["field count", ipfix(1, 0, [set(2, new B().u16(256, 0xffff).u16(8, 4).build())]), "bad_template"],
    // Enterprise bit on the last field with no room for its PEN.
    ["pen", ipfix(1, 0, [set(2, new B().u16(256, 1).u16(0x8001, 4).build())]), "bad_template"],
    // v9 options scope and option lengths of 0xfffc: 32,766 fields announced.
    [
      "v9 option lengths",
      v9(1, 0, [set(1, new B().u16(256, 0xfffc, 0xfffc).u16(1, 4).build())]),
      "bad_template",
    ],
  ];
  for (const [name, bytes, kind] of cases) {
    const p = one(d, bytes);
    assert.equal(p.error?.kind, kind, `${name}: ${JSON.stringify(p.error)}`);
    assert.equal(p.flows.length, 0, name);
  }
  // A variable-length value of 255 + 0xffff octets in a short set.
  one(d, ipfix(2, 0, [set(2, tpl(256, [[82, 0xffff], [8, 4]]))]));
  const p = one(d, ipfix(2, 1, [set(256, new B().u8(255).u16(0xffff).u8(1, 2, 3, 4).build())]));
  assert.equal(p.error?.kind, "bad_length");
  assert.equal(p.flows.length, 0);
});

Deno.test("options: the byte bounds cover options templates, and a refused one keeps no state", () => {
  const opts: Partial<TemplateDecoderOptions> = { maxTemplateBytesPerExporter: 64 * 1024 };
  const d = new NetflowDecoder(opts);
  const s = d.stats;
  for (let t = 0; t < 100; t++) one(d, ipfix(1, t, [set(3, optTpl(256 + t, [[48, 2]], wideFields(100)))]));
  assert.ok(s.templateBytes <= 64 * 1024, JSON.stringify(s));
  assert.ok(s.templateByteEvictions > 0);
  const small = new NetflowDecoder({ maxTemplateBytesPerExporter: 2_000 });
  const p = one(small, ipfix(1, 0, [set(3, optTpl(256, [[48, 2]], wideFields(100)))]));
  assert.equal(p.error?.kind, "template_refused");
  assert.match(p.error!.message, /^template 256 needs \d+ bytes \(limit 2000 per exporter\)$/);
  assert.equal(small.stats.templates, 0);
});
