/**
 * The direct OTLP encoder must put on the wire exactly what the SDK would for the same packets: both are
 * decoded with the test receiver's protobuf decoder and compared field by field (ids aside, which are
 * random, but their parent structure is compared).
 */
import assert from "node:assert/strict";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { NetflowDecoder } from "../src/netflow/decoder.ts";
import type { ExportPacket } from "../src/netflow/types.ts";
import { OtlpTraceEncoder } from "../src/traces/otlp_encoder.ts";
import { planTrace, type TracePlanOptions } from "../src/traces/spans.ts";
import { encodeIpfix, encodeV5, flowRecord, standardTemplate, VARIABLE_LENGTH } from "../src/tools/encode.ts";
import { mulberry32, TrafficGenerator } from "../src/tools/traffic.ts";
import { type DecodedSpan, decodeTraceRequest } from "./support/otlp_receiver.ts";
import { SpanBuilder } from "./support/sdk_spans.ts";

const resource = { "service.name": "nf2t", "service.version": "9.9.9", "deployment.environment": "täst" };
const options: TracePlanOptions = { spanTime: "flow", collectorHost: "0.0.0.0", collectorPort: 2055 };
const now = 1_700_000_000_000;

function packets(): ExportPacket[] {
  const decoder = new NetflowDecoder();
  const v5 = encodeV5({ sysUptimeMs: 50_000, exportTimeMs: now, sequence: 9, samplingInterval: 4 }, [
    {
      srcAddr: "10.0.0.1",
      dstAddr: "10.0.0.2",
      srcPort: 40000,
      dstPort: 443,
      protocol: 6,
      bytes: 4_000_000_000,
      packets: 3,
      tcpFlags: 0x12,
      firstSwitched: 49_000,
      lastSwitched: 48_000, // end before start: clamped, time_adjusted
    },
    {
      srcAddr: "10.0.0.3",
      dstAddr: "10.0.0.4",
      protocol: 1,
      dstPort: 0x0800,
      firstSwitched: 1,
      lastSwitched: 2,
    },
  ]);
  const t = standardTemplate(6, {
    times: "milliseconds",
    extra: [{ id: 82, length: VARIABLE_LENGTH }, { id: 99, length: 4, enterprise: 9 }],
  });
  const ipfix = encodeIpfix({ exportTimeMs: now, observationDomainId: 3, sequence: 1 }, [
    { type: "templates", templates: [t] },
    {
      type: "data",
      template: t,
      records: [flowRecord({
        srcAddr: "2001:db8::1",
        dstAddr: "2001:db8::2",
        srcPort: 5353,
        dstPort: 5353,
        protocol: 17,
        bytes: 2 ** 40, // a counter beyond 32 bits
        packets: 1,
        startMs: now - 1234.5,
        endMs: now - 3.25,
        fields: { "82": "ge-0/0/0 ünïcode".repeat(10), "9/99": 7 },
      }, t)],
    },
  ]);
  return [
    ...decoder.decode(v5, "192.0.2.1", 9995, now + 10),
    ...decoder.decode(ipfix, "2001:db8::ff", 4739, now + 20),
    ...decoder.decode(new Uint8Array([0, 42, 1]), "192.0.2.9", 1, now + 30), // unknown version: ERROR
  ];
}

function viaSdk(ps: ExportPacket[], opts = options, sdkAttributeCountLimit?: number): DecodedSpan[] {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes(resource),
    spanProcessors: [new SimpleSpanProcessor(memory)],
    spanLimits: sdkAttributeCountLimit === undefined
      ? undefined
      : { attributeCountLimit: sdkAttributeCountLimit },
  });
  const builder = new SpanBuilder(provider.getTracer("netflow2traces", "1.2.3"), opts);
  for (const p of ps) builder.emit(p);
  return decodeTraceRequest(ProtobufTraceSerializer.serializeRequest(memory.getFinishedSpans())!);
}

/** The collector's path: spans written straight from the packets. */
function viaEncoder(ps: ExportPacket[], opts = options): DecodedSpan[] {
  const encoder = new OtlpTraceEncoder({ resource, scopeName: "netflow2traces", scopeVersion: "1.2.3" });
  for (const p of ps) encoder.writePacket(p, opts);
  return decodeTraceRequest(encoder.takeRequest()!.body);
}

