/**
 * The traffic generator and the `send` subcommand: what they produce decodes, with our decoder and with
 * tshark (Wireshark's NetFlow/IPFIX dissector), to the same records; templates come first and are refreshed;
 * the real CLI sends the datagrams it promises to a UDP socket.
 */
import assert from "node:assert/strict";
import process from "node:process";
import { NetflowDecoder } from "../src/netflow/decoder.ts";
import type { ExportPacket, Flow } from "../src/netflow/types.ts";
import { type NetflowVersion, type SyntheticDatagram, TrafficGenerator } from "../src/tools/traffic.ts";
import { dirname, fromFileUrl, join } from "./support/paths.ts";
import { writePcap } from "./support/pcap.ts";
import { missingTools } from "./support/exporters.ts";

const ROOT = join(dirname(fromFileUrl(import.meta.url)), "..");
const T0 = 1_750_000_000_000;
const EXPORTER = "10.9.9.9";

/** `n` datagrams, 100 ms apart from T0. */
function generate(gen: TrafficGenerator, n: number): SyntheticDatagram[] {
  return Array.from({ length: n }, (_, i) => gen.next(T0 + i * 100));
}

/** Decodes every datagram in order with one decoder (state carries over); one packet per datagram. */
function decodeAll(datagrams: SyntheticDatagram[]): ExportPacket[] {
  const decoder = new NetflowDecoder();
  return datagrams.map((d, i) => {
    const packets = decoder.decode(d.payload, EXPORTER, 40000, d.exportTimeMs + 20 + i);
    assert.equal(packets.length, 1, `datagram ${i}: one packet, nothing held back`);
    return packets[0];
  });
}

