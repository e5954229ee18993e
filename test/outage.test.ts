/**
 * OTLP outages end to end: the real collector process and a real receiver (HTTP and gRPC), through four
 * outages in one run: endpoint down at start (the receiver starts later on the same port), 503 /
 * UNAVAILABLE for a while, receiver stopped and restarted, and a slow receiver (answers after the export
 * timeout). Throughout, the collector keeps receiving, holds at most OTEL_BSP_MAX_QUEUE_SIZE spans and
 * retries what it holds until the backend takes it (SPEC §6): nothing is abandoned, so spans_failed is 0.
 * Only phase 0 sends more than the queue holds: its first packets that fit are kept and delivered, the
 * newer ones are refused whole and counted as dropped. Every flow of every later phase arrives, exactly
 * once. At shutdown the books balance: spans built = exported + dropped + failed + held (0), and exported
 * = what the receivers got.
 */
import assert from "node:assert/strict";
import { encodeV5 } from "../src/tools/encode.ts";
import { freeTcpPort, sendDatagrams, startCollectorProcess } from "./support/collector.ts";
import { type DecodedSpan, type Receiver, startOtlpReceiver } from "./support/otlp_receiver.ts";
import { parseMetrics } from "./support/prometheus.ts";

const FLOWS = 4;
const SPANS_PER_DATAGRAM = FLOWS + 2;
const QUEUE = 60;
/** Whole packets of phase 0 that fit in the queue while the endpoint is down. */
const FITS = Math.floor(QUEUE / SPANS_PER_DATAGRAM);

