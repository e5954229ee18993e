/**
 * Decoder and span benchmarks, one core, no I/O: `deno task bench` (or `bun bench/decode.ts`).
 *
 *   decode   datagrams → ExportPacket (v5 with 30 flows, v9 and IPFIX with 20 flows per datagram)
 *   spans    decoded flows → finished SDK spans (SpanBuilder + the SDK Tracer, no export)
 *   encode   finished spans → OTLP protobuf bytes (the exporter's own serializer)
 *   direct   decoded flows → OTLP protobuf bytes without SDK span objects (what the collector runs)
 *   gzip     one such request compressed (OTEL_EXPORTER_OTLP_COMPRESSION=gzip), per flow it holds, at zlib
 *            level 1 and at node:zlib's default (6); the compression ratio is printed beside
 *
 * Prints a table and, last, one JSON line with the same figures.
 */
import { ExporterActivity } from "../src/exporter_activity.ts";
import { RecentFlows } from "../src/recent_flows.ts";
import { TopTalkers } from "../src/top_talkers.ts";
import { BasicTracerProvider, type ReadableSpan, type SpanProcessor } from "@opentelemetry/sdk-trace-base";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { constants, gzipSync } from "node:zlib";
import { NetflowDecoder } from "../src/netflow/decoder.ts";
import { planTrace } from "../src/traces/spans.ts";
import { OtlpTraceEncoder } from "../src/traces/otlp_encoder.ts";
import { SpanBuilder } from "../test/support/sdk_spans.ts";
import {
  type EncodableFlow,
  encodeIpfix,
  encodeV5,
  encodeV9,
  flowRecord,
  standardTemplate,
} from "../src/tools/encode.ts";

const NOW = Date.now();
const UPTIME = 86_400_000;

function flow(i: number): EncodableFlow {
  const v6 = i % 4 === 3;
  return {
    srcAddr: v6 ? `2001:db8:${i % 50}::${(i % 200) + 1}` : `10.${i % 16}.${(i >> 4) % 256}.${(i % 250) + 1}`,
    dstAddr: v6 ? "2001:db8:ffff::53" : `192.168.${i % 8}.${(i % 100) + 1}`,
    nextHop: v6 ? "2001:db8::1" : "10.255.0.1",
    srcPort: 1024 + (i * 7919) % 60000,
    dstPort: [443, 53, 22, 80, 5432][i % 5],
    protocol: i % 5 === 1 ? 17 : 6,
    tos: 0,
    tcpFlags: 0x1b,
    bytes: 1000 + i * 13,
    packets: 3 + (i % 40),
    inputIf: 1 + (i % 4),
    outputIf: 5,
    srcAs: 64512,
    dstAs: 15169,
    srcMask: 24,
    dstMask: 16,
    firstSwitched: UPTIME - 20_000 - (i % 1000),
    lastSwitched: UPTIME - 1000,
    startMs: NOW - 20_000,
    endMs: NOW - 1000,
  };
}

function datagrams(version: 5 | 9 | 10, count: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  const t4 = standardTemplate(4, { times: version === 10 ? "milliseconds" : "uptime" });
  for (let d = 0; d < count; d++) {
    if (version === 5) {
      out.push(encodeV5(
        { sysUptimeMs: UPTIME, exportTimeMs: NOW, sequence: d * 30 },
        Array.from({ length: 30 }, (_, i) => flow(d * 30 + i)).map((f) => ({
          ...f,
          srcAddr: f.srcAddr!.includes(":") ? "10.9.9.9" : f.srcAddr,
          dstAddr: f.dstAddr!.includes(":") ? "10.8.8.8" : f.dstAddr,
          nextHop: "10.255.0.1",
        })),
      ));
      continue;
    }
    const records = Array.from({ length: 20 }, (_, i) => flow(d * 20 + i)).map((f) =>
      flowRecord({
        ...f,
        srcAddr: f.srcAddr!.includes(":") ? "10.9.9.9" : f.srcAddr,
        dstAddr: f.dstAddr!.includes(":") ? "10.8.8.8" : f.dstAddr,
        nextHop: "10.255.0.1",
      }, t4)
    );
    const sets = [
      ...(d === 0 ? [{ type: "templates" as const, templates: [t4] }] : []),
      { type: "data" as const, template: t4, records },
    ];
    out.push(
      version === 9
        ? encodeV9({ sysUptimeMs: UPTIME, exportTimeMs: NOW, sequence: d, sourceId: 1 }, sets)
        : encodeIpfix({ exportTimeMs: NOW, sequence: d * 20, observationDomainId: 1 }, sets),
    );
  }
  return out;
}

