/**
 * NETFLOW_WORKERS: several pipeline Workers behave as one. The same mixed v5/v9/IPFIX input from many
 * exporters (distinct loopback source addresses, several domains each, options data for sampling) gives
 * the same spans, IDs aside, with 1, 2 and 4 Workers; each exporter's templates live in exactly one Worker
 * (the cached-template count does not grow with the Worker count, and no data waits for a template); the
 * books and the template cache file come out whole.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "./support/paths.ts";
import { freeTcpPort, freeUdpPort, startCollectorProcess } from "./support/collector.ts";
import { type DecodedSpan, startOtlpReceiver } from "./support/otlp_receiver.ts";
import { parseMetrics } from "./support/prometheus.ts";
import { type NetflowVersion, TrafficGenerator } from "../src/tools/traffic.ts";
import { datagramDomain, shardOf } from "../src/shard.ts";
import { joinSnapshotParts, selectSnapshot } from "../src/netflow/snapshot_format.ts";
import { combinedExportStatus } from "../src/traces/export_status.ts";
import { addCounts, type DecodeCounters } from "../src/counters.ts";
import { adoptSpools, Spool, workerSpoolDir } from "../src/traces/spool.ts";
import { PipelinePool } from "../src/pipeline_pool.ts";
import { parseCli } from "../src/config.ts";
import { createLogger } from "../src/log.ts";

/** Exporters at 127.0.0.2 … 127.0.0.9, each sending v5, v9 and IPFIX streams with three domains. */
const ADDRESSES = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`);
const VERSIONS: NetflowVersion[] = [5, 9, 10];
const DATAGRAMS_PER_STREAM = 12;
const T0 = Date.UTC(2026, 11, 1, 12, 0, 0);

interface Stream {
  address: string;
  version: NetflowVersion;
  datagrams: Uint8Array[];
  flows: number;
  /** Flow records in datagrams [from, to). */
  flowsIn(from: number, to: number): number;
}

function streams(): Stream[] {
  const out: Stream[] = [];
  ADDRESSES.forEach((address, a) => {
    for (const version of VERSIONS) {
      const gen = new TrafficGenerator({
        version,
        exporters: 3,
        seed: 17 + a * 10 + version,
        flowsPerPacket: version === 5 ? 30 : 12,
        ipv6: version === 5 ? 0 : 0.25,
        sampling: a % 2 === 0 ? 100 : 0,
      });
      const datagrams: Uint8Array[] = [], counts: number[] = [];
      for (let n = 0; n < DATAGRAMS_PER_STREAM; n++) {
        const d = gen.next(T0 + n * 1000);
        datagrams.push(d.payload);
        counts.push(d.flows.length);
      }
      const flowsIn = (from: number, to: number) => counts.slice(from, to).reduce((a, b) => a + b, 0);
      out.push({ address, version, datagrams, flows: flowsIn(0, counts.length), flowsIn });
    }
  });
  return out;
}

/** Sends every stream from its own socket on its exporter's address, interleaved datagram by datagram. */
async function sendAll(port: number, all: Stream[]): Promise<void> {
  const sockets = all.map((s) => Deno.listenDatagram({ hostname: s.address, port: 0, transport: "udp" }));
  try {
    for (let n = 0; n < DATAGRAMS_PER_STREAM; n++) {
      for (let i = 0; i < all.length; i++) {
        await sockets[i].send(all[i].datagrams[n], { transport: "udp", hostname: "127.0.0.1", port });
      }
      await new Promise((r) => setTimeout(r, 5)); // paced: the kernel buffer is not the subject here
    }
  } finally {
    for (const s of sockets) s.close();
  }
}

/** What must not depend on the Worker count: every span but its IDs and the run's ports and clock. */
const RUN_SPECIFIC = new Set([
  "netflow.exporter.port",
  "netflow.collector.port",
  "netflow.exporter.clock_skew_ms",
]);

function spanKey(s: DecodedSpan): string {
  const attributes = Object.entries(s.attributes).filter(([k]) => !RUN_SPECIFIC.has(k));
  attributes.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([s.name, String(s.startNs), String(s.endNs), s.status.code, attributes]);
}

/** Each trace as one string (root, process_flows, flows in record order), sorted: the run's content. */
function traceKeys(spans: DecodedSpan[]): { keys: string[]; broken: number } {
  const byTrace = new Map<string, DecodedSpan[]>();
  for (const s of spans) {
    const list = byTrace.get(s.traceId);
    if (list) list.push(s);
    else byTrace.set(s.traceId, [s]);
  }
  const keys: string[] = [];
  let broken = 0;
  for (const list of byTrace.values()) {
    const roots = list.filter((s) => s.name === "netflow.export");
    const process = list.filter((s) => s.name === "netflow.process_flows");
    const flows = list.filter((s) => s.name === "netflow.flow");
    if (
      roots.length !== 1 || process.length !== 1 || process[0].parentSpanId !== roots[0].spanId ||
      flows.length !== roots[0].attributes["netflow.flow.count"] ||
      flows.some((f) => f.parentSpanId !== process[0].spanId)
    ) broken++;
    keys.push([...roots, ...process, ...flows].map(spanKey).join("\n"));
  }
  return { keys: keys.sort(), broken };
}

interface Run {
  keys: string[];
  broken: number;
  metrics: Map<string, number>;
  stderr: string;
  templateFile: unknown;
}

async function run(workers: number, input: Stream[], expectedFlows: number): Promise<Run> {
  const receiver = await startOtlpReceiver({ protocol: "grpc" });
  const dir = Deno.makeTempDirSync();
  const httpPort = freeTcpPort();
  const collector = await startCollectorProcess({
    NETFLOW_WORKERS: String(workers),
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_BSP_SCHEDULE_DELAY: "100",
    NETFLOW_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
    NETFLOW_TEMPLATE_CACHE_FILE: join(dir, "templates.json"),
    NETFLOW_STATS_INTERVAL: "0",
  });
  try {
    await sendAll(collector.port, input);
    const expectedSpans = expectedFlows + 2 * input.length * DATAGRAMS_PER_STREAM;
    await receiver.waitForSpans(expectedSpans, 30_000);
    await new Promise((r) => setTimeout(r, 600)); // two snapshots: /metrics has caught up
    const metrics = parseMetrics(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text());
    assert.equal(await collector.stop(), 0);
    const { keys, broken } = traceKeys(receiver.spans);
    return {
      keys,
      broken,
      metrics,
      stderr: collector.stderr(),
      templateFile: JSON.parse(readFileSync(join(dir, "templates.json"), "utf8")),
    };
  } finally {
    collector.kill("SIGKILL");
    await collector.exited;
    await receiver.close();
  }
}

Deno.test("1, 2 and 4 Workers: the same spans for mixed v5/v9/IPFIX from 8 exporters × 3 domains, templates in one Worker each", async () => {
  const input = streams();
  const flows = input.reduce((n, s) => n + s.flows, 0);
  const runs = new Map<number, Run>();
  for (const n of [1, 2, 4]) runs.set(n, await run(n, input, flows));

  const one = runs.get(1)!;
  assert.equal(one.keys.length, input.length * DATAGRAMS_PER_STREAM);
  for (const [n, r] of runs) {
    assert.match(r.stderr, new RegExp(`listening.*workers=${n}`), `${n} Workers: the listening line says so`);
    assert.equal(r.broken, 0, `${n} Workers: broken traces`);
    assert.equal(r.keys.length, one.keys.length, `${n} Workers: traces`);
    const differing = r.keys.filter((k, i) => k !== one.keys[i]).length;
    assert.equal(differing, 0, `${n} Workers: ${differing} traces differ from the one-Worker run`);
    const m = (name: string) => r.metrics.get(`netflow2traces_${name}`);
    assert.equal(m("flows_received_total") ?? m("flows_total"), flows, `${n} Workers: flows counted`);
    assert.equal(m("flows_exported_total"), flows, `${n} Workers: flows exported`);
    assert.equal(m("flows_held"), 0);
    // A template cached in two Workers would count twice; data routed away from its template would wait.
    assert.equal(
      m("templates"),
      one.metrics.get("netflow2traces_templates"),
      `${n} Workers: templates cached`,
    );
    assert.equal(m("pending_sets"), 0, `${n} Workers: data waiting for a template`);
    // The cache file holds every exporter's templates once, whichever Worker kept them.
    const templates = (r.templateFile as { exporters: { templates: unknown[] }[] }).exporters
      .reduce((t, e) => t + e.templates.length, 0);
    assert.equal(templates, m("templates"), `${n} Workers: templates in the cache file`);
  }
  assert.ok((one.metrics.get("netflow2traces_templates") ?? 0) >= ADDRESSES.length * 2 * 3 * 2);
});

Deno.test("a restart with another Worker count restores every exporter's templates into the Worker that owns it", async () => {
  const receiver = await startOtlpReceiver({ protocol: "grpc" });
  const dir = Deno.makeTempDirSync();
  const file = join(dir, "templates.json");
  const port = freeUdpPort();
  const env = (workers: number) => ({
    NETFLOW_WORKERS: String(workers),
    NETFLOW_LISTEN_PORT: String(port),
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_BSP_SCHEDULE_DELAY: "100",
    NETFLOW_TEMPLATE_CACHE_FILE: file,
    NETFLOW_STATS_INTERVAL: "0",
  });
  try {
    // First run, 3 Workers: the v9/IPFIX streams' first datagram of each of their three domains (templates
    // and data; the generator takes the domains in turn).
    const input = streams().filter((s) => s.version !== 5);
    let collector = await startCollectorProcess(env(3));
    const sockets = input.map((s) => Deno.listenDatagram({ hostname: s.address, port: 0, transport: "udp" }));
    try {
      for (let i = 0; i < input.length; i++) {
        for (const d of input[i].datagrams.slice(0, 3)) {
          await sockets[i].send(d, { transport: "udp", hostname: "127.0.0.1", port });
        }
      }
      await receiver.waitForSpans(
        input.reduce((n, s) => n + s.flowsIn(0, 3), 0) + input.length * 3 * 2,
        20_000,
      );
      assert.equal(await collector.stop(), 0);
      // Second run, 2 Workers: data only (the generator re-sends templates after 60 s, these are 3–5 s later),
      // from the same sockets. Every record decodes: the templates came back from the file to the right Worker.
      receiver.clear();
      collector = await startCollectorProcess(env(2));
      assert.match(collector.stderr(), /templates restored/);
      for (let i = 0; i < input.length; i++) {
        for (const d of input[i].datagrams.slice(3, 6)) {
          await sockets[i].send(d, { transport: "udp", hostname: "127.0.0.1", port });
        }
      }
      const expectedFlows = input.reduce((n, s) => n + s.flowsIn(3, 6), 0);
      const spans = await receiver.waitForSpans(expectedFlows + input.length * 3 * 2, 20_000);
      const roots = spans.filter((s) => s.name === "netflow.export");
      assert.equal(roots.length, input.length * 3);
      assert.equal(roots.filter((s) => s.attributes["netflow.template.count"]).length, 0, "data only");
      assert.equal(roots.filter((s) => s.status.code === 2).length, 0, "no template_missing errors");
      assert.equal(spans.filter((s) => s.name === "netflow.flow").length, expectedFlows);
      assert.ok(spans.some((s) => s.name === "netflow.flow"));
      assert.equal(await collector.stop(), 0);
    } finally {
      for (const s of sockets) s.close();
      collector.kill("SIGKILL");
      await collector.exited;
    }
  } finally {
    await receiver.close();
  }
});

Deno.test("sharding: stable, by exporter address and domain; snapshots split and join losslessly", () => {
  const v9 = new Uint8Array(24);
  v9.set([0, 9], 0);
  v9.set([0, 0, 1, 2], 16);
  const ipfix = new Uint8Array(16);
  ipfix.set([0, 10], 0);
  ipfix.set([0, 0, 0, 7], 12);
  const v5 = new Uint8Array(24);
  v5.set([0, 5], 0);
  v5.set([3, 4], 20);
  assert.equal(datagramDomain(v9), 258);
  assert.equal(datagramDomain(ipfix), 7);
  assert.equal(datagramDomain(v5), 0x0304);
  assert.equal(datagramDomain(new Uint8Array([0, 9, 1])), 0);
  assert.equal(shardOf("10.0.0.1", 5, 1), 0);
  // Spread: 256 exporters over 4 Workers land on every Worker, none with more than half.
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 256; i++) counts[shardOf(`10.0.${i >> 4}.${i & 15}`, 0, 4)]++;
  assert.ok(counts.every((c) => c > 0 && c < 128), `spread ${counts}`);
  assert.equal(shardOf("10.0.0.1", 5, 4), shardOf("10.0.0.1", 5, 4));

  const state = {
    format: "netflow2traces.templates",
    version: 1,
    exporters: [
      {
        address: "10.0.0.1",
        templates: [{ domain: 1, id: 256 }, { domain: 2, id: 256 }],
        domains: [{ domain: 2 }],
      },
      { address: "10.0.0.2", templates: [{ domain: 1, id: 300 }], domains: [] },
    ],
  };
  const parts = [0, 1, 2].map((i) =>
    JSON.stringify(
      (selectSnapshot(state, (a, d) => shardOf(a, d, 3) === i) as typeof state).exporters,
    )
  );
  const joined = JSON.parse(joinSnapshotParts(parts));
  assert.equal(joined.format, state.format);
  const ids = (s: typeof state) =>
    s.exporters.flatMap((e) => e.templates.map((t) => `${e.address}/${t.domain}/${t.id}`)).sort();
  assert.deepEqual(ids(joined), ids(state));
  assert.deepEqual(JSON.parse(joinSnapshotParts(["[]", " [ ] "])).exporters, []);
});

Deno.test("merged views: counts add up, and export is failing while any Worker fails", () => {
  const a: DecodeCounters = { flows: 3, errors: { truncated: 1 }, sequenceLost: 0, rateLimited: {} };
  addCounts(a, {
    flows: 4,
    errors: { truncated: 2, unknown_version: 1 },
    sequenceLost: 5,
    rateLimited: { "192.0.2.1": 9 },
  });
  assert.deepEqual(a, {
    flows: 7,
    errors: { truncated: 3, unknown_version: 1 },
    sequenceLost: 5,
    rateLimited: { "192.0.2.1": 9 },
  });
  const ok = {
    state: "ok" as const,
    consecutiveFailures: 0,
    spoolBytes: 10,
    spoolBatches: 1,
    lastSuccessMs: 50,
  };
  const failing = {
    state: "failing" as const,
    failingSinceMs: 40,
    consecutiveFailures: 3,
    lastError: "refused",
    spoolBytes: 5,
    spoolBatches: 2,
    lastSuccessMs: 30,
  };
  assert.deepEqual(combinedExportStatus([ok, failing]), {
    state: "failing",
    failingSinceMs: 40,
    consecutiveFailures: 3,
    lastError: "refused",
    spoolBytes: 15,
    spoolBatches: 3,
    lastSuccessMs: 50,
  });
  assert.equal(combinedExportStatus([ok, ok]).state, "ok");
});

Deno.test("spool: a change of Worker count hands every batch to a Worker of the new run, balanced, chains whole", () => {
  const base = Deno.makeTempDirSync();
  // A batch body says where it was written: [run, index]; `chain` marks batches that continue a packet.
  const write = (dir: string, run: number, n: number, chain = false) => {
    const spool = new Spool(dir);
    spool.open();
    for (let i = 0; i < n; i++) spool.add(new Uint8Array([run, i]), 3, 1, chain && i > 0, chain && i < n - 1);
  };
  // A one-Worker run left 2 batches in the directory itself; a four-Worker run 1–4 in worker-0 … worker-3,
  // worker-3's four a single chain (one packet straddling four requests).
  write(base, 9, 2);
  for (let w = 0; w < 4; w++) write(workerSpoolDir(base, w, 4), w, w + 1, w === 3);
  assert.equal(adoptSpools(base, 2), 2 + 3 + 4);
  const bodies = (dir: string) => {
    const spool = new Spool(dir);
    return spool.open().entries.map((e) => Array.from(spool.read(e) as Uint8Array).join("."));
  };
  const w0 = bodies(workerSpoolDir(base, 0, 2)), w1 = bodies(workerSpoolDir(base, 1, 2));
  // Every batch once, the Workers within one chain's size of each other, each origin's order kept.
  assert.deepEqual([...w0, ...w1].sort(), [
    "0.0",
    "1.0",
    "1.1",
    "2.0",
    "2.1",
    "2.2",
    "3.0",
    "3.1",
    "3.2",
    "3.3",
    "9.0",
    "9.1",
  ]);
  assert.ok(Math.abs(w0.length - w1.length) <= 4, `${w0} | ${w1}`);
  for (const list of [w0, w1]) {
    for (const run of ["9", "2", "3"]) {
      const mine = list.filter((b) => b.startsWith(`${run}.`));
      assert.deepEqual(mine, [...mine].sort(), `run ${run} in order`);
    }
  }
  const chainIn = [w0, w1].filter((list) => list.some((b) => b.startsWith("3.")));
  assert.equal(chainIn.length, 1, "the chain stayed in one Worker");
  const chain = chainIn[0].filter((b) => b.startsWith("3."));
  assert.deepEqual(chain, ["3.0", "3.1", "3.2", "3.3"]);
  const at = chainIn[0].indexOf("3.0");
  assert.deepEqual(chainIn[0].slice(at, at + 4), chain, "consecutive, so a spool eviction keeps it whole");
  assert.deepEqual(Deno.readDirSync(base).map((e) => e.name).toArray().sort(), ["worker-0", "worker-1"]);
  // Back to one Worker: everything returns to the directory itself.
  assert.equal(adoptSpools(base, 1), 12);
  assert.equal(bodies(base).length, 12);
  assert.deepEqual(Deno.readDirSync(base).filter((e) => e.isDirectory).toArray(), []);
});

Deno.test("a Worker that falls 512 batches behind gets no more until it catches up (bounded inbox)", async () => {
  const cli = parseCli([], { OTEL_TRACES_EXPORTER: "none", NETFLOW_WORKERS: "1" }, Deno.makeTempDirSync());
  assert.ok(cli.kind === "run");
  let snapshots = 0;
  const listeners = [{ host: "127.0.0.1", port: 2055 }];
  const pool = new PipelinePool(
    cli.config,
    listeners,
    { name: "t", version: "1" },
    createLogger("ERROR"),
    () => {
      snapshots++;
    },
    (message) => assert.fail(message),
  );
  await pool.whenReady();
  // 40 KB datagrams, one per batch: while this loop runs the Worker cannot report, so it is as far behind
  // as the loop has posted.
  const datagram = new Uint8Array(40_000);
  const taken: boolean[] = [];
  for (let i = 0; i < 600; i++) taken.push(pool.add(datagram, "192.0.2.1", 9995, Date.now()));
  assert.equal(taken.indexOf(false), 513, "the 514th datagram: 512 batches posted, none reported handled");
  assert.ok(taken.slice(513).every((t) => !t));
  // Once the Worker reports, it takes datagrams again.
  const t0 = Date.now();
  while (!pool.add(datagram, "192.0.2.1", 9995, Date.now())) {
    assert.ok(Date.now() - t0 < 10_000, "the Worker never caught up");
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(snapshots > 0);
  await pool.stop();
});
