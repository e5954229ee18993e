/**
 * `OTEL_TRACES_EXPORTER=console` prints the trace plans the OTLP encoder writes: given the same random bytes
 * for the IDs, every printed field equals the span a backend would decode from the encoder's request.
 */
import assert from "node:assert/strict";
import { NetflowDecoder } from "../src/netflow/decoder.ts";
import type { ExportPacket } from "../src/netflow/types.ts";
import { OtlpTraceEncoder } from "../src/traces/otlp_encoder.ts";
import { planTrace, type TracePlanOptions } from "../src/traces/spans.ts";
import { ConsoleSink, DiscardingSink, traceLines } from "../src/traces/console_sink.ts";
import { encodeV5 } from "../src/tools/encode.ts";
import { mulberry32 } from "../src/tools/traffic.ts";
import { decodeTraceRequest } from "./support/otlp_receiver.ts";

const NOW = 1_700_000_000_000;
const options: TracePlanOptions = { spanTime: "flow", collectorHost: "0.0.0.0", collectorPort: 2055 };

function packets(): ExportPacket[] {
  const v5 = encodeV5({ sysUptimeMs: 50_000, exportTimeMs: NOW, sequence: 1 }, [
    { srcAddr: "10.0.0.1", dstAddr: "10.0.0.2", srcPort: 40_000, dstPort: 443, protocol: 6, bytes: 900 },
    { srcAddr: "10.0.0.3", dstAddr: "10.0.0.4", protocol: 17, firstSwitched: 49_000, lastSwitched: 48_000 },
  ]);
  const decoder = new NetflowDecoder();
  return [
    ...decoder.decode(v5, "192.0.2.1", 9995, NOW + 10),
    ...decoder.decode(new Uint8Array([0, 42, 1]), "192.0.2.9", 1, NOW + 20), // undecodable: status ERROR
  ];
}

function seededRandom(seed: number): (bytes: Uint8Array) => void {
  const next = mulberry32(seed);
  return (bytes) => {
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(next() * 256);
  };
}

Deno.test("console lines show the OTLP encoder's spans: names, IDs, parents, times, status, attributes", () => {
  for (const packet of packets()) {
    const encoder = new OtlpTraceEncoder(
      { resource: {}, scopeName: "t", scopeVersion: "" },
      undefined,
      seededRandom(7),
    );
    encoder.writePacket(packet, options);
    const wire = decodeTraceRequest(encoder.takeRequest()!.body);
    const lines = traceLines(planTrace(packet, options), seededRandom(7)).trimEnd().split("\n").map((l) =>
      JSON.parse(l)
    );
    assert.equal(lines.length, packet.flows.length + 2);
    assert.deepEqual(lines.map((l) => l.name), wire.map((s) => s.name));
    for (let i = 0; i < wire.length; i++) {
      const s = wire[i], l = lines[i];
      assert.equal(l.traceId, s.traceId);
      assert.equal(l.spanId, s.spanId);
      assert.equal(l.parentSpanId ?? "", s.parentSpanId);
      assert.equal(BigInt(l.startUs) * 1000n, s.startNs);
      assert.equal(BigInt(l.endUs) * 1000n, s.endNs);
      assert.deepEqual(
        l.status,
        s.status.code === 2 ? { code: "ERROR", message: s.status.message } : undefined,
      );
      assert.deepEqual(l.attributes, s.attributes);
    }
  }
});

const bsp = (maxQueueSize: number, maxExportBatchSize: number) => ({
  maxQueueSize,
  maxExportBatchSize,
  scheduleDelayMs: 60_000,
  exportTimeoutMs: 1_000,
});

Deno.test("console sink: one write per batch (at the batch size, at shutdown), books kept", async () => {
  const out: string[] = [];
  const sink = new ConsoleSink({ ...options, bsp: bsp(100, 6) }, (text) => out.push(text));
  const [flows, error] = packets(); // 4 spans, 2 spans
  sink.emit(flows);
  assert.equal(out.length, 0);
  assert.equal(sink.queueDepth(), 4);
  assert.equal(sink.counters.spansHeld, 4);
  sink.emit(error); // 6 spans: the batch size
  assert.equal(out.length, 1);
  assert.equal(sink.queueDepth(), 0);
  sink.emit(flows);
  await sink.shutdown();
  assert.equal(out.length, 2);
  const names = out.join("").trimEnd().split("\n").map((l) => JSON.parse(l).name);
  assert.deepEqual(names, [
    ...["netflow.export", "netflow.process_flows", "netflow.flow", "netflow.flow"],
    ...["netflow.export", "netflow.process_flows"],
    ...["netflow.export", "netflow.process_flows", "netflow.flow", "netflow.flow"],
  ]);
  const c = sink.counters;
  assert.deepEqual(
    [
      c.spansQueued,
      c.spansExported,
      c.spansHeld,
      c.spansDropped,
      c.flowsQueued,
      c.flowsExported,
      c.flowsHeld,
    ],
    [10, 10, 0, 0, 4, 4, 0],
  );
});

Deno.test("console sink: a packet whose spans do not fit in the queue is dropped whole and counted", async () => {
  const out: string[] = [];
  const sink = new ConsoleSink({ ...options, bsp: bsp(8, 100) }, (text) => out.push(text));
  const [flows, error] = packets();
  sink.emit(flows);
  sink.emit(error);
  sink.emit(flows); // 6 + 4 > 8
  assert.equal(sink.queueDepth(), 6);
  await sink.shutdown();
  assert.equal(out.join("").trimEnd().split("\n").length, 6);
  const c = sink.counters;
  assert.deepEqual(
    [c.spansQueued, c.spansExported, c.spansDropped, c.flowsExported, c.flowsDropped],
    [6, 6, 4, 2, 2],
  );
});

Deno.test("none: nothing built, nothing counted", async () => {
  const sink = new DiscardingSink();
  for (const p of packets()) sink.emit(p);
  assert.equal(sink.queueDepth(), 0);
  assert.equal(sink.counters.spansQueued + sink.counters.spansExported + sink.counters.spansDropped, 0);
  await sink.shutdown();
});
