/**
 * Values that fit the wire (issue 11): no span time before 1970 or after 2262 (OTLP fixed64 nanoseconds, read
 * as int64 by many backends), a root that encloses its children whatever the input, and integer attributes
 * that never wrap. Datagrams go through the decoder, planTrace() and the direct encoder, and the request is
 * decoded again, so the assertions are on the bytes a backend receives.
 */
import assert from "node:assert/strict";
import { NetflowDecoder } from "../src/netflow/decoder.ts";
import type { ExportPacket } from "../src/netflow/types.ts";
import { OtlpTraceEncoder } from "../src/traces/otlp_encoder.ts";
import type { TracePlan, TracePlanOptions } from "../src/traces/spans.ts";
import { encodeIpfix, encodeV5, encodeV9, flowRecord, IE, standardTemplate } from "../src/tools/encode.ts";
import { type DecodedSpan, decodeTraceRequest } from "./support/otlp_receiver.ts";

const NOW = 1_700_000_000_000;
const NS = 1_000_000n;
/** 2^63 ns: where signed readers of the fixed64 times break (2262-04-11). */
const WIRE_END_NS = 2n ** 63n;

const options = (spanTime: "flow" | "receive" = "flow"): TracePlanOptions => ({
  spanTime,
  collectorHost: "0.0.0.0",
  collectorPort: 2055,
  attributeCountLimit: 1024,
});

function wire(packets: ExportPacket[], spanTime: "flow" | "receive" = "flow"): DecodedSpan[] {
  const encoder = new OtlpTraceEncoder({ resource: {}, scopeName: "t", scopeVersion: "" });
  for (const p of packets) encoder.writePacket(p, options(spanTime));
  return decodeTraceRequest(encoder.takeRequest()!.body);
}

function decode(bytes: Uint8Array, receivedAtMs = NOW): ExportPacket[] {
  return new NetflowDecoder().decode(bytes, "192.0.2.1", 9995, receivedAtMs);
}

/** Every time after the epoch and before 2^63 ns, no span ends before it starts, and both parents enclose every flow. */
function assertSane(spans: DecodedSpan[]): void {
  assert.ok(spans.length > 0);
  for (const s of spans) {
    assert.ok(s.startNs > 0n && s.startNs < WIRE_END_NS, `${s.name} start ${s.startNs}`);
    assert.ok(s.endNs > 0n && s.endNs < WIRE_END_NS, `${s.name} end ${s.endNs}`);
    assert.ok(s.endNs >= s.startNs, `${s.name} ends before it starts`);
  }
  for (const root of spans.filter((s) => s.name === "netflow.export")) {
    const trace = spans.filter((s) => s.traceId === root.traceId);
    const proc = trace.find((s) => s.name === "netflow.process_flows")!;
    for (const f of trace.filter((s) => s.name === "netflow.flow")) {
      for (const parent of [root, proc]) {
        assert.ok(parent.startNs <= f.startNs, `${parent.name} starts after a flow`);
        assert.ok(parent.endNs >= f.endNs, `${parent.name} ends before a flow`);
      }
    }
  }
}

const flowsOf = (spans: DecodedSpan[]) => spans.filter((s) => s.name === "netflow.flow");
const rootOf = (spans: DecodedSpan[]) => spans.find((s) => s.name === "netflow.export")!;

const tcp = { srcAddr: "10.0.0.1", dstAddr: "10.0.0.2", srcPort: 40_000, dstPort: 443, protocol: 6 };

Deno.test("wire values: v5 from an exporter with an unset clock (unix_secs 0) lands at the receive time", () => {
  const bytes = encodeV5({ sysUptimeMs: 5_000, unixSecs: 0 }, [
    { ...tcp, bytes: 100, packets: 1, firstSwitched: 1_000, lastSwitched: 4_000 },
    { ...tcp, bytes: 100, packets: 1, firstSwitched: 4_500, lastSwitched: 2_000 }, // and end before start
  ]);
  for (const spanTime of ["flow", "receive"] as const) {
    const spans = wire(decode(bytes), spanTime);
    assertSane(spans);
    for (const f of flowsOf(spans)) {
      assert.equal(f.startNs, BigInt(NOW) * NS, spanTime);
      assert.equal(f.endNs, BigInt(NOW) * NS, spanTime);
      assert.equal(f.attributes["netflow.flow.time_adjusted"], true);
    }
    const root = rootOf(spans);
    assert.equal(root.startNs, BigInt(NOW) * NS);
    // The header's values stay as sent: the skew shows how wrong the exporter's clock is.
    assert.equal(root.attributes["netflow.export_time"], 0);
    assert.equal(root.attributes["netflow.exporter.clock_skew_ms"], NOW);
  }
});

