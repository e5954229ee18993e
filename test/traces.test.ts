import assert from "node:assert/strict";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { flowTimes, uptimeDelta } from "../src/netflow/time.ts";
import type { ExportPacket, Flow } from "../src/netflow/types.ts";
import { flowAttributes, MAX_SPEC_FLOW_ATTRIBUTES, tcpFlagNames } from "../src/traces/attributes.ts";
import { communityId, sha1SingleBlock } from "../src/traces/community_id.ts";
import { ipBytes } from "../src/netflow/addresses.ts";
import { createHash } from "node:crypto";
import { serverSide } from "../src/traces/inference.ts";
import { protocolName } from "../src/traces/protocols.ts";
import { OtlpTraceEncoder } from "../src/traces/otlp_encoder.ts";
import { planTrace } from "../src/traces/spans.ts";
import { decodeTraceRequest } from "./support/otlp_receiver.ts";
import { hrTime, SpanBuilder } from "./support/sdk_spans.ts";

Deno.test("client/server inference follows SPEC §4", () => {
  assert.equal(serverSide(51000, 443), "destination");
  assert.equal(serverSide(443, 51000), "source");
  assert.equal(serverSide(51000, 5432), "destination"); // well-known service above 1024
  assert.equal(serverSide(6379, 40000), "source");
  assert.equal(serverSide(50000, 60000), undefined); // neither side a service
  assert.equal(serverSide(8080, 9200), undefined); // both are services
  assert.equal(serverSide(123, 123), undefined); // both low
  assert.equal(serverSide(1024, 1025), "source"); // 1024 counts as low
});

