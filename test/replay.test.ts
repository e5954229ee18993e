/**
 * `netflow2traces replay FILE` and the capture reader behind it (src/tools/pcap.ts): classic pcap and
 * pcapng, Ethernet with VLAN tags, Linux cooked, raw IP, IPv4 and IPv6, fragments; a replay exports the
 * same spans as the live path for the same datagrams; a cut-off or foreign file is a clear error.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type CapturedDatagram, CaptureError, newSkips, readCapture } from "../src/tools/pcap.ts";
import { TrafficGenerator } from "../src/tools/traffic.ts";
import { runCollectorCommand, sendDatagrams, startCollectorProcess } from "./support/collector.ts";
import { type DecodedSpan, startOtlpReceiver } from "./support/otlp_receiver.ts";
import { pcapBytes, type PcapDatagram, udpFrame } from "./support/pcap.ts";

const T0 = 1_700_000_000_000;

function fromBytes(bytes: Uint8Array) {
  return (position: number, length: number) => bytes.slice(position, position + length);
}

function readAll(bytes: Uint8Array): { datagrams: CapturedDatagram[]; skips: ReturnType<typeof newSkips> } {
  const skips = newSkips();
  return { datagrams: [...readCapture(fromBytes(bytes), skips)], skips };
}

/** A pcapng file: one section, one interface per entry of `interfaces`, one enhanced packet block a frame. */
function pcapngBytes(
  interfaces: { linkType: number; tsresol?: number }[],
  frames: { iface: number; timeUnits: bigint; frame: Uint8Array; original?: number }[],
  littleEndian = true,
): Uint8Array {
  const blocks: Uint8Array[] = [];
  const block = (type: number, body: Uint8Array) => {
    const length = 12 + Math.ceil(body.length / 4) * 4;
    const b = new Uint8Array(length);
    const v = new DataView(b.buffer);
    v.setUint32(0, type, littleEndian);
    v.setUint32(4, length, littleEndian);
    b.set(body, 8);
    v.setUint32(length - 4, length, littleEndian);
    blocks.push(b);
  };
  const shb = new Uint8Array(16);
  const s = new DataView(shb.buffer);
  s.setUint32(0, 0x1a2b3c4d, littleEndian);
  s.setUint16(4, 1, littleEndian);
  s.setBigInt64(8, -1n, littleEndian);
  block(0x0a0d0d0a, shb);
  for (const i of interfaces) {
    const body = new Uint8Array(i.tsresol === undefined ? 8 : 20);
    const v = new DataView(body.buffer);
    v.setUint16(0, i.linkType, littleEndian);
    v.setUint32(4, 262144, littleEndian);
    if (i.tsresol !== undefined) {
      v.setUint16(8, 9, littleEndian);
      v.setUint16(10, 1, littleEndian);
      body[12] = i.tsresol;
      // 3 bytes of padding, then opt_endofopt (4 zero bytes).
    }
    block(1, body);
  }
  for (const f of frames) {
    const body = new Uint8Array(20 + f.frame.length);
    const v = new DataView(body.buffer);
    v.setUint32(0, f.iface, littleEndian);
    v.setUint32(4, Number(f.timeUnits >> 32n), littleEndian);
    v.setUint32(8, Number(f.timeUnits & 0xffffffffn), littleEndian);
    v.setUint32(12, f.frame.length, littleEndian);
    v.setUint32(16, f.original ?? f.frame.length, littleEndian);
    body.set(f.frame, 20);
    block(6, body);
  }
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of blocks) out.set(b, (at += b.length) - b.length);
  return out;
}

const payload = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + n) & 0xff);

