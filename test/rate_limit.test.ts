/**
 * NETFLOW_RATE_LIMIT (SPEC §3, §5): above the budget an exporter's flows are sampled 1-in-N with the interval
 * multiplied, so estimated sums stay right; traces stay whole; what is left out is counted per exporter and
 * the books balance.
 */
import assert from "node:assert/strict";
import { RATE_LIMITED, RateLimiter } from "../src/rate_limit.ts";
import type { ExportPacket, Flow } from "../src/netflow/types.ts";
import { encodeV5 } from "../src/tools/encode.ts";
import { freeTcpPort, startCollectorProcess } from "./support/collector.ts";
import { startOtlpReceiver } from "./support/otlp_receiver.ts";
import { parseMetrics } from "./support/prometheus.ts";

function packet(address: string, atMs: number, flows: number, bytes: (i: number) => number): ExportPacket {
  return {
    exporterAddress: address,
    receivedAtMs: atMs,
    flows: Array.from({ length: flows }, (_, i): Flow => ({ bytes: bytes(i), packets: 1 })),
  } as unknown as ExportPacket;
}

Deno.test("rate limiter: under the budget nothing changes; at 10× it keeps a tenth, ×10, and the sums hold", () => {
  const limiter = new RateLimiter(1_000);
  const t0 = 1_700_000_000_000;
  // 900 flows/s: under the budget, untouched.
  const calm = packet("192.0.2.1", t0, 900, () => 100);
  assert.equal(limiter.apply(calm), 0);
  assert.equal(calm.flows.length, 900);
  assert.equal(calm.flows[0].samplingInterval, undefined);
  // Another exporter at 10,000 flows/s for 5 s, with varied sizes, already sampled 1-in-2 by the router.
  let sent = 0, estimated = 0, kept = 0, left = 0;
  const keptPerSecond: number[] = [];
  for (let s = 0; s < 5; s++) {
    const keptBefore = kept;
    for (let p = 0; p < 100; p++) {
      const pk = packet(
        "192.0.2.2",
        t0 + s * 1000 + p * 10,
        100,
        (i) => 40 + ((i * 7919 + p * 104729) % 1460),
      );
      for (const f of pk.flows) {
        f.samplingInterval = 2;
        sent += f.bytes! * 2;
      }
      left += limiter.apply(pk);
      for (const f of pk.flows) {
        estimated += f.bytes! * f.samplingInterval!;
        kept++;
        // Marked exactly when its interval was multiplied (the first second's first 1,000 are under budget).
        if (f.extra?.[RATE_LIMITED] === true) {
          assert.ok(f.samplingInterval! > 2 && f.samplingInterval! % 2 === 0);
        } else assert.equal(f.samplingInterval, 2);
      }
    }
    keptPerSecond.push(kept - keptBefore);
  }
  assert.equal(kept + left, 50_000);
  // The flood's first second ramps up (N follows the count so far); after it, the budget holds.
  assert.ok(keptPerSecond[0] < 4_000, `first second: ${keptPerSecond[0]}`);
  for (const k of keptPerSecond.slice(1)) assert.ok(k >= 900 && k <= 1_100, `kept ${keptPerSecond}`);
  assert.ok(Math.abs(estimated - sent) / sent < 0.05, `estimated ${estimated} vs sent ${sent}`);
  // In the steady state every kept flow carries the interval × 10.
  const steady = packet("192.0.2.2", t0 + 5_500, 100, () => 100);
  limiter.apply(steady);
  assert.ok(steady.flows.every((f) => f.samplingInterval === 10), JSON.stringify(steady.flows[0]));
});

Deno.test("end to end: an exporter at 10× NETFLOW_RATE_LIMIT; kept flows ×N, sums within 5 %, traces whole, counted", async () => {
  const receiver = await startOtlpReceiver({ protocol: "grpc" });
  const httpPort = freeTcpPort();
  const collector = await startCollectorProcess({
    NETFLOW_RATE_LIMIT: "300",
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_BSP_SCHEDULE_DELAY: "100",
    NETFLOW_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
    NETFLOW_STATS_INTERVAL: "0",
  });
  const sock = Deno.listenDatagram({ hostname: "127.0.0.9", port: 0, transport: "udp" });
  let sentBytes = 0, sentFlows = 0;
  try {
    // 3,000 flows/s for 3 s: 100 datagrams of 30 flows per second, paced.
    const t0 = Date.now();
    for (let n = 0; n < 300; n++) {
      const due = t0 + n * 10;
      if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
      const flows = Array.from({ length: 30 }, (_, i) => {
        const bytes = 64 + ((n * 31 + i * 97) % 1400);
        sentBytes += bytes;
        return {
          srcAddr: "10.0.0.1",
          dstAddr: "10.0.0.2",
          packets: 1,
          bytes,
          protocol: 17,
          srcPort: 1000 + i,
          dstPort: 53,
        };
      });
      sentFlows += 30;
      const now = Date.now();
      const d = encodeV5(
        { sysUptimeMs: 3_600_000, unixSecs: Math.floor(now / 1000), sequence: n * 30 },
        flows,
      );
      await sock.send(d, { transport: "udp", hostname: "127.0.0.1", port: collector.port });
    }
    await receiver.waitForSpans(300 * 2, 10_000); // every packet's two parents
    await new Promise((r) => setTimeout(r, 800));
    const spans = receiver.spans;
    const roots = spans.filter((s) => s.name === "netflow.export");
    const flowSpans = spans.filter((s) => s.name === "netflow.flow");
    assert.equal(roots.length, 300, "every packet still has its trace");
    const byTrace = new Map<string, number>();
    for (const f of flowSpans) byTrace.set(f.traceId, (byTrace.get(f.traceId) ?? 0) + 1);
    for (const r of roots) assert.equal(byTrace.get(r.traceId) ?? 0, r.attributes["netflow.flow.count"]);
    const limited = flowSpans.filter((s) => s.attributes["netflow.flow.rate_limited"] === true);
    assert.ok(
      limited.length > 0 && flowSpans.length < sentFlows / 3,
      `${flowSpans.length} of ${sentFlows} kept`,
    );
    let estimated = 0;
    for (const f of flowSpans) {
      const interval = Number(f.attributes["netflow.sampling.interval"] ?? 1);
      estimated += Number(f.attributes["netflow.flow.bytes"]) * interval;
      if (f.attributes["netflow.flow.rate_limited"] === true) {
        assert.equal(
          f.attributes["netflow.flow.bytes.estimated"],
          Number(f.attributes["netflow.flow.bytes"]) * interval,
        );
      }
    }
    assert.ok(
      Math.abs(estimated - sentBytes) / sentBytes < 0.05,
      `estimated ${estimated} vs sent ${sentBytes}`,
    );
    const m = parseMetrics(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text());
    const left = m.get('netflow2traces_flows_rate_limited_total{exporter="127.0.0.9"}') ?? 0;
    assert.equal(left + flowSpans.length, sentFlows);
    assert.equal(m.get("netflow2traces_flows_total"), sentFlows);
    assert.equal(
      m.get("netflow2traces_flows_exported_total")! + m.get("netflow2traces_flows_dropped_total")!,
      sentFlows,
      "the books: received = exported + dropped (+ failed + held, 0 here)",
    );
    assert.equal(await collector.stop(), 0);
  } finally {
    sock.close();
    collector.kill("SIGKILL");
    await collector.exited;
    await receiver.close();
  }
});