Deno.test("wire values: v9 export times at the end of uint32 (2106) and beyond the wire (2300)", () => {
  const t = standardTemplate(4);
  const record = flowRecord({ ...tcp, bytes: 1, packets: 1, firstSwitched: 50_000, lastSwitched: 59_000 }, t);
  const sets = [{ type: "templates" as const, templates: [t] }, {
    type: "data" as const,
    template: t,
    records: [record],
  }];
  const latest = decode(encodeV9({ sysUptimeMs: 60_000, unixSecs: 0xffff_ffff }, sets));
  const spans2106 = wire(latest);
  assertSane(spans2106);
  // Within the wire's range: the exporter's clock is kept, however odd.
  assert.equal(flowsOf(spans2106)[0].startNs, (BigInt(0xffff_ffff) * 1000n - 10_000n) * NS);
  assert.equal(flowsOf(spans2106)[0].attributes["netflow.flow.time_adjusted"], undefined);

  // A header cannot say 2300, but a packet object can (a restored or synthesised one): nothing may wrap.
  const y2300 = Date.UTC(2300, 0, 1);
  const far = decode(encodeV9({ sysUptimeMs: 60_000, exportTimeMs: NOW }, sets)).map((p) => ({
    ...p,
    exportTimeMs: y2300,
  }));
  for (const spanTime of ["flow", "receive"] as const) {
    const spans = wire(far, spanTime);
    assertSane(spans);
    const [f] = flowsOf(spans);
    assert.equal(f.startNs, BigInt(NOW) * NS);
    assert.equal(f.attributes["netflow.flow.time_adjusted"], true);
    const root = rootOf(spans);
    assert.equal(root.startNs, BigInt(NOW) * NS);
    assert.equal(root.attributes["netflow.exporter.clock_skew_ms"], NOW - y2300);
  }
});

Deno.test("wire values: IPFIX flowStart/EndMilliseconds of 0 and 2^64 − 1", () => {
  const t = standardTemplate(4, { times: "milliseconds" });
  const rec = (start: number | bigint, end: number | bigint) =>
    flowRecord({
      ...tcp,
      bytes: 1,
      packets: 1,
      fields: { [IE.flowStartMilliseconds]: start, [IE.flowEndMilliseconds]: end },
    }, t);
  const records = [
    rec(0, NOW - 1_000),
    rec(NOW - 2_000, 2n ** 64n - 1n),
    rec(0, 2n ** 64n - 1n),
    rec(2n ** 64n - 1n, 0),
  ];
  const sets = [{ type: "templates" as const, templates: [t] }, {
    type: "data" as const,
    template: t,
    records,
  }];
  // With a good export clock, and with an unset one (export time 0, where "0" would look plausible).
  for (const exportTimeMs of [NOW, 0]) {
    const packets = decode(encodeIpfix({ exportTimeMs, observationDomainId: 1 }, sets), NOW + 100);
    for (const spanTime of ["flow", "receive"] as const) {
      const spans = wire(packets, spanTime);
      assertSane(spans);
      const flows = flowsOf(spans);
      assert.equal(flows.length, 4);
      for (const f of flows) assert.equal(f.attributes["netflow.flow.time_adjusted"], true);
      if (spanTime === "flow" && exportTimeMs === NOW) {
        // The start of 0 becomes the receive time, which is after the end: the end moves up to it.
        assert.equal(flows[0].startNs, BigInt(NOW + 100) * NS);
        assert.equal(flows[0].endNs, BigInt(NOW + 100) * NS);
        // The possible start is kept; the impossible end becomes the receive time.
        assert.equal(flows[1].startNs, BigInt(NOW - 2_000) * NS);
        assert.equal(flows[1].endNs, BigInt(NOW + 100) * NS);
      }
    }
  }
});