interface Row {
  bench: string;
  flowsPerSec: number;
  nsPerFlow: number;
}
const rows: Row[] = [];

function measure(name: string, flowsPerRound: number, round: () => void, seconds = 2): void {
  for (let i = 0; i < 50; i++) round(); // warm-up: let the JIT settle
  let rounds = 0;
  const start = performance.now();
  let elapsed = 0;
  while ((elapsed = performance.now() - start) < seconds * 1000) {
    round();
    rounds++;
  }
  const flows = rounds * flowsPerRound;
  rows.push({
    bench: name,
    flowsPerSec: Math.round(flows / (elapsed / 1000)),
    nsPerFlow: +(elapsed * 1e6 / flows).toFixed(1),
  });
}

for (const version of [5, 9, 10] as const) {
  const data = datagrams(version, 200);
  const flowsPer = version === 5 ? 30 : 20;
  const decoder = new NetflowDecoder();
  decoder.decode(data[0], "192.0.2.1", 2055, NOW); // the template
  const body = version === 5 ? data : data.slice(1);
  measure(`decode v${version}`, flowsPer * body.length, () => {
    for (const d of body) decoder.decode(d, "192.0.2.1", 2055, NOW);
  });
}

// Spans: the SDK tracer with a processor that only collects finished spans.
const finished: ReadableSpan[] = [];
const collecting: SpanProcessor = {
  onStart() {},
  onEnd(span) {
    if (finished.length < 4096) finished.push(span);
  },
  forceFlush: () => Promise.resolve(),
  shutdown: () => Promise.resolve(),
};
const provider = new BasicTracerProvider({ spanProcessors: [collecting] });
const builder = new SpanBuilder(provider.getTracer("bench"), {
  spanTime: "flow",
  collectorHost: "0.0.0.0",
  collectorPort: 2055,
});
{
  const decoder = new NetflowDecoder();
  const packets = datagrams(10, 50).flatMap((d) => decoder.decode(d, "192.0.2.1", 2055, NOW)).filter((p) =>
    p.flows.length
  );
  const flowsPer = packets.reduce((n, p) => n + p.flows.length, 0);
  measure("spans (SDK tracer)", flowsPer, () => {
    for (const p of packets) builder.emit(p);
  });
  const encoder = new OtlpTraceEncoder({
    resource: { "service.name": "bench" },
    scopeName: "netflow2traces",
    scopeVersion: "0",
  });
  const options = { spanTime: "flow" as const, collectorHost: "0.0.0.0", collectorPort: 2055 };
  measure("plan + OTLP encode", flowsPer, () => {
    for (const p of packets) encoder.write(planTrace(p, options));
    encoder.takeRequest();
  });
  measure("packet → OTLP (collector)", flowsPer, () => {
    for (const p of packets) encoder.writePacket(p, options);
    encoder.takeRequest();
  });
  for (const p of packets) encoder.writePacket(p, options);
  const request = encoder.takeRequest()!.body;
  for (const level of [1, constants.Z_DEFAULT_COMPRESSION]) {
    const ratio = (request.length / gzipSync(request, { level }).length).toFixed(1);
    measure(`gzip level ${level < 0 ? 6 : level} (${ratio}:1)`, flowsPer, () => {
      gzipSync(request, { level });
    });
  }
  // What the status page keeps per flow in the pipeline (exporter activity, top talkers, last flows), at a
  // steady 100k flows/s of receive time, so the top talkers' threshold sampling is on as it would be.
  const activity = new ExporterActivity(), top = new TopTalkers(), recent = new RecentFlows();
  let clock = NOW;
  measure("status page summaries (100k/s)", flowsPer, () => {
    for (const p of packets) {
      clock += p.flows.length / 100; // ms at 100k flows/s
      p.receivedAtMs = clock;
      activity.record(p);
      top.record(p);
      recent.record(p);
    }
  });
  const batch = finished.slice(0, 1024);
  measure("encode OTLP protobuf", batch.length, () => {
    ProtobufTraceSerializer.serializeRequest(batch);
  });
}

const runtime = "Bun" in globalThis
  ? `bun ${(globalThis as unknown as { Bun: { version: string } }).Bun.version}`
  : `deno ${Deno.version.deno}`;
console.log(`runtime: ${runtime}`);
console.log("bench                      flows/s       ns/flow");
for (const r of rows) {
  console.log(
    `${r.bench.padEnd(24)} ${String(r.flowsPerSec).padStart(11)} ${String(r.nsPerFlow).padStart(12)}`,
  );
}
console.log(JSON.stringify({ runtime, rows }));