/** The fields both decoders report, as strings, from our `Flow`. */
function ours(f: Flow) {
  return {
    src: f.srcAddr,
    dst: f.dstAddr,
    srcPort: String(f.srcPort),
    dstPort: String(f.dstPort),
    protocol: String(f.protocol),
    bytes: String(f.bytes),
    packets: String(f.packets),
    inputIf: String(f.inputIf),
    outputIf: String(f.outputIf),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Generator and our decoder
// ---------------------------------------------------------------------------------------------------------

const CASES: { version: NetflowVersion; ipv6: number; sampling: number; exporters: number }[] = [
  { version: 1, ipv6: 0, sampling: 0, exporters: 1 },
  { version: 5, ipv6: 0, sampling: 64, exporters: 2 },
  { version: 9, ipv6: 0.4, sampling: 100, exporters: 3 },
  { version: 10, ipv6: 0.4, sampling: 1000, exporters: 2 },
];

for (const c of CASES) {
  Deno.test(`generator v${c.version}: our decoder reads back every flow, header and sampling rate`, () => {
    const gen = new TrafficGenerator({ ...c, seed: 11 });
    const datagrams = generate(gen, 12);
    const packets = decodeAll(datagrams);
    const versions = new Set<number>(), services = new Set<string>(), protocols = new Set<number>();
    let v6 = 0;
    packets.forEach((p, i) => {
      const d = datagrams[i];
      assert.equal(p.error, undefined, `datagram ${i}: ${p.error?.message}`);
      assert.equal(p.version, c.version);
      assert.equal(p.sequenceLost, undefined, `datagram ${i}: no sequence gap`);
      assert.equal(p.flows.length, d.flows.length);
      assert.equal(p.flows.length, gen.flowsPerPacket);
      assert.equal(p.exportTimeMs, d.exportTimeMs);
      if (c.version === 9) assert.equal(p.sourceId, d.domainId);
      if (c.version === 10) assert.equal(p.observationDomainId, d.domainId);
      if (c.version === 5) assert.equal(p.engineId, d.domainId);
      d.flows.forEach((want, j) => {
        const got = p.flows[j];
        const label = `datagram ${i} flow ${j}`;
        assert.deepEqual(ours(got), ours(want), label);
        assert.equal(got.tos, want.tos, label);
        assert.equal(got.tcpFlags, want.tcpFlags, label);
        if (c.version !== 1) {
          assert.equal(got.srcAs, want.srcAs, label);
          assert.equal(got.dstAs, want.dstAs, label);
          assert.equal(got.srcMask, want.srcMask, label);
          assert.equal(got.samplingInterval, c.sampling, label);
        }
        if (c.version === 10) {
          assert.equal(got.startMs, want.startMs, label);
          assert.equal(got.endMs, want.endMs, label);
        } else {
          assert.equal(got.firstSwitched, want.firstSwitched, label);
          assert.equal(got.lastSwitched, want.lastSwitched, label);
        }
        // Plausible times: the flow ends no later than the export and lasts at most the active timeout.
        assert.ok(want.endMs! <= d.exportTimeMs && want.endMs! >= d.exportTimeMs - 16_000, label);
        assert.ok(want.endMs! - want.startMs! <= 60_000 && want.endMs! >= want.startMs!, label);
        assert.ok(want.bytes >= want.packets * 28, `${label}: at least 28 bytes a packet`);
        versions.add(want.ipVersion);
        services.add(want.service);
        protocols.add(want.protocol);
        if (want.ipVersion === 6) v6++;
      });
    });
    // A realistic mix: TCP, UDP and ICMP, several services, IPv6 only where asked for.
    assert.ok(protocols.has(6) && protocols.has(17), [...protocols].join());
    assert.ok(services.size >= 6, [...services].join());
    if (c.ipv6 > 0) assert.ok(v6 > 0 && versions.has(4), "both address families");
    else assert.equal(v6, 0);
  });
}

Deno.test("generator: same seed and times give the same bytes; another seed does not", () => {
  const bytes = (seed: number) =>
    generate(new TrafficGenerator({ version: 10, ipv6: 0.3, exporters: 2, sampling: 10, seed }), 5)
      .map((d) => Array.from(d.payload).join());
  assert.deepEqual(bytes(5), bytes(5));
  assert.notDeepEqual(bytes(5), bytes(6));
});

Deno.test("generator: templates first for each exporter, then refreshed after the interval", () => {
  for (const version of [9, 10] as const) {
    const gen = new TrafficGenerator({
      version,
      exporters: 2,
      sampling: 50,
      templateIntervalMs: 10_000,
      seed: 1,
    });
    const at = [0, 0, 4_000, 4_000, 11_000, 11_000, 12_000].map((ms) => gen.next(T0 + ms));
    assert.deepEqual(at.map((d) => d.exporter), [0, 1, 0, 1, 0, 1, 0]);
    // Data template + options template, and the sampling options record, at start and after 10 s.
    assert.deepEqual(at.map((d) => d.templateRecords), [2, 2, 0, 0, 2, 2, 0], `v${version}`);
    assert.deepEqual(at.map((d) => d.optionsRecords), [1, 1, 0, 0, 1, 1, 0], `v${version}`);
    const packets = decodeAll(at);
    assert.deepEqual(packets.map((p) => p.templateCount ?? 0), [2, 2, 0, 0, 2, 2, 0]);
    // Sequence numbers are per exporter: v9 counts packets, IPFIX data records (options records included).
    const [a0, , a1] = at;
    assert.equal(a1.sequence! - a0.sequence!, version === 9 ? 1 : 20 + 1);
    assert.notEqual(at[0].domainId, at[1].domainId);
  }
  // Interval 0: templates with every datagram.
  const every = new TrafficGenerator({ version: 9, templateIntervalMs: 0, seed: 1 });
  assert.deepEqual(generate(every, 3).map((d) => d.templateRecords), [1, 1, 1]);
});

Deno.test("generator: rejects what the formats cannot carry", () => {
  assert.throws(() => new TrafficGenerator({ version: 5, flowsPerPacket: 31 }), /1–30/);
  assert.throws(() => new TrafficGenerator({ version: 1, flowsPerPacket: 25 }), /1–24/);
  assert.throws(() => new TrafficGenerator({ version: 5, ipv6: 0.5 }), /IPv6/);
  assert.throws(() => new TrafficGenerator({ version: 1, sampling: 10 }), /v1 has no sampling/);
  assert.throws(() => new TrafficGenerator({ version: 5, sampling: 20_000 }), /0–16383/);
  assert.throws(() => new TrafficGenerator({ version: 7 as NetflowVersion }), /version/);
});

// ---------------------------------------------------------------------------------------------------------
// tshark agrees with our decoder
// ---------------------------------------------------------------------------------------------------------

const CI = process.env.CI === "true";
const HAVE_TSHARK = missingTools(["tshark"]).length === 0;
if (!HAVE_TSHARK && !CI) console.warn("send.test.ts: tshark not installed, skipping the tshark cross-check");

type Obj = Record<string, unknown>;

interface TsharkFrame {
  /** Scalar `cflow.*` fields outside flow records (header, options data), name → values. */
  header: Record<string, string[]>;
  /** Flow records (objects holding `cflow.octets`), in order. */
  records: Record<string, string>[];
}

async function tsharkFrames(path: string): Promise<TsharkFrame[]> {
  const { success, stdout, stderr } = await new Deno.Command("tshark", {
    args: ["-r", path, "-T", "json", "-d", "udp.port==2055,cflow"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(success, new TextDecoder().decode(stderr));
  const frames = JSON.parse(new TextDecoder().decode(stdout)) as { _source: { layers: Obj } }[];
  return frames.map((f) => {
    const out: TsharkFrame = { header: {}, records: [] };
    const walk = (o: Obj) => {
      if ("cflow.octets" in o) {
        const rec: Record<string, string> = {};
        for (const [k, v] of Object.entries(o)) if (typeof v === "string") rec[k] = v;
        out.records.push(rec);
        return;
      }
      for (const [k, v] of Object.entries(o)) {
        if (v && typeof v === "object" && !Array.isArray(v)) walk(v as Obj);
        else if (k.startsWith("cflow.") || k.startsWith("_ws.")) (out.header[k] ??= []).push(String(v));
      }
    };
    walk(f._source.layers);
    return out;
  });
}

/** The same fields as {@link ours}, from a tshark record. */
function theirs(r: Record<string, string>) {
  return {
    src: r["cflow.srcaddr"] ?? r["cflow.srcaddrv6"],
    dst: r["cflow.dstaddr"] ?? r["cflow.dstaddrv6"],
    srcPort: r["cflow.srcport"],
    dstPort: r["cflow.dstport"],
    protocol: r["cflow.protocol"],
    bytes: r["cflow.octets"],
    packets: r["cflow.packets"],
    inputIf: r["cflow.inputint"],
    outputIf: r["cflow.outputint"],
  };
}

Deno.test({
  name: "tshark and our decoder agree on the generator's v1/v5/v9/IPFIX datagrams (IPv6, options, sampling)",
  ignore: !HAVE_TSHARK && !CI,
  async fn() {
    if (!HAVE_TSHARK) throw new Error("tshark is not installed, and CI=true requires the tshark cross-check");
    for (const c of CASES) {
      const datagrams = generate(new TrafficGenerator({ ...c, seed: 23 }), 8);
      const packets = decodeAll(datagrams);
      const path = Deno.makeTempFileSync({ suffix: ".pcap" });
      try {
        writePcap(
          path,
          datagrams.map((d) => ({
            src: EXPORTER,
            srcPort: 40000,
            dst: "10.2.2.2",
            dstPort: 2055,
            payload: d.payload,
          })),
        );
        const frames = await tsharkFrames(path);
        assert.equal(frames.length, datagrams.length);
        let records = 0, v6 = 0;
        frames.forEach((frame, i) => {
          const label = `v${c.version} datagram ${i}`;
          const p = packets[i];
          assert.equal(frame.header["_ws.malformed"], undefined, `${label}: malformed for tshark`);
          assert.equal(frame.header["_ws.expert"], undefined, `${label}: tshark expert info`);
          assert.deepEqual(frame.header["cflow.version"], [String(c.version)], label);
          assert.equal(frame.records.length, p.flows.length, `${label}: record count`);
          frame.records.forEach((r, j) => {
            assert.deepEqual(theirs(r), ours(p.flows[j]), `${label} record ${j}`);
            if (c.version !== 1) {
              assert.equal(r["cflow.srcas"], String(p.flows[j].srcAs), `${label} record ${j} src AS`);
              assert.equal(r["cflow.dstas"], String(p.flows[j].dstAs), `${label} record ${j} dst AS`);
            }
            if (r["cflow.srcaddrv6"]) v6++;
          });
          records += frame.records.length;
          // Header fields.
          if (c.version === 5 || c.version === 9 || c.version === 10) {
            assert.deepEqual(frame.header["cflow.sequence"], [String(p.sequence)], label);
          }
          if (c.version === 9) assert.deepEqual(frame.header["cflow.source_id"], [String(p.sourceId)], label);
          if (c.version === 10) {
            // (The sampling options record's scope is the observation domain: a second `cflow.od_id`.)
            assert.equal(frame.header["cflow.od_id"][0], String(p.observationDomainId), label);
          }
          // Sampling: the v5 header, or the options data record that comes with the templates.
          if (c.version === 5) {
            assert.deepEqual(frame.header["cflow.samplerate"], [String(c.sampling)], label);
          }
          if (datagrams[i].optionsRecords > 0 && c.version === 9) {
            assert.deepEqual(frame.header["cflow.sampling_interval"], [String(c.sampling)], label);
          }
          if (datagrams[i].optionsRecords > 0 && c.version === 10) {
            const interval = Number(frame.header["cflow.sampling_packet_interval"]);
            const space = Number(frame.header["cflow.sampling_packet_space"]);
            assert.equal((interval + space) / interval, c.sampling, label);
          }
          if (c.sampling > 0) assert.ok(p.flows.every((f) => f.samplingInterval === c.sampling), label);
        });
        assert.equal(records, 8 * datagrams[0].flows.length);
        if (c.ipv6 > 0) assert.ok(v6 > 0, `v${c.version}: tshark saw IPv6 records`);
        assert.ok(datagrams[0].templateRecords > 0 || c.version < 9, "templates in the first datagram");
      } finally {
        Deno.removeSync(path);
      }
    }
  },
});

// ---------------------------------------------------------------------------------------------------------
// The real CLI
// ---------------------------------------------------------------------------------------------------------

function sendCommand(args: string[]): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(ROOT, "main.ts"), "send", ...args],
    cwd: Deno.makeTempDirSync(),
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  });
}

/** Receives datagrams on a fresh 127.0.0.1 socket until `stop` resolves (plus a short grace period). */
function receiver() {
  const socket = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const port = (socket.addr as Deno.NetAddr).port;
  const received: Uint8Array[] = [];
  const loop = (async () => {
    try {
      for (;;) {
        const [data] = await socket.receive();
        received.push(data);
      }
    } catch {
      // closed
    }
  })();
  return {
    port,
    received,
    async close() {
      await new Promise((r) => setTimeout(r, 200));
      socket.close();
      await loop;
    },
  };
}

Deno.test("send CLI: --count datagrams at no more than --rate, all decodable, with a summary line", async () => {
  const rx = receiver();
  const started = performance.now();
  const out = await sendCommand([
    "--port",
    String(rx.port),
    "--version",
    "10",
    "--count",
    "30",
    "--rate",
    "100",
    "--exporters",
    "3",
    "--ipv6",
    "--sampling",
    "10",
    "--seed",
    "9",
  ]).output();
  const elapsed = performance.now() - started;
  await rx.close();
  const stdout = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.match(
    stdout,
    /^sent 30 datagrams, 600 flows, \d+ bytes \(IPFIX, 3 exporters\) to 127\.0\.0\.1:\d+ in /,
  );
  // The sender never runs ahead of its schedule: 30 datagrams at 100/s take at least 0.3 s.
  assert.ok(elapsed >= 290, `took ${elapsed} ms`);
  assert.equal(rx.received.length, 30, "every datagram arrived (loopback)");
  const bytes = Number(stdout.match(/, (\d+) bytes/)![1]);
  assert.equal(rx.received.reduce((n, d) => n + d.length, 0), bytes);

  const decoder = new NetflowDecoder();
  const domains = new Set<number>();
  let flows = 0, v6 = 0;
  for (const d of rx.received) {
    for (const p of decoder.decode(d, "127.0.0.1", 1, Date.now())) {
      assert.equal(p.error, undefined, p.error?.message ?? "");
      assert.equal(p.sequenceLost, undefined);
      domains.add(p.observationDomainId!);
      flows += p.flows.length;
      v6 += p.flows.filter((f) => f.ipVersion === 6).length;
      assert.ok(p.flows.every((f) => f.samplingInterval === 10));
      // Export time is now.
      assert.ok(Math.abs(p.exportTimeMs! - Date.now()) < 60_000);
    }
  }
  assert.equal(flows, 600);
  assert.ok(v6 > 0 && v6 < 600, "a mix of IPv4 and IPv6");
  assert.deepEqual([...domains].sort(), [1, 2, 3]);
});

Deno.test("send CLI: v5 flat out, and --count 0 runs until SIGTERM and still prints its summary", async () => {
  const rx = receiver();
  const fast = await sendCommand([
    "--port",
    String(rx.port),
    "--version",
    "5",
    "--count",
    "50",
    "--rate",
    "0",
  ])
    .output();
  assert.equal(fast.code, 0, new TextDecoder().decode(fast.stderr));
  assert.match(
    new TextDecoder().decode(fast.stdout),
    /^sent 50 datagrams, 1500 flows, 73200 bytes \(NetFlow v5/,
  );

  const child = sendCommand(["--port", String(rx.port), "--version", "9", "--count", "0", "--rate", "50"])
    .spawn();
  // Wait until it is sending, then stop it.
  for (let i = 0; i < 200 && rx.received.length < 55; i++) await new Promise((r) => setTimeout(r, 50));
  child.kill("SIGTERM");
  const out = await child.output();
  await rx.close();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const summary = new TextDecoder().decode(out.stdout).match(/^sent (\d+) datagrams, (\d+) flows/);
  assert.ok(summary, "summary line");
  assert.ok(Number(summary[1]) >= 5, summary[0]);
  assert.equal(Number(summary[2]), 20 * Number(summary[1]));
});

Deno.test("send CLI: --help, and invalid flags exit 2 with one line", async () => {
  const help = await sendCommand(["--help"]).output();
  assert.equal(help.code, 0);
  assert.match(new TextDecoder().decode(help.stdout), /--flows-per-packet/);
  for (
    const [args, message] of [
      [["--version", "7"], /--version/],
      [["--port", "70000"], /--port/],
      [["--version", "5", "--flows-per-packet", "31"], /--flows-per-packet/],
      [["--version", "5", "--ipv6"], /--ipv6/],
      [["--bogus"], /bogus/],
    ] as const
  ) {
    const out = await sendCommand([...args]).output();
    assert.equal(out.code, 2, args.join(" "));
    assert.match(new TextDecoder().decode(out.stderr), message);
  }
});

Deno.test("send CLI: nothing listening is not an error (exporters keep sending)", async () => {
  const probe = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const out = await sendCommand(["--port", String(port), "--version", "5", "--count", "20", "--rate", "0"])
    .output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.match(new TextDecoder().decode(out.stdout), /^sent 20 datagrams, 600 flows/);
});