Deno.test("wire values: end before start, before the epoch, in both span-time modes", () => {
  // Export time 1 s after the epoch (a clock that has just started): uptime-relative times fall before 1970.
  const early = encodeV5({ sysUptimeMs: 10_000, unixSecs: 1 }, [
    { ...tcp, bytes: 1, packets: 1, firstSwitched: 2_000, lastSwitched: 1_500 },
    { ...tcp, bytes: 1, packets: 1, firstSwitched: 9_800, lastSwitched: 9_900 }, // at 1970-01-01T00:00:00.7
  ]);
  // A good clock; the end 5 s before the start.
  const t = standardTemplate(4, { times: "milliseconds" });
  const backwards = encodeIpfix({ exportTimeMs: NOW, observationDomainId: 1 }, [
    { type: "templates", templates: [t] },
    {
      type: "data",
      template: t,
      records: [flowRecord({ ...tcp, bytes: 1, packets: 1, startMs: NOW - 1_000, endMs: NOW - 6_000 }, t)],
    },
  ]);
  for (const spanTime of ["flow", "receive"] as const) {
    const spans = wire([...decode(early), ...decode(backwards, NOW + 50)], spanTime);
    assertSane(spans);
    const flows = flowsOf(spans);
    for (
      const f of flows.filter((f) =>
        f.attributes["netflow.version"] === 5 && f.attributes["netflow.flow.index"] === 0
      )
    ) {
      assert.equal(f.startNs, BigInt(NOW) * NS);
      assert.equal(f.attributes["netflow.flow.time_adjusted"], true);
    }
    const ipfix = flows.find((f) => f.attributes["netflow.version"] === 10)!;
    assert.equal(ipfix.endNs, ipfix.startNs);
    assert.equal(ipfix.attributes["netflow.flow.time_adjusted"], true);
    if (spanTime === "flow") assert.equal(ipfix.startNs, BigInt(NOW - 1_000) * NS);
  }
});

Deno.test("wire values: estimated counters are clamped to 2^53 − 1, never wrapped or negative", () => {
  const t = standardTemplate(6, { extra: [{ id: 34, length: 4 }] }); // samplingInterval in the record
  const max = Number.MAX_SAFE_INTEGER;
  const rec = (bytes: number, packets: number, interval: number) =>
    flowRecord({
      srcAddr: "2001:db8::1",
      dstAddr: "2001:db8::2",
      srcPort: 40_000,
      dstPort: 443,
      protocol: 6,
      bytes,
      packets,
      firstSwitched: 1_000,
      lastSwitched: 2_000,
      fields: { "34": interval },
    }, t);
  const bytes = encodeV9({ sysUptimeMs: 3_000, exportTimeMs: NOW }, [
    { type: "templates", templates: [t] },
    {
      type: "data",
      template: t,
      records: [rec(max, 2 ** 40, 1_000), rec(max, max, 4_000), rec(4_000, 3, 16_383)],
    },
  ]);
  const flows = flowsOf(wire(decode(bytes)));
  assert.equal(flows.length, 3);
  const a = flows.map((f) => f.attributes);
  assert.equal(a[0]["netflow.flow.bytes"], max);
  assert.equal(a[0]["netflow.flow.bytes.estimated"], max);
  assert.equal(a[0]["netflow.flow.packets.estimated"], 2 ** 40 * 1_000); // below the clamp: exact
  assert.equal(a[1]["netflow.flow.bytes.estimated"], max);
  assert.equal(a[1]["netflow.flow.packets.estimated"], max);
  assert.equal(a[2]["netflow.flow.bytes.estimated"], 4_000 * 16_383);
  for (const x of a) {
    for (const key of ["netflow.flow.bytes.estimated", "netflow.flow.packets.estimated"]) {
      assert.equal(typeof x[key], "number", key); // a safe integer, not a BigInt from a wrapped int64
      assert.ok((x[key] as number) > 0, key);
    }
  }
});

Deno.test("wire values: the encoder guards times and integers it should never be handed", () => {
  const plan: TracePlan = {
    startMs: -5,
    endMs: Infinity,
    exportAttributes: { huge: 2 ** 64, negativeHuge: -(2 ** 70), nan: NaN, half: 1.5, small: -3 },
    flows: [
      { startMs: NaN, endMs: -1, attributes: {}, droppedAttributes: 0 },
      { startMs: 1e20, endMs: 1e20, attributes: {}, droppedAttributes: 0 },
    ],
  };
  const encoder = new OtlpTraceEncoder({ resource: {}, scopeName: "t", scopeVersion: "" });
  encoder.write(plan);
  const spans = decodeTraceRequest(encoder.takeRequest()!.body);
  const last = BigInt(Date.UTC(2262, 3, 11, 23, 47, 16, 854)) * NS;
  for (const s of spans) {
    assert.ok(s.startNs >= 0n && s.startNs <= last && s.endNs >= 0n && s.endNs <= last, s.name);
  }
  const [nan, future] = flowsOf(spans);
  assert.equal(nan.startNs, 0n); // OTLP's "unknown", not a wrapped value
  assert.equal(nan.endNs, 0n);
  assert.equal(future.startNs, last);
  const root = rootOf(spans);
  assert.equal(root.startNs, 0n);
  assert.equal(root.endNs, last);
  assert.equal(root.attributes.huge, Number.MAX_SAFE_INTEGER);
  assert.equal(root.attributes.negativeHuge, -Number.MAX_SAFE_INTEGER);
  assert.ok(Number.isNaN(root.attributes.nan)); // a double, never through the varint
  assert.equal(root.attributes.half, 1.5);
  assert.equal(root.attributes.small, -3);
});
