/**
 * NETFLOW_ALLOWED_EXPORTERS end to end: datagrams from sources outside the list are dropped before decoding
 * (no spans) and counted as rejected in /metrics and in the totals line at shutdown; IPv4 and IPv6.
 */
import assert from "node:assert/strict";
import { encodeV5 } from "../src/tools/encode.ts";
import { freeTcpPort, freeUdpPort, startCollectorProcess } from "./support/collector.ts";
import { startOtlpReceiver } from "./support/otlp_receiver.ts";
import { parseMetrics } from "./support/prometheus.ts";

const v5 = encodeV5({ sysUptimeMs: 10_000, exportTimeMs: Date.now() }, [
  { srcAddr: "10.0.0.1", dstAddr: "10.0.0.2", srcPort: 5000, dstPort: 443, protocol: 6 },
]);

async function sendFrom(host: string, port: number, datagrams: Uint8Array[]): Promise<void> {
  const sock = Deno.listenDatagram({ hostname: host, port: 0, transport: "udp" });
  try {
    for (const d of datagrams) await sock.send(d, { transport: "udp", hostname: host, port });
  } finally {
    sock.close();
  }
}

async function run(host: "127.0.0.1" | "::1", allowed: string, expectAccepted: boolean) {
  const receiver = await startOtlpReceiver({ protocol: "http" });
  const httpPort = freeTcpPort();
  const collector = await startCollectorProcess({
    NETFLOW_LISTEN_HOST: host,
    NETFLOW_LISTEN_PORT: String(freeUdpPort(host)),
    NETFLOW_ALLOWED_EXPORTERS: allowed,
    NETFLOW_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
    OTEL_BSP_SCHEDULE_DELAY: "50",
  });
  try {
    await sendFrom(host, collector.port, [v5, v5, v5]);
    let metrics = new Map<string, number>();
    for (let i = 0; i < 40; i++) {
      metrics = parseMetrics(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text());
      const seen = (metrics.get("netflow2traces_datagrams_total") ?? 0) +
        (metrics.get("netflow2traces_datagrams_rejected_total") ?? 0);
      if (seen === 3) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    if (expectAccepted) {
      await receiver.waitForSpans(3 * 3, 5_000);
      assert.equal(metrics.get("netflow2traces_datagrams_total"), 3);
      assert.equal(metrics.get("netflow2traces_datagrams_rejected_total"), 0);
    } else {
      assert.equal(metrics.get("netflow2traces_datagrams_rejected_total"), 3);
      assert.equal(metrics.get("netflow2traces_datagrams_total"), 0);
      assert.equal(metrics.get("netflow2traces_flows_total"), 0);
    }
    assert.equal(await collector.stop(), 0);
    const totals = collector.stderr().split("\n").find((l) => l.includes("stopped")) ?? "";
    assert.match(totals, new RegExp(`packets=${expectAccepted ? 3 : 0} flows=${expectAccepted ? 3 : 0} `));
    assert.match(totals, new RegExp(`rejected=${expectAccepted ? 0 : 3} `));
    // Nothing from a rejected source reaches the backend, not even an error span.
    if (!expectAccepted) assert.equal(receiver.spans.length, 0);
    else assert.equal(receiver.spans.length, 9);
  } finally {
    await collector.stop("SIGKILL");
    await receiver.close();
  }
}

Deno.test("allow-list: 127.0.0.1 outside 10.0.0.0/8 is rejected and counted, no spans", async () => {
  await run("127.0.0.1", "10.0.0.0/8", false);
});

Deno.test("allow-list: 127.0.0.1 inside 127.0.0.0/8,::1/128 is accepted", async () => {
  await run("127.0.0.1", "127.0.0.0/8,::1/128", true);
});

Deno.test("allow-list: IPv6 ::1 accepted by ::1/128, rejected by 127.0.0.0/8,2001:db8::/32", async () => {
  await run("::1", "127.0.0.0/8,::1/128", true);
  await run("::1", "127.0.0.0/8,2001:db8::/32", false);
});
