/**
 * v9 and IPFIX through the real collector process: templates, data before template, options sampling,
 * and template persistence across a restart.
 */
import assert from "node:assert/strict";
import {
  type EncodableFlow,
  encodeIpfix,
  encodeV9,
  flowRecord,
  standardTemplate,
} from "../src/tools/encode.ts";
import { sendDatagrams, startCollectorProcess } from "./support/collector.ts";
import { startOtlpReceiver } from "./support/otlp_receiver.ts";

const now = Math.floor(Date.now() / 1000) * 1000;

function flow(i: number, v6 = false): EncodableFlow {
  return {
    srcAddr: v6 ? `2001:db8::${i + 1}` : `10.2.0.${i + 1}`,
    dstAddr: v6 ? "2001:db8:0:1::53" : "10.3.0.53",
    nextHop: v6 ? "fe80::1" : "10.2.255.1",
    srcPort: 50000 + i,
    dstPort: 53,
    protocol: 17,
    tos: 0,
    tcpFlags: 0,
    bytes: 120 + i,
    packets: 2,
    inputIf: 10,
    outputIf: 20,
    srcAs: 65001,
    dstAs: 65002,
    srcMask: v6 ? 64 : 24,
    dstMask: v6 ? 48 : 16,
    startMs: now - 5_000 - i,
    endMs: now - 2_000,
  };
}

Deno.test("IPFIX: data before its template is held, then decoded when the template arrives", async () => {
  const receiver = await startOtlpReceiver({ protocol: "http" });
  const collector = await startCollectorProcess({
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
    OTEL_BSP_SCHEDULE_DELAY: "100",
  });
  try {
    const t6 = standardTemplate(6, { times: "milliseconds" });
    const header = { exportTimeMs: now, observationDomainId: 42 };
    const data = encodeIpfix({ ...header, sequence: 0 }, [
      { type: "data", template: t6, records: [0, 1, 2].map((i) => flowRecord(flow(i, true), t6)) },
    ]);
    const template = encodeIpfix({ ...header, sequence: 3 }, [{ type: "templates", templates: [t6] }]);
    await sendDatagrams(collector.port, [data]);
    await new Promise((r) => setTimeout(r, 200));
    await sendDatagrams(collector.port, [template]);
    const spans = await receiver.waitForSpans(3 + 2 * 3, 10_000);
    const flows = spans.filter((s) => s.name === "netflow.flow");
    assert.equal(flows.length, 3);
    const f = flows.find((s) => s.attributes["netflow.flow.index"] === 1)!;
    assert.equal(f.attributes["source.address"], "2001:db8::2");
    assert.equal(f.attributes["destination.address"], "2001:db8:0:1::53");
    assert.equal(f.attributes["network.type"], "ipv6");
    assert.equal(f.attributes["netflow.version"], 10);
    assert.equal(f.attributes["netflow.flow.bytes"], 121);
    assert.equal(Number(f.startNs / 1_000_000n), now - 5_001);
    assert.equal(Number(f.endNs / 1_000_000n), now - 2_000);
    const roots = spans.filter((s) => s.name === "netflow.export");
    assert.ok(roots.every((r) => r.attributes["netflow.observation_domain_id"] === 42));
    assert.ok(roots.some((r) => r.attributes["netflow.template.count"] === 1));
    assert.match(collector.stderr(), /waiting for templates/i);
  } finally {
    await collector.stop("SIGKILL");
    await receiver.close();
  }
});

Deno.test("templates persist across a restart: the first data-only datagram after it decodes", async () => {
  const receiver = await startOtlpReceiver({ protocol: "grpc" });
  const dir = Deno.makeTempDirSync();
  const env = {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_BSP_SCHEDULE_DELAY: "100",
    NETFLOW_TEMPLATE_CACHE_FILE: `${dir}/templates.json`,
  };
  const t4 = standardTemplate(4);
  const header = { sysUptimeMs: 100_000, exportTimeMs: now, sourceId: 7 };
  const record = (i: number) => flowRecord({ ...flow(i), firstSwitched: 90_000, lastSwitched: 99_000 }, t4);
  try {
    let collector = await startCollectorProcess(env);
    const port = collector.port;
    await sendDatagrams(port, [
      encodeV9({ ...header, sequence: 1 }, [
        { type: "templates", templates: [t4] },
        { type: "data", template: t4, records: [record(0)] },
      ]),
    ]);
    await receiver.waitForSpans(3, 10_000);
    assert.equal(await collector.stop("SIGTERM"), 0, collector.stderr());
    receiver.clear();

    collector = await startCollectorProcess({ ...env, NETFLOW_LISTEN_PORT: String(port) });
    try {
      assert.match(collector.stderr(), /templates restored/);
      await sendDatagrams(port, [
        encodeV9({ ...header, sequence: 2 }, [{
          type: "data",
          template: t4,
          records: [record(1), record(2)],
        }]),
      ]);
      const spans = await receiver.waitForSpans(4, 10_000);
      const flows = spans.filter((s) => s.name === "netflow.flow");
      assert.equal(flows.length, 2);
      assert.deepEqual(flows.map((s) => s.attributes["source.address"]).sort(), ["10.2.0.2", "10.2.0.3"]);
      assert.equal(flows[0].attributes["netflow.version"], 9);
      const root = spans.find((s) => s.name === "netflow.export")!;
      assert.equal(root.attributes["netflow.source_id"], 7);
      assert.equal(root.status.code, 0);
    } finally {
      await collector.stop("SIGKILL");
    }
  } finally {
    await receiver.close();
    Deno.removeSync(dir, { recursive: true });
  }
});
