/**
 * What a user sees in the first hour (SPEC §6, issue 16): one INFO line per new exporter (address, version,
 * domain); one WARN per source and minute for sFlow on the port, an unknown version, a datagram too short to
 * be NetFlow, and allow-list rejections; JSON logs that parse line by line; v4-mapped exporter addresses
 * reported as plain IPv4.
 */
import assert from "node:assert/strict";
import { encodeV5 } from "../src/tools/encode.ts";
import { formatJsonLine } from "../src/log.ts";
import { plainAddress } from "../src/netflow/addresses.ts";
import { freeUdpPort, startCollectorProcess, waitUntil } from "./support/collector.ts";
import { startOtlpReceiver } from "./support/otlp_receiver.ts";
import { B } from "./support/bytes.ts";
import { ipfix, set, tpl } from "./support/v9_ipfix_fixtures.ts";

/** An sFlow v5 datagram header (sFlow.org "sFlow Version 5"): version 5, agent address type 1 (IPv4). */
function sflow(): Uint8Array {
  return new B().u32(5, 1).ip("192.0.2.50").u32(0, 1, 1000, 0).build();
}

function v5(): Uint8Array {
  return encodeV5({ sysUptimeMs: 1_000, unixSecs: Math.floor(Date.now() / 1000), sequence: 0 }, [
    { srcAddr: "10.0.0.1", dstAddr: "10.0.0.2", packets: 1, bytes: 60, protocol: 6 },
  ]);
}

const count = (text: string, re: RegExp) => text.split("\n").filter((l) => re.test(l)).length;

Deno.test("first contact and mistakes: one line each per source, in JSON logs that parse line by line", async () => {
  const collector = await startCollectorProcess({
    OTEL_TRACES_EXPORTER: "none",
    LOG_FORMAT: "json",
    NETFLOW_STATS_INTERVAL: "0",
    NETFLOW_ALLOWED_EXPORTERS: "127.0.0.0/29",
  });
  const socket = (hostname: string) => Deno.listenDatagram({ hostname, port: 0, transport: "udp" });
  const a = socket("127.0.0.2"), b = socket("127.0.0.3"), outsider = socket("127.0.0.9");
  const to = { transport: "udp" as const, hostname: "127.0.0.1", port: collector.port };
  try {
    // Three datagrams each: still one line per source and kind.
    for (let i = 0; i < 3; i++) {
      await a.send(v5(), to);
      await a.send(ipfix(7, i, [set(2, tpl(256, [[8, 4]])), set(256, new B().ip("10.0.0.1").build())]), to);
      await b.send(sflow(), to);
      await b.send(new B().u16(7, 1).zeros(20).build(), to); // version 7
      await b.send(new Uint8Array([0, 9, 0]), to); // three octets
      await outsider.send(v5(), to);
    }
    const text = () => collector.stderr();
    await waitUntil(
      () => /too short/.test(text()) && /NETFLOW_ALLOWED_EXPORTERS/.test(text()),
      "the WARN lines",
      8_000,
    );
    await new Promise((r) => setTimeout(r, 200));
    const lines = text().trim().split("\n").map((l) => JSON.parse(l));
    for (const l of lines) {
      assert.ok(typeof l.time === "string" && typeof l.level === "string" && l.message, l);
    }
    const first = lines.filter((l) => l.message === "first datagram from an exporter");
    assert.deepEqual(
      first.map((l) => `${l.exporter} ${l.version} ${l.domain ?? "-"}`).sort(),
      ["127.0.0.2 IPFIX 7", "127.0.0.2 NetFlow v5 0"],
    );
    const warn = (re: RegExp) => lines.filter((l) => l.level === "WARNING" && re.test(l.message));
    assert.equal(warn(/^sFlow datagram on a NetFlow\/IPFIX port/).length, 1);
    assert.equal(warn(/^sFlow/)[0].exporter, "127.0.0.3");
    assert.equal(warn(/unknown version/).length, 1);
    assert.equal(warn(/unknown version/)[0].version, 7);
    assert.equal(warn(/too short/).length, 1);
    assert.equal(warn(/too short/)[0].bytes, 3);
    assert.equal(warn(/NETFLOW_ALLOWED_EXPORTERS/).length, 1);
    assert.equal(warn(/NETFLOW_ALLOWED_EXPORTERS/)[0].exporter, "127.0.0.9");
    assert.equal(count(text(), /first datagram/), 2, "the outsider was never decoded");
    assert.equal(await collector.stop(), 0);
  } finally {
    for (const s of [a, b, outsider]) s.close();
    collector.kill("SIGKILL");
    await collector.exited;
  }
});

