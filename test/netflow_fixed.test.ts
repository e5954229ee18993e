import assert from "node:assert/strict";
import { NetflowDecoder } from "../src/netflow/decoder.ts";

/** Hand-built bytes: big-endian fields written at explicit offsets, nothing shared with the decoder. */
function bytes(size: number, fields: [offset: number, width: 1 | 2 | 4, value: number][]): Uint8Array {
  const b = new Uint8Array(size);
  const v = new DataView(b.buffer);
  for (const [off, width, value] of fields) {
    if (width === 1) v.setUint8(off, value);
    else if (width === 2) v.setUint16(off, value);
    else v.setUint32(off, value);
  }
  return b;
}

const ip = (a: number, b: number, c: number, d: number) => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;

function v5Record(base: number, n: number): [number, 1 | 2 | 4, number][] {
  return [
    [base + 0, 4, ip(10, 0, 0, n)],
    [base + 4, 4, ip(192, 168, 1, 200)],
    [base + 8, 4, ip(10, 255, 255, 254)],
    [base + 12, 2, 3],
    [base + 14, 2, 7],
    [base + 16, 4, 12 + n],
    [base + 20, 4, 3400 + n],
    [base + 24, 4, 990_000],
    [base + 28, 4, 995_500],
    [base + 32, 2, 51000 + n],
    [base + 34, 2, 443],
    [base + 37, 1, 0x1b],
    [base + 38, 1, 6],
    [base + 39, 1, 0xb8],
    [base + 40, 2, 64512],
    [base + 42, 2, 15169],
    [base + 44, 1, 24],
    [base + 45, 1, 16],
  ];
}

function v5(count: number, records: number, extra: [number, 1 | 2 | 4, number][] = []): Uint8Array {
  const fields: [number, 1 | 2 | 4, number][] = [
    [0, 2, 5],
    [2, 2, count],
    [4, 4, 1_000_000],
    [8, 4, 1_700_000_000],
    [12, 4, 250_000_000],
    [16, 4, 4242],
    [20, 1, 1],
    [21, 1, 7],
    [22, 2, (1 << 14) | 100],
    ...extra,
  ];
  for (let i = 0; i < records; i++) fields.push(...v5Record(24 + 48 * i, i + 1));
  return bytes(24 + 48 * records, fields);
}

Deno.test("v5: every header and record field", () => {
  const [p] = new NetflowDecoder().decode(v5(2, 2), "192.0.2.1", 40000, 1_700_000_000_300);
  assert.equal(p.error, undefined);
  assert.equal(p.version, 5);
  assert.equal(p.sizeBytes, 24 + 96);
  assert.equal(p.sysUptimeMs, 1_000_000);
  assert.equal(p.exportTimeMs, 1_700_000_000_250);
  assert.equal(p.sequence, 4242);
  assert.equal(p.engineType, 1);
  assert.equal(p.engineId, 7);
  assert.equal(p.samplingInterval, 100);
  assert.equal(p.flows.length, 2);
  assert.deepEqual(p.flows[1], {
    srcAddr: "10.0.0.2",
    dstAddr: "192.168.1.200",
    nextHop: "10.255.255.254",
    inputIf: 3,
    outputIf: 7,
    packets: 14,
    bytes: 3402,
    firstSwitched: 990_000,
    lastSwitched: 995_500,
    srcPort: 51002,
    dstPort: 443,
    tcpFlags: 0x1b,
    protocol: 6,
    tos: 0xb8,
    srcAs: 64512,
    dstAs: 15169,
    srcMask: 24,
    dstMask: 16,
    ipVersion: 4,
    samplingInterval: 100,
  });
});

Deno.test("v1: every header and record field", () => {
  const d = bytes(16 + 48, [
    [0, 2, 1],
    [2, 2, 1],
    [4, 4, 5000],
    [8, 4, 1_600_000_000],
    [12, 4, 999_999_999],
    [16, 4, ip(172, 16, 0, 1)],
    [20, 4, ip(8, 8, 8, 8)],
    [24, 4, ip(172, 16, 0, 254)],
    [28, 2, 1],
    [30, 2, 2],
    [32, 4, 3],
    [36, 4, 180],
    [40, 4, 4000],
    [44, 4, 4900],
    [48, 2, 53000],
    [50, 2, 53],
    [54, 1, 17],
    [55, 1, 0x10],
    [56, 1, 0x00],
  ]);
  const [p] = new NetflowDecoder().decode(d, "192.0.2.1", 1, 0);
  assert.equal(p.error, undefined);
  assert.equal(p.version, 1);
  assert.equal(p.exportTimeMs, 1_600_000_000_999);
  assert.equal(p.sequence, undefined);
  assert.deepEqual(p.flows, [{
    srcAddr: "172.16.0.1",
    dstAddr: "8.8.8.8",
    nextHop: "172.16.0.254",
    inputIf: 1,
    outputIf: 2,
    packets: 3,
    bytes: 180,
    firstSwitched: 4000,
    lastSwitched: 4900,
    srcPort: 53000,
    dstPort: 53,
    protocol: 17,
    tos: 0x10,
    tcpFlags: 0,
    ipVersion: 4,
  }]);
});

Deno.test("v5: truncated header is an error with no flows", () => {
  const [p] = new NetflowDecoder().decode(v5(1, 1).subarray(0, 20), "192.0.2.1", 1, 0);
  assert.equal(p.version, 5);
  assert.equal(p.error?.kind, "truncated");
  assert.equal(p.flows.length, 0);
});

Deno.test("v5: truncated record keeps the complete ones and reports the rest", () => {
  const full = v5(3, 3);
  const [p] = new NetflowDecoder().decode(full.subarray(0, full.length - 10), "192.0.2.1", 1, 0);
  assert.equal(p.error?.kind, "truncated");
  assert.equal(p.flows.length, 2);
});

Deno.test("v5: count larger than the datagram", () => {
  const [p] = new NetflowDecoder().decode(v5(30, 1), "192.0.2.1", 1, 0);
  assert.equal(p.error?.kind, "truncated");
  assert.match(p.error!.message, /30 records/);
  assert.equal(p.flows.length, 1);
});

Deno.test("counts above Cisco's documented maxima decode when the datagram holds them (softflowd v1 sends 30)", () => {
  const [p] = new NetflowDecoder().decode(v5(31, 31), "192.0.2.1", 1, 0);
  assert.equal(p.error, undefined);
  assert.equal(p.flows.length, 31);
  const v1 = bytes(16 + 48 * 30, [[0, 2, 1], [2, 2, 30]]);
  const [q] = new NetflowDecoder().decode(v1, "192.0.2.1", 1, 0);
  assert.equal(q.error, undefined);
  assert.equal(q.flows.length, 30);
});

Deno.test("unknown version, empty and one-byte datagrams are errors, never guesses", () => {
  const d = new NetflowDecoder();
  const [p] = d.decode(new Uint8Array([0, 7, 0, 0]), "192.0.2.1", 1, 0);
  assert.equal(p.version, 7);
  assert.equal(p.error?.kind, "unknown_version");
  assert.equal(d.decode(new Uint8Array(0), "192.0.2.1", 1, 0)[0].error?.kind, "truncated");
  assert.equal(d.decode(new Uint8Array([5]), "192.0.2.1", 1, 0)[0].error?.kind, "truncated");
});
