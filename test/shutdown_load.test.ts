/**
 * Graceful shutdown under load: SIGTERM while a sender is still sending v5 and IPFIX at about 3,000
 * datagrams/s, and keeps sending past the collector's exit (shutdown must not wait for a quiet exporter). Every datagram the collector counted as received is decoded and its spans reach the receiver:
 * the flows in the collector's totals line equal the flow spans the receiver got, and nothing was dropped or
 * failed.
 */
import assert from "node:assert/strict";
import { encodeIpfix, encodeV5, flowRecord, standardTemplate } from "../src/tools/encode.ts";
import { startCollectorProcess } from "./support/collector.ts";
import { startTraceSink } from "./support/trace_sink.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const protocol of ["http", "grpc"] as const) {
  Deno.test({
    name: `shutdown under load (${protocol}): SIGTERM mid-stream loses no received flow`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      // A light receiver in its own process: a receiver that decodes every attribute would be what the
      // shutdown waits for, and the test would time the receiver.
      const receiver = await startTraceSink({ protocol: protocol === "grpc" ? "grpc" : "http/protobuf" });
      const collector = await startCollectorProcess({
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: protocol === "http" ? "http/protobuf" : "grpc",
      });
      const template = standardTemplate(4, { id: 300, times: "milliseconds" });
      const now = Date.now();
      const flows = (k: number, n: number) =>
        Array.from({ length: n }, (_, i) => ({
          srcAddr: `10.${k & 255}.${(k >> 8) & 255}.${i + 1}`,
          dstAddr: "192.168.1.1",
          srcPort: 40_000 + i,
          dstPort: 443,
          protocol: 6,
          bytes: 1000,
          packets: 2,
          firstSwitched: 50_000,
          lastSwitched: 59_000,
          startMs: now - 9_000,
          endMs: now - 1_000,
        }));
      const v5 = (k: number) =>
        encodeV5({ sysUptimeMs: 60_000, exportTimeMs: now, sequence: k * 5 }, flows(k, 5));
      const ipfix = (k: number, withTemplate: boolean) =>
        encodeIpfix({ exportTimeMs: now, sequence: k * 10, observationDomainId: 1 }, [
          ...(withTemplate ? [{ type: "templates" as const, templates: [template] }] : []),
          { type: "data", template, records: flows(k, 10).map((f) => flowRecord(f, template)) },
        ]);
      const v5Sock = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
      const ipfixSock = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
      const to = { transport: "udp" as const, hostname: "127.0.0.1", port: collector.port };
      let sent = 0, stop = false;
      // About 3,000 datagrams/s: 30 every 10 ms, half v5, half IPFIX (templates in every 50th).
      const sender = (async () => {
        for (let k = 0; !stop; k++) {
          const tick = performance.now();
          for (let i = 0; i < 15; i++) {
            const n = k * 15 + i;
            try {
              await v5Sock.send(v5(n), to);
              await ipfixSock.send(ipfix(n, n % 50 === 0), to);
              sent += 2;
            } catch {
              return; // the collector is gone
            }
          }
          await sleep(Math.max(0, 10 - (performance.now() - tick)));
        }
      })();
      try {
        await sleep(2_000);
        // The sender keeps going for 4 s after SIGTERM: shutdown must not wait for it to pause.
        const t0 = performance.now();
        const [code, stopMs] = await Promise.all([
          collector.stop("SIGTERM"),
          collector.exited.then(() => performance.now() - t0),
          sleep(4_000).then(() => (stop = true)),
        ]);
        stop = true;
        await sender;
        assert.equal(code, 0, collector.stderr());
        const totals = collector.stderr().split("\n").find((l) => l.includes("stopped")) ??
          collector.stderr();
        const num = (k: string) => Number(new RegExp(`\\b${k}=(\\d+)`).exec(totals)?.[1]);
        await sleep(200); // the child reports the last request
        const summary = await receiver.summary();
        const flowSpans = summary.flowSpans;
        console.log(
          `${protocol}: sent ${sent} datagrams, collector received ${num("packets")} with ${
            num("flows")
          } flows; ` +
            `receiver got ${flowSpans} flow spans (${summary.spans} spans); shutdown ${stopMs.toFixed(0)} ms`,
        );
        assert.ok(num("packets") > 1_000, totals);
        assert.ok(num("packets") < sent, "some datagrams arrived after receiving had stopped");
        assert.ok(stopMs < 3_500, `shutdown took ${stopMs} ms while the sender kept sending`);
        assert.equal(num("errors"), 0, totals);
        assert.equal(num("spans_dropped"), 0, totals);
        assert.equal(num("spans_failed"), 0, totals);
        assert.equal(flowSpans, num("flows"), totals);
        assert.equal(summary.spans, num("spans_exported"), totals);
        assert.equal(summary.brokenTraces, 0, summary.firstBroken);
        assert.equal(summary.duplicateSpanIds, 0);
      } finally {
        stop = true;
        await sender.catch(() => {});
        v5Sock.close();
        ipfixSock.close();
        await collector.stop("SIGKILL");
        await receiver.close();
      }
    },
  });
}
