/**
 * The encoders, byte for byte against hand-computed datagrams, and (when tshark is installed) against
 * Wireshark's NetFlow/IPFIX dissector reading a pcap written by test/support/pcap.ts.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import process from "node:process";
import {
  encodeIpfix,
  encodeV1,
  encodeV5,
  encodeV9,
  type FixedFlow,
  flowRecord,
  IE,
  ipv6Bytes,
  standardTemplate,
  type Template,
  valueBytes,
  VARIABLE_LENGTH,
} from "../src/tools/encode.ts";
import { pcapBytes, udpFrame, writePcap } from "./support/pcap.ts";
import { missingTools } from "./support/exporters.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
/** Hex with spaces and `|` separators for readability. */
const h = (...parts: string[]) => parts.join("").replace(/[\s|]/g, "");

const FLOW: FixedFlow = {
  srcAddr: "10.0.0.1",
  dstAddr: "192.168.1.2",
  nextHop: "10.0.0.254",
  inputIf: 4,
  outputIf: 9,
  packets: 3,
  bytes: 1500,
  firstSwitched: 990_000,
  lastSwitched: 995_500,
  srcPort: 51000,
  dstPort: 443,
  tcpFlags: 0x1b,
  protocol: 6,
  tos: 0x28,
  srcAs: 64500,
  dstAs: 15169,
  srcMask: 24,
  dstMask: 22,
};

// srcaddr dstaddr nexthop | input output | dPkts dOctets | first last | srcport dstport
const RECORD_START = h(
  "0a000001 c0a80102 0a0000fe | 0004 0009 | 00000003 000005dc | 000f1b30 000f30ac | c738 01bb",
);

Deno.test("v5: 24-byte header and 48-byte record at Cisco offsets", () => {
  const b = encodeV5(
    {
      sysUptimeMs: 1_000_000,
      exportTimeMs: 1_700_000_000_250,
      sequence: 7,
      engineType: 1,
      engineId: 2,
      samplingInterval: 10,
    },
    [FLOW],
  );
  assert.equal(b.length, 24 + 48);
  assert.equal(
    hex(b),
    h(
      "0005 0001 | 000f4240 | 6553f100 | 0ee6b280 | 00000007 | 01 02 | 400a", // mode 1, interval 10
      RECORD_START,
      "00 1b 06 28 | fbf4 3b41 | 18 16 | 0000", // pad1 flags prot tos | src_as dst_as | masks | pad2
    ),
  );
  // Header override for malformed-packet tests; no sampling → 0.
  const bad = encodeV5({ sysUptimeMs: 0, count: 30 }, []);
  assert.equal(hex(bad), h("0005 001e", "00".repeat(20)));
});

Deno.test("v1: 16-byte header and 48-byte record (pad1, prot, tos, flags, pad2)", () => {
  const b = encodeV1({ sysUptimeMs: 1_000_000, unixSecs: 1_700_000_000, unixNsecs: 5 }, [FLOW, {}]);
  assert.equal(b.length, 16 + 2 * 48);
  assert.equal(
    hex(b.subarray(0, 64)),
    h("0001 0002 | 000f4240 | 6553f100 | 00000005", RECORD_START, "0000 06 28 1b 00000000000000"),
  );
  assert.equal(hex(b.subarray(64)), "00".repeat(48));
});

Deno.test("v9: template, options template and data flowsets with padding and record count", () => {
  const t: Template = { id: 300, fields: [{ id: 8, length: 4 }, { id: 7, length: 2 }, { id: 1, length: 4 }] };
  const opt: Template = {
    id: 400,
    scopeFields: [{ id: 1, length: 4 }], // scope: system
    fields: [{ id: 34, length: 4 }, { id: 35, length: 1 }], // sampling interval, algorithm
  };
  const b = encodeV9({ sysUptimeMs: 1000, unixSecs: 1_700_000_000, sequence: 42, sourceId: 0x01020304 }, [
    { type: "templates", templates: [t] },
    { type: "options", templates: [opt], padding: "align" },
    { type: "data", template: t, records: [["10.0.0.1", 80, 1500]], padding: "align" },
    { type: "data", template: opt, records: [[0, 100, 2]], padding: "align" },
  ]);
  assert.equal(
    hex(b),
    h(
      "0009 0004 | 000003e8 | 6553f100 | 0000002a | 01020304", // 4 records: 2 templates, 2 data
      "0000 0014 | 012c 0003 | 0008 0004 | 0007 0002 | 0001 0004",
      "0001 0018 | 0190 0004 0008 | 0001 0004 | 0022 0004 | 0023 0001 | 0000", // scope 4 bytes, options 8
      "012c 0010 | 0a000001 0050 000005dc | 0000",
      "0190 0010 | 00000000 00000064 02 | 000000",
    ),
  );
  assert.equal(encodeV9({ sysUptimeMs: 0, count: 9 }, [])[3], 9);
});

