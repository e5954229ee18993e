/**
 * End to end, the way a user runs it: the real collector process, real UDP datagrams, and a real OTLP
 * receiver (HTTP and gRPC) that decodes the protobuf the collector sends.
 */
import assert from "node:assert/strict";
import { encodeV1, encodeV5 } from "../src/tools/encode.ts";
import { type CollectorProcess, sendDatagrams, startCollectorProcess } from "./support/collector.ts";
import { type DecodedSpan, type Receiver, startOtlpReceiver } from "./support/otlp_receiver.ts";

const EXPORT_MS = 1_700_000_000_250;
const UPTIME = 1_000_000;

function v5Datagram(sequence: number, flows: number) {
  return encodeV5(
    {
      sysUptimeMs: UPTIME,
      exportTimeMs: EXPORT_MS,
      sequence,
      engineType: 1,
      engineId: 7,
      samplingInterval: 10,
    },
    Array.from({ length: flows }, (_, i) => ({
      srcAddr: `10.1.0.${i + 1}`,
      dstAddr: "192.168.7.20",
      nextHop: "10.1.255.1",
      inputIf: 4,
      outputIf: 9,
      packets: 10 + i,
      bytes: 1500 * (10 + i),
      firstSwitched: UPTIME - 30_000 + i,
      lastSwitched: UPTIME - 1_000,
      srcPort: 40000 + i,
      dstPort: 443,
      tcpFlags: 0x1b,
      protocol: 6,
      tos: 0x28,
      srcAs: 64500,
      dstAs: 15169,
      srcMask: 24,
      dstMask: 22,
    })),
  );
}

const ms = (ns: bigint) => Number(ns / 1000n) / 1000;

async function withPipeline(
  protocol: "http" | "grpc",
  env: Record<string, string>,
  fn: (collector: CollectorProcess, receiver: Receiver) => Promise<void>,
) {
  const receiver = await startOtlpReceiver({ protocol });
  const collector = await startCollectorProcess({
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: protocol === "http" ? "http/protobuf" : "grpc",
    OTEL_BSP_SCHEDULE_DELAY: "100",
    ...env,
  });
  try {
    await fn(collector, receiver);
  } finally {
    await collector.stop("SIGKILL");
    await receiver.close();
  }
}

function byTrace(spans: DecodedSpan[]): Map<string, DecodedSpan[]> {
  const traces = new Map<string, DecodedSpan[]>();
  for (const s of spans) traces.set(s.traceId, [...(traces.get(s.traceId) ?? []), s]);
  return traces;
}