Deno.test("community id v1 matches the reference test vectors", () => {
  assert.equal(
    communityId("128.232.110.120", "66.35.250.204", 6, 34855, 80),
    "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
  );
  assert.equal(
    communityId("66.35.250.204", "128.232.110.120", 6, 80, 34855),
    "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
  );
  assert.equal(communityId("192.168.0.89", "192.168.0.1", 1, 8, 0), "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=");
  assert.equal(communityId("192.168.0.1", "192.168.0.89", 1, 0, 8), "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=");
  assert.equal(communityId("192.168.0.89", "192.168.0.1", 1, 20, 1), "1:tz/fHIDUHs19NkixVVoOZywde+I=");
  assert.equal(
    communityId("fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 58, 135, 0),
    "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=",
  );
  assert.equal(
    communityId("3ffe:507:0:1:200:86ff:fe05:80da", "3ffe:507:0:1:260:97ff:fe07:69ea", 58, 3, 0),
    "1:/OGBt9BN1ofenrmSPWYicpij2Vc=",
  );
  assert.equal(communityId("10.0.0.1", "fe80::1", 6, 1, 2), undefined);
  assert.deepEqual([...ipBytes("::ffff:1.2.3.4")!], [
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0xff,
    0xff,
    1,
    2,
    3,
    4,
  ]);
  assert.equal(ipBytes("1::2::3"), undefined);
});

Deno.test("protocol keywords and TCP flag names", () => {
  assert.equal(protocolName(6), "tcp");
  assert.equal(protocolName(58), "ipv6-icmp");
  assert.equal(protocolName(47), "gre");
  assert.equal(protocolName(253), "253");
  assert.equal(tcpFlagNames(0x13), "SYN,ACK,FIN");
  assert.equal(tcpFlagNames(0), "");
});

const tcpFlow: Flow = {
  srcAddr: "10.0.0.2",
  dstAddr: "192.168.1.200",
  nextHop: "10.255.255.254",
  srcPort: 51002,
  dstPort: 443,
  protocol: 6,
  bytes: 3402,
  packets: 14,
  inputIf: 3,
  outputIf: 7,
  tos: 0xb8,
  tcpFlags: 0x1b,
  srcAs: 64512,
  dstAs: 15169,
  srcMask: 24,
  dstMask: 16,
  firstSwitched: 990_000,
  lastSwitched: 995_500,
  ipVersion: 4,
  samplingInterval: 100,
};

Deno.test("flow attributes: the full SPEC §3 set for a v5 TCP flow", () => {
  assert.deepEqual(flowAttributes(tcpFlow, 1, 5), {
    "netflow.version": 5,
    "netflow.flow.index": 1,
    "source.address": "10.0.0.2",
    "source.port": 51002,
    "destination.address": "192.168.1.200",
    "destination.port": 443,
    "network.peer.address": "192.168.1.200",
    "network.peer.port": 443,
    "client.address": "10.0.0.2",
    "client.port": 51002,
    "server.address": "192.168.1.200",
    "server.port": 443,
    "network.transport": "tcp",
    "network.protocol.name": "tcp",
    "network.protocol.number": 6,
    "network.type": "ipv4",
    "netflow.flow.bytes": 3402,
    "netflow.flow.packets": 14,
    "netflow.flow.first_switched": 990_000,
    "netflow.flow.last_switched": 995_500,
    "netflow.flow.duration_ms": 5500,
    "netflow.nexthop": "10.255.255.254",
    "netflow.interface.input": 3,
    "netflow.interface.output": 7,
    "netflow.tos": 0xb8,
    "netflow.tcp_flags": 0x1b,
    "netflow.tcp_flags.names": "SYN,ACK,FIN,PSH",
    "netflow.src_as": 64512,
    "netflow.dst_as": 15169,
    "netflow.src_mask": 24,
    "netflow.dst_mask": 16,
    "netflow.sampling.interval": 100,
    "netflow.flow.bytes.estimated": 340200,
    "netflow.flow.packets.estimated": 1400,
    "netflow.community_id": communityId("10.0.0.2", "192.168.1.200", 6, 51002, 443),
  });
});

Deno.test("flow attributes: absent values stay absent; server on the source side; IPv6", () => {
  const a = flowAttributes(
    { srcAddr: "2001:db8::1", dstAddr: "2001:db8::2", srcPort: 5432, dstPort: 40000, protocol: 6 },
    0,
    10,
  );
  assert.equal(a["network.type"], "ipv6");
  assert.equal(a["server.address"], "2001:db8::1");
  assert.equal(a["server.port"], 5432);
  assert.equal(a["client.port"], 40000);
  for (const key of ["netflow.flow.bytes", "netflow.tos", "netflow.sampling.interval", "netflow.src_as"]) {
    assert.equal(key in a, false, key);
  }
  const none = flowAttributes(
    { srcAddr: "10.0.0.1", dstAddr: "10.0.0.2", srcPort: 50000, dstPort: 50001 },
    0,
    9,
  );
  assert.equal("client.address" in none, false);
  assert.equal("server.port" in none, false);
});

Deno.test("flow attributes: ICMP has no ports; community id uses type/code from the destination port", () => {
  const a = flowAttributes(
    { srcAddr: "192.168.0.89", dstAddr: "192.168.0.1", srcPort: 0, dstPort: 8 * 256, protocol: 1 },
    0,
    5,
  );
  assert.equal("source.port" in a, false);
  assert.equal("destination.port" in a, false);
  assert.equal(a["network.transport"], "icmp");
  assert.equal(a["netflow.community_id"], "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=");
});

function packet(fields: Partial<ExportPacket>): ExportPacket {
  return {
    version: 5,
    exporterAddress: "192.0.2.1",
    exporterPort: 9995,
    sizeBytes: 72,
    receivedAtMs: 1_700_000_000_500,
    flows: [],
    ...fields,
  };
}

Deno.test("flow times: uptime-relative, across a 32-bit uptime wrap", () => {
  assert.equal(uptimeDelta(100, 0xffffff00), 356);
  const p = packet({ sysUptimeMs: 1_000, exportTimeMs: 1_700_000_000_000 });
  // first switched just before the wrap, last after it
  const t = flowTimes({ firstSwitched: 0xffffffff - 999, lastSwitched: 500 }, p);
  assert.equal(t.startMs, 1_700_000_000_000 - 2000);
  assert.equal(t.endMs, 1_700_000_000_000 - 500);
  assert.equal(t.adjusted, false);
});

Deno.test("flow times: impossible times use the receive time and are marked adjusted", () => {
  const p = packet({ sysUptimeMs: 100_000_000, exportTimeMs: 1_700_000_000_000 });
  const future = flowTimes({ firstSwitched: 100_000_000 + 10_000, lastSwitched: 100_000_000 + 20_000 }, p);
  assert.deepEqual(future, { startMs: p.receivedAtMs, endMs: p.receivedAtMs, adjusted: true });
  const ancient = flowTimes({ startMs: 1_600_000_000_000, endMs: 1_700_000_000_000 }, p);
  assert.equal(ancient.startMs, p.receivedAtMs);
  assert.equal(ancient.adjusted, true);
  const backwards = flowTimes({ firstSwitched: 99_999_000, lastSwitched: 99_998_000 }, p);
  assert.equal(backwards.endMs, backwards.startMs);
  assert.equal(backwards.adjusted, true);
  const none = flowTimes({}, p);
  assert.deepEqual(none, { startMs: p.receivedAtMs, endMs: p.receivedAtMs, adjusted: false });
});

function collect(spanTime: "flow" | "receive", p: ExportPacket) {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(memory)] });
  new SpanBuilder(provider.getTracer("t"), { spanTime, collectorHost: "0.0.0.0", collectorPort: 2055 }).emit(
    p,
  );
  return memory.getFinishedSpans();
}
const ms = (t: [number, number]) => t[0] * 1000 + t[1] / 1e6;