Deno.test("IPFIX: enterprise fields, both variable-length forms, options template, withdrawal, length", () => {
  const t: Template = {
    id: 256,
    fields: [{ id: 8, length: 4 }, { id: 82, length: VARIABLE_LENGTH }, {
      id: 1,
      length: 2,
      enterprise: 29305,
    }],
  };
  const long = new Uint8Array(300).fill(0xab);
  const b = encodeIpfix({ exportTimeMs: 1_700_000_000_999, sequence: 5, observationDomainId: 9 }, [
    { type: "templates", templates: [t] },
    { type: "data", template: t, records: [["10.0.0.1", "eth0", 5], ["10.0.0.2", long, 6]], padding: 1 },
    {
      type: "options",
      templates: [{ id: 257, scopeFields: [{ id: 149, length: 4 }], fields: [{ id: 305, length: 4 }] }],
    },
    { type: "templates", templates: [{ id: 256, fields: [] }] },
  ]);
  const expected = h(
    "000a 0187 | 6553f100 | 00000005 | 00000009", // length 391; export time in whole seconds
    "0002 0018 | 0100 0003 | 0008 0004 | 0052 ffff | 8001 0002 00007279",
    "0100 0145", // 4 + 11 + 309 + 1 padding
    "0a000001 | 04 65746830 | 0005", // 1-byte length form
    "0a000002 | ff 012c",
    "ab".repeat(300),
    "0006 | 00", // 255 + 2-byte length form; padding
    "0003 0012 | 0101 0002 0001 | 0095 0004 | 0131 0004", // field count 2, scope field count 1
    "0002 0008 | 0100 0000", // withdrawal
  );
  assert.equal(hex(b), expected);
  assert.equal(b.length, 391);
});

Deno.test("values: addresses, MAC, text, floats, integers, and the errors", () => {
  assert.equal(hex(ipv6Bytes("2001:db8::1")), "20010db8" + "0".repeat(22) + "01");
  assert.equal(hex(ipv6Bytes("::")), "0".repeat(32));
  assert.equal(hex(ipv6Bytes("::ffff:192.0.2.1")), "0".repeat(20) + "ffffc0000201");
  assert.equal(hex(ipv6Bytes("fe80::1:2:3:4:5:6")), "fe80000000010002000300040005" + "0006");
  assert.equal(hex(ipv6Bytes("1:2:3:4:5:6:7:8")), "00010002000300040005000600070008");
  for (const bad of ["1::2::3", "1:2:3", "1:2:3:4:5:6:7:8:9", "g::1"]) assert.throws(() => ipv6Bytes(bad));
  assert.equal(hex(valueBytes("00:1b:21:aa:bb:cc", 6)), "001b21aabbcc");
  assert.equal(hex(valueBytes("eth0", 8)), "6574683000000000");
  assert.equal(hex(valueBytes(1.5, 8)), "3ff8000000000000");
  assert.equal(hex(valueBytes(2n ** 64n - 1n, 8)), "ff".repeat(8));
  assert.equal(hex(valueBytes(0, 16)), "00".repeat(16));
  assert.equal(hex(valueBytes("2001:db8::1", VARIABLE_LENGTH)).length, 32);
  assert.throws(() => valueBytes(256, 1), /does not fit/);
  assert.throws(() => valueBytes(-1, 4), /does not fit/);
  assert.throws(() => valueBytes(new Uint8Array(3), 4), /3 bytes/);
  assert.throws(() => valueBytes("too long", 4), /does not fit/);
  const t = { id: 256, fields: [{ id: 8, length: 4 }] };
  assert.throws(
    () => encodeV9({ sysUptimeMs: 0 }, [{ type: "data", template: t, records: [[1, 2]] }]),
    /2 values/,
  );
  assert.throws(
    () =>
      encodeV9({ sysUptimeMs: 0 }, [{
        type: "templates",
        templates: [{ id: 256, fields: [{ id: 1, length: 4, enterprise: 9 }] }],
      }]),
    /only in IPFIX/,
  );
  const raw = encodeIpfix({}, [{ type: "raw", setId: 2, body: new Uint8Array([1, 2]) }]);
  assert.equal(hex(raw.subarray(16)), "0002000601" + "02");
});

