/**
 * NETFLOW_REUSE_PORT: several collector processes on one UDP port (SO_REUSEPORT). The kernel keeps each
 * exporter (source address and port) on one socket, so each exporter's templates stay in one process.
 * Bun's node:dgram can do it; Deno 2.9 cannot (docs/SCALING.md), and says so at start-up.
 */
import assert from "node:assert/strict";
import { bunBinary } from "./support/binary.ts";
import { freeUdpPort, startCollectorProcess } from "./support/collector.ts";
import { type DecodedSpan, startOtlpReceiver } from "./support/otlp_receiver.ts";
import { encodeV5 } from "../src/tools/encode.ts";

Deno.test("Deno: NETFLOW_REUSE_PORT=true stops start-up with one line that names the way out", async () => {
  const collector = await startCollectorProcess(
    { NETFLOW_REUSE_PORT: "true", OTEL_TRACES_EXPORTER: "none" },
    { waitForListening: false },
  );
  assert.equal(await collector.exited, 1);
  assert.match(collector.stderr(), /NETFLOW_REUSE_PORT=true needs the Bun build/);
});

const EXPORTERS = Array.from({ length: 16 }, (_, i) => `127.0.0.${i + 2}`);
const FLOWS = 10;

function datagram(exporter: number, sequence: number): Uint8Array {
  const now = Date.now();
  return encodeV5(
    { sysUptimeMs: 3_600_000, unixSecs: Math.floor(now / 1000), sequence },
    Array.from({ length: FLOWS }, (_, i) => ({
      srcAddr: `10.${exporter}.0.${i + 1}`,
      dstAddr: "192.0.2.1",
      srcPort: 40000 + i,
      dstPort: 443,
      protocol: 6,
      packets: 2,
      bytes: 200,
      firstSwitched: 3_590_000,
      lastSwitched: 3_599_000,
    })),
  );
}

/** exporter address → the instances (service.instance.id) its traces came through, and traces per sequence. */
function byExporter(spans: DecodedSpan[]) {
  const out = new Map<string, { instances: Set<string>; sequences: Map<number, number> }>();
  for (const s of spans) {
    if (s.name !== "netflow.export") continue;
    const address = String(s.attributes["netflow.exporter.address"]);
    const e = out.get(address) ?? { instances: new Set(), sequences: new Map() };
    out.set(address, e);
    e.instances.add(String(s.resource["service.instance.id"]));
    const seq = Number(s.attributes["netflow.sequence"]);
    e.sequences.set(seq, (e.sequences.get(seq) ?? 0) + 1);
  }
  return out;
}

Deno.test("Bun: two processes on one port with NETFLOW_REUSE_PORT: every flow once, each exporter wholly to one; one killed, the other serves all", async () => {
  const binary = await bunBinary("linux-x64");
  const receiver = await startOtlpReceiver({ protocol: "grpc" });
  const port = freeUdpPort();
  const start = (instance: string) =>
    startCollectorProcess({
      NETFLOW_REUSE_PORT: "true",
      NETFLOW_LISTEN_PORT: String(port),
      NETFLOW_WORKERS: "1",
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_BSP_SCHEDULE_DELAY: "100",
      OTEL_RESOURCE_ATTRIBUTES: `service.instance.id=${instance}`,
      NETFLOW_STATS_INTERVAL: "0",
    }, { command: [binary] });
  const a = await start("a");
  const b = await start("b");
  const sockets = EXPORTERS.map((hostname) => Deno.listenDatagram({ hostname, port: 0, transport: "udp" }));
  const send = async (round: number) => {
    for (let n = 0; n < 5; n++) {
      for (let e = 0; e < sockets.length; e++) {
        await sockets[e].send(datagram(e, (round * 5 + n) * FLOWS), {
          transport: "udp",
          hostname: "127.0.0.1",
          port,
        });
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const perRound = EXPORTERS.length * 5 * (FLOWS + 2);
  try {
    await send(0);
    const first = byExporter(await receiver.waitForSpans(perRound, 20_000));
    assert.equal(first.size, EXPORTERS.length);
    const served = new Set<string>();
    for (const [address, e] of first) {
      assert.equal(e.instances.size, 1, `${address} went to ${[...e.instances]}`);
      served.add([...e.instances][0]);
      assert.equal(e.sequences.size, 5, address);
      for (const [seq, n] of e.sequences) {
        assert.equal(n, 1, `${address} sequence ${seq} delivered ${n} times`);
      }
    }
    // Balanced, not "the newest socket takes all": 16 exporters all on one of two sockets is a 1-in-32768 draw.
    assert.deepEqual([...served].sort(), ["a", "b"]);

    assert.equal(await a.stop("SIGKILL"), 137);
    receiver.clear();
    await send(1);
    const after = byExporter(await receiver.waitForSpans(perRound, 20_000));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(receiver.spans.length, perRound, "nothing twice");
    for (const [address, e] of after) {
      assert.deepEqual([...e.instances], ["b"], address);
      assert.equal(e.sequences.size, 5, address);
    }
    assert.equal(await b.stop(), 0);
  } finally {
    for (const s of sockets) s.close();
    a.kill("SIGKILL");
    b.kill("SIGKILL");
    await Promise.all([a.exited, b.exited]);
    await receiver.close();
  }
});