Deno.test("span tree: export → process_flows → flows, parents enclose children in flow time", () => {
  const p = packet({
    sysUptimeMs: 1_000_000,
    exportTimeMs: 1_700_000_000_000,
    flows: [{ ...tcpFlow }, { ...tcpFlow, firstSwitched: 980_000, lastSwitched: 999_000 }],
  });
  const spans = collect("flow", p);
  const root = spans.find((s) => s.name === "netflow.export")!;
  const proc = spans.find((s) => s.name === "netflow.process_flows")!;
  const flows = spans.filter((s) => s.name === "netflow.flow");
  assert.equal(spans.length, 4);
  assert.equal(root.parentSpanContext, undefined);
  assert.equal(proc.parentSpanContext?.spanId, root.spanContext().spanId);
  for (const f of flows) {
    assert.equal(f.parentSpanContext?.spanId, proc.spanContext().spanId);
    assert.equal(f.spanContext().traceId, root.spanContext().traceId);
  }
  assert.equal(ms(flows[0].startTime), 1_700_000_000_000 - 10_000);
  assert.equal(ms(flows[0].endTime), 1_700_000_000_000 - 4_500);
  assert.equal(ms(root.startTime), 1_700_000_000_000 - 20_000);
  assert.equal(ms(root.endTime), 1_700_000_000_000);
  assert.deepEqual(proc.startTime, root.startTime);
  assert.deepEqual(proc.endTime, root.endTime);
  assert.equal(root.attributes["netflow.flow.count"], 2);
  assert.equal(root.attributes["netflow.exporter.clock_skew_ms"], 500);
  assert.equal(proc.attributes["netflow.flow.count"], 2);
});

Deno.test("span tree: receive mode ends flows at the receive time and keeps durations", () => {
  const p = packet({ sysUptimeMs: 1_000_000, exportTimeMs: 1_700_000_000_000, flows: [{ ...tcpFlow }] });
  const spans = collect("receive", p);
  const flow = spans.find((s) => s.name === "netflow.flow")!;
  const root = spans.find((s) => s.name === "netflow.export")!;
  assert.equal(ms(flow.endTime), p.receivedAtMs);
  assert.equal(ms(flow.endTime) - ms(flow.startTime), 5_500);
  assert.ok(ms(root.startTime) <= ms(flow.startTime) && ms(root.endTime) >= ms(flow.endTime));
});

