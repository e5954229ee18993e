/**
 * Every trace is whole (SPEC §2), at volume, through the real collector process and the product's own
 * sender, over gRPC and http/protobuf: one netflow.export root per packet, one netflow.process_flows child,
 * exactly netflow.flow.count flow spans under it, no span ID twice, every flow sent arrived exactly once.
 * Batch sizes force the boundary cases (a packet split across requests, 1-span and 1,024-span requests),
 * and the same must hold through an outage with retries and through a SIGKILL with the on-disk spool.
 *
 * The receiver (test/support/trace_sink.ts) is a separate, light process that checks the structure of
 * every request; a first version of the product passed its whole suite while one trace in ten arrived
 * split, which is what this file is for.
 */
import assert from "node:assert/strict";
import { collectorCommand, type CollectorProcess, startCollectorProcess } from "./support/collector.ts";
import {
  type SinkProtocol,
  startTraceSink,
  type TraceSink,
  type TraceSummary,
} from "./support/trace_sink.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One run of `netflow2traces send`. */
interface SendSpec {
  version: 5 | 9 | 10;
  count: number;
  rate: number;
  flowsPerPacket: number;
  exporters: number;
  ipv6?: number;
  sampling?: number;
  seed: number;
}

interface Sent {
  datagrams: number;
  flows: number;
}

/** Runs the product's sender as a user would (a child process) and reads its last line. */
async function send(port: number, spec: SendSpec): Promise<Sent> {
  const [cmd, ...args] = collectorCommand([
    "send",
    "--port",
    String(port),
    "--version",
    String(spec.version),
    "--count",
    String(spec.count),
    "--rate",
    String(spec.rate),
    "--flows-per-packet",
    String(spec.flowsPerPacket),
    "--exporters",
    String(spec.exporters),
    "--seed",
    String(spec.seed),
    ...(spec.ipv6 ? ["--ipv6", String(spec.ipv6)] : []),
    ...(spec.sampling ? ["--sampling", String(spec.sampling)] : []),
  ]);
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  const m = /sent (\d+) datagrams, (\d+) flows/.exec(text);
  assert.ok(out.success && m, `send failed: ${text}${new TextDecoder().decode(out.stderr)}`);
  return { datagrams: Number(m[1]), flows: Number(m[2]) };
}

/** All senders at once (each its own socket, so its own exporters); their totals. */
async function sendAll(port: number, specs: SendSpec[]): Promise<Sent> {
  const results = await Promise.all(specs.map((s) => send(port, s)));
  return {
    datagrams: results.reduce((a, r) => a + r.datagrams, 0),
    flows: results.reduce((a, r) => a + r.flows, 0),
  };
}

/** The numbers of the collector's last `stopped … totals=` line (quoted or not); {} when there is none. */
function stoppedTotals(log: string): Record<string, number> {
  const line = log.split("\n").findLast((l) => /\bstopped\b/.test(l) && /\btotals=/.test(l)) ?? "";
  const out: Record<string, number> = {};
  for (const m of line.matchAll(/\b([a-z_]+)=(\d+)\b/g)) out[m[1]] = Number(m[2]);
  return out;
}

function collectorEnv(sink: TraceSink, env: Record<string, string>): Record<string, string> {
  return {
    OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: sink.protocol,
    OTEL_BSP_SCHEDULE_DELAY: "200",
    ...env,
  };
}

/** The invariants that must hold after every run, whatever happened on the way. */
function assertWhole(sum: TraceSummary, sent: Sent, batch: number, context: string): void {
  const why = `${context}\nsink: ${JSON.stringify(sum)}`;
  assert.equal(sum.badRequests, 0, `undecodable requests; ${why}`);
  assert.equal(sum.invalidIds, 0, `span or trace IDs of the wrong length; ${why}`);
  assert.equal(sum.brokenTraces, 0, `broken traces, first: ${sum.firstBroken}; ${why}`);
  assert.equal(sum.duplicateSpanIds, 0, `spans delivered twice (or span IDs reused); ${why}`);
  assert.equal(sum.flowSpans, sent.flows, `flow spans received ≠ flows sent; ${why}`);
  // Every datagram is one export packet, so one trace: fewer means trace IDs collided across packets.
  assert.equal(sum.traces, sent.datagrams, `traces ≠ datagrams sent; ${why}`);
  assert.equal(sum.rootSpans, sent.datagrams, `netflow.export roots ≠ datagrams sent; ${why}`);
  assert.ok(
    sum.maxSpansPerRequest <= batch,
    `a request had ${sum.maxSpansPerRequest} spans > ${batch}; ${why}`,
  );
}