/** Replaces random ids by their role, so two traces of the same packets compare equal. */
function normalise(spans: DecodedSpan[]) {
  const names = new Map<string, string>();
  spans.forEach((s, i) => names.set(s.spanId, `${s.name}#${i}`));
  const traces = new Map<string, number>();
  return spans.map((s) => {
    if (!traces.has(s.traceId)) traces.set(s.traceId, traces.size);
    return {
      ...s,
      traceId: traces.get(s.traceId),
      spanId: names.get(s.spanId),
      parentSpanId: s.parentSpanId ? names.get(s.parentSpanId) : "",
    };
  });
}

/** Asserts both lists hold the same spans, compared by role (ids aside). */
function assertSameSpans(sdkSpans: DecodedSpan[], directSpans: DecodedSpan[]): void {
  const sdk = normalise(sdkSpans), direct = normalise(directSpans);
  assert.equal(direct.length, sdk.length);
  // The SDK hands spans to the exporter in end order (children first); compare by role.
  const byRole = (xs: typeof sdk) => [...xs].sort((a, b) => String(a.spanId).localeCompare(String(b.spanId)));
  const a = byRole(sdk), b = byRole(direct);
  for (let i = 0; i < a.length; i++) {
    // spanId labels carry the position in each list, which differs; compare everything else.
    const strip = (s: (typeof a)[number]) => ({
      ...s,
      spanId: undefined,
      parentSpanId: s.parentSpanId ? "set" : "",
    });
    assert.deepEqual(strip(b[i]), strip(a[i]), `span ${a[i].name}`);
  }
}

Deno.test("direct OTLP encoding equals the SDK's, field by field", () => {
  const ps = packets();
  const sdk = viaSdk(ps), encoded = viaEncoder(ps);
  assert.equal(sdk.length, 2 + 2 + 3 + 2);
  assertSameSpans(sdk, encoded);
  const direct = normalise(encoded);
  const err = direct.find((s) => s.status.code === 2)!;
  assert.equal(err.events[0].name, "exception");
  const flow = direct.find((s) => s.attributes["netflow.flow.bytes"] === 2 ** 40);
  assert.ok(flow, "64-bit counter kept exactly");
});

Deno.test("direct encoding: parent links within each trace", () => {
  const spans = viaEncoder(packets());
  for (const root of spans.filter((s) => s.name === "netflow.export")) {
    assert.equal(root.parentSpanId, "");
    const proc = spans.find((s) => s.name === "netflow.process_flows" && s.parentSpanId === root.spanId)!;
    assert.equal(proc.traceId, root.traceId);
    const flows = spans.filter((s) => s.parentSpanId === proc.spanId);
    assert.equal(flows.length, root.attributes["netflow.flow.count"]);
    for (const f of flows) assert.equal(f.traceId, root.traceId);
  }
  assert.equal(new Set(spans.map((s) => s.spanId)).size, spans.length);
});

Deno.test("direct encoding: large requests (multi-byte lengths) and an empty encoder", () => {
  const encoder = new OtlpTraceEncoder({ resource, scopeName: "n", scopeVersion: "" });
  assert.equal(encoder.takeRequest(), undefined);
  const ps = packets();
  for (let i = 0; i < 500; i++) encoder.write(planTrace(ps[i % ps.length], options));
  const spans = decodeTraceRequest(encoder.takeRequest()!.body);
  assert.equal(spans.length, Math.floor(500 / 3) * (4 + 3 + 2) + (4 + 3));
  assert.equal(encoder.spanCount, 0);
});