Deno.test("span tree: a bad packet gives an ERROR export span with an exception event", () => {
  const spans = collect(
    "flow",
    packet({ version: 7, error: { kind: "unknown_version", message: "unknown NetFlow version 7" } }),
  );
  const root = spans.find((s) => s.name === "netflow.export")!;
  assert.equal(root.status.code, 2);
  assert.equal(root.status.message, "unknown NetFlow version 7");
  assert.equal(root.events[0].name, "exception");
  assert.equal(root.events[0].attributes?.["exception.message"], "unknown NetFlow version 7");
  assert.equal(ms(root.endTime) - ms(root.startTime), 1);
});

Deno.test("hrTime keeps sub-millisecond precision", () => {
  assert.deepEqual(hrTime(1_700_000_000_123.456), [1_700_000_000, 123_456_000]);
  assert.deepEqual(hrTime(5), [0, 5_000_000]);
});

Deno.test("the one-block SHA-1 behind Community ID agrees with node:crypto for every input length", () => {
  for (let len = 0; len <= 55; len++) {
    for (let round = 0; round < 20; round++) {
      const data = crypto.getRandomValues(new Uint8Array(len));
      assert.deepEqual(sha1SingleBlock(data), new Uint8Array(createHash("sha1").update(data).digest()));
    }
  }
  assert.throws(() => sha1SingleBlock(new Uint8Array(56)), RangeError);
});

Deno.test("flow times: IPFIX uptime with an export time (whole seconds) just before systemInitTime", () => {
  const init = 1_700_000_000_542;
  const p = packet({ version: 10, exportTimeMs: 1_700_000_000_000, receivedAtMs: 1_700_000_000_600 });
  // flowStartSysUpTime 11.5 s before init: the exporter's 32-bit uptime wrapped (or started near 2^32)
  const t = flowTimes(
    { firstSwitched: 2 ** 32 - 11_500, lastSwitched: 2 ** 32 - 1_000, systemInitMs: init },
    p,
  );
  assert.equal(t.startMs, init - 11_500);
  assert.equal(t.endMs, init - 1_000);
  assert.equal(t.adjusted, false);
});

Deno.test("flow attributes: MAX_SPEC_FLOW_ATTRIBUTES is what a flow that carries everything gets", () => {
  // A TCP biflow with every SPEC field, sampled, with a direction: the largest fixed set flowAttributes() makes.
  const all = flowAttributes({ ...tcpFlow, direction: 1, reverseBytes: 2_000, reversePackets: 9 }, 0, 10);
  assert.equal(Object.keys(all).length, MAX_SPEC_FLOW_ATTRIBUTES);
});

/** A flow that carries every SPEC field plus `n` further elements. */
function wideFlow(n: number): Flow {
  const extra: Record<string, number> = {};
  for (let i = 0; i < n; i++) extra[`netflow.field.${10_000 + i}`] = i;
  return { ...tcpFlow, direction: 0, reverseBytes: 2_000, reversePackets: 9, extra };
}