/** The collector's own books at shutdown agree with what was sent and what the sink got. */
function assertTotals(log: string, sent: Sent, sum: TraceSummary): Record<string, number> {
  const t = stoppedTotals(log);
  const why = `totals ${JSON.stringify(t)}; log tail:\n${log.split("\n").slice(-15).join("\n")}`;
  assert.equal(t.packets, sent.datagrams, `collector packets ≠ datagrams sent; ${why}`);
  assert.equal(t.flows, sent.flows, `collector flows ≠ flows sent; ${why}`);
  assert.equal(t.spans_exported, sum.spans, `collector spans_exported ≠ spans received; ${why}`);
  for (const key of ["spans_dropped", "spans_failed", "flows_dropped", "flows_failed", "flows_held"]) {
    if (key in t) assert.equal(t[key], 0, `${key}; ${why}`);
  }
  if ("flows_exported" in t) assert.equal(t.flows_exported, sent.flows, `flows_exported; ${why}`);
  return t;
}

function report(label: string, sent: Sent, sum: TraceSummary, startedMs: number, extra = ""): void {
  console.log(
    `trace integrity (${label}): flows sent ${sent.flows} in ${sent.datagrams} datagrams, ` +
      `traces ${sum.traces}, broken ${sum.brokenTraces}, duplicate span ids ${sum.duplicateSpanIds}, ` +
      `flow spans ${sum.flowSpans}, requests ${sum.acceptedRequests} accepted/${sum.rejectedRequests} ` +
      `rejected, spans/request ${sum.minSpansPerRequest}–${sum.maxSpansPerRequest}${extra}, ` +
      `${((performance.now() - startedMs) / 1000).toFixed(1)} s`,
  );
}

/** Waits until every flow sent has arrived (bounded), so SIGTERM only has the tail to flush. */
async function stopWhenDelivered(
  collector: CollectorProcess,
  sink: TraceSink,
  sent: Sent,
  timeoutMs: number,
): Promise<TraceSummary> {
  await sink.waitFor((s) => s.flowSpans >= sent.flows, timeoutMs);
  const code = await collector.stop("SIGTERM");
  assert.equal(code, 0, `collector exit code after SIGTERM; log:\n${collector.stderr()}`);
  return await sink.summary();
}

/** Sink + collector for one test; both are stopped however the test ends. */
async function withSinkAndCollector(
  protocol: SinkProtocol,
  env: Record<string, string>,
  fn: (sink: TraceSink, collector: CollectorProcess) => Promise<void>,
): Promise<void> {
  const sink = await startTraceSink({ protocol });
  let collector: CollectorProcess | undefined;
  try {
    collector = await startCollectorProcess(collectorEnv(sink, env));
    await fn(sink, collector);
  } finally {
    await collector?.stop("SIGKILL");
    await sink.close();
  }
}

const PROTOCOLS: SinkProtocol[] = ["grpc", "http/protobuf"];