Deno.test("standardTemplate + flowRecord: a typical flow in a few lines", () => {
  const t4 = standardTemplate(4);
  assert.equal(t4.id, 256);
  assert.deepEqual(t4.fields.map((f) => f.id), [
    8,
    12,
    15,
    7,
    11,
    4,
    5,
    6,
    1,
    2,
    10,
    14,
    16,
    17,
    9,
    13,
    22,
    21,
  ]);
  assert.deepEqual(flowRecord(FLOW, t4), [
    "10.0.0.1",
    "192.168.1.2",
    "10.0.0.254",
    51000,
    443,
    6,
    0x28,
    0x1b,
    1500,
    3,
    4,
    9,
    64500,
    15169,
    24,
    22,
    990_000,
    995_500,
  ]);
  const t6 = standardTemplate(6, {
    times: "milliseconds",
    extra: [{ id: 82, length: VARIABLE_LENGTH }, { id: 1, length: 4, enterprise: 9 }, { id: 58, length: 2 }],
  });
  assert.equal(t6.id, 257);
  assert.deepEqual(t6.fields.slice(0, 3).map((f) => f.length), [16, 16, 16]);
  assert.deepEqual(t6.fields.slice(16, 18).map((f) => f.id), [
    IE.flowStartMilliseconds,
    IE.flowEndMilliseconds,
  ]);
  const rec = flowRecord({ srcAddr: "2001:db8::1", startMs: 1, endMs: 2, fields: { "9/1": 7 } }, t6);
  assert.deepEqual(rec.slice(16), [1, 2, new Uint8Array(0), 7, 0]);
  // Without a template: the standard one for the flow's address family.
  assert.equal(flowRecord({ srcAddr: "2001:db8::1" }).length, standardTemplate(6).fields.length);
  // Encodes into both versions.
  const v9 = encodeV9({ sysUptimeMs: 1_000_000 }, [
    { type: "templates", templates: [t4] },
    { type: "data", template: t4, records: [flowRecord(FLOW, t4)] },
  ]);
  assert.equal(v9.length, 20 + (4 + 4 + 18 * 4) + (4 + 61));
});

