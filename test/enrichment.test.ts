/**
 * NETFLOW_ENRICH_FILE (SPEC §5): validation in one line, the most specific match, options data winning over
 * the file, sampling only where the exporter announces none, and, end to end through the real collector, the
 * names on the spans, a SIGHUP re-read, and a bad file on SIGHUP keeping the previous table.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { Enrichment, EnrichmentError, parseEnrichment } from "../src/enrichment.ts";
import { parseCli } from "../src/config.ts";
import { encodeV5 } from "../src/tools/encode.ts";
import type { ExportPacket } from "../src/netflow/types.ts";
import { startCollectorProcess, waitUntil } from "./support/collector.ts";
import { type DecodedSpan, startOtlpReceiver } from "./support/otlp_receiver.ts";
import { join } from "./support/paths.ts";

const FILE = `
exporters:
  - match: 192.0.2.0/24
    sampling_rate: 100
  - match: 192.0.2.1
    name: edge-1
    sampling_rate: 1000
    interfaces:
      1: { name: Gi0/0/1, description: uplink to ISP A }
      2: Gi0/0/2
    vrfs: { 10: blue }
`;

Deno.test("enrichment file: the most specific match wins; names fill only what options data left", () => {
  const e = new Enrichment(parseEnrichment(FILE));
  assert.equal(e.samplingRate("192.0.2.1"), 1000);
  assert.equal(e.samplingRate("192.0.2.9"), 100);
  assert.equal(e.samplingRate("198.51.100.1"), undefined);
  const packet = {
    exporterAddress: "192.0.2.1",
    flows: [
      { inputIf: 1, outputIf: 2, extra: { "netflow.ingress_vrf_id": 10 } },
      { inputIf: 2, outputIf: 3, extra: { "netflow.interface.input.name": "from-options" } },
    ],
  } as unknown as ExportPacket;
  e.apply(packet);
  assert.equal(packet.exporterName, "edge-1");
  assert.deepEqual(packet.flows[0].extra, {
    "netflow.ingress_vrf_id": 10,
    "netflow.interface.input.name": "Gi0/0/1",
    "netflow.interface.input.description": "uplink to ISP A",
    "netflow.interface.output.name": "Gi0/0/2",
    "netflow.ingress_vrf_name": "blue",
  });
  assert.equal(packet.flows[1].extra?.["netflow.interface.input.name"], "from-options", "options data wins");
  assert.equal(packet.flows[1].extra?.["netflow.interface.output.name"], undefined, "ifIndex 3 is unknown");
  // JSON is YAML too.
  assert.deepEqual(parseEnrichment('{"exporters": [{"match": "10.0.0.1", "name": "r1"}]}').exporters, [
    { match: "10.0.0.1/32", name: "r1" },
  ]);
});

Deno.test("enrichment file: a bad file is one line naming the place and the reason", () => {
  const bad: [string, RegExp][] = [
    [
      "exporters: [ { match: 10.0.0.300 } ]",
      /exporters\[0\]\.match: "10\.0\.0\.300" is not an address or CIDR/,
    ],
    [
      "exporters: [ { match: 10.0.0.1, sampling_rate: 0 } ]",
      /exporters\[0\]\.sampling_rate: must be an integer/,
    ],
    [
      "exporters: [ { match: 10.0.0.1, interfaces: { x: a } } ]",
      /exporters\[0\]\.interfaces\.x: the id must be/,
    ],
    ["exporters: [ { match: 10.0.0.1, colour: red } ]", /unknown key "colour"/],
    ["exporters: { a: 1 }", /`exporters` must be a list/],
    ["exporters: [\n  - match: 10.0.0.1\n    name: a\n    name: b\n]", /not YAML or JSON/],
  ];
  for (const [text, re] of bad) {
    assert.throws(() => parseEnrichment(text), (err: Error) => {
      assert.ok(err instanceof EnrichmentError);
      assert.match(err.message, re);
      assert.ok(!err.message.includes("\n"), err.message);
      return true;
    });
  }
  const dir = Deno.makeTempDirSync();
  writeFileSync(join(dir, "e.yaml"), "exporters: [ { match: nowhere } ]");
  assert.throws(
    () => parseCli([], { NETFLOW_ENRICH_FILE: "e.yaml" }, dir),
    /^ConfigError: invalid NETFLOW_ENRICH_FILE="e\.yaml": exporters\[0\]\.match: "nowhere" is not an address or CIDR$/,
  );
});

function v5(sequence: number): Uint8Array {
  const now = Date.now();
  return encodeV5({ sysUptimeMs: 3_600_000, unixSecs: Math.floor(now / 1000), sequence }, [
    {
      srcAddr: "10.0.0.1",
      dstAddr: "10.0.0.2",
      inputIf: 1,
      outputIf: 2,
      packets: 3,
      bytes: 300,
      protocol: 17,
    },
  ]);
}

Deno.test("end to end: names and sampling from the file on the spans; SIGHUP re-reads it; a bad file keeps the old", async () => {
  const dir = Deno.makeTempDirSync();
  const file = join(dir, "enrich.yaml");
  writeFileSync(file, FILE.replace("192.0.2.1", "127.0.0.7").replace("192.0.2.0/24", "127.0.0.0/8"));
  const receiver = await startOtlpReceiver({ protocol: "grpc" });
  const collector = await startCollectorProcess({
    NETFLOW_ENRICH_FILE: file,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_BSP_SCHEDULE_DELAY: "100",
    NETFLOW_STATS_INTERVAL: "0",
  });
  const sock = Deno.listenDatagram({ hostname: "127.0.0.7", port: 0, transport: "udp" });
  const send = (seq: number) =>
    sock.send(v5(seq), { transport: "udp", hostname: "127.0.0.1", port: collector.port });
  const spansOf = async (n: number) => {
    const spans = await receiver.waitForSpans(n, 10_000);
    const root = spans.filter((s: DecodedSpan) => s.name === "netflow.export").at(-1)!;
    const flow = spans.filter((s: DecodedSpan) => s.name === "netflow.flow").at(-1)!;
    return { root: root.attributes, flow: flow.attributes };
  };
  try {
    await send(0);
    let { root, flow } = await spansOf(3);
    assert.equal(root["netflow.exporter.name"], "edge-1");
    assert.equal(flow["netflow.interface.input.name"], "Gi0/0/1");
    assert.equal(flow["netflow.interface.input.description"], "uplink to ISP A");
    assert.equal(flow["netflow.interface.output.name"], "Gi0/0/2");
    assert.equal(flow["netflow.sampling.interval"], 1000);
    assert.equal(flow["netflow.flow.bytes.estimated"], 300_000);

    // A new file, re-read on SIGHUP: the next datagrams get the new names.
    writeFileSync(file, "exporters:\n  - { match: 127.0.0.7, name: edge-7, interfaces: { 1: core-1 } }\n");
    collector.kill("SIGHUP");
    await waitUntil(() => /enrichment file re-read/.test(collector.stderr()), "the re-read line", 5_000);
    await send(1);
    ({ root, flow } = await spansOf(6));
    assert.equal(root["netflow.exporter.name"], "edge-7");
    assert.equal(flow["netflow.interface.input.name"], "core-1");
    assert.equal("netflow.interface.output.name" in flow, false);
    assert.equal("netflow.sampling.interval" in flow, false, "no rate in the new file, none announced");

    // A bad file on SIGHUP: one ERROR line, the previous table stays.
    writeFileSync(file, "exporters: [ { match: 127.0.0.7, sampling_rate: -1 } ]\n");
    collector.kill("SIGHUP");
    await waitUntil(() => /enrichment file not re-read/.test(collector.stderr()), "the ERROR line", 5_000);
    assert.match(
      collector.stderr(),
      /ERROR enrichment file not re-read: keeping the previous one.*sampling_rate/,
    );
    await send(2);
    ({ root } = await spansOf(9));
    assert.equal(root["netflow.exporter.name"], "edge-7");
    assert.equal(await collector.stop(), 0);
  } finally {
    sock.close();
    collector.kill("SIGKILL");
    await collector.exited;
    await receiver.close();
  }
});