Deno.test("capture reader: classic pcap, IPv4 and IPv6, sender and capture time kept, non-UDP skipped", () => {
  const datagrams: PcapDatagram[] = [
    { src: "10.0.0.1", srcPort: 50000, dst: "10.0.0.2", dstPort: 2055, payload: payload(100), timeMs: T0 },
    {
      src: "2001:db8::1",
      srcPort: 50001,
      dst: "2001:db8::2",
      dstPort: 4739,
      payload: payload(60),
      timeMs: T0 + 1.5,
    },
  ];
  const bytes = pcapBytes(datagrams);
  const { datagrams: got } = readAll(bytes);
  assert.equal(got.length, 2);
  assert.deepEqual(got.map((d) => [d.source, d.sourcePort, d.destinationPort, d.payload.length]), [
    ["10.0.0.1", 50000, 2055, 100],
    ["2001:db8::1", 50001, 4739, 60],
  ]);
  assert.deepEqual(got[0].payload, datagrams[0].payload);
  assert.equal(got[0].timeMs, T0);
  assert.ok(Math.abs(got[1].timeMs - (T0 + 1.5)) < 0.01, `µs stamps: ${got[1].timeMs}`);
});

Deno.test("capture reader: pcapng with two interfaces (µs and ns), VLAN tags, Linux cooked, raw IP, big-endian", () => {
  const d = { src: "192.0.2.7", srcPort: 9999, dst: "192.0.2.8", dstPort: 2055, payload: payload(80) };
  const ether = udpFrame(d);
  // One 802.1Q tag, then QinQ: tags go between the MAC addresses and the EtherType.
  const tagged = new Uint8Array(ether.length + 8);
  tagged.set(ether.subarray(0, 12), 0);
  tagged.set([0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0x0a], 12);
  tagged.set(ether.subarray(12), 20);
  const ip = ether.subarray(14);
  const sll = new Uint8Array(16 + ip.length);
  sll.set([0x08, 0x00], 14);
  sll.set(ip, 16);
  for (const littleEndian of [true, false]) {
    const bytes = pcapngBytes(
      [{ linkType: 1 }, { linkType: 101, tsresol: 9 }, { linkType: 113 }],
      [
        { iface: 0, timeUnits: BigInt(T0) * 1000n, frame: tagged },
        { iface: 1, timeUnits: BigInt(T0 + 5) * 1_000_000n, frame: ip },
        { iface: 2, timeUnits: BigInt(T0 + 9) * 1000n, frame: sll },
        { iface: 0, timeUnits: 0n, frame: ether.subarray(0, 60), original: ether.length }, // snapped
      ],
      littleEndian,
    );
    const { datagrams, skips } = readAll(bytes);
    assert.deepEqual(datagrams.map((x) => x.timeMs), [T0, T0 + 5, T0 + 9], `little endian: ${littleEndian}`);
    for (const x of datagrams) assert.deepEqual(x.payload, d.payload);
    assert.equal(skips.snapped, 1);
  }
});