/** `FLOWS` flows whose source addresses name the phase: 10.<phase>.<datagram>.<flow>. */
function datagram(phase: number, n: number): Uint8Array {
  return encodeV5(
    { sysUptimeMs: 100_000, exportTimeMs: Date.now() },
    Array.from({ length: FLOWS }, (_, i) => ({
      srcAddr: `10.${phase}.${n}.${i + 1}`,
      dstAddr: "192.168.0.1",
      srcPort: 40_000 + i,
      dstPort: 443,
      protocol: 6,
      firstSwitched: 90_000,
      lastSwitched: 99_000,
    })),
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const protocol of ["http", "grpc"] as const) {
  Deno.test({
    name:
      `outage (${protocol}): down at start, 503/UNAVAILABLE, stopped and restarted, slow; retried until delivered`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const otlpPort = freeTcpPort();
      const httpPort = freeTcpPort();
      const collector = await startCollectorProcess({
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${otlpPort}`,
        OTEL_EXPORTER_OTLP_PROTOCOL: protocol === "http" ? "http/protobuf" : "grpc",
        OTEL_EXPORTER_OTLP_TIMEOUT: "1500",
        OTEL_BSP_SCHEDULE_DELAY: "100",
        OTEL_BSP_MAX_QUEUE_SIZE: String(QUEUE),
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "30",
        NETFLOW_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
      });
      const receivers: Receiver[] = [];
      const allSpans = () => receivers.flatMap((r) => r.spans);
      let sent = 0, maxQueue = 0;
      const metrics = async () => {
        const m = parseMetrics(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text());
        maxQueue = Math.max(maxQueue, m.get("netflow2traces_export_queue_spans") ?? 0);
        return m;
      };
      const send = async (phase: number, count: number, first = 0) => {
        for (let n = first; n < first + count; n++) await sendDatagrams(collector.port, [datagram(phase, n)]);
        sent += count;
      };
      /** Every flow of `phase` arrives (the collector recovered by itself). */
      const arrived = async (phase: number, count: number) => {
        const want = new Set<string>();
        for (let n = 0; n < count; n++) for (let i = 1; i <= FLOWS; i++) want.add(`10.${phase}.${n}.${i}`);
        const deadline = Date.now() + 15_000;
        for (;;) {
          const got = new Set(
            allSpans().filter((s) => s.name === "netflow.flow").map((s) =>
              String(s.attributes["source.address"])
            ),
          );
          const missing = [...want].filter((a) => !got.has(a));
          if (missing.length === 0) return;
          if (Date.now() > deadline) {
            const m = [...(await metrics())].filter(([k]) => /spans|queue|datagrams_total/.test(k));
            throw new Error(
              `phase ${phase}: ${missing.length} flows never arrived; received ${allSpans().length} spans, ` +
                `${receivers.map((r) => r.requests).join("+")} requests; ${
                  m.map(([k, v]) => `${k}=${v}`).join(" ")
                }`,
            );
          }
          await metrics();
          await sleep(100);
        }
      };
      /**
       * After an outage ends, waits until the collector has delivered what it held, by itself (no new data
       * needed: held requests are retried). Records how long that took. Not probing with new datagrams: one
       * sent while the queue is still full would be refused, and phase 0 is to be the only one that drops.
       */
      const recovery: number[] = [];
      const recovered = async (phase: number) => {
        const started = Date.now();
        for (;;) {
          const m = await metrics();
          if (
            m.get("netflow2traces_spans_held") === 0 &&
            m.get("netflow2traces_export_consecutive_failures") === 0
          ) {
            break;
          }
          if (Date.now() - started > 20_000) {
            throw new Error(
              `phase ${phase}: backlog not delivered within 20 s (${
                m.get("netflow2traces_spans_held")
              } held)`,
            );
          }
          await sleep(100);
        }
        recovery.push(Date.now() - started);
      };
      /** The collector keeps receiving during the outage. */
      const received = async () => {
        for (let i = 0; i < 50 && (await metrics()).get("netflow2traces_datagrams_total") !== sent; i++) {
          await sleep(50);
        }
        assert.equal((await metrics()).get("netflow2traces_datagrams_total"), sent);
      };
      try {
        // 1. Endpoint down at start: more than the queue holds, so the newest packets are refused.
        await send(0, 30);
        await received();
        await sleep(1_000);
        receivers.push(await startOtlpReceiver({ protocol, port: otlpPort }));
        await recovered(1);
        await arrived(0, FITS);
        await send(1, 5);
        await arrived(1, 5);

        // 2. 503 / UNAVAILABLE for a while.
        receivers[0].setFailing(true);
        await send(2, 5);
        await received();
        await sleep(2_000);
        receivers[0].setFailing(false);
        await recovered(3);
        await arrived(2, 5);
        await send(3, 5);
        await arrived(3, 5);

        // 3. Receiver stopped, then restarted on the same port.
        await receivers[0].close();
        await send(4, 5);
        await received();
        await sleep(1_500);
        receivers.push(await startOtlpReceiver({ protocol, port: otlpPort }));
        await recovered(5);
        await arrived(4, 5);
        await send(5, 5);
        await arrived(5, 5);

        // 4. Slow receiver: answers after the export timeout.
        receivers[1].setDelay(2_500);
        await send(6, 5);
        await received();
        await sleep(2_000);
        receivers[1].setDelay(0);
        await recovered(7);
        await arrived(6, 5);
        await send(7, 5);
        await arrived(7, 5);

        const last = await metrics();
        assert.equal(last.get("netflow2traces_healthy"), 1);
        assert.equal(await collector.stop(), 0);
        const totals = collector.stderr().split("\n").find((l) => l.includes("stopped")) ?? "";
        const num = (k: string) => Number(new RegExp(`${k}=(\\d+)`).exec(totals)?.[1]);
        const [exported, dropped, failed, held] = [
          num("spans_exported"),
          num("spans_dropped"),
          num("spans_failed"),
          num("spans_held"),
        ];
        const spanIds = new Set(allSpans().map((s: DecodedSpan) => s.spanId));
        const outcomes = (o: string) =>
          receivers.flatMap((r) => r.requestLog).filter((x) => x.outcome === o).length;
        const log = collector.stderr();
        const recoveries = log.match(/INFO export recovered /g)?.length ?? 0;
        console.log(
          `${protocol}: datagrams=${num("packets")} spans built=${
            sent * SPANS_PER_DATAGRAM
          } exported=${exported} ` +
            `dropped=${dropped} failed=${failed} held=${held} received=${allSpans().length} ` +
            `duplicate span ids=${allSpans().length - spanIds.size} max queue=${maxQueue} ` +
            `recoveries=${recoveries} recovery ms=${recovery.join(",")} requests accepted=${
              outcomes("accepted")
            } rejected=${outcomes("rejected")} abandoned=${outcomes("abandoned")}`,
        );
        assert.equal(num("packets"), sent);
        assert.equal(num("flows"), sent * FLOWS);
        assert.equal(exported + dropped + failed + held, sent * SPANS_PER_DATAGRAM);
        assert.equal(
          num("flows_exported") + num("flows_dropped") + num("flows_failed") + num("flows_held"),
          sent * FLOWS,
        );
        assert.equal(held, 0, "nothing is held once the backend took everything");
        // No duplicates: a span (and a flow) is delivered at most once.
        assert.equal(
          spanIds.size,
          allSpans().length,
          `${allSpans().length - spanIds.size} spans delivered twice`,
        );
        const flowAddrs = allSpans().filter((s) => s.name === "netflow.flow").map((s) =>
          s.attributes["source.address"]
        );
        assert.equal(new Set(flowAddrs).size, flowAddrs.length);
        assert.equal(allSpans().length, exported);
        assert.equal(failed, 0, "nothing is abandoned: every held request is retried until accepted");
        // Dropped only in phase 0, whole packets: the ones beyond what the queue holds.
        assert.equal(dropped, (30 - FITS) * SPANS_PER_DATAGRAM);
        assert.equal(num("flows_dropped"), (30 - FITS) * FLOWS);
        const phase0 = new Set(
          allSpans().filter((s) =>
            s.name === "netflow.flow" && String(s.attributes["source.address"]).startsWith("10.0.")
          )
            .map((s) => Number(String(s.attributes["source.address"]).split(".")[2])),
        );
        assert.deepEqual(
          [...phase0].sort((a, b) => a - b),
          [...Array(FITS).keys()],
          "the first packets that fit",
        );
        assert.ok(maxQueue <= QUEUE, `queue depth ${maxQueue} > ${QUEUE}`);
        // Each outage was seen (one WARN at its first failure) and its end reported.
        assert.equal(log.match(/WARNING export failing /g)?.length ?? 0, 4, "one WARN per outage");
        assert.equal(recoveries, 4, "one INFO export recovered per outage");
      } catch (err) {
        throw new Error(`${(err as Error).message}\ncollector log:\n${collector.stderr().slice(-3000)}`, {
          cause: err,
        });
      } finally {
        await collector.stop("SIGKILL");
        for (const r of receivers) await r.close();
      }
    },
  });
}