Deno.test("attribute count limit: SPEC attributes first, elements fill the rest, the others are counted", () => {
  const limit = 1_024;
  const p = packet({ sysUptimeMs: 1_000_000, exportTimeMs: 1_700_000_000_000, flows: [wideFlow(16_000)] });
  const plan = planTrace(p, {
    spanTime: "flow",
    collectorHost: "h",
    collectorPort: 1,
    attributeCountLimit: limit,
  });
  const f = plan.flows[0];
  const keys = Object.keys(f.attributes);
  assert.equal(keys.length, limit);
  assert.equal(f.droppedAttributes, MAX_SPEC_FLOW_ATTRIBUTES + 16_000 - limit);
  for (
    const [k, v] of Object.entries(
      flowAttributes({ ...tcpFlow, direction: 0, reverseBytes: 2_000, reversePackets: 9 }, 0, 5),
    )
  ) {
    assert.equal(f.attributes[k], v, k);
  }
  // The elements kept are the record's first ones, in order.
  assert.equal(f.attributes["netflow.field.10000"], 0);
  const lastKept = limit - MAX_SPEC_FLOW_ATTRIBUTES - 1;
  assert.equal(f.attributes[`netflow.field.${10_000 + lastKept}`], lastKept);
  assert.equal(`netflow.field.${10_000 + limit - MAX_SPEC_FLOW_ATTRIBUTES}` in f.attributes, false);

  // On the wire: droppedAttributesCount (Span field 10) carries the rest.
  const encoder = new OtlpTraceEncoder({ resource: {}, scopeName: "t", scopeVersion: "" });
  encoder.write(plan);
  const spans = decodeTraceRequest(encoder.takeRequest()!.body);
  const wire = spans.find((s) => s.name === "netflow.flow")!;
  assert.equal(Object.keys(wire.attributes).length, limit);
  assert.equal(wire.droppedAttributesCount, 16_000 + MAX_SPEC_FLOW_ATTRIBUTES - limit);
  assert.equal(wire.attributes["netflow.community_id"], f.attributes["netflow.community_id"]);
  for (const s of spans.filter((s) => s.name !== "netflow.flow")) assert.equal(s.droppedAttributesCount, 0);
});

Deno.test("attribute count limit: time_adjusted always fits; no limit, nothing dropped", () => {
  const limit = 40;
  // first switched after the export time: impossible, so the flow is marked adjusted.
  const flow = { ...wideFlow(100), firstSwitched: 1_000_000 + 60_000 };
  const p = packet({ sysUptimeMs: 1_000_000, exportTimeMs: 1_700_000_000_000, flows: [flow] });
  const f =
    planTrace(p, { spanTime: "flow", collectorHost: "h", collectorPort: 1, attributeCountLimit: limit })
      .flows[0];
  assert.equal(f.attributes["netflow.flow.time_adjusted"], true);
  assert.equal(Object.keys(f.attributes).length, limit);
  assert.equal(f.droppedAttributes, MAX_SPEC_FLOW_ATTRIBUTES + 1 + 100 - limit);
  const unlimited = planTrace(p, { spanTime: "flow", collectorHost: "h", collectorPort: 1 }).flows[0];
  assert.equal(Object.keys(unlimited.attributes).length, MAX_SPEC_FLOW_ATTRIBUTES + 1 + 100);
  assert.equal(unlimited.droppedAttributes, 0);
});

Deno.test("attribute count limit: below the SPEC set's own size, the span still holds no more", () => {
  const p = packet({ sysUptimeMs: 1_000_000, exportTimeMs: 1_700_000_000_000, flows: [wideFlow(10)] });
  const f = planTrace(p, { spanTime: "flow", collectorHost: "h", collectorPort: 1, attributeCountLimit: 32 })
    .flows[0];
  assert.equal(Object.keys(f.attributes).length, 32);
  assert.equal(f.droppedAttributes, MAX_SPEC_FLOW_ATTRIBUTES + 10 - 32);
  assert.equal(f.attributes["netflow.version"], 5); // the first ones stay
  assert.equal("netflow.field.10000" in f.attributes, false);
});

Deno.test("attribute count limit: an element named like a SPEC attribute takes no second slot", () => {
  const flow: Flow = { ...wideFlow(0), extra: { "netflow.tos": 1, "netflow.vlan.id": 7, "netflow.x": 8 } };
  const p = packet({ sysUptimeMs: 1_000_000, exportTimeMs: 1_700_000_000_000, flows: [flow] });
  const limit = MAX_SPEC_FLOW_ATTRIBUTES + 1;
  const f =
    planTrace(p, { spanTime: "flow", collectorHost: "h", collectorPort: 1, attributeCountLimit: limit })
      .flows[0];
  assert.equal(Object.keys(f.attributes).length, limit);
  assert.equal(f.attributes["netflow.tos"], 1);
  assert.equal(f.attributes["netflow.vlan.id"], 7);
  assert.equal(f.droppedAttributes, 1);
});
