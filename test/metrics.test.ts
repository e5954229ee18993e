/**
 * Self-metrics and health: the Prometheus text of src/metrics.ts, the health verdict, and both end to end
 * through the collector process (NETFLOW_HTTP_LISTEN) together with the `healthcheck` subcommand.
 */
import assert from "node:assert/strict";
import { HealthTracker, METRICS, type MetricsSources, prometheusText } from "../src/metrics.ts";
import { DEFAULT_TEMPLATE_DECODER_OPTIONS } from "../src/netflow/decoder_options.ts";
import { TemplateDecoder } from "../src/netflow/template_decoder.ts";
import { encodeV5 } from "../src/tools/encode.ts";
import { collectorCommand, freeTcpPort, sendDatagrams, startCollectorProcess } from "./support/collector.ts";
import { startOtlpReceiver } from "./support/otlp_receiver.ts";
import { zeroExportCounters } from "../src/counters.ts";
import { type ExportStatus, initialExportStatus } from "../src/traces/export_status.ts";
import { parseMetrics } from "./support/prometheus.ts";

function sources(): MetricsSources {
  return {
    ingest: {
      datagrams: 3,
      bytes: 300,
      flows: 7,
      rejected: 2,
      overloaded: 0,
      errors: { truncated: 1, 'we"ird\n': 4 },
      sequenceLost: 5,
      rateLimited: {},
    },
    exported: { ...zeroExportCounters(), spansQueued: 9, spansDropped: 1, spansExported: 8, spansHeld: 1 },
    decoder: new TemplateDecoder(DEFAULT_TEMPLATE_DECODER_OPTIONS).stats,
    queueDepth: () => 1,
    queueCapacity: 2048,
  };
}

Deno.test("metrics: Prometheus text with HELP/TYPE for every metric, errors labelled by kind", () => {
  const text = prometheusText(sources());
  const values = parseMetrics(text);
  for (const def of METRICS) {
    const name = `netflow2traces_${def.name}`;
    assert.match(text, new RegExp(`^# HELP ${name} \\S.*\\n# TYPE ${name} ${def.type}$`, "m"));
    if (def.type === "counter") assert.ok(name.endsWith("_total"), name);
  }
  assert.equal(values.get("netflow2traces_datagrams_total"), 3);
  assert.equal(values.get("netflow2traces_bytes_total"), 300);
  assert.equal(values.get("netflow2traces_flows_total"), 7);
  assert.equal(values.get("netflow2traces_datagrams_rejected_total"), 2);
  assert.equal(values.get('netflow2traces_decode_errors_total{kind="truncated"}'), 1);
  assert.equal(values.get('netflow2traces_decode_errors_total{kind="we\\"ird\\n"}'), 4);
  assert.equal(values.get("netflow2traces_sequence_lost_total"), 5);
  assert.equal(values.get("netflow2traces_spans_dropped_total"), 1);
  assert.equal(values.get("netflow2traces_export_queue_spans"), 1);
  assert.equal(values.get("netflow2traces_export_queue_capacity_spans"), 2048);
  assert.equal(values.get("netflow2traces_templates"), 0);
  assert.equal(values.get("netflow2traces_healthy"), 1);
  assert.ok(text.endsWith("\n"));
});

Deno.test("health: unhealthy after exports fail for longer than the limit, healthy again on success", () => {
  let now = 0;
  let receiving = true;
  let status: ExportStatus = initialExportStatus();
  const health = new HealthTracker(() => status, () => receiving, 60_000, () => now);
  assert.equal(health.healthy(), true);
  status = {
    ...status,
    state: "failing",
    failingSinceMs: 1_000,
    consecutiveFailures: 1,
    lastError: "refused",
  };
  now = 60_000;
  assert.equal(health.healthy(), true);
  assert.equal(health.failingSeconds(), 59);
  assert.match(health.detail(zeroExportCounters()), /export_state=failing\n/);
  assert.match(health.detail(zeroExportCounters()), /export_last_error=refused\n/);
  now = 61_001;
  assert.equal(health.healthy(), false);
  status = { ...initialExportStatus(), lastSuccessMs: 61_000 }; // one success resets the clock
  assert.equal(health.healthy(), true);
  assert.equal(health.failingSeconds(), 0);
  assert.match(
    health.detail(zeroExportCounters()),
    /export_state=ok\nexport_last_success=1970-01-01T00:01:01.000Z/,
  );
  receiving = false;
  assert.equal(health.healthy(), false);
});

async function healthcheck(target: string): Promise<{ code: number; out: string }> {
  const [cmd, ...args] = collectorCommand(["healthcheck", target]);
  const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const t = new TextDecoder();
  return { code: r.code, out: t.decode(r.stdout) + t.decode(r.stderr) };
}

