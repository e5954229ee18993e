/**
 * The SDK path, bench/e2e.ts's baseline: what a user would write with the OpenTelemetry SDK. NetFlow v5 only,
 * decoded by hand; per datagram a trace `netflow.export` → `netflow.process_flows` → `netflow.flow` × N;
 * BatchSpanProcessor (OTEL_BSP_*) and the SDK's OTLP exporter (OTEL_EXPORTER_OTLP_PROTOCOL, _ENDPOINT, …).
 *
 *   NETFLOW_LISTEN_HOST=127.0.0.1 NETFLOW_LISTEN_PORT=2055 deno run -A bench/sdk_collector.ts   (or bun …)
 */
import dgram from "node:dgram";
import process from "node:process";
import { context, diag, DiagConsoleLogger, DiagLogLevel, trace } from "@opentelemetry/api";
import { OTLPTraceExporter as GrpcExporter } from "@opentelemetry/exporter-trace-otlp-grpc";
import { OTLPTraceExporter as ProtoExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from "@opentelemetry/sdk-trace-base";

diag.setLogger(new DiagConsoleLogger(), DiagLogLevel.WARN);
const grpc = process.env.OTEL_EXPORTER_OTLP_PROTOCOL === "grpc";
const exporter: SpanExporter = grpc ? new GrpcExporter() : new ProtoExporter();
// For the totals line: spans ended, spans the processor handed to the exporter, spans of failed exports.
let packets = 0, ended = 0, exported = 0, failed = 0;
const exportBatch = exporter.export.bind(exporter);
exporter.export = (spans, done) => {
  exported += spans.length;
  exportBatch(spans, (result) => {
    if (result.code !== 0) failed += spans.length;
    done(result);
  });
};
const provider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(exporter)] });
const tracer = provider.getTracer("netflow-sdk");

const ip = (b: Uint8Array, o: number) => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
const socket = dgram.createSocket("udp4");
socket.on("message", (msg, peer) => {
  packets++;
  const v = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  if (msg.length < 24 || v.getUint16(0) !== 5) return;
  const count = Math.min(v.getUint16(2), Math.floor((msg.length - 24) / 48));
  const uptime = v.getUint32(4), exportMs = v.getUint32(8) * 1000 + v.getUint32(12) / 1e6;
  const at = (sysUptimeMs: number) => exportMs - (uptime - sysUptimeMs); // ms since boot → epoch ms
  let first = exportMs;
  for (let o = 24; o < 24 + count * 48; o += 48) first = Math.min(first, at(v.getUint32(o + 24)));
  const attributes = { "netflow.version": 5, "netflow.exporter.address": peer.address };
  const root = tracer.startSpan("netflow.export", { root: true, startTime: first, attributes });
  const rootContext = trace.setSpan(context.active(), root);
  const processSpan = tracer.startSpan("netflow.process_flows", {
    startTime: first,
    attributes: { "netflow.flow.count": count },
  }, rootContext);
  const processContext = trace.setSpan(rootContext, processSpan);
  for (let o = 24; o < 24 + count * 48; o += 48) {
    tracer.startSpan("netflow.flow", {
      startTime: at(v.getUint32(o + 24)),
      attributes: {
        "source.address": ip(msg, o),
        "destination.address": ip(msg, o + 4),
        "source.port": v.getUint16(o + 32),
        "destination.port": v.getUint16(o + 34),
        "network.protocol.number": msg[o + 38],
        "netflow.flow.bytes": v.getUint32(o + 20),
        "netflow.flow.packets": v.getUint32(o + 16),
        "netflow.interface.input": v.getUint16(o + 12),
        "netflow.interface.output": v.getUint16(o + 14),
        "netflow.src_as": v.getUint16(o + 40),
        "netflow.dst_as": v.getUint16(o + 42),
      },
    }, processContext).end(at(v.getUint32(o + 28)));
  }
  processSpan.end(exportMs);
  root.end(exportMs);
  ended += count + 2;
});
process.on("SIGTERM", async () => {
  socket.close();
  await provider.shutdown().catch((err) => console.error(`shutdown: ${err}`));
  console.error(`stopped packets=${packets} spans_dropped=${ended - exported} spans_failed=${failed}`);
  process.exit(0);
});
const { NETFLOW_LISTEN_HOST: host = "0.0.0.0", NETFLOW_LISTEN_PORT: port = "2055" } = process.env;
socket.bind(Number(port), host, () => console.error(`listening on udp://${host}:${port}`));
