/**
 * The status page (issue 17, first part): `/api/exporters` and `/api/export` give correct figures for what
 * was sent, through the real collector; the page is self-contained (no external request, a strict CSP) and
 * puts every value in as text; the per-exporter activity is bounded.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { ExporterActivity, mergeSummaries } from "../src/exporter_activity.ts";
import { STATUS_PAGE } from "../src/status_page.ts";
import type { ExportPacket } from "../src/netflow/types.ts";
import { encodeV5 } from "../src/tools/encode.ts";
import { freeTcpPort, startCollectorProcess } from "./support/collector.ts";
import { startOtlpReceiver } from "./support/otlp_receiver.ts";
import { B } from "./support/bytes.ts";
import { ipfix, optTplIpfix, set, tpl } from "./support/v9_ipfix_fixtures.ts";
import { join } from "./support/paths.ts";

const HOSTILE = "<script>alert(1)</script>";

Deno.test("status API through the collector: exporters with versions, domains, templates, counts; export books", async () => {
  const dir = Deno.makeTempDirSync();
  writeFileSync(join(dir, "enrich.yaml"), `exporters:\n  - { match: 127.0.0.2, name: "${HOSTILE}" }\n`);
  const receiver = await startOtlpReceiver({ protocol: "grpc" });
  const httpPort = freeTcpPort();
  const collector = await startCollectorProcess({
    NETFLOW_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
    NETFLOW_ENRICH_FILE: join(dir, "enrich.yaml"),
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_BSP_SCHEDULE_DELAY: "100",
    NETFLOW_STATS_INTERVAL: "0",
  });
  const a = Deno.listenDatagram({ hostname: "127.0.0.2", port: 0, transport: "udp" });
  const b = Deno.listenDatagram({ hostname: "127.0.0.3", port: 0, transport: "udp" });
  const to = { transport: "udp" as const, hostname: "127.0.0.1", port: collector.port };
  const get = (path: string) => fetch(`http://127.0.0.1:${httpPort}${path}`);
  try {
    const now = Math.floor(Date.now() / 1000);
    for (let i = 0; i < 4; i++) {
      const flows = Array.from(
        { length: 5 },
        () => ({ srcAddr: "10.0.0.1", dstAddr: "10.0.0.2", packets: 1, bytes: 60 }),
      );
      await a.send(encodeV5({ sysUptimeMs: 10_000, unixSecs: now, sequence: i * 5 }, flows), to);
    }
    for (const domain of [1, 2]) {
      await b.send(
        ipfix(domain, 0, [
          set(2, tpl(256, [[8, 4]])),
          set(256, new B().ip("10.0.0.1").ip("10.0.0.2").build()),
        ], now),
        to,
      );
    }
    // An interface table (options data: scope ingressInterface 10, interfaceName 82, as a string of 5 octets).
    const names = new B().u32(1).u8(5).raw(new TextEncoder().encode("Gi0/1")).u32(2).u8(5)
      .raw(new TextEncoder().encode("Gi0/2")).build();
    await b.send(ipfix(1, 0, [set(3, optTplIpfix(300, [[10, 4]], [[82, 65535]])), set(300, names)], now), to);
    await b.send(new B().u16(7).zeros(20).build(), to); // an unknown version
    await receiver.waitForSpans(4 * 7 + 2 * 4 + 2 + 2, 10_000); // v5, IPFIX, the options datagram, the bad one
    await new Promise((r) => setTimeout(r, 1_300)); // the Workers' summaries come every second
    const { exporters } = await (await get("/api/exporters")).json();
    const byAddress = Object.fromEntries(exporters.map((e: { address: string }) => [e.address, e]));
    const v5 = byAddress["127.0.0.2"], fix = byAddress["127.0.0.3"];
    assert.deepEqual([v5.versions, v5.datagrams, v5.flows, v5.name], [[5], 4, 20, HOSTILE]);
    assert.deepEqual([fix.versions, fix.domains, fix.datagrams, fix.flows, fix.templates], [
      [10],
      [1, 2],
      4,
      4,
      3,
    ]);
    assert.deepEqual(fix.optionNames, { interfaces: 2, vrfs: 0, applications: 0 });
    assert.deepEqual(fix.errors, { unknown_version: 1 });
    assert.equal(v5.flowsPerBucket.reduce((x: number, y: number) => x + y, 0), 20);
    assert.equal(exporters[0].address, "127.0.0.2", "busiest first");
    const exp = await (await get("/api/export")).json();
    assert.equal(exp.state, "ok");
    assert.equal(exp.endpoint, receiver.url);
    const books = exp.books;
    assert.equal(
      exp.flowsReceived,
      books.flowsExported + books.flowsDropped + books.flowsFailed + books.flowsHeld,
    );
    // The page: HTML, self-contained, read-only.
    const page = await get("/");
    assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
    assert.match(page.headers.get("content-security-policy") ?? "", /default-src 'none'/);
    assert.equal(await page.text(), STATUS_PAGE);
    assert.equal((await fetch(`http://127.0.0.1:${httpPort}/api/exporters`, { method: "POST" })).status, 405);
    assert.equal((await get("/api/nothing")).status, 404);
    assert.equal(await collector.stop(), 0);
  } finally {
    a.close();
    b.close();
    collector.kill("SIGKILL");
    await collector.exited;
    await receiver.close();
  }
});

Deno.test("status page: no external resource, and values only ever as text", () => {
  // No URL to load anything from (the SVG namespace is a name, not a request).
  const urls = STATUS_PAGE.match(/https?:\/\/[^\s"'`)]+/g) ?? [];
  assert.deepEqual([...new Set(urls)], ["http://www.w3.org/2000/svg"]);
  // Only the icon, inline (else the browser asks for /favicon.ico and logs a 404).
  assert.deepEqual(STATUS_PAGE.match(/\b(src|href)\s*=\s*"[^"]*"/gi), ['href="data:,"']);
  assert.doesNotMatch(STATUS_PAGE, /innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
  assert.match(STATUS_PAGE, /textContent/);
  // The script at least parses (a syntax error would leave the page at "loading…").
  const script = STATUS_PAGE.split("<script>")[1].split("</script>")[0];
  assert.doesNotThrow(() => new Function(script));
});

Deno.test("exporter activity: bounded (the least recently seen go), merged across Workers", () => {
  const activity = new ExporterActivity();
  const t0 = 1_700_000_000_000;
  for (let i = 0; i < 5_000; i++) {
    activity.record({
      version: 5,
      exporterAddress: `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`,
      receivedAtMs: t0 + i,
      flows: [{}],
    } as unknown as ExportPacket);
  }
  const list = activity.summaries(new Map(), t0 + 5_000);
  assert.equal(list.length, 1_000);
  assert.ok(list.every((s) => s.lastSeenMs >= t0 + 4_000), "the newest 1,000 kept");
  const merged = mergeSummaries([list.slice(0, 2), list.slice(0, 1)]);
  assert.equal(merged.length, 2);
  assert.equal(merged.find((s) => s.address === list[0].address)!.flows, 2);
});

Deno.test("top talkers and last flows through the collector (2 Workers): exact for known datagrams, flows as exported", async () => {
  const dir = Deno.makeTempDirSync();
  writeFileSync(
    join(dir, "enrich.yaml"),
    `exporters:\n  - { match: 127.0.0.2, interfaces: { 3: "${HOSTILE}" } }\n`,
  );
  const receiver = await startOtlpReceiver({ protocol: "grpc" });
  const httpPort = freeTcpPort();
  const collector = await startCollectorProcess({
    NETFLOW_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
    NETFLOW_ENRICH_FILE: join(dir, "enrich.yaml"),
    NETFLOW_WORKERS: "2",
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_BSP_SCHEDULE_DELAY: "100",
    NETFLOW_STATS_INTERVAL: "0",
  });
  const sockets = ["127.0.0.2", "127.0.0.3"].map((hostname) =>
    Deno.listenDatagram({ hostname, port: 0, transport: "udp" })
  );
  const to = { transport: "udp" as const, hostname: "127.0.0.1", port: collector.port };
  const getJson = async (path: string) => await (await fetch(`http://127.0.0.1:${httpPort}${path}`)).json();
  try {
    const now = Math.floor(Date.now() / 1000);
    // From each exporter: 3 datagrams of 10 flows; 10.0.0.1 sends 1,000 B a flow to 10.0.0.100:443 on
    // interface 3 → 5, everyone else 10 B to 10.0.0.200:53/udp.
    let sent = 0;
    for (const [e, socket] of sockets.entries()) {
      for (let d = 0; d < 3; d++) {
        const flows = Array.from({ length: 10 }, (_, i) => {
          const big = i === 0;
          return {
            srcAddr: big ? "10.0.0.1" : `10.1.${e}.${d * 10 + i}`,
            dstAddr: big ? "10.0.0.100" : "10.0.0.200",
            srcPort: 40_000 + sent++,
            dstPort: big ? 443 : 53,
            protocol: big ? 6 : 17,
            packets: big ? 10 : 1,
            bytes: big ? 1_000 : 10,
            inputIf: 3,
            outputIf: 5,
            firstSwitched: 9_000,
            lastSwitched: 9_500,
          };
        });
        await socket.send(encodeV5({ sysUptimeMs: 10_000, unixSecs: now, sequence: d * 10 }, flows), to);
      }
    }
    const spans = await receiver.waitForSpans(6 * 12, 10_000);
    const top = await getJson("/api/top");
    assert.deepEqual(top.windows.map((w: { minutes: number }) => w.minutes), [1, 5, 15]);
    // What the page asks for: the one window it shows.
    const five = await getJson("/api/top?minutes=5");
    assert.deepEqual(five.windows.map((w: { minutes: number }) => w.minutes), [5]);
    assert.deepEqual(five.windows[0].top.source, top.windows[1].top.source);
    assert.equal((await fetch(`http://127.0.0.1:${httpPort}/api/top?minutes=7`)).status, 404);
    const w = top.windows[0];
    assert.deepEqual([w.bytes, w.flows, w.sampled], [6 * 1_000 + 54 * 10, 60, false]);
    const pick = (rows: { key: string; bytes: number; flows: number }[]) =>
      rows.slice(0, 2).map((r) => [r.key, r.bytes, r.flows]);
    assert.deepEqual(pick(w.top.source), [["10.0.0.1", 6_000, 6], [w.top.source[1].key, 10, 1]]);
    assert.deepEqual(pick(w.top.destination), [["10.0.0.100", 6_000, 6], [
      "10.0.0.200",
      540,
      54,
    ]]);
    assert.deepEqual(pick(w.top.service), [["tcp/443", 6_000, 6], ["udp/53", 540, 54]]);
    assert.deepEqual(pick(w.top.conversation)[0], ["10.0.0.1 ↔ 10.0.0.100", 6_000, 6]);
    const if3 = w.top.interface.find((r: { key: string }) => r.key === "127.0.0.2 3");
    assert.deepEqual(
      [if3.inBytes, if3.outBytes, if3.name],
      [3_270, 0, HOSTILE],
      "named by the enrichment file",
    );
    assert.equal(w.top.source.length, 10, "the top 10 only");

    const { flows } = await getJson("/api/flows");
    assert.equal(flows.length, 60);
    // Each is exactly a span the receiver got (same attributes, same times), newest first.
    const bySrcPort = new Map(
      spans.filter((s) => s.name === "netflow.flow").map((s) => [s.attributes["source.port"], s]),
    );
    for (const f of flows) {
      const span = bySrcPort.get(f.attributes["source.port"])!;
      assert.deepEqual(f.attributes, span.attributes);
      assert.equal(BigInt(Math.round(f.startMs * 1e6)), span.startNs);
    }
    assert.ok(
      flows.every((f: { receivedAtMs: number }, i: number) =>
        i === 0 || flows[i - 1].receivedAtMs >= f.receivedAtMs
      ),
    );
    assert.equal(await collector.stop(), 0);
  } finally {
    for (const s of sockets) s.close();
    collector.kill("SIGKILL");
    await collector.exited;
    await receiver.close();
  }
});

Deno.test("NETFLOW_HTTP_AUTH: 401 with a challenge without credentials, 200 with them; /healthz stays open", async () => {
  for (
    const [auth, good, challenge] of [
      ["bearer:t0ken-123", "Bearer t0ken-123", "Bearer"],
      ["basic:admin:pa:ss", `Basic ${btoa("admin:pa:ss")}`, "Basic"],
    ]
  ) {
    const httpPort = freeTcpPort();
    const collector = await startCollectorProcess({
      NETFLOW_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
      NETFLOW_HTTP_AUTH: auth,
      OTEL_TRACES_EXPORTER: "none",
    });
    const get = (path: string, authorization?: string) =>
      fetch(`http://127.0.0.1:${httpPort}${path}`, authorization ? { headers: { authorization } } : {});
    try {
      for (const path of ["/", "/api/exporters", "/api/top", "/api/flows", "/metrics"]) {
        const refused = await get(path);
        assert.equal(refused.status, 401, path);
        assert.match(refused.headers.get("www-authenticate") ?? "", new RegExp(`^${challenge} realm=`));
        await refused.body?.cancel();
        const wrong = await get(path, good.slice(0, -1) + "x");
        assert.equal(wrong.status, 401, `${path}: wrong credentials`);
        await wrong.body?.cancel();
        const ok = await get(path, good);
        assert.equal(ok.status, 200, path);
        await ok.body?.cancel();
      }
      const health = await get("/healthz");
      assert.equal(health.status, 200);
      await health.body?.cancel();
      assert.ok(!collector.stderr().includes(auth.split(":")[1]), "the secret is never logged");
    } finally {
      collector.kill("SIGKILL");
      await collector.exited;
    }
  }
});

Deno.test("status API bounded under a million distinct 5-tuples through the collector; the heavy hitter on top", async () => {
  const httpPort = freeTcpPort();
  const collector = await startCollectorProcess({
    NETFLOW_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
    NETFLOW_WORKERS: "1",
    OTEL_TRACES_EXPORTER: "none", // the page's summaries are kept all the same; no spans to pay for
    NETFLOW_STATS_INTERVAL: "0",
  });
  const getJson = async (path: string) => {
    const text = await (await fetch(`http://127.0.0.1:${httpPort}${path}`)).text();
    return { size: text.length, value: JSON.parse(text) };
  };
  const rssMb = () => {
    const status = Deno.readTextFileSync(`/proc/${collector.pid}/status`);
    return Number(status.match(/VmRSS:\s+(\d+)/)![1]) / 1024;
  };
  const sock = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const to = { transport: "udp" as const, hostname: "127.0.0.1", port: collector.port };
  try {
    const now = Math.floor(Date.now() / 1000);
    const send = async (from: number, datagrams: number) => {
      for (let d = from; d < from + datagrams; d++) {
        const flows = Array.from({ length: 30 }, (_, i) => {
          const n = d * 30 + i;
          const heavy = i === 0;
          return {
            srcAddr: heavy ? "198.51.100.7" : `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
            dstAddr: `172.16.${(n >> 8) & 255}.${n & 255}`,
            srcPort: 1_024 + (n % 60_000),
            dstPort: heavy ? 443 : n % 65_536,
            protocol: 6,
            packets: 1,
            bytes: heavy ? 100_000 : 100,
          };
        });
        await sock.send(encodeV5({ sysUptimeMs: 10_000, unixSecs: now, sequence: d * 30 }, flows), to);
        if (d % 200 === 0) await new Promise((r) => setTimeout(r, 5)); // paced: the point is not the socket
      }
    };
    // 1,000,020 flows, every 5-tuple distinct, in three parts: memory that is bounded stops growing after
    // the first (sketches and rings full, JIT done); per-key memory would grow with each part.
    await send(0, 3_334);
    await new Promise((r) => setTimeout(r, 1_000));
    const first = rssMb();
    await send(3_334, 15_000);
    await new Promise((r) => setTimeout(r, 1_000));
    const second = rssMb();
    await send(18_334, 15_000);
    await new Promise((r) => setTimeout(r, 1_000));
    const third = rssMb();
    const growth = third - second;
    const exporters = await getJson("/api/exporters");
    const flowsReceived = exporters.value.exporters[0].flows;
    assert.ok(flowsReceived > 900_000, `${flowsReceived} flows received`);
    const top = await getJson("/api/top");
    const flows = await getJson("/api/flows");
    const w = top.value.windows[2];
    for (const rows of Object.values(w.top) as unknown[][]) assert.ok(rows.length <= 10);
    assert.equal(w.top.source[0].key, "198.51.100.7", "the heavy hitter is the top source");
    assert.equal(flows.value.flows.length, 100);
    assert.ok(top.size < 64_000 && flows.size < 200_000, `answers of ${top.size} and ${flows.size} bytes`);
    // 450,000 more distinct keys in each of 5 dimensions would take well over 100 MB if kept.
    const rss = `RSS ${first.toFixed(0)} → ${second.toFixed(0)} → ${third.toFixed(0)} MB`;
    assert.ok(growth < 20, rss);
    console.log(`${flowsReceived} flows: ${rss}; /api/top ${top.size} B, /api/flows ${flows.size} B`);
    assert.equal(await collector.stop(), 0);
  } finally {
    sock.close();
    collector.kill("SIGKILL");
    await collector.exited;
  }
});
