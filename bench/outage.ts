/**
 * What an outage costs: the real collector under steady NetFlow v5 traffic while its OTLP backend goes down
 * for a while (connection refused), optionally SIGKILLed mid-outage and restarted on the same spool.
 *
 *   deno task bench:outage [--protocol grpc|http/protobuf] [--rate 500] [--down 60] [--spool] [--kill]
 *                          [--queue 65536] [--workers N] [--exporters N]
 *
 * Prints flows sent and delivered (once, whole traces, no duplicates), what the collector counted as dropped,
 * the time from the outage's start to the WARN line and from its end to the recovery line, and the
 * collector's peak queue. The backend is a light invariant-checking OTLP sink (test/support/trace_sink.ts).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { collectorCommand, type CollectorProcess, startCollectorProcess } from "../test/support/collector.ts";
import { type SinkProtocol, startTraceSink } from "../test/support/trace_sink.ts";

const { values } = parseArgs({
  options: {
    protocol: { type: "string", default: "grpc" },
    rate: { type: "string", default: "500" },
    down: { type: "string", default: "60" },
    before: { type: "string", default: "5" },
    after: { type: "string", default: "10" },
    queue: { type: "string", default: "65536" },
    spool: { type: "boolean", default: false },
    kill: { type: "boolean", default: false },
    workers: { type: "string" },
    exporters: { type: "string", default: "1" },
  },
});
const protocol = values.protocol as SinkProtocol;
const flowsPerSecond = Number(values.rate);
const downSeconds = Number(values.down);
const beforeSeconds = Number(values.before);
const afterSeconds = Number(values.after);
const FLOWS_PER_PACKET = 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const sink = await startTraceSink({ protocol });
const spoolDir = values.spool ? mkdtempSync(join(tmpdir(), "n2t-outage-spool-")) : undefined;
const env: Record<string, string> = {
  OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
  OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
  OTEL_BSP_MAX_QUEUE_SIZE: values.queue!,
  NETFLOW_STATS_INTERVAL: "1",
  ...(spoolDir ? { NETFLOW_SPOOL_DIR: spoolDir } : {}),
  ...(values.workers ? { NETFLOW_WORKERS: values.workers } : {}),
};
let collector: CollectorProcess = await startCollectorProcess(env);
const port = collector.port;
const logs: string[] = [];

const packets = Math.round(flowsPerSecond / FLOWS_PER_PACKET * (beforeSeconds + downSeconds + afterSeconds));
const [cmd, ...args] = collectorCommand([
  "send",
  "--port",
  String(port),
  "--version",
  "5",
  "--flows-per-packet",
  String(FLOWS_PER_PACKET),
  "--rate",
  String(flowsPerSecond / FLOWS_PER_PACKET),
  "--count",
  String(packets),
  "--seed",
  "3",
  "--exporters",
  values.exporters!,
]);
const t0 = Date.now();
const sender = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();

await sleep(beforeSeconds * 1000);
await sink.setMode({ down: true });
const downAt = Date.now();
if (values.kill) {
  await sleep(Math.min(downSeconds * 500, 30_000));
  collector.kill("SIGKILL");
  await collector.exited;
  logs.push(collector.stderr());
  collector = await startCollectorProcess({ ...env, NETFLOW_LISTEN_PORT: String(port) });
}
await sleep(downAt + downSeconds * 1000 - Date.now());
await sink.setMode({ down: false });
const upAt = Date.now();
const sent = await sender;
const sentText = new TextDecoder().decode(sent.stdout) + new TextDecoder().decode(sent.stderr);
const flowsSent = Number(/(\d+) flows/.exec(sentText)?.[1] ?? packets * FLOWS_PER_PACKET);
await sink.waitFor((s) => s.flowSpans >= flowsSent, 120_000);
await collector.stop("SIGTERM");
logs.push(collector.stderr());
const summary = await sink.summary();
await sink.close();

const log = logs.join("\n");
const at = (re: RegExp) => {
  const line = log.split("\n").find((l) => re.test(l));
  return line ? Date.parse(line.slice(0, 24)) : undefined;
};
const warnAt = at(/WARNING export failing/);
const recoveredAt = at(/INFO export recovered/);
const stopped = [...log.matchAll(/INFO stopped totals="([^"]*)"/g)].map((m) => m[1]);
const num = (k: string) =>
  stopped.reduce((n, t) => n + Number(new RegExp(`\\b${k}=(\\d+)`).exec(t)?.[1] ?? 0), 0);
const queue = Math.max(0, ...[...log.matchAll(/ queue=(\d+)/g)].map((m) => Number(m[1])));
const result = {
  protocol,
  flowsPerSecond,
  downSeconds,
  spool: values.spool,
  killed: values.kill,
  queue: Number(values.queue),
  flowsSent,
  flowsDelivered: summary.flowSpans,
  deliveredPct: Number((summary.flowSpans / flowsSent * 100).toFixed(2)),
  duplicateSpanIds: summary.duplicateSpanIds,
  brokenTraces: summary.brokenTraces,
  flowsDropped: num("flows_dropped"),
  flowsFailed: num("flows_failed"),
  warnAfterMs: warnAt === undefined ? null : warnAt - downAt,
  recoveredAfterMs: recoveredAt === undefined ? null : recoveredAt - upAt,
  peakQueueSpans: queue,
  seconds: Math.round((Date.now() - t0) / 1000),
};
console.log(JSON.stringify(result));