Deno.test("capture reader: IPv4 and IPv6 fragments are reassembled, out of order too", () => {
  const big = payload(3000);
  for (const [src, dst] of [["10.1.1.1", "10.1.1.2"], ["2001:db8::a", "2001:db8::b"]]) {
    const frame = udpFrame({ src, srcPort: 4000, dst, dstPort: 2055, payload: big });
    const v6 = src.includes(":");
    const header = frame.subarray(0, 14 + (v6 ? 40 : 20));
    const body = frame.subarray(header.length); // UDP header + payload
    const pieces: Uint8Array[] = [];
    for (let off = 0; off < body.length; off += 1200) {
      const part = body.subarray(off, Math.min(body.length, off + 1200));
      const more = off + 1200 < body.length;
      if (v6) {
        const f = new Uint8Array(14 + 40 + 8 + part.length);
        f.set(header, 0);
        const v = new DataView(f.buffer);
        v.setUint16(14 + 4, 8 + part.length);
        f[14 + 6] = 44; // next header: fragment
        f[54] = 17;
        v.setUint16(56, off | (more ? 1 : 0));
        v.setUint32(58, 0xabcdef);
        f.set(part, 62);
        pieces.push(f);
      } else {
        const f = new Uint8Array(14 + 20 + part.length);
        f.set(header, 0);
        const v = new DataView(f.buffer);
        v.setUint16(14 + 2, 20 + part.length);
        v.setUint16(14 + 4, 0x1234);
        v.setUint16(14 + 6, (more ? 0x2000 : 0) | (off / 8));
        f.set(part, 34);
        pieces.push(f);
      }
    }
    const shuffled = [pieces[2], pieces[0], pieces[1]];
    const bytes = pcapngBytes(
      [{ linkType: 1 }],
      shuffled.map((frame) => ({ iface: 0, timeUnits: 0n, frame })),
    );
    const { datagrams, skips } = readAll(bytes);
    assert.equal(datagrams.length, 1, src);
    assert.deepEqual(datagrams[0].payload, big);
    assert.equal(datagrams[0].source, src);
    assert.equal(skips.fragments, 0);
    // A datagram that never completes is counted.
    const partial = readAll(pcapngBytes([{ linkType: 1 }], [{ iface: 0, timeUnits: 0n, frame: pieces[0] }]));
    assert.equal(partial.datagrams.length, 0);
    assert.equal(partial.skips.fragments, 1);
  }
});

Deno.test("capture reader: a foreign file and a cut-off file are clear errors (after what was whole)", () => {
  assert.throws(
    () => readAll(new TextEncoder().encode("this is a text file, not a capture at all\n")),
    (e) => e instanceof CaptureError && /not a pcap or pcapng file/.test(e.message),
  );
  const bytes = pcapBytes([
    { src: "10.0.0.1", srcPort: 1, dst: "10.0.0.2", dstPort: 2055, payload: payload(50) },
    { src: "10.0.0.1", srcPort: 1, dst: "10.0.0.2", dstPort: 2055, payload: payload(50) },
  ]);
  const seen: CapturedDatagram[] = [];
  assert.throws(() => {
    for (const d of readCapture(fromBytes(bytes.subarray(0, bytes.length - 10)))) seen.push(d);
  }, (e) => e instanceof CaptureError && /ends inside a record/.test(e.message));
  assert.equal(seen.length, 1);
});

const run = runCollectorCommand;

/** A span's identity apart from its IDs: name and attributes, minus what the receiving socket sets. */
function shape(s: DecodedSpan): string {
  const { ...attrs } = s.attributes;
  // The live path's collector port is a free port picked by the test; a replay names the configured one.
  delete attrs["netflow.collector.port"];
  // Receive time − export time: live, when the socket read it; replayed, the capture time the test wrote.
  delete attrs["netflow.exporter.clock_skew_ms"];
  return JSON.stringify([
    s.name,
    String(s.startNs),
    String(s.endNs),
    s.kind,
    s.status,
    Object.entries(attrs).sort(),
  ]);
}