Deno.test("pcap: global header, Ethernet/IPv4/UDP lengths and checksums, IPv6 frames", () => {
  const payload = new Uint8Array([1, 2, 3]);
  const file = pcapBytes([{
    src: "10.1.1.1",
    srcPort: 40000,
    dst: "10.2.2.2",
    dstPort: 2055,
    payload,
    timeMs: 1500,
  }]);
  const view = new DataView(file.buffer);
  assert.equal(view.getUint32(0, true), 0xa1b2c3d4);
  assert.equal(view.getUint32(20, true), 1); // Ethernet
  assert.deepEqual([view.getUint32(24, true), view.getUint32(28, true)], [1, 500_000]);
  const frameLen = 14 + 20 + 8 + 3;
  assert.deepEqual([view.getUint32(32, true), view.getUint32(36, true)], [frameLen, frameLen]);
  assert.equal(file.length, 24 + 16 + frameLen);
  const frame = file.subarray(40);
  assert.equal(hex(frame.subarray(12, 14)), "0800");
  assert.equal(view.getUint16(40 + 14 + 2), 20 + 8 + 3); // IPv4 total length
  assert.equal(view.getUint16(40 + 34 + 4), 8 + 3); // UDP length
  // A correct IPv4 header sums to 0xffff (one's complement).
  let sum = 0;
  for (let i = 14; i < 34; i += 2) sum += (frame[i] << 8) | frame[i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  assert.equal(sum, 0xffff);
  const v6 = udpFrame({ src: "2001:db8::1", srcPort: 1, dst: "2001:db8::2", dstPort: 2055, payload });
  assert.equal(v6.length, 14 + 40 + 8 + 3);
  assert.equal(hex(v6.subarray(12, 14)), "86dd");
});

// ---------------------------------------------------------------------------------------------------------
// tshark cross-check
// ---------------------------------------------------------------------------------------------------------

const CI = process.env.CI === "true";
const HAVE_TSHARK = missingTools(["tshark"]).length === 0;
if (!HAVE_TSHARK && !CI) {
  console.warn("encode.test.ts: tshark not installed, skipping the tshark cross-check");
}

type Fields = Record<string, string[]>;

/** Every `cflow.*` / checksum field of each frame, flattened: name → all values in order. */
async function tsharkDecode(path: string): Promise<Fields[]> {
  const { success, stdout, stderr } = await new Deno.Command("tshark", {
    args: [
      "-r",
      path,
      "-T",
      "json",
      "-d",
      "udp.port==2055,cflow",
      "-o",
      "ip.check_checksum:TRUE",
      "-o",
      "udp.check_checksum:TRUE",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(success, new TextDecoder().decode(stderr));
  const packets = JSON.parse(new TextDecoder().decode(stdout)) as {
    _source: { layers: Record<string, unknown> };
  }[];
  return packets.map((p) => {
    const out: Fields = {};
    const walk = (o: unknown) => {
      for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
        if (Array.isArray(v)) (out[k] ??= []).push(...v.map(String));
        else if (v && typeof v === "object") walk(v);
        else (out[k] ??= []).push(String(v));
      }
    };
    walk(p._source.layers);
    return out;
  });
}

function expectFields(actual: Fields, expected: Record<string, string | string[]>, label: string) {
  for (const [k, v] of Object.entries(expected)) {
    assert.deepEqual(actual[k], Array.isArray(v) ? v : [v], `${label}: ${k}`);
  }
}

Deno.test({
  name: "tshark decodes the encoders' v1/v5/v9/IPFIX datagrams to the same values",
  ignore: !HAVE_TSHARK && !CI,
  async fn() {
    if (!HAVE_TSHARK) throw new Error("tshark is not installed, and CI=true requires the tshark cross-check");
    const t4 = standardTemplate(4);
    const sampling: Template = {
      id: 260,
      scopeFields: [{ id: 1, length: 4 }],
      fields: [{ id: 34, length: 4 }, { id: 35, length: 1 }],
    };
    const t6 = standardTemplate(6, {
      times: "milliseconds",
      extra: [{ id: 82, length: VARIABLE_LENGTH }, { id: 1, length: 4, enterprise: 9 }, {
        id: 83,
        length: VARIABLE_LENGTH,
      }],
    });
    const flow6 = {
      ...FLOW,
      srcAddr: "2001:db8::1",
      dstAddr: "2001:db8::2",
      nextHop: "fe80::1",
      startMs: 1_700_000_000_123,
      endMs: 1_700_000_001_456,
      fields: { "82": "eth0", "9/1": 5, "83": "x".repeat(300) },
    };
    const datagrams = [
      encodeV1({ sysUptimeMs: 1_000_000, exportTimeMs: 1_700_000_000_250 }, [FLOW]),
      encodeV5(
        {
          sysUptimeMs: 1_000_000,
          exportTimeMs: 1_700_000_000_250,
          sequence: 7,
          engineType: 1,
          engineId: 2,
          samplingInterval: 10,
        },
        [FLOW, { ...FLOW, srcAddr: "10.0.0.2" }],
      ),
      encodeV9({ sysUptimeMs: 1_000_000, exportTimeMs: 1_700_000_000_250, sequence: 8, sourceId: 3 }, [
        { type: "templates", templates: [t4] },
        { type: "options", templates: [sampling], padding: "align" },
        { type: "data", template: t4, records: [flowRecord(FLOW, t4)], padding: "align" },
        { type: "data", template: sampling, records: [[0, 100, 2]], padding: "align" },
      ]),
      encodeIpfix({ exportTimeMs: 1_700_000_000_250, sequence: 9, observationDomainId: 4 }, [
        { type: "templates", templates: [t6] },
        { type: "data", template: t6, records: [flowRecord(flow6, t6)] },
      ]),
    ];
    const path = Deno.makeTempFileSync({ suffix: ".pcap" });
    try {
      writePcap(
        path,
        datagrams.map((payload) => ({
          src: "10.1.1.1",
          srcPort: 40000,
          dst: "10.2.2.2",
          dstPort: 2055,
          payload,
        })),
      );
      const [v1, v5, v9, ipfix] = await tsharkDecode(path);
      const common = { "ip.checksum.status": "1", "udp.checksum.status": "1" }; // 1 = good
      const record = {
        "cflow.srcaddr": "10.0.0.1",
        "cflow.dstaddr": "192.168.1.2",
        "cflow.nexthop": "10.0.0.254",
        "cflow.inputint": "4",
        "cflow.outputint": "9",
        "cflow.packets": "3",
        "cflow.octets": "1500",
        "cflow.timestart": "990.000000000",
        "cflow.timeend": "995.500000000",
        "cflow.srcport": "51000",
        "cflow.dstport": "443",
        "cflow.protocol": "6",
        "cflow.tos": "0x28",
        "cflow.tcpflags": "0x1b",
      };
      const asAndMasks = {
        "cflow.srcas": "64500",
        "cflow.dstas": "15169",
        "cflow.srcmask": "24",
        "cflow.dstmask": "22",
      };
      expectFields(v1, {
        ...common,
        ...record,
        "cflow.version": "1",
        "cflow.count": "1",
        "cflow.sysuptime": "1000.000000000",
        "cflow.unix_secs": "1700000000",
        "cflow.unix_nsecs": "250000000",
      }, "v1");
      expectFields(v5, {
        ...common,
        "cflow.version": "5",
        "cflow.count": "2",
        "cflow.unix_nsecs": "250000000",
        "cflow.sequence": "7",
        "cflow.engine_type": "1",
        "cflow.engine_id": "2",
        "cflow.samplingmode": "1",
        "cflow.samplerate": "10",
        "cflow.srcaddr": ["10.0.0.1", "10.0.0.2"],
        "cflow.srcas": ["64500", "64500"],
        "cflow.dstmask": ["22", "22"],
      }, "v5");
      expectFields(v9, {
        ...common,
        ...record,
        ...asAndMasks,
        "cflow.version": "9",
        "cflow.count": "4",
        "cflow.sequence": "8",
        "cflow.source_id": "3",
        "cflow.unix_secs": "1700000000",
        "cflow.flowset_id": ["0", "1", "256", "260"],
        "cflow.sampling_interval": "100",
        "cflow.sampling_algorithm": "2",
      }, "v9");
      expectFields(ipfix, {
        ...common,
        "cflow.version": "10",
        "cflow.len": String(datagrams[3].length),
        "cflow.exporttime": "1700000000",
        "cflow.sequence": "9",
        "cflow.od_id": "4",
        "cflow.srcaddrv6": "2001:db8::1",
        "cflow.dstaddrv6": "2001:db8::2",
        "cflow.nexthopv6": "fe80::1",
        "cflow.srcmaskv6": "24",
        "cflow.octets": "1500",
        "cflow.abstimestart": "Nov 14, 2023 22:13:20.123000000 UTC",
        "cflow.abstimeend": "Nov 14, 2023 22:13:21.456000000 UTC",
        "cflow.if_name": "eth0",
        "cflow.if_descr": "x".repeat(300),
        "cflow.enterprise_private_entry": "00:00:00:05",
      }, "ipfix");
      for (const [i, f] of [v1, v5, v9, ipfix].entries()) {
        assert.equal(f["_ws.malformed"], undefined, `frame ${i + 1} malformed`);
        assert.equal(f["_ws.expert"], undefined, `frame ${i + 1} has expert info`);
      }
    } finally {
      Deno.removeSync(path);
    }
  },
});