Deno.test("direct OTLP encoding equals the SDK's where the attribute count limit drops attributes", () => {
  // Records with more elements than the limit (one also time_adjusted), one under it, one exactly at it.
  const extra = (n: number) =>
    Object.fromEntries(Array.from({ length: n }, (_, i) => [`netflow.field.${i}`, i]));
  const flow = {
    srcAddr: "10.0.0.1",
    dstAddr: "10.0.0.2",
    srcPort: 40000,
    dstPort: 443,
    protocol: 6,
    bytes: 10,
    packets: 1,
    startMs: now - 500,
    endMs: now - 100,
  };
  const p: ExportPacket = {
    version: 10,
    exporterAddress: "192.0.2.1",
    exporterPort: 4739,
    sizeBytes: 1000,
    receivedAtMs: now + 5,
    exportTimeMs: now,
    flows: [
      { ...flow, extra: extra(200) },
      { ...flow, startMs: now + 60_000, extra: extra(200) },
      { ...flow, extra: extra(3) },
      { ...flow, extra: extra(64 - 20) }, // 20 SPEC attributes + 44
    ],
  };
  const limited = { ...options, attributeCountLimit: 64 };
  // The SDK's own limit at the collector's default, 1,024 (above the plan's): the plan's drops are what both report.
  const sdk = viaSdk([p], limited, 1024);
  const direct = viaEncoder([p], limited);
  assertSameSpans(sdk, direct);
  const dropped = direct.filter((s) => s.name === "netflow.flow").map((s) => s.droppedAttributesCount);
  assert.deepEqual(dropped, [20 + 200 - 64, 20 + 1 + 200 - 64, 0, 0]);
  for (const s of direct) assert.ok(Object.keys(s.attributes).length <= 64);
});

/** Random bytes from a seed: two encoders given the same seed write the same ids. */
function seededRandom(seed: number): (bytes: Uint8Array) => void {
  const next = mulberry32(seed);
  return (bytes) => {
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(next() * 256);
  };
}

Deno.test("writePacket() writes byte for byte what write(planTrace()) writes", () => {
  const identity = { resource, scopeName: "netflow2traces", scopeVersion: "1.2.3" };
  const cases: { name: string; packets: ExportPacket[] }[] = [{ name: "fixtures", packets: packets() }];
  for (const version of [1, 5, 9, 10] as const) {
    const gen = new TrafficGenerator({ version, seed: version, ipv6: version >= 9 ? 0.3 : 0 });
    const decoder = new NetflowDecoder({ unknownFields: true });
    const ps = Array.from({ length: 60 }, (_, i) => gen.next(now + i * 10))
      .flatMap((d) => decoder.decode(d.payload, "192.0.2.1", 2055, now + 5_000));
    cases.push({ name: `v${version} traffic`, packets: ps });
  }
  // Elements named like SPEC attributes, more elements than the limit, a non-ASCII address, long strings.
  const base = { srcAddr: "10.0.0.1", dstAddr: "10.0.0.2", srcPort: 40000, dstPort: 443, protocol: 6 };
  cases.push({
    name: "edge cases",
    packets: [{
      version: 10,
      exporterAddress: "192.0.2.1",
      exporterPort: 4739,
      sizeBytes: 1000,
      receivedAtMs: now,
      exportTimeMs: now,
      flows: [
        { ...base, extra: { "netflow.tos": 1, "netflow.vlan.id": 7 } },
        {
          ...base,
          extra: Object.fromEntries(Array.from({ length: 90 }, (_, i) => [`netflow.field.${i}`, i])),
        },
        { ...base, srcAddr: "fe80::1%ëth0", extra: { "netflow.interface_name": "x".repeat(300) } },
        { ...base, bytes: 2 ** 60, packets: 1.5, firstSwitched: 5, lastSwitched: 1, tcpFlags: 0x1ff },
        { ...base, startMs: now + 3_600_000, endMs: now - 1, samplingInterval: 100, bytes: 7, packets: 3 },
      ],
    }],
  });
  for (const { name, packets: ps } of cases) {
    for (const spanTime of ["flow", "receive"] as const) {
      for (const attributeCountLimit of [1024, 64, 40, 32]) {
        const opts = { ...options, spanTime, attributeCountLimit, attributeValueLengthLimit: 16 };
        const planned = new OtlpTraceEncoder(identity, undefined, seededRandom(1));
        const direct = new OtlpTraceEncoder(identity, undefined, seededRandom(1));
        for (const p of ps) {
          planned.write(planTrace(p, opts));
          direct.writePacket(p, opts);
        }
        const a = planned.takeRequest()!.body, b = direct.takeRequest()!.body;
        const at = a.findIndex((x, i) => x !== b[i]);
        assert.ok(
          a.length === b.length && at < 0,
          `${name}, ${spanTime}, limit ${attributeCountLimit}: at ${at}`,
        );
      }
    }
  }
});