Deno.test("replay: v5, v9 with templates and IPFIX over IPv6 in a pcap and a pcapng give the live path's spans", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "n2t-replay-" });
  const live = await startOtlpReceiver({ protocol: "http" });
  const replayed = await startOtlpReceiver({ protocol: "http" });
  const now = Date.now();
  const streams = ([5, 9, 10] as const).map((version) => {
    const gen = new TrafficGenerator({
      version,
      seed: version,
      ipv6: version === 10 ? 0.5 : 0,
      flowsPerPacket: 10,
    });
    return Array.from({ length: 6 }, (_, i) => gen.next(now + i).payload);
  });
  const env = {
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
    OTEL_BSP_SCHEDULE_DELAY: "100",
    NETFLOW_STATS_INTERVAL: "0",
  };
  try {
    const collector = await startCollectorProcess({ ...env, OTEL_EXPORTER_OTLP_ENDPOINT: live.url });
    const ports: number[] = [];
    for (const s of streams) ports.push(await sendDatagrams(collector.port, s));
    const expected = streams.flat().length * 12;
    await live.waitForSpans(expected, 20_000);
    await collector.stop();

    const frames = (i: number, src: string) =>
      streams[i].map((p, n) => ({
        src,
        srcPort: ports[i],
        dst: src.includes(":") ? "::1" : "127.0.0.1",
        dstPort: 2055,
        payload: p,
        timeMs: now + n,
      }));
    const pcap = join(dir, "v5-v9.pcap"), pcapng = join(dir, "ipfix-v6.pcapng");
    Deno.writeFileSync(pcap, pcapBytes([...frames(0, "127.0.0.1"), ...frames(1, "127.0.0.1")]));
    Deno.writeFileSync(
      pcapng,
      pcapngBytes(
        [{ linkType: 1 }],
        frames(2, "127.0.0.1").map((d) => ({
          iface: 0,
          timeUnits: BigInt(d.timeMs) * 1000n,
          frame: udpFrame(d),
        })),
      ),
    );
    for (const file of [pcap, pcapng]) {
      const r = await run(["replay", file], {
        ...env,
        OTEL_EXPORTER_OTLP_ENDPOINT: replayed.url,
        NETFLOW_LISTEN_HOST: "127.0.0.1", // as the live collector's
      });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /replay: file=.* datagrams=\d+ exporters=1 templates=\d+ flows=\d+ errors=0/);
      assert.match(r.stdout, /replay: exported spans=\d+ .*dropped=0 failed=0/);
    }
    await replayed.waitForSpans(expected, 20_000);
    assert.deepEqual(replayed.spans.map(shape).sort(), live.spans.map(shape).sort());
  } finally {
    await live.close();
    await replayed.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("replay: --dry-run prints what the file holds and exports nothing; bad files and usage exit non-zero", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "n2t-replay-" });
  try {
    const gen = new TrafficGenerator({ version: 9, seed: 3, exporters: 2, flowsPerPacket: 5 });
    const datagrams = Array.from({ length: 8 }, (_, i) => gen.next(T0 + i).payload);
    const file = join(dir, "v9.pcap");
    Deno.writeFileSync(
      file,
      pcapBytes([
        ...datagrams.map((payload, i) => ({
          src: `10.0.0.${1 + (i % 2)}`,
          srcPort: 2000,
          dst: "10.9.9.9",
          dstPort: 2055,
          payload,
          timeMs: T0 + i,
        })),
        // DNS on the same link: not NetFlow, skipped by its first bytes.
        {
          src: "10.0.0.3",
          srcPort: 53,
          dst: "10.9.9.9",
          dstPort: 53000,
          payload: payload(40),
          timeMs: T0 + 9,
        },
      ]),
    );
    const r = await run(["replay", "--dry-run", file], { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:1" });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /datagrams=8 exporters=2 templates=\d+ flows=40 errors=0 skipped_not_netflow=1/);
    assert.match(
      r.stdout,
      /exporter 10\.0\.0\.1: versions=9 datagrams=4 flows=20 first=2023-11-14T22:13:20\.000Z/,
    );
    const byPort = await run(["replay", "--dry-run", "--port", "53000", file], {});
    assert.match(byPort.stdout, /datagrams=1 exporters=1 .*skipped_not_netflow=8/);

    const text = join(dir, "notes.txt");
    Deno.writeTextFileSync(text, "not a capture, just some words in a file\n");
    const bad = await run(["replay", "--dry-run", text], {});
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /notes\.txt: not a pcap or pcapng file/);
    const cut = join(dir, "cut.pcap");
    Deno.writeFileSync(cut, Deno.readFileSync(file).subarray(0, 200));
    const truncated = await run(["replay", "--dry-run", cut], {});
    assert.equal(truncated.code, 1);
    assert.match(truncated.stderr, /ends inside a record/);
    assert.equal((await run(["replay"], {})).code, 2);
    assert.equal((await run(["replay", "--port", "99999", file], {})).code, 2);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