Deno.test("log lines as JSON: the text form's fields, typed; reserved names kept apart", () => {
  const line = formatJsonLine(new Date(0), "INFO", "listening", {
    listen: "udp://0.0.0.0:2055",
    workers: 2,
    level: "x",
    skipped: undefined,
    error: new Error("refused"),
  });
  assert.deepEqual(JSON.parse(line), {
    time: "1970-01-01T00:00:00.000Z",
    level: "INFO",
    message: "listening",
    listen: "udp://0.0.0.0:2055",
    workers: 2,
    "field.level": "x",
    error: "refused",
  });
});

Deno.test("v4-mapped exporter addresses are plain IPv4; others are kept as they are", () => {
  assert.equal(plainAddress("::ffff:10.0.0.1"), "10.0.0.1");
  assert.equal(plainAddress("10.0.0.1"), "10.0.0.1");
  assert.equal(plainAddress("2001:db8::1"), "2001:db8::1");
  assert.equal(plainAddress("::ffff:a00:1"), "::ffff:a00:1", "the hex form is not produced by the runtimes");
});

Deno.test({
  name: "dual-stack socket: an IPv4 exporter on [::] is reported, allowed and keyed as plain IPv4",
  async fn() {
    let collector;
    try {
      collector = await startCollectorProcess({
        NETFLOW_LISTEN_HOST: "::",
        OTEL_TRACES_EXPORTER: "console",
        NETFLOW_STATS_INTERVAL: "0",
        NETFLOW_ALLOWED_EXPORTERS: "127.0.0.0/8",
      });
    } catch (err) {
      if (/address not available|not supported/i.test(String(err))) return; // no IPv6 on this host
      throw err;
    }
    const s = Deno.listenDatagram({ hostname: "127.0.0.4", port: 0, transport: "udp" });
    try {
      await s.send(v5(), { transport: "udp", hostname: "127.0.0.1", port: collector.port });
      await waitUntil(
        () => collector.stdout().includes('"netflow.exporter.address":"127.0.0.4"'),
        "the span",
        8_000,
      );
      assert.ok(!collector.stdout().includes("::ffff:"));
      assert.match(collector.stderr(), /first datagram from an exporter exporter=127\.0\.0\.4 /);
      assert.equal(await collector.stop(), 0);
    } finally {
      s.close();
      collector.kill("SIGKILL");
      await collector.exited;
    }
  },
});

Deno.test("several listen addresses in one process (IPv4 and IPv6): each export span names the port it came in on", async () => {
  const p1 = freeUdpPort(), p2 = freeUdpPort();
  let p6 = 0;
  try {
    p6 = freeUdpPort("::1");
  } catch { /* no IPv6 loopback here: IPv4 only */ }
  const receiver = await startOtlpReceiver({ protocol: "grpc" });
  const listen = [`127.0.0.1:${p1}`, `127.0.0.1:${p2}`, ...(p6 ? [`[::1]:${p6}`] : [])].join(",");
  const collector = await startCollectorProcess({
    NETFLOW_LISTEN: listen,
    NETFLOW_LISTEN_PORT: String(p1), // ignored when NETFLOW_LISTEN is set (the test helper needs one)
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_BSP_SCHEDULE_DELAY: "100",
    NETFLOW_STATS_INTERVAL: "0",
  });
  const v4 = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const v6 = p6 ? Deno.listenDatagram({ hostname: "::1", port: 0, transport: "udp" }) : undefined;
  try {
    assert.match(
      collector.stderr(),
      new RegExp(`listen=udp://127\\.0\\.0\\.1:${p1},udp://127\\.0\\.0\\.1:${p2}`),
    );
    await v4.send(v5(), { transport: "udp", hostname: "127.0.0.1", port: p1 });
    await v4.send(v5(), { transport: "udp", hostname: "127.0.0.1", port: p2 });
    if (v6) await v6.send(v5(), { transport: "udp", hostname: "::1", port: p6 });
    const n = p6 ? 3 : 2;
    const spans = await receiver.waitForSpans(n * 3, 10_000);
    const roots = spans.filter((s) => s.name === "netflow.export");
    const seen = roots.map((r) =>
      `${r.attributes["netflow.collector.host"]} ${r.attributes["netflow.collector.port"]}`
    );
    const expected = [`127.0.0.1 ${p1}`, `127.0.0.1 ${p2}`, ...(p6 ? [`::1 ${p6}`] : [])];
    assert.deepEqual(seen.sort(), expected.sort());
    if (p6) assert.ok(roots.some((r) => r.attributes["netflow.exporter.address"] === "::1"));
    assert.equal(await collector.stop(), 0);
  } finally {
    v4.close();
    v6?.close();
    collector.kill("SIGKILL");
    await collector.exited;
    await receiver.close();
  }
});