for (const protocol of ["http", "grpc"] as const) {
  Deno.test(`v5 over UDP → one trace per datagram with SPEC attributes and flow times (${protocol})`, async () => {
    await withPipeline(protocol, {
      OTEL_SERVICE_NAME: "nf2t-test",
      OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=ci",
      OTEL_EXPORTER_OTLP_HEADERS: "x-tenant=blue%20team",
      OTEL_EXPORTER_OTLP_COMPRESSION: "gzip",
    }, async (collector, receiver) => {
      const exporterPort = await sendDatagrams(collector.port, [v5Datagram(100, 3), v5Datagram(103, 2)]);
      const spans = await receiver.waitForSpans(2 * 2 + 5, 10_000);
      assert.equal(spans.length, 9);
      assert.equal(receiver.headers["x-tenant"], "blue team");
      const traces = byTrace(spans);
      assert.equal(traces.size, 2);
      for (const trace of traces.values()) {
        const root = trace.find((s) => s.name === "netflow.export")!;
        const proc = trace.find((s) => s.name === "netflow.process_flows")!;
        const flows = trace.filter((s) => s.name === "netflow.flow");
        assert.equal(root.parentSpanId, "");
        assert.equal(proc.parentSpanId, root.spanId);
        for (const f of flows) assert.equal(f.parentSpanId, proc.spanId);
        assert.equal(root.resource["service.name"], "nf2t-test");
        assert.equal(root.resource["deployment.environment"], "ci");
        assert.equal(root.attributes["netflow.exporter.address"], "127.0.0.1");
        assert.equal(root.attributes["netflow.exporter.port"], exporterPort);
        assert.equal(root.attributes["netflow.collector.host"], "127.0.0.1");
        assert.equal(root.attributes["netflow.collector.port"], collector.port);
        assert.equal(root.attributes["netflow.collector.protocol"], "udp");
        assert.equal(root.attributes["netflow.version"], 5);
        assert.equal(root.attributes["netflow.sys_uptime_ms"], UPTIME);
        assert.equal(root.attributes["netflow.export_time"], 1_700_000_000);
        assert.equal(typeof root.attributes["netflow.exporter.clock_skew_ms"], "number");
        assert.equal(root.attributes["netflow.flow.count"], flows.length);
        assert.equal(proc.attributes["netflow.flow.count"], flows.length);
        assert.equal(root.attributes["netflow.packet.size_bytes"], 24 + 48 * flows.length);
        // Parents enclose the flows and end at the export time.
        assert.equal(ms(root.endNs), EXPORT_MS);
        for (const f of flows) {
          assert.ok(f.startNs >= root.startNs && f.endNs <= root.endNs);
          const i = f.attributes["netflow.flow.index"] as number;
          assert.equal(ms(f.startNs), EXPORT_MS - 30_000 + i);
          assert.equal(ms(f.endNs), EXPORT_MS - 1_000);
          assert.deepEqual(
            Object.fromEntries(Object.entries(f.attributes).filter(([k]) => k !== "netflow.community_id")),
            {
              "source.address": `10.1.0.${i + 1}`,
              "source.port": 40000 + i,
              "destination.address": "192.168.7.20",
              "destination.port": 443,
              "client.address": `10.1.0.${i + 1}`,
              "client.port": 40000 + i,
              "server.address": "192.168.7.20",
              "server.port": 443,
              "network.peer.address": "192.168.7.20",
              "network.peer.port": 443,
              "network.transport": "tcp",
              "network.protocol.name": "tcp",
              "network.protocol.number": 6,
              "network.type": "ipv4",
              "netflow.version": 5,
              "netflow.flow.index": i,
              "netflow.flow.bytes": 1500 * (10 + i),
              "netflow.flow.packets": 10 + i,
              "netflow.flow.first_switched": UPTIME - 30_000 + i,
              "netflow.flow.last_switched": UPTIME - 1_000,
              "netflow.flow.duration_ms": 29_000 - i,
              "netflow.nexthop": "10.1.255.1",
              "netflow.interface.input": 4,
              "netflow.interface.output": 9,
              "netflow.tos": 0x28,
              "netflow.tcp_flags": 0x1b,
              "netflow.tcp_flags.names": "SYN,ACK,FIN,PSH",
              "netflow.src_as": 64500,
              "netflow.dst_as": 15169,
              "netflow.src_mask": 24,
              "netflow.dst_mask": 22,
              "netflow.sampling.interval": 10,
              "netflow.flow.bytes.estimated": 15000 * (10 + i),
              "netflow.flow.packets.estimated": 10 * (10 + i),
            },
          );
          assert.match(String(f.attributes["netflow.community_id"]), /^1:[A-Za-z0-9+/]{27}=$/);
        }
      }
    });
  });
}

Deno.test("v1 datagram and garbage: ERROR export span, and the collector keeps going", async () => {
  await withPipeline("http", {}, async (collector, receiver) => {
    const v1 = encodeV1({ sysUptimeMs: 5000, exportTimeMs: Date.now() }, [{
      srcAddr: "172.16.0.1",
      dstAddr: "8.8.8.8",
      nextHop: "0.0.0.0",
      inputIf: 1,
      outputIf: 2,
      packets: 1,
      bytes: 76,
      firstSwitched: 4000,
      lastSwitched: 4000,
      srcPort: 53000,
      dstPort: 53,
      protocol: 17,
      tos: 0,
      tcpFlags: 0,
    }]);
    await sendDatagrams(collector.port, [
      new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"),
      new Uint8Array([0, 5, 0, 30, 1, 2]), // v5 header cut short
      v1,
    ]);
    const spans = await receiver.waitForSpans(2 + 2 + 3, 10_000);
    const roots = spans.filter((s) => s.name === "netflow.export");
    assert.equal(roots.length, 3);
    const bad = roots.filter((s) => s.status.code === 2);
    assert.equal(bad.length, 2);
    for (const s of bad) {
      assert.ok(s.status.message.length > 0);
      assert.equal(s.events[0]?.name, "exception");
      assert.equal(s.attributes["netflow.flow.count"], 0);
    }
    assert.deepEqual(bad.map((s) => s.attributes["error.type"]).sort(), ["truncated", "unknown_version"]);
    const flow = spans.find((s) => s.name === "netflow.flow")!;
    assert.equal(flow.attributes["netflow.version"], 1);
    assert.equal(flow.attributes["destination.port"], 53);
    assert.equal(flow.attributes["network.transport"], "udp");
    assert.equal(flow.attributes["client.address"], "172.16.0.1");
    assert.equal(flow.attributes["server.address"], "8.8.8.8");
  });
});

