import assert from "node:assert/strict";
import { flowTimes } from "../src/netflow/time.ts";
import { B } from "./support/bytes.ts";

import {
  concat,
  decoder,
  E1,
  E2,
  EXPORT_S,
  type Field,
  ipfix,
  NOW,
  one,
  optTplIpfix,
  optTplV9,
  set,
  tpl,
  v9,
} from "./support/v9_ipfix_fixtures.ts";

// ---------------------------------------------------------------------------------------------------

const FULL: Field[] = [
  [8, 4],
  [12, 4],
  [7, 2],
  [11, 2],
  [4, 1],
  [6, 2],
  [1, 8],
  [2, 4], // reduced-size packetDeltaCount
  [16, 2], // reduced-size AS
  [17, 4],
  [10, 4],
  [14, 4],
  [152, 8],
  [153, 8],
  [58, 2],
  [225, 4],
  [234, 4],
  [136, 1],
  [32, 2],
  [56, 6],
  [999, 2],
  [61, 1],
  [15, 4],
  [18, 4],
  [5, 1],
  [9, 1],
  [13, 1],
  [276, 1],
];

function fullRecord(n: number): Uint8Array {
  return new B()
    .ip("10.0.0." + n).ip("198.51.100.7").u16(51000 + n, 443).u8(6).u16(0x012).u64(2 ** 40 + n).u32(17)
    .u16(64500).u32(4_200_000_000).u32(3).u32(7)
    .u64(EXPORT_S * 1000 - 5000).u64(EXPORT_S * 1000 - 1000)
    .u16(42).ip("203.0.113.9").u32(11).u8(3).u16(0x0303).u8(0, 0x1b, 0x21, 0xab, 0xcd, 0xef).u16(0xbeef)
    .u8(1).ip("10.255.0.1").ip("10.255.0.2").u8(0xb8, 24, 16).u8(1)
    .build();
}

Deno.test("IPFIX: template and data in one message map to Flow fields and named attributes", () => {
  const d = decoder();
  const msg = ipfix(7, 0, [set(2, tpl(256, FULL)), set(256, concat(fullRecord(1), fullRecord(2)))]);
  const p = one(d, msg);
  assert.equal(p.error, undefined);
  assert.equal(p.version, 10);
  assert.equal(p.observationDomainId, 7);
  assert.equal(p.exportTimeMs, EXPORT_S * 1000);
  assert.equal(p.templateCount, 1);
  assert.equal(p.flows.length, 2);
  const f = p.flows[0];
  assert.equal(f.srcAddr, "10.0.0.1");
  assert.equal(f.dstAddr, "198.51.100.7");
  assert.equal(f.srcPort, 51001);
  assert.equal(f.dstPort, 443);
  assert.equal(f.protocol, 6);
  assert.equal(f.tcpFlags, 0x12);
  assert.equal(f.bytes, 2 ** 40 + 1);
  assert.equal(f.packets, 17);
  assert.equal(f.srcAs, 64500);
  assert.equal(f.dstAs, 4_200_000_000);
  assert.equal(f.inputIf, 3);
  assert.equal(f.outputIf, 7);
  assert.equal(f.startMs, EXPORT_S * 1000 - 5000);
  assert.equal(f.endMs, EXPORT_S * 1000 - 1000);
  assert.equal(f.ipVersion, 4);
  assert.equal(f.direction, 1);
  assert.equal(f.nextHop, "10.255.0.1");
  assert.equal(f.tos, 0xb8);
  assert.equal(f.srcMask, 24);
  assert.equal(f.dstMask, 16);
  assert.deepEqual(f.extra, {
    "netflow.vlan.id": 42,
    "netflow.post_nat_source_ipv4_address": "203.0.113.9",
    "netflow.ingress_vrf_id": 11,
    "netflow.flow_end_reason": 3,
    "netflow.icmp_type_code_ipv4": 0x0303,
    "netflow.source_mac_address": "00:1b:21:ab:cd:ef",
    "netflow.field.999": "beef",
    "netflow.bgp_next_hop_ipv4_address": "10.255.0.2",
    "netflow.data_records_reliability": true,
  });
  assert.equal(p.flows[1].srcAddr, "10.0.0.2");
});

Deno.test("unknownFields=false drops unknown elements", () => {
  const d = decoder({ unknownFields: false });
  const p = one(d, ipfix(7, 0, [set(2, tpl(256, FULL)), set(256, fullRecord(1))]));
  assert.equal(p.flows[0].extra?.["netflow.field.999"], undefined);
  assert.equal(p.flows[0].extra?.["netflow.vlan.id"], 42);
});