for (const protocol of PROTOCOLS) {
  Deno.test({
    name: `trace integrity (${protocol}): 200k mixed v5/v9/IPFIX flows, batch 97, every trace whole`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const started = performance.now();
      const batch = 97; // odd, so packets of 32, 152 and 202 spans straddle requests
      await withSinkAndCollector(protocol, {
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE: String(batch),
        OTEL_BSP_MAX_QUEUE_SIZE: "262144",
      }, async (sink, collector) => {
        // About 30k flows/s in all for ~7 s: well inside what the collector handles on 2 cores.
        const sent = await sendAll(collector.port, [
          { version: 5, count: 1_700, rate: 250, flowsPerPacket: 30, exporters: 4, seed: 11 },
          { version: 9, count: 400, rate: 55, flowsPerPacket: 200, exporters: 3, ipv6: 0.3, seed: 12 },
          {
            version: 10,
            count: 500,
            rate: 70,
            flowsPerPacket: 150,
            exporters: 3,
            ipv6: 0.3,
            sampling: 100,
            seed: 13,
          },
        ]);
        assert.ok(sent.flows >= 200_000, `only ${sent.flows} flows sent`);
        const sum = await stopWhenDelivered(collector, sink, sent, 30_000);
        report(`${protocol}, volume, batch ${batch}`, sent, sum, started);
        assertWhole(sum, sent, batch, collector.stderr().slice(-2_000));
        assertTotals(collector.stderr(), sent, sum);
      });
    },
  });

  Deno.test({
    name: `trace integrity (${protocol}): batch 1, every span its own request`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const started = performance.now();
      await withSinkAndCollector(protocol, {
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "1",
        OTEL_BSP_MAX_QUEUE_SIZE: "65536",
      }, async (sink, collector) => {
        const sent = await sendAll(collector.port, [
          { version: 5, count: 40, rate: 40, flowsPerPacket: 30, exporters: 2, seed: 21 },
          { version: 9, count: 30, rate: 30, flowsPerPacket: 50, exporters: 2, ipv6: 0.3, seed: 22 },
          { version: 10, count: 30, rate: 30, flowsPerPacket: 50, exporters: 2, ipv6: 0.3, seed: 23 },
        ]);
        const sum = await stopWhenDelivered(collector, sink, sent, 40_000);
        report(`${protocol}, batch 1`, sent, sum, started);
        assertWhole(sum, sent, 1, collector.stderr().slice(-2_000));
        assert.equal(sum.acceptedRequests, sum.spans, "one span per request");
        assertTotals(collector.stderr(), sent, sum);
      });
    },
  });

  Deno.test({
    name: `trace integrity (${protocol}): batch 1024, 602-span packets straddling requests`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const started = performance.now();
      const batch = 1024;
      await withSinkAndCollector(protocol, {
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE: String(batch),
        OTEL_BSP_MAX_QUEUE_SIZE: "262144",
      }, async (sink, collector) => {
        // The sender's largest v9/IPFIX packets (MAX_FLOWS_PER_PACKET, 600 flows): 1,024 is not a multiple
        // of 602, so most requests end inside a packet.
        const sent = await sendAll(collector.port, [
          { version: 5, count: 300, rate: 100, flowsPerPacket: 30, exporters: 2, seed: 31 },
          { version: 9, count: 60, rate: 20, flowsPerPacket: 600, exporters: 3, ipv6: 0.3, seed: 32 },
          { version: 10, count: 60, rate: 20, flowsPerPacket: 600, exporters: 3, ipv6: 0.3, seed: 33 },
        ]);
        const sum = await stopWhenDelivered(collector, sink, sent, 30_000);
        report(`${protocol}, batch ${batch}`, sent, sum, started);
        assertWhole(sum, sent, batch, collector.stderr().slice(-2_000));
        assertTotals(collector.stderr(), sent, sum);
      });
    },
  });

  Deno.test({
    name: `trace integrity (${protocol}): through 503/UNAVAILABLE then connection refused, every flow once`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const started = performance.now();
      const batch = 257;
      // The default queue (65,536 spans) holds the whole outage: ~3.5k flows/s for ≤ 12 s with backoff.
      await withSinkAndCollector(protocol, {
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE: String(batch),
      }, async (sink, collector) => {
        const sending = sendAll(collector.port, [
          { version: 5, count: 500, rate: 50, flowsPerPacket: 30, exporters: 2, seed: 41 },
          { version: 10, count: 200, rate: 20, flowsPerPacket: 100, exporters: 2, ipv6: 0.3, seed: 42 },
        ]);
        await sleep(1_000);
        await sink.setMode({ fail: { http: 503, grpc: 14, retryAfterSeconds: 1 } });
        await sleep(3_000);
        await sink.setMode({ fail: null, down: true });
        await sleep(3_000);
        await sink.setMode({ down: false });
        const sent = await sending;
        const sum = await stopWhenDelivered(collector, sink, sent, 30_000);
        const log = collector.stderr();
        report(`${protocol}, outage`, sent, sum, started);
        assert.ok(sum.rejectedRequests > 0, "the fault mode rejected nothing: the outage did not happen");
        assertWhole(sum, sent, batch, log.slice(-2_000));
        assertTotals(log, sent, sum);
        assert.match(log, /^\S+ WARNING .*export/im, "no WARNING line about the failing export");
        assert.match(log, /^\S+ INFO .*recovered/im, "no INFO line about the recovery");
      });
    },
  });

  Deno.test({
    name: `trace integrity (${protocol}): backend down 60 s at 500 flows/s, every flow once`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const started = performance.now();
      const batch = 1024;
      // 500 flows/s for 70 s, down (connection refused) from 5 s to 65 s: about 31k spans wait, within the
      // default queue (65,536), so nothing may be lost or dropped.
      await withSinkAndCollector(protocol, {}, async (sink, collector) => {
        const sending = sendAll(collector.port, [
          { version: 5, count: 1_750, rate: 25, flowsPerPacket: 20, exporters: 1, seed: 61 },
        ]);
        await sleep(5_000);
        await sink.setMode({ down: true });
        await sleep(60_000);
        await sink.setMode({ down: false });
        const sent = await sending;
        const sum = await stopWhenDelivered(collector, sink, sent, 60_000);
        const log = collector.stderr();
        report(`${protocol}, 60 s outage`, sent, sum, started);
        assertWhole(sum, sent, batch, log.slice(-2_000));
        assertTotals(log, sent, sum);
        assert.match(log, /^\S+ WARNING export failing /m, "no WARNING line about the failing export");
        assert.match(log, /^\S+ INFO export recovered .*outage_s=6\d/m, "no INFO line about the recovery");
      });
    },
  });

  Deno.test({
    name:
      `trace integrity (${protocol}): SIGKILL with the backend down, restart on the spool, every flow once`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const started = performance.now();
      const batch = 257;
      const spool = await Deno.makeTempDir({ prefix: "n2t-spool-" });
      const sink = await startTraceSink({ protocol, down: true });
      const env = collectorEnv(sink, {
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE: String(batch),
        NETFLOW_SPOOL_DIR: spool,
      });
      const collectors: CollectorProcess[] = [];
      try {
        const first = await startCollectorProcess(env);
        collectors.push(first);
        const sent = await sendAll(first.port, [
          { version: 5, count: 134, rate: 70, flowsPerPacket: 30, exporters: 2, seed: 51 },
          { version: 9, count: 100, rate: 50, flowsPerPacket: 100, exporters: 2, ipv6: 0.3, seed: 52 },
          { version: 10, count: 60, rate: 30, flowsPerPacket: 100, exporters: 2, ipv6: 0.3, seed: 53 },
        ]);
        await sleep(2_000); // every batch is on disk about a second after it was queued
        const spooled = await dirStats(spool);
        first.kill("SIGKILL");
        await first.exited;
        assert.ok(spooled.files > 0, `nothing in the spool directory ${spool} before the SIGKILL`);

        const second = await startCollectorProcess(env);
        collectors.push(second);
        await sink.setMode({ down: false });
        const sum = await stopWhenDelivered(second, sink, sent, 30_000);
        report(
          `${protocol}, spool restart`,
          sent,
          sum,
          started,
          `, spool held ${spooled.files} files/${spooled.bytes} bytes`,
        );
        assertWhole(sum, sent, batch, second.stderr().slice(-2_000));

        // Nothing delivered is replayed again: a third start on the same spool sends nothing.
        const third = await startCollectorProcess(env);
        collectors.push(third);
        await sleep(1_500);
        assert.equal(await third.stop("SIGTERM"), 0, third.stderr());
        const after = await sink.summary();
        assert.equal(after.spans, sum.spans, `spans replayed after delivery: ${JSON.stringify(after)}`);
      } finally {
        for (const c of collectors) await c.stop("SIGKILL");
        await sink.close();
        await Deno.remove(spool, { recursive: true }).catch(() => {});
      }
    },
  });
}

/** Files and bytes under `dir`, recursively. */
async function dirStats(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0, bytes = 0;
  for await (const e of Deno.readDir(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) {
      const sub = await dirStats(path);
      files += sub.files;
      bytes += sub.bytes;
    } else if (e.isFile) {
      files++;
      bytes += (await Deno.stat(path)).size;
    }
  }
  return { files, bytes };
}