Deno.test("metrics end to end: /metrics and /healthz of the collector process, and `healthcheck`", async () => {
  const receiver = await startOtlpReceiver({ protocol: "http" });
  const httpPort = freeTcpPort();
  const collector = await startCollectorProcess({
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
    OTEL_BSP_SCHEDULE_DELAY: "100",
    NETFLOW_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
  });
  try {
    assert.match(collector.stderr(), new RegExp(`http://127\\.0\\.0\\.1:${httpPort}`));
    const v5 = encodeV5({ sysUptimeMs: 10_000, exportTimeMs: Date.now() }, [
      { srcAddr: "10.0.0.1", dstAddr: "10.0.0.2", srcPort: 5000, dstPort: 443, protocol: 6 },
      { srcAddr: "10.0.0.3", dstAddr: "10.0.0.4", srcPort: 5001, dstPort: 53, protocol: 17 },
    ]);
    await sendDatagrams(collector.port, [v5, v5, new Uint8Array([0, 42, 0, 0]), new Uint8Array([0, 5, 0])]);
    await receiver.waitForSpans(2 * 4 + 2 * 2);
    const base = `http://127.0.0.1:${httpPort}`;
    let values = new Map<string, number>();
    for (let i = 0; i < 50; i++) { // exported counters are updated when the response arrives
      const res = await fetch(`${base}/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
      values = parseMetrics(await res.text());
      if (values.get("netflow2traces_spans_exported_total") === 12) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(values.get("netflow2traces_datagrams_total"), 4);
    assert.equal(values.get("netflow2traces_bytes_total"), 2 * (24 + 2 * 48) + 4 + 3);
    assert.equal(values.get("netflow2traces_flows_total"), 4);
    assert.equal(values.get('netflow2traces_decode_errors_total{kind="unknown_version"}'), 1);
    assert.equal(values.get('netflow2traces_decode_errors_total{kind="truncated"}'), 1);
    assert.equal(values.get("netflow2traces_spans_exported_total"), 12);
    assert.equal(values.get("netflow2traces_spans_dropped_total"), 0);
    assert.equal(values.get("netflow2traces_healthy"), 1);
    assert.equal(values.get("netflow2traces_templates"), 0);
    const hz = await fetch(`${base}/healthz`);
    assert.equal(hz.status, 200);
    assert.match(await hz.text(), /^ok\nreceiving=true\nexport_state=ok\n/);
    const ok = await healthcheck(`127.0.0.1:${httpPort}`);
    assert.equal(ok.code, 0, ok.out);
  } finally {
    assert.equal(await collector.stop(), 0);
    await receiver.close();
  }
  // The listener closes with the collector.
  const gone = await healthcheck(`127.0.0.1:${httpPort}`);
  assert.equal(gone.code, 1, gone.out);
});

Deno.test("metrics end to end: an HTTP listen port in use is one clear line and exit code 1", async () => {
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const collector = await startCollectorProcess({
      OTEL_TRACES_EXPORTER: "none",
      NETFLOW_HTTP_LISTEN: `127.0.0.1:${(busy.addr as Deno.NetAddr).port}`,
    }, { waitForListening: false });
    assert.equal(await collector.exited, 1);
    assert.match(collector.stderr(), /cannot listen on http 127\.0\.0\.1:\d+: address already in use/);
  } finally {
    busy.close();
  }
});

for (const protocol of ["http", "grpc"] as const) {
  Deno.test(`metrics over OTLP (${protocol}): OTEL_METRICS_EXPORTER=otlp pushes the same counters`, async () => {
    const receiver = await startOtlpReceiver({ protocol });
    const collector = await startCollectorProcess({
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: protocol === "http" ? "http/protobuf" : "grpc",
      OTEL_BSP_SCHEDULE_DELAY: "100",
      OTEL_METRICS_EXPORTER: "otlp",
      OTEL_METRIC_EXPORT_INTERVAL: "300",
      OTEL_SERVICE_NAME: "nf2t-metrics",
    });
    try {
      const v5 = encodeV5({ sysUptimeMs: 10_000, exportTimeMs: Date.now() }, [
        { srcAddr: "10.0.0.1", dstAddr: "10.0.0.2", srcPort: 5000, dstPort: 443, protocol: 6 },
      ]);
      await sendDatagrams(collector.port, [v5, v5, new Uint8Array([0, 42, 0, 0])]);
      await receiver.waitForSpans(3 * 2 + 2);
      const latest = (name: string) => receiver.metrics.filter((m) => m.name === name).at(-1);
      for (let i = 0; i < 50 && (latest("netflow2traces.spans_exported")?.points[0]?.value ?? 0) < 8; i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
      const datagrams = latest("netflow2traces.datagrams")!;
      assert.equal(datagrams.kind, "sum");
      assert.equal(datagrams.points[0].value, 3);
      assert.equal(datagrams.resource["service.name"], "nf2t-metrics");
      assert.equal(latest("netflow2traces.flows")!.points[0].value, 2);
      assert.equal(latest("netflow2traces.spans_exported")!.points[0].value, 8);
      const errors = latest("netflow2traces.decode_errors")!;
      assert.deepEqual(errors.points.map((p) => [p.attributes.kind, p.value]), [["unknown_version", 1]]);
      const queue = latest("netflow2traces.export_queue_capacity_spans")!;
      assert.equal(queue.kind, "gauge");
      assert.equal(queue.points[0].value, 65_536);
      // Metrics requests are not spans.
      assert.ok(receiver.spans.every((s) => s.name.startsWith("netflow.")));
    } finally {
      assert.equal(await collector.stop(), 0);
      await receiver.close();
    }
  });
}