Deno.test("IPFIX: IPv6 addresses, next hop and masks", () => {
  const d = decoder();
  const fields: Field[] = [[27, 16], [28, 16], [29, 1], [30, 1], [62, 16], [63, 16], [60, 1]];
  const rec = new B()
    .raw([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    .raw([0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2])
    .u8(48, 64)
    .raw([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    .raw([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9])
    .u8(6).build();
  const f = one(d, ipfix(1, 0, [set(2, tpl(300, fields)), set(300, rec)])).flows[0];
  assert.equal(f.srcAddr, "2001:db8::1");
  assert.equal(f.dstAddr, "2001:db8:1::2");
  assert.equal(f.srcMask, 48);
  assert.equal(f.dstMask, 64);
  assert.equal(f.nextHop, "fe80::1");
  assert.equal(f.ipVersion, 6);
  assert.equal(f.extra?.["netflow.bgp_next_hop_ipv6_address"], "2001:db8::9");
});

Deno.test("v9: template, data, uptime times and header fields", () => {
  const d = decoder();
  const fields: Field[] = [[8, 4], [12, 4], [7, 2], [11, 2], [4, 1], [6, 1], [1, 4], [2, 4], [22, 4], [
    21,
    4,
  ]];
  const rec = new B().ip("10.1.1.1").ip("10.2.2.2").u16(1234, 53).u8(17, 0).u32(300, 2).u32(95_000, 99_000)
    .build();
  const p = one(d, v9(42, 0, 100_000, [set(0, tpl(260, fields, false)), set(260, rec)]));
  assert.equal(p.error, undefined);
  assert.equal(p.sourceId, 42);
  assert.equal(p.sysUptimeMs, 100_000);
  assert.equal(p.sequence, 0);
  assert.equal(p.templateCount, 1);
  const f = p.flows[0];
  assert.equal(f.firstSwitched, 95_000);
  assert.equal(f.lastSwitched, 99_000);
  assert.equal(f.bytes, 300);
  const t = flowTimes(f, p);
  assert.equal(t.startMs, EXPORT_S * 1000 - 5000);
  assert.equal(t.endMs, EXPORT_S * 1000 - 1000);
  assert.equal(t.adjusted, false);
});

Deno.test("templates are per exporter and per domain: same id, different layouts", () => {
  const d = decoder();
  const a: Field[] = [[8, 4], [1, 4]];
  const b: Field[] = [[1, 4], [8, 4]];
  one(d, ipfix(1, 0, [set(2, tpl(256, a))]), E1);
  one(d, ipfix(1, 0, [set(2, tpl(256, b))]), E2);
  one(d, ipfix(2, 0, [set(2, tpl(256, b))]), E1);
  const recA = new B().ip("10.0.0.1").u32(100).build();
  const recB = new B().u32(200).ip("10.0.0.2").build();
  const p1 = one(d, ipfix(1, 0, [set(256, recA)]), E1);
  const p2 = one(d, ipfix(1, 0, [set(256, recB)]), E2);
  const p3 = one(d, ipfix(2, 0, [set(256, recB)]), E1);
  assert.deepEqual([p1.flows[0].srcAddr, p1.flows[0].bytes], ["10.0.0.1", 100]);
  assert.deepEqual([p2.flows[0].srcAddr, p2.flows[0].bytes], ["10.0.0.2", 200]);
  assert.deepEqual([p3.flows[0].srcAddr, p3.flows[0].bytes], ["10.0.0.2", 200]);
  // v9 and IPFIX from the same exporter and id do not share templates either.
  const v9p = one(d, v9(1, 0, 1000, [set(256, recA)]), E1);
  assert.equal(v9p.flows.length, 0);
  assert.equal(v9p.awaitingTemplateSets, 1);
  assert.equal(d.stats.templates, 3);
});

Deno.test("template redefinition replaces the layout", () => {
  const d = decoder();
  one(d, ipfix(1, 0, [set(2, tpl(256, [[8, 4], [1, 4]]))]));
  one(d, ipfix(1, 0, [set(2, tpl(256, [[1, 2], [12, 4]]))]));
  const p = one(d, ipfix(1, 0, [set(256, new B().u16(77).ip("10.9.9.9").build())]));
  assert.equal(p.flows[0].bytes, 77);
  assert.equal(p.flows[0].dstAddr, "10.9.9.9");
  assert.equal(p.flows[0].srcAddr, undefined);
  assert.equal(d.stats.templates, 1);
});

Deno.test("IPFIX withdrawal: single, all templates, all options templates", () => {
  const d = decoder();
  const rec = new B().u32(5).build();
  one(
    d,
    ipfix(1, 0, [
      set(2, concat(tpl(256, [[1, 4]]), tpl(257, [[1, 4]]), tpl(258, [[1, 4]]))),
      set(3, optTplIpfix(400, [[149, 4]], [[34, 4]])),
    ]),
  );
  assert.equal(d.stats.templates, 4);
  // Single withdrawal: template id 256, field count 0.
  const w = one(d, ipfix(1, 0, [set(2, new B().u16(256, 0).build())]));
  assert.equal(w.templateCount, 1);
  assert.equal(w.error, undefined);
  assert.equal(d.stats.templates, 3);
  assert.equal(one(d, ipfix(1, 0, [set(256, rec)])).awaitingTemplateSets, 1);
  assert.equal(one(d, ipfix(1, 0, [set(257, rec)])).flows.length, 1);
  // Withdraw all data templates (template id 2 in set 2): the options template stays.
  one(d, ipfix(1, 0, [set(2, new B().u16(2, 0).build())]));
  assert.equal(d.stats.templates, 1);
  // Withdraw all options templates (template id 3 in set 3).
  one(d, ipfix(1, 0, [set(3, new B().u16(3, 0).build())]));
  assert.equal(d.stats.templates, 0);
  assert.equal(d.stats.templatesWithdrawn, 4);
});

Deno.test("IPFIX variable-length fields: 1-byte and 255 + 2-byte lengths", () => {
  const d = decoder();
  const fields: Field[] = [[96, 65535], [8, 4], [95, 65535], [83, 65535]];
  const long = "x".repeat(300);
  const rec = new B().u8(5).str("https").ip("10.0.0.1").u8(3, 0x0d, 0x00, 0x50).u8(255).u16(300).str(long)
    .build();
  const rec2 = new B().u8(0).ip("10.0.0.2").u8(0).u8(255).u16(3).str("äb").build();
  const p = one(d, ipfix(1, 0, [set(2, tpl(256, fields)), set(256, concat(rec, rec2))]));
  assert.equal(p.error, undefined);
  assert.equal(p.flows.length, 2);
  assert.equal(p.flows[0].extra?.["netflow.application_name"], "https");
  assert.equal(p.flows[0].extra?.["netflow.application_id"], "0d0050");
  assert.equal(p.flows[0].extra?.["netflow.interface_description"], long);
  assert.equal(p.flows[0].srcAddr, "10.0.0.1");
  assert.equal(p.flows[1].extra?.["netflow.application_name"], "");
  assert.equal(p.flows[1].extra?.["netflow.interface_description"], "äb");
  // A variable length running past the set is an error, not a loop or a throw.
  const bad = new B().u8(200).str("short").build();
  const q = one(d, ipfix(1, 0, [set(256, bad)]));
  assert.equal(q.error?.kind, "bad_length");
  assert.equal(q.flows.length, 0);
});

Deno.test("enterprise elements and reverse elements (PEN 29305)", () => {
  const d = decoder();
  const fields: Field[] = [[8, 4], [1, 8], [1, 8, 29305], [2, 4, 29305], [8, 4, 29305], [12345, 2, 9], [
    9999,
    1,
    29305,
  ]];
  const rec = new B().ip("10.0.0.1").u64(1000).u64(2000).u32(20).ip("10.0.0.9").u16(0xabcd).u8(0x7f).build();
  const f = one(d, ipfix(1, 0, [set(2, tpl(256, fields)), set(256, rec)])).flows[0];
  assert.equal(f.bytes, 1000);
  assert.equal(f.srcAddr, "10.0.0.1");
  // RFC 5103 reverse counters are the biflow's reverse.bytes/packets (SPEC §3); other reverse elements are named.
  assert.equal(f.reverseBytes, 2000);
  assert.equal(f.reversePackets, 20);
  assert.deepEqual(f.extra, {
    "netflow.reverse.source_ipv4_address": "10.0.0.9",
    "netflow.field.9.12345": "abcd",
    "netflow.field.29305.9999": "7f",
  });
  // Enterprise scope and option fields in an options template parse (and are skipped).
  const p = one(
    d,
    ipfix(1, 0, [
      set(3, optTplIpfix(500, [[149, 4], [7, 2, 9]], [[34, 4], [99, 1, 9]])),
      set(500, new B().u32(1).u16(0).u32(8).u8(0).build()),
    ]),
  );
  assert.equal(p.error, undefined);
  assert.equal(p.optionsRecordCount, 1);
});

Deno.test("set padding is skipped (template, options and data sets)", () => {
  const d = decoder();
  const p = one(
    d,
    ipfix(1, 0, [
      set(2, tpl(256, [[8, 4], [4, 1]]), 3),
      set(3, optTplIpfix(300, [[149, 4]], [[34, 4]]), 2),
      set(300, new B().u32(1).u32(10).build(), 3),
      set(256, new B().ip("10.0.0.1").u8(6).ip("10.0.0.2").u8(17).build(), 2),
    ]),
  );
  assert.equal(p.error, undefined);
  assert.equal(p.flows.length, 2);
  assert.equal(p.flows[1].protocol, 17);
  // v9 pads sets to 4 bytes too.
  const q = one(
    d,
    v9(1, 0, 5000, [
      set(0, tpl(256, [[8, 4], [4, 1]], false)),
      set(256, new B().ip("10.0.0.3").u8(1).build(), 3),
    ]),
  );
  assert.equal(q.error, undefined);
  assert.equal(q.flows.length, 1);
});

Deno.test("v9 options data sets the sampling interval per sampler id, before data in the same packet", () => {
  const d = decoder();
  const data = set(256, concat(new B().ip("10.0.0.1").u8(1).build(), new B().ip("10.0.0.2").u8(2).build()));
  // Data set first, options data after it: options are still applied first.
  const p = one(
    d,
    v9(1, 0, 5000, [
      set(0, tpl(256, [[8, 4], [48, 1]], false)),
      set(1, optTplV9(257, [[1, 4]], [[48, 1], [49, 1], [50, 4]])),
      data,
      set(
        257,
        concat(new B().u32(0).u8(1, 2).u32(100).build(), new B().u32(0).u8(2, 2).u32(1000).build()),
        2,
      ),
    ]),
  );
  assert.equal(p.error, undefined);
  assert.equal(p.optionsRecordCount, 2);
  assert.equal(p.flows.length, 2);
  assert.equal(p.flows[0].samplingInterval, 100);
  assert.equal(p.flows[1].samplingInterval, 1000);
  assert.equal(p.flows[0].extra?.["netflow.sampler_id"], 1);
});

Deno.test("IPFIX options data: samplingInterval, packet interval/space, and systemInitTimeMilliseconds", () => {
  const d = decoder();
  const init = EXPORT_S * 1000 - 3_600_000;
  one(
    d,
    ipfix(5, 0, [
      set(3, optTplIpfix(300, [[149, 4]], [[305, 4], [306, 4], [160, 8]])),
      set(300, new B().u32(5).u32(1).u32(99).u64(init).build()),
      set(2, tpl(256, [[8, 4], [22, 4], [21, 4]])),
    ]),
  );
  const p = one(d, ipfix(5, 1, [set(256, new B().ip("10.0.0.1").u32(3_590_000).u32(3_595_000).build())]));
  const f = p.flows[0];
  assert.equal(f.samplingInterval, 100);
  assert.equal(f.systemInitMs, init);
  const t = flowTimes(f, p);
  assert.equal(t.startMs, init + 3_590_000);
  assert.equal(t.endMs, init + 3_595_000);
  // A later announcement with samplingInterval (34) replaces it.
  one(
    d,
    ipfix(5, 2, [set(3, optTplIpfix(301, [[149, 4]], [[34, 4]])), set(301, new B().u32(5).u32(64).build())]),
  );
  assert.equal(
    one(d, ipfix(5, 3, [set(256, new B().ip("10.0.0.1").u32(1).u32(2).build())])).flows[0].samplingInterval,
    64,
  );
  // Other domains are not affected.
  one(d, ipfix(6, 0, [set(2, tpl(256, [[8, 4]]))]));
  assert.equal(
    one(d, ipfix(6, 1, [set(256, new B().ip("10.0.0.1").build())])).flows[0].samplingInterval,
    undefined,
  );
});

Deno.test("sampling: configured default and per-exporter override (v5, v9, IPFIX)", () => {
  const d = decoder({ samplingDefault: 10, samplingOverride: (a) => (a === E2 ? 512 : undefined) });
  const msg = (dom: number) =>
    ipfix(dom, 0, [set(2, tpl(256, [[8, 4], [34, 4]])), set(256, new B().ip("10.0.0.1").u32(0).build())]);
  assert.equal(one(d, msg(1), E1).flows[0].samplingInterval, 10);
  assert.equal(one(d, msg(1), E2).flows[0].samplingInterval, 512);
  // A record's own samplingInterval beats the default, the override beats it.
  const own = ipfix(2, 0, [
    set(2, tpl(256, [[8, 4], [34, 4]])),
    set(256, new B().ip("10.0.0.1").u32(50).build()),
  ]);
  assert.equal(one(d, own, E1).flows[0].samplingInterval, 50);
  assert.equal(one(d, own, E2).flows[0].samplingInterval, 512);
  // v5: header interval beats the default; the override beats the header.
  const v5 = (interval: number) => {
    const b = new B().u16(5, 1).u32(1000, EXPORT_S, 0, 0).u8(0, 0).u16(interval);
    b.ip("10.0.0.1").ip("10.0.0.2").ip("0.0.0.0").u16(1, 2).u32(1, 40, 900, 950).u16(1000, 80).u8(0, 0, 6, 0)
      .u16(0, 0).u8(0, 0).u16(0);
    return b.build();
  };
  assert.equal(one(d, v5(0), E1).flows[0].samplingInterval, 10);
  assert.equal(one(d, v5(0x4000 | 20), E1).flows[0].samplingInterval, 20);
  assert.equal(one(d, v5(20), E2).flows[0].samplingInterval, 512);
});

Deno.test("data before its template: held, released as a deferred copy when the template arrives", () => {
  const d = decoder();
  const rec = new B().ip("10.0.0.1").u32(99).build();
  const first = one(d, ipfix(1, 10, [set(256, rec), set(257, rec)], EXPORT_S - 2), E1, NOW - 2000);
  assert.equal(first.flows.length, 0);
  assert.equal(first.awaitingTemplateSets, 2);
  assert.equal(first.error, undefined);
  assert.equal(d.stats.pendingSets, 2);
  const out = d.decode(ipfix(1, 12, [set(2, tpl(256, [[8, 4], [1, 4]]))]), E1, 2055, NOW);
  assert.equal(out.length, 2);
  const late = out[1];
  assert.equal(late.deferred, true);
  assert.equal(late.sequence, 10);
  assert.equal(late.exportTimeMs, (EXPORT_S - 2) * 1000);
  assert.equal(late.receivedAtMs, NOW - 2000);
  assert.equal(late.flows.length, 1);
  assert.equal(late.flows[0].bytes, 99);
  assert.equal(d.stats.pendingSets, 1);
  assert.equal(d.stats.pendingReleased, 1);
  // The other set's template never arrives: expiry reports the original packet as template_missing.
  assert.deepEqual(d.expire(NOW), []);
  const expired = d.expire(NOW + 60_000);
  assert.equal(expired.length, 1);
  assert.equal(expired[0].error?.kind, "template_missing");
  assert.equal(expired[0].sequence, 10);
  assert.equal(expired[0].deferred, true);
  assert.equal(d.stats.pendingSets, 0);
  assert.equal(d.stats.pendingBytes, 0);
  assert.equal(d.stats.pendingDropped, 1);
});

Deno.test("held data is bounded per exporter and in total", () => {
  const d = decoder({ maxPendingSetsPerExporter: 3, maxPendingSets: 5 });
  const rec = new B().u32(1).build();
  for (let i = 0; i < 5; i++) one(d, ipfix(1, i, [set(300 + i, rec)]), E1);
  assert.equal(d.stats.pendingSets, 3);
  assert.equal(d.stats.pendingDropped, 2);
  const p = one(d, ipfix(1, 9, [set(400, rec)]), E1);
  assert.equal(p.error?.kind, "template_missing");
  for (let i = 0; i < 5; i++) one(d, ipfix(1, i, [set(300 + i, rec)]), E2);
  assert.equal(d.stats.pendingSets, 5);
  const none = decoder({ maxPendingSets: 0 });
  assert.equal(one(none, ipfix(1, 0, [set(300, rec)])).error?.kind, "template_missing");
});

Deno.test("bad templates: zero fields, reserved id, field count overflowing the set, bad scope", () => {
  const d = decoder();
  const zero = one(d, v9(1, 0, 1000, [set(0, new B().u16(256, 0).build())]));
  assert.equal(zero.error?.kind, "bad_template");
  assert.equal(d.stats.templates, 0);
  const zeroOpt = one(d, v9(1, 1, 1000, [set(1, new B().u16(256, 0, 0).build())]));
  assert.equal(zeroOpt.error?.kind, "bad_template");
  const reserved = one(d, ipfix(1, 0, [set(2, tpl(255, [[1, 4]]))]));
  assert.equal(reserved.error?.kind, "bad_template");
  const overflow = one(d, ipfix(1, 0, [set(2, new B().u16(256, 60000).u16(1, 4).build())]));
  assert.equal(overflow.error?.kind, "bad_template");
  // Enterprise bit on the last specifier without room for its PEN.
  const pen = one(d, ipfix(1, 0, [set(2, new B().u16(256, 1).u16(0x8001, 4).build())]));
  assert.equal(pen.error?.kind, "bad_template");
  const scope0 = one(d, ipfix(1, 0, [set(3, new B().u16(256, 1, 0).u16(34, 4).build())]));
  assert.equal(scope0.error?.kind, "bad_template");
  const zeroLength = one(d, v9(1, 2, 1000, [set(0, tpl(256, [[1, 0], [2, 0]], false))]));
  assert.equal(zeroLength.error?.kind, "bad_template");
  assert.equal(d.stats.templates, 0);
});

Deno.test("records longer than their set, and sets longer than the message", () => {
  const d = decoder();
  one(d, ipfix(1, 0, [set(2, tpl(256, [[8, 4], [1, 8]]))]));
  const short = one(d, ipfix(1, 0, [set(256, new B().ip("10.0.0.1").u32(1).build())]));
  assert.equal(short.error?.kind, "bad_length");
  assert.equal(short.flows.length, 0);
  const msg = ipfix(1, 0, [
    set(256, concat(new B().ip("10.0.0.1").u64(5).build(), new B().ip("10.0.0.2").u64(6).build())),
  ]);
  const cut = one(d, msg.subarray(0, msg.length - 6));
  assert.equal(cut.error?.kind, "truncated");
  assert.equal(cut.flows.length, 1);
});

Deno.test("truncated headers and sets", () => {
  const d = decoder();
  assert.equal(one(d, new B().u16(9, 1).u32(0).build()).error?.kind, "truncated");
  assert.equal(one(d, new B().u16(10, 16).u32(0).build()).error?.kind, "truncated");
  assert.equal(one(d, new B().u16(10, 8).u32(0, 0, 0).build()).error?.kind, "bad_length");
  // Length field beyond the datagram.
  assert.equal(one(d, new B().u16(10, 400).u32(EXPORT_S, 0, 0).build()).error?.kind, "truncated");
  // Set length below 4: stops walking.
  const tiny = ipfix(1, 0, [new B().u16(256, 2).u16(0).build()]);
  assert.equal(one(d, tiny).error?.kind, "bad_set");
  // Set header cut short.
  const cut = concat(new B().u16(9, 1).u32(0, EXPORT_S, 0, 0).build(), new B().u16(256).u8(1).build());
  assert.equal(one(d, cut).error?.kind, "bad_set");
  // Template set cut in the middle of a template.
  const t = set(2, tpl(256, [[8, 4], [12, 4], [1, 8]]));
  const m = ipfix(1, 0, [t]);
  const p = one(d, m.subarray(0, m.length - 5));
  assert.equal(p.error?.kind, "truncated");
});

// Times ------------------------------------------------------------------------------------------------

function timeFlow(fields: Field[], rec: Uint8Array, opts: { exportS?: number; now?: number } = {}) {
  const d = decoder();
  const p = one(d, ipfix(1, 0, [set(2, tpl(256, fields)), set(256, rec)], opts.exportS), E1, opts.now);
  assert.equal(p.error, undefined);
  return { f: p.flows[0], p, t: flowTimes(p.flows[0], p) };
}

const NTP_OFFSET = 2208988800;

Deno.test("time elements: seconds, milliseconds, micro/nanoseconds (NTP), delta microseconds, duration", () => {
  const ms = EXPORT_S * 1000;
  let r = timeFlow([[150, 4], [151, 4]], new B().u32(EXPORT_S - 10, EXPORT_S - 2).build());
  assert.deepEqual([r.f.startMs, r.f.endMs], [ms - 10_000, ms - 2000]);
  r = timeFlow([[152, 8], [153, 8]], new B().u64(ms - 1234).u64(ms - 234).build());
  assert.deepEqual([r.f.startMs, r.f.endMs], [ms - 1234, ms - 234]);
  // NTP: half a second is fraction 0x80000000.
  r = timeFlow(
    [[154, 8], [155, 8]],
    new B().u32(EXPORT_S - 3 + NTP_OFFSET, 0x80000000, EXPORT_S - 1 + NTP_OFFSET, 0).build(),
  );
  assert.deepEqual([r.f.startMs, r.f.endMs], [ms - 2500, ms - 1000]);
  r = timeFlow(
    [[156, 8], [157, 8]],
    new B().u32(EXPORT_S - 3 + NTP_OFFSET, 0x40000000, EXPORT_S + NTP_OFFSET, 0).build(),
  );
  assert.deepEqual([r.f.startMs, r.f.endMs], [ms - 2750, ms]);
  r = timeFlow([[158, 4], [159, 4]], new B().u32(4_000_000, 500_000).build());
  assert.deepEqual([r.f.startMs, r.f.endMs], [ms - 4000, ms - 500]);
  // Duration fills the missing side.
  r = timeFlow([[152, 8], [161, 4]], new B().u64(ms - 3000).u32(2500).build());
  assert.deepEqual([r.f.startMs, r.f.endMs], [ms - 3000, ms - 500]);
  r = timeFlow([[153, 8], [162, 4]], new B().u64(ms - 1000).u32(2_000_000).build());
  assert.deepEqual([r.f.startMs, r.f.endMs], [ms - 3000, ms - 1000]);
  // Time elements are consumed, not attributes.
  assert.equal(r.f.extra, undefined);
});

Deno.test("time precedence: milliseconds > NTP > seconds > delta; zero means absent", () => {
  const ms = EXPORT_S * 1000;
  const all: Field[] = [[158, 4], [150, 4], [154, 8], [152, 8]];
  let r = timeFlow(
    all,
    new B().u32(9_000_000, EXPORT_S - 8, EXPORT_S - 7 + NTP_OFFSET, 0).u64(ms - 6000).build(),
  );
  assert.equal(r.f.startMs, ms - 6000);
  r = timeFlow(all, new B().u32(9_000_000, EXPORT_S - 8, EXPORT_S - 7 + NTP_OFFSET, 0).u64(0).build());
  assert.equal(r.f.startMs, ms - 7000);
  r = timeFlow(all, new B().u32(9_000_000, EXPORT_S - 8, 0, 0).u64(0).build());
  assert.equal(r.f.startMs, ms - 8000);
  r = timeFlow(all, new B().u32(9_000_000, 0, 0, 0).u64(0).build());
  assert.equal(r.f.startMs, ms - 9000);
  // Absolute times beat uptime-relative ones in flowTimes.
  r = timeFlow([[22, 4], [152, 8]], new B().u32(5).u64(ms - 100).build());
  assert.equal(r.t.startMs, ms - 100);
});

Deno.test("uptime times: IE 160 in the record, 32-bit wrap for v9 headers and IPFIX system init", () => {
  const ms = EXPORT_S * 1000;
  // IE 160 in the record itself.
  let r = timeFlow([[160, 8], [22, 4], [21, 4]], new B().u64(ms - 60_000).u32(50_000, 55_000).build());
  assert.equal(r.f.systemInitMs, ms - 60_000);
  assert.deepEqual([r.t.startMs, r.t.endMs, r.t.adjusted], [ms - 10_000, ms - 5000, false]);
  // IPFIX: device up for 60 days, so the 32-bit uptime wrapped once.
  const up = 60 * 86_400_000;
  const init = ms - up;
  const up32 = up % 2 ** 32;
  r = timeFlow([[160, 8], [22, 4], [21, 4]], new B().u64(init).u32(up32 - 8000, up32 - 3000).build());
  assert.deepEqual([r.t.startMs, r.t.endMs, r.t.adjusted], [ms - 8000, ms - 3000, false]);
  // Flow started just before the wrap, ended after it.
  const up2 = 2 ** 32 + 2000;
  r = timeFlow([[160, 8], [22, 4], [21, 4]], new B().u64(ms - up2).u32(2 ** 32 - 3000, 1000).build());
  assert.deepEqual([r.t.startMs, r.t.endMs], [ms - 5000, ms - 1000]);
  // v9: header uptime 1000 ms after the wrap, flow started 2000 ms before it.
  const d = decoder();
  const p = one(
    d,
    v9(1, 0, 1000, [
      set(0, tpl(256, [[22, 4], [21, 4]], false)),
      set(256, new B().u32(2 ** 32 - 2000, 500).build()),
    ]),
  );
  const t = flowTimes(p.flows[0], p);
  assert.deepEqual([t.startMs, t.endMs, t.adjusted], [ms - 3000, ms - 500, false]);
});

// Sequence accounting -------------------------------------------------------------------------------

function v5Packet(seq: number, count: number, engine = 0): Uint8Array {
  const b = new B().u16(5, count).u32(1000, EXPORT_S, 0, seq).u8(0, engine).u16(0);
  for (let i = 0; i < count; i++) {
    b.ip("10.0.0.1").ip("10.0.0.2").ip("0.0.0.0").u16(1, 2).u32(1, 40, 900, 950).u16(1000, 80).u8(0, 0, 6, 0)
      .u16(0, 0).u8(0, 0).u16(0);
  }
  return b.build();
}

Deno.test("sequence: v5 counts flows per exporter and engine (loss, reorder, restart)", () => {
  const d = decoder();
  assert.equal(one(d, v5Packet(100, 10)).sequenceLost, undefined);
  assert.equal(one(d, v5Packet(110, 10)).sequenceLost, undefined);
  assert.equal(one(d, v5Packet(150, 10)).sequenceLost, 30); // 120..149 missing
  assert.equal(one(d, v5Packet(140, 10)).sequenceLost, undefined); // late
  assert.equal(one(d, v5Packet(160, 10)).sequenceLost, undefined);
  assert.equal(one(d, v5Packet(0, 10, 1)).sequenceLost, undefined); // other engine: own stream
  assert.equal(one(d, v5Packet(10, 10, 1)).sequenceLost, undefined);
  // Restart: back to 0, and the next packet continues from there.
  assert.equal(one(d, v5Packet(0, 5)).sequenceLost, undefined);
  assert.equal(one(d, v5Packet(5, 5)).sequenceLost, undefined);
  assert.equal(one(d, v5Packet(12, 5)).sequenceLost, 2);
  const s = d.stats;
  assert.equal(s.sequenceLostTotal, 32);
  assert.equal(s.sequenceReorders, 2);
  assert.equal(s.sequenceResets, 1);
  // Other exporter: independent.
  assert.equal(one(d, v5Packet(5000, 1), E2).sequenceLost, undefined);
});

Deno.test("sequence: v9 counts packets per exporter and source id", () => {
  const d = decoder();
  const pk = (seq: number, src = 1) => v9(src, seq, 1000, [set(0, tpl(256, [[8, 4]], false))]);
  assert.equal(one(d, pk(7)).sequenceLost, undefined);
  assert.equal(one(d, pk(8)).sequenceLost, undefined);
  assert.equal(one(d, pk(11)).sequenceLost, 2);
  assert.equal(one(d, pk(10)).sequenceLost, undefined); // reorder
  assert.equal(one(d, pk(12)).sequenceLost, undefined);
  assert.equal(one(d, pk(1, 2)).sequenceLost, undefined); // other source id
  assert.equal(one(d, pk(3_000_000)).sequenceLost, undefined); // huge jump: restart
  assert.equal(one(d, pk(3_000_001)).sequenceLost, undefined);
  // 32-bit wrap is not a loss.
  assert.equal(one(d, pk(0xffffffff, 3)).sequenceLost, undefined);
  assert.equal(one(d, pk(0, 3)).sequenceLost, undefined);
  assert.equal(d.stats.sequenceResets, 1);
});

Deno.test("sequence: IPFIX counts data records (including options records) per exporter and domain", () => {
  const d = decoder();
  const rec = new B().ip("10.0.0.1").build();
  one(d, ipfix(1, 0, [set(2, tpl(256, [[8, 4]])), set(3, optTplIpfix(300, [[149, 4]], [[34, 4]]))]));
  assert.equal(one(d, ipfix(1, 0, [set(256, concat(rec, rec, rec))])).sequenceLost, undefined);
  assert.equal(
    one(d, ipfix(1, 3, [set(256, rec), set(300, new B().u32(1, 5).build())])).sequenceLost,
    undefined,
  );
  assert.equal(one(d, ipfix(1, 10, [set(256, rec)])).sequenceLost, 5);
  assert.equal(one(d, ipfix(1, 7, [set(256, rec)])).sequenceLost, undefined); // reorder
  assert.equal(one(d, ipfix(1, 11, [set(256, rec)])).sequenceLost, undefined);
  // Template-only messages do not advance the sequence.
  assert.equal(one(d, ipfix(1, 12, [set(2, tpl(256, [[8, 4]]))])).sequenceLost, undefined);
  assert.equal(one(d, ipfix(1, 12, [set(256, rec)])).sequenceLost, undefined);
  // Restart to 0, continued: no loss.
  assert.equal(one(d, ipfix(1, 0, [set(256, rec)])).sequenceLost, undefined);
  assert.equal(one(d, ipfix(1, 1, [set(256, rec)])).sequenceLost, undefined);
  assert.equal(one(d, ipfix(1, 4, [set(256, rec)])).sequenceLost, 2);
  // A domain of its own.
  assert.equal(one(d, ipfix(2, 900, [set(2, tpl(256, [[8, 4]]))])).sequenceLost, undefined);
});

// Bounds and hostile input ---------------------------------------------------------------------------

Deno.test("bounded caches under 100k spoofed exporters", () => {
  const d = decoder({ maxExporters: 2_000, maxPendingSets: 100 });
  const msg = ipfix(1, 0, [set(2, tpl(256, [[8, 4], [1, 4]])), set(257, new B().u32(1).build())]);
  for (let i = 0; i < 100_000; i++) {
    d.decode(msg, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 2055, NOW);
  }
  const s = d.stats;
  assert.equal(s.exporters, 2_000);
  assert.equal(s.templates, 2_000);
  assert.equal(s.exporterEvictions, 98_000);
  assert.ok(s.pendingSets <= 100);
  assert.equal(s.pendingSets + s.pendingDropped, 100_000);
  assert.ok(d.expire(NOW).length <= 1_024);
  // Templates per exporter: the least recently defined are evicted.
  const e = decoder({ maxTemplatesPerExporter: 50 });
  for (let id = 256; id < 1256; id++) one(e, ipfix(id % 3, 0, [set(2, tpl(id, [[8, 4]]))]));
  assert.equal(e.stats.templates, 50);
  assert.equal(e.stats.templateEvictions, 950);
  // Domains per exporter.
  const f = decoder({ maxDomainsPerExporter: 4 });
  for (let dom = 0; dom < 100; dom++) one(f, ipfix(dom, 0, [set(2, tpl(256, [[8, 4]]))]));
  assert.equal(f.stats.templates, 4);
  assert.equal(f.stats.domainEvictions, 96);
});

function mulberry32(seed: number): () => number {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("hostile input: random mutations never throw, never loop, never fail internally", () => {
  const rnd = mulberry32(1234);
  const seeds: Uint8Array[] = [
    ipfix(1, 0, [set(2, tpl(256, FULL)), set(256, concat(fullRecord(1), fullRecord(2)))]),
    ipfix(1, 0, [
      set(2, tpl(257, [[96, 65535], [8, 4], [1, 8, 29305], [5, 65535, 9]])),
      set(257, new B().u8(3).str("dns").ip("10.0.0.1").u64(9).u8(255).u16(2).u16(7).build()),
      set(3, optTplIpfix(300, [[149, 4]], [[305, 4], [306, 4], [160, 8]])),
      set(300, new B().u32(1, 1, 9).u64(1).build()),
    ]),
    v9(1, 0, 1000, [
      set(0, tpl(256, [[8, 4], [48, 1], [22, 4], [21, 4]], false)),
      set(1, optTplV9(258, [[1, 4]], [[48, 1], [50, 4]])),
      set(258, new B().u32(0).u8(1).u32(10).build(), 3),
      set(256, new B().ip("10.0.0.1").u8(1).u32(1, 2).build(), 3),
    ]),
  ];
  const d = decoder({ maxExporters: 64 });
  let n = 0;
  const started = performance.now();
  for (let i = 0; i < 6_000; i++) {
    const src = seeds[i % seeds.length];
    const b = Uint8Array.from(src);
    const flips = 1 + Math.floor(rnd() * 6);
    for (let k = 0; k < flips; k++) {
      const pos = Math.floor(rnd() * b.length);
      const r = rnd();
      b[pos] = r < 0.3 ? 0 : r < 0.5 ? 0xff : Math.floor(rnd() * 256);
    }
    const cut = rnd() < 0.2 ? b.subarray(0, Math.floor(rnd() * b.length)) : b;
    const out = d.decode(cut, "10.0.0." + (i % 80), 2055, NOW + i);
    for (const p of out) {
      assert.notEqual(p.error?.kind, "internal", p.error?.message ?? "");
      n += p.flows.length;
    }
    if (i % 500 === 0) d.expire(NOW + i);
  }
  // Pure random bytes with a valid version.
  for (let i = 0; i < 2_000; i++) {
    const b = new Uint8Array(4 + Math.floor(rnd() * 200));
    for (let k = 0; k < b.length; k++) b[k] = Math.floor(rnd() * 256);
    b[0] = 0;
    b[1] = i % 2 ? 9 : 10;
    for (const p of d.decode(b, "10.1.0." + (i % 50), 2055, NOW)) assert.notEqual(p.error?.kind, "internal");
  }
  assert.ok(n > 0);
  assert.ok(performance.now() - started < 10_000);
});

// Persistence -----------------------------------------------------------------------------------------

Deno.test("snapshot and restore: templates, options templates, sampling and system init survive", () => {
  const d = decoder();
  const init = EXPORT_S * 1000 - 100_000;
  one(
    d,
    ipfix(3, 0, [
      set(2, tpl(256, [[8, 4], [1, 8, 29305], [96, 65535], [22, 4]])),
      set(3, optTplIpfix(300, [[149, 4]], [[34, 4], [160, 8]])),
      set(300, new B().u32(3, 256).u64(init).build()),
    ]),
  );
  one(d, v9(4, 0, 1000, [set(0, tpl(256, [[12, 4]], false))]), E2);
  const state = JSON.parse(JSON.stringify(d.snapshot()));
  const r = decoder();
  assert.equal(r.restore(state), 3);
  const p = one(
    r,
    ipfix(3, 1, [set(256, new B().ip("10.0.0.1").u64(5).u8(2).str("ok").u32(90_000).build())]),
  );
  const f = p.flows[0];
  assert.equal(f.srcAddr, "10.0.0.1");
  assert.equal(f.reverseBytes, 5);
  assert.equal(f.extra?.["netflow.application_name"], "ok");
  assert.equal(f.samplingInterval, 256);
  assert.equal(f.systemInitMs, init);
  assert.equal(
    one(r, v9(4, 1, 1000, [set(256, new B().ip("10.0.0.9").build())]), E2).flows[0].dstAddr,
    "10.0.0.9",
  );
  // Garbage is rejected without throwing.
  for (
    const bad of [null, 1, "x", [], {}, {
      format: "netflow2traces.templates",
      version: 1,
      exporters: [1, {}, { address: 5 }],
    }]
  ) {
    assert.equal(decoder().restore(bad), 0);
  }
  const hostile = {
    format: "netflow2traces.templates",
    version: 1,
    exporters: [{
      address: "10.0.0.1",
      templates: [
        { domain: 1, version: 10, id: 256, options: false, scope: 0, fields: [[1, -4, 0]] },
        { domain: 1, version: 10, id: 10, options: false, scope: 0, fields: [[1, 4, 0]] },
        { domain: 1, version: 11, id: 256, options: false, scope: 0, fields: [[1, 4, 0]] },
        { domain: 1, version: 10, id: 257, options: false, scope: 0, fields: [] },
        { domain: 1, version: 10, id: 258, options: false, scope: 0, fields: [[1, 0, 0]] },
        { domain: 1, version: 10, id: 259, options: false, scope: 0, fields: [[1, 4, 0]] },
      ],
      domains: [{ domain: 1, version: 10, sampling: "x", samplers: [[1, -1], "y"], systemInitMs: -5 }],
    }],
  };
  assert.equal(decoder().restore(hostile), 1);
});