Deno.test("SIGTERM: every flow sent just before it reaches the receiver, then exit 0", async () => {
  const receiver = await startOtlpReceiver({ protocol: "grpc" });
  // A long schedule delay: nothing would be exported before shutdown unless shutdown flushes.
  const collector = await startCollectorProcess({
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_BSP_SCHEDULE_DELAY: "60000",
  });
  try {
    const datagrams = Array.from({ length: 40 }, (_, i) => v5Datagram(i * 30, 30));
    await sendDatagrams(collector.port, datagrams);
    const code = await collector.stop("SIGTERM");
    assert.equal(code, 0, collector.stderr());
    const flows = receiver.spans.filter((s) => s.name === "netflow.flow");
    assert.equal(flows.length, 40 * 30);
    assert.match(collector.stderr(), /stopped/);
  } finally {
    await collector.stop("SIGKILL");
    await receiver.close();
  }
});

Deno.test("port in use: one clear line and exit code 1", async () => {
  const holder = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  try {
    const port = (holder.addr as Deno.NetAddr).port;
    const collector = await startCollectorProcess(
      { NETFLOW_LISTEN_PORT: String(port), OTEL_TRACES_EXPORTER: "none" },
      { waitForListening: false },
    );
    assert.equal(await collector.exited, 1);
    const lines = collector.stderr().trim().split("\n");
    assert.equal(lines.length, 1, collector.stderr());
    assert.match(lines[0], /address already in use/);
    assert.match(lines[0], new RegExp(`127\\.0\\.0\\.1:${port}`));
  } finally {
    holder.close();
  }
});

Deno.test("IPv6 listen address :: receives datagrams sent to ::1", async () => {
  const collector = await startCollectorProcess({
    NETFLOW_LISTEN_HOST: "::",
    OTEL_TRACES_EXPORTER: "console",
    OTEL_BSP_SCHEDULE_DELAY: "50",
  });
  try {
    const sock = Deno.listenDatagram({ hostname: "::1", port: 0, transport: "udp" });
    await sock.send(v5Datagram(1, 1), { transport: "udp", hostname: "::1", port: collector.port });
    sock.close();
    const deadline = Date.now() + 10_000;
    while (!collector.stdout().includes('"netflow.flow"') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const lines = collector.stdout().trim().split("\n").map((l) => JSON.parse(l));
    const root = lines.find((l) => l.name === "netflow.export");
    assert.equal(root.attributes["netflow.exporter.address"], "::1");
    assert.equal(lines.filter((l) => l.name === "netflow.flow").length, 1);
  } finally {
    await collector.stop("SIGKILL");
  }
});

Deno.test("signals: an immediate echo of SIGTERM is ignored; a second one later exits at once (130)", async () => {
  // Nothing listens on the endpoint and the timeout is long: the flush at shutdown takes seconds.
  const collector = await startCollectorProcess({
    OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9",
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
    OTEL_EXPORTER_OTLP_TIMEOUT: "30000",
    OTEL_BSP_SCHEDULE_DELAY: "50",
  });
  try {
    await sendDatagrams(collector.port, [v5Datagram(1, 5)]);
    await new Promise((r) => setTimeout(r, 300)); // an export is now retrying against the closed port
    collector.kill("SIGTERM");
    collector.kill("SIGTERM"); // the echo a task runner adds
    await new Promise((r) => setTimeout(r, 1_300));
    assert.doesNotMatch(collector.stderr(), /exiting without flushing/);
    collector.kill("SIGTERM");
    assert.equal(await collector.exited, 130, collector.stderr());
    assert.match(collector.stderr(), /second SIGTERM: exiting without flushing/);
  } finally {
    await collector.stop("SIGKILL");
  }
});
