/**
 * ICMP and ICMPv6 type and code (SPEC §3 `netflow.icmp.type`, `netflow.icmp.code`): every source (IE 32,
 * 139, 176–179, the destination port) in every version, IOS-XR's byte-swapped ICMPv6 per exporter + domain,
 * ICMPv6's reserved value 0, no ports on ICMP flows, and the Community ID over the same type and code. The
 * datagrams are built with src/tools/encode.ts and go through the decoder and planTrace() as in the
 * collector; a last test compares softflowd's exports, decoded by us, with tshark's reading of them.
 */
import assert from "node:assert/strict";
import { NetflowDecoder } from "../src/netflow/decoder.ts";
import type { TemplateDecoderOptions } from "../src/netflow/decoder_options.ts";
import type { ExportPacket } from "../src/netflow/types.ts";
import {
  encodeIpfix,
  encodeV1,
  encodeV5,
  encodeV9,
  type FieldSpec,
  type FixedFlow,
  type RawValue,
  type Template,
} from "../src/tools/encode.ts";
import type { Attributes } from "../src/traces/attributes.ts";
import { flowAttributes } from "../src/traces/attributes.ts";
import { communityId } from "../src/traces/community_id.ts";
import { planTrace } from "../src/traces/spans.ts";
import { findTool, missingTools, runBounded, runSoftflowd } from "./support/exporters.ts";
import { join } from "./support/paths.ts";
import { writePcap } from "./support/pcap.ts";
import { writeTrafficPcap } from "./support/traffic.ts";

const EXPORT_MS = 1_700_000_000_000;
const E1 = "192.0.2.1", E2 = "192.0.2.2";
const OPTIONS = { spanTime: "flow" as const, collectorHost: "0.0.0.0", collectorPort: 2055 };
const ICMP = 1, ICMP6 = 58;

function decoder(options: Partial<TemplateDecoderOptions> = {}): NetflowDecoder {
  return new NetflowDecoder(options);
}

function decodeOne(d: NetflowDecoder, bytes: Uint8Array, exporter = E1): ExportPacket {
  const packets = d.decode(bytes, exporter, 2055, EXPORT_MS + 100);
  assert.equal(packets.length, 1);
  assert.equal(packets[0].error, undefined, JSON.stringify(packets[0].error));
  return packets[0];
}

/** The `netflow.flow` attributes of every flow of a packet, as the collector builds them. */
function spans(packet: ExportPacket): Attributes[] {
  return planTrace(packet, OPTIONS).flows.map((f) => f.attributes);
}

/** [type, code] as emitted; `undefined` entries when absent. */
function typeCode(a: Attributes): [unknown, unknown] {
  return [a["netflow.icmp.type"], a["netflow.icmp.code"]];
}

/**
 * An ICMP span: the expected type/code (or neither), no port attributes, and the Community ID of the same
 * type and code.
 */
function assertIcmp(a: Attributes, expected: [number, number] | undefined, label: string): void {
  if (expected === undefined) {
    assert.equal("netflow.icmp.type" in a, false, `${label}: netflow.icmp.type`);
    assert.equal("netflow.icmp.code" in a, false, `${label}: netflow.icmp.code`);
  } else {
    assert.deepEqual(typeCode(a), expected, label);
    assert.equal(typeof a["netflow.icmp.type"], "number");
  }
  for (const k of ["source.port", "destination.port", "network.peer.port", "client.port", "server.port"]) {
    assert.equal(k in a, false, `${label}: ${k} on an ICMP flow`);
  }
  const proto = a["network.protocol.number"] as number;
  assert.ok(proto === ICMP || proto === ICMP6, label);
  assert.equal(
    a["netflow.community_id"],
    communityId(
      a["source.address"] as string,
      a["destination.address"] as string,
      proto,
      expected?.[0],
      expected?.[1],
    ),
    `${label}: community id`,
  );
}

// ---------------------------------------------------------------------------------------------------------
// v1 and v5: type × 256 + code in the destination port
// ---------------------------------------------------------------------------------------------------------

const FIXED_FLOWS: FixedFlow[] = [
  { srcAddr: "192.168.0.89", dstAddr: "192.168.0.1", dstPort: 0x0800, protocol: ICMP, packets: 1, bytes: 84 },
  { srcAddr: "192.168.0.1", dstAddr: "192.168.0.89", dstPort: 0x0000, protocol: ICMP, packets: 1, bytes: 84 },
  { srcAddr: "10.0.0.1", dstAddr: "10.9.9.9", srcPort: 7, dstPort: 0x0303, protocol: ICMP, packets: 1 },
  { srcAddr: "10.0.0.1", dstAddr: "10.9.9.9", srcPort: 51000, dstPort: 0x0303, protocol: 6, packets: 1 },
];

for (const version of [1, 5] as const) {
  Deno.test(`v${version}: ICMP type and code from the destination port; TCP flows get none`, () => {
    const encode = version === 1 ? encodeV1 : encodeV5;
    const packet = decodeOne(
      decoder(),
      encode({ sysUptimeMs: 1_000_000, exportTimeMs: EXPORT_MS }, FIXED_FLOWS),
    );
    assert.deepEqual(
      packet.flows.map((f) => [f.icmpType, f.icmpCode]),
      [[8, 0], [0, 0], [3, 3], [undefined, undefined]],
    );
    const [request, reply, unreachable, tcp] = spans(packet);
    assertIcmp(request, [8, 0], "echo request");
    assertIcmp(reply, [0, 0], "echo reply: ICMPv4 0/0 is a real type");
    assertIcmp(unreachable, [3, 3], "port unreachable");
    // Community ID spec baseline: this echo request/reply pair.
    assert.equal(request["netflow.community_id"], "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=");
    assert.equal(reply["netflow.community_id"], "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=");
    assert.equal("netflow.icmp.type" in tcp, false);
    assert.equal(tcp["destination.port"], 0x0303);
  });
}

// ---------------------------------------------------------------------------------------------------------
// v9 and IPFIX: the ICMP elements, or the destination port
// ---------------------------------------------------------------------------------------------------------

const f = (id: number, length: number): FieldSpec => ({ id, length });
const V4 = [f(8, 4), f(12, 4), f(4, 1)];
const V6 = [f(27, 16), f(28, 16), f(4, 1)];
const A4 = ["10.0.0.1", "10.9.9.9"], A6 = ["2001:db8::1", "2001:db8:9::9"];

interface Case {
  label: string;
  template: Template;
  record: RawValue[];
  expected: [number, number] | undefined;
  /** Existing `netflow.<element>` attributes that stay as they were. */
  extra?: Attributes;
}

const ELEMENT_CASES: Case[] = [
  {
    label: "IE 32 icmpTypeCodeIPv4",
    template: { id: 300, fields: [...V4, f(32, 2)] },
    record: [...A4, ICMP, 0x0303],
    expected: [3, 3],
    extra: { "netflow.icmp_type_code_ipv4": 0x0303 },
  },
  {
    label: "IE 32 of 0: echo reply",
    template: { id: 301, fields: [...V4, f(32, 2)] },
    record: [...A4, ICMP, 0],
    expected: [0, 0],
  },
  {
    label: "IE 176 + 177",
    template: { id: 302, fields: [...V4, f(176, 1), f(177, 1)] },
    record: [...A4, ICMP, 11, 1],
    expected: [11, 1],
    extra: { "netflow.icmp_type_ipv4": 11, "netflow.icmp_code_ipv4": 1 },
  },
  {
    label: "IE 139 icmpTypeCodeIPv6",
    template: { id: 303, fields: [...V6, f(139, 2)] },
    record: [...A6, ICMP6, 0x8100],
    expected: [129, 0],
    extra: { "netflow.icmp_type_code_ipv6": 0x8100 },
  },
  {
    label: "IE 178 + 179",
    template: { id: 304, fields: [...V6, f(178, 1), f(179, 1)] },
    record: [...A6, ICMP6, 1, 4],
    expected: [1, 4],
    extra: { "netflow.icmp_type_ipv6": 1, "netflow.icmp_code_ipv6": 4 },
  },
  {
    label: "IPv4 destination port (IE 11)",
    template: { id: 305, fields: [...V4, f(7, 2), f(11, 2)] },
    record: [...A4, ICMP, 0, 0x0800],
    expected: [8, 0],
  },
  {
    label: "IPv6 destination port (IE 11)",
    template: { id: 306, fields: [...V6, f(7, 2), f(11, 2)] },
    record: [...A6, ICMP6, 0, 0x8000],
    expected: [128, 0],
  },
  {
    label: "IE 32 beats a zero destination port",
    template: { id: 307, fields: [...V4, f(11, 2), f(32, 2)] },
    record: [...A4, ICMP, 0, 0x0b00],
    expected: [11, 0],
  },
  {
    label: "ICMPv6 in a template with both 32 and 139: the IPv6 element",
    template: { id: 308, fields: [...V6, f(32, 2), f(139, 2)] },
    record: [...A6, ICMP6, 0, 0x8700],
    expected: [135, 0],
  },
  {
    label: "ICMPv6 value 0 in the destination port: neither",
    template: { id: 309, fields: [...V6, f(11, 2)] },
    record: [...A6, ICMP6, 0],
    expected: undefined,
  },
  {
    label: "ICMPv6 value 0 in IE 139: neither",
    template: { id: 310, fields: [...V6, f(139, 2)] },
    record: [...A6, ICMP6, 0],
    expected: undefined,
  },
  {
    label: "ICMPv6 0/0 in IE 178 + 179: neither",
    template: { id: 311, fields: [...V6, f(178, 1), f(179, 1)] },
    record: [...A6, ICMP6, 0, 0],
    expected: undefined,
  },
];

function export9or10(version: 9 | 10, domain: number, sequence: number, t: Template[], data: Case[]) {
  const sets = [
    { type: "templates" as const, templates: t },
    ...data.map((c) => ({ type: "data" as const, template: c.template, records: [c.record] })),
  ];
  return version === 9
    ? encodeV9({ sysUptimeMs: 1_000_000, exportTimeMs: EXPORT_MS, sequence, sourceId: domain }, sets)
    : encodeIpfix({ exportTimeMs: EXPORT_MS, sequence, observationDomainId: domain }, sets);
}

for (const version of [9, 10] as const) {
  Deno.test(`${version === 9 ? "v9" : "IPFIX"}: ICMP type and code from IE 32/139/176–179 or the destination port`, () => {
    const packet = decodeOne(
      decoder(),
      export9or10(version, 1, 0, ELEMENT_CASES.map((c) => c.template), ELEMENT_CASES),
    );
    const attrs = spans(packet);
    assert.equal(attrs.length, ELEMENT_CASES.length);
    ELEMENT_CASES.forEach((c, i) => {
      assertIcmp(attrs[i], c.expected, c.label);
      for (const [k, v] of Object.entries(c.extra ?? {})) assert.equal(attrs[i][k], v, `${c.label}: ${k}`);
      const flow = packet.flows[i];
      assert.deepEqual([flow.icmpType, flow.icmpCode], c.expected ?? [undefined, undefined], c.label);
    });
  });
}

Deno.test("v9: a TCP flow keeps its ports; ICMP elements in its template do not make ICMP attributes", () => {
  const t: Template = { id: 320, fields: [...V4, f(7, 2), f(11, 2), f(32, 2)] };
  const c: Case = { label: "tcp", template: t, record: [...A4, 6, 51000, 443, 0x0303], expected: undefined };
  const [a] = spans(decodeOne(decoder(), export9or10(9, 1, 0, [t], [c])));
  assert.equal(a["destination.port"], 443);
  assert.equal(a["source.port"], 51000);
  assert.equal("netflow.icmp.type" in a, false);
  assert.equal(a["netflow.icmp_type_code_ipv4"], 0x0303);
});

// ---------------------------------------------------------------------------------------------------------
// Cisco IOS-XR: ICMPv6 as code × 256 + type, per exporter + domain
// ---------------------------------------------------------------------------------------------------------

// Addresses of the Community ID spec's ICMPv6 baseline (neighbour solicitation/advertisement pair).
const NS_SRC = "fe80::200:86ff:fe05:80da", NS_DST = "fe80::260:97ff:fe07:69ea";
const PORT6: Template = { id: 400, fields: [...V6, f(11, 2)] };
const IE139: Template = { id: 401, fields: [...V6, f(139, 2)] };
const IE178: Template = { id: 402, fields: [...V6, f(178, 1), f(179, 1)] };
const PORT4: Template = { id: 403, fields: [...V4, f(11, 2)] };
const XR_TEMPLATES = [PORT6, IE139, IE178, PORT4];

function port6(value: number, src = A6[0], dst = A6[1]): Case {
  return {
    label: `dst port 0x${value.toString(16)}`,
    template: PORT6,
    record: [src, dst, ICMP6, value],
    expected: undefined,
  };
}

function xr(
  d: NetflowDecoder,
  data: Case[],
  options: { exporter?: string; domain?: number; seq?: number; version?: 9 | 10 } = {},
) {
  const bytes = export9or10(options.version ?? 9, options.domain ?? 1, options.seq ?? 0, XR_TEMPLATES, data);
  return spans(decodeOne(d, bytes, options.exporter ?? E1));
}

Deno.test("IOS-XR: an ICMPv6 value 0x00xx with xx ≥ 128 swaps that exporter + domain's ICMPv6 values", () => {
  const d = decoder();
  // First packet: neighbour solicitation written as code 0, type 135.
  const [ns] = xr(d, [port6(0x0087, NS_SRC, NS_DST)]);
  assertIcmp(ns, [135, 0], "0x0087");
  // Community ID spec baseline value for this NS (and the NA answering it).
  assert.equal(ns["netflow.community_id"], "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=");

  // Later packets of the same exporter and domain: every combined ICMPv6 value is read swapped.
  const later = xr(d, [
    port6(0x0080),
    port6(0x0401),
    port6(0x0088, NS_DST, NS_SRC),
    { label: "IE 139", template: IE139, record: [...A6, ICMP6, 0x0081], expected: undefined },
    // Separate type and code elements cannot be swapped.
    { label: "IE 178/179", template: IE178, record: [...A6, ICMP6, 128, 0], expected: undefined },
    // ICMPv4 from the same exporter is standard.
    { label: "ICMPv4", template: PORT4, record: [...A4, ICMP, 0x0303], expected: undefined },
    { label: "ICMPv4 0x0080", template: PORT4, record: [...A4, ICMP, 0x0080], expected: undefined },
  ], { seq: 1 });
  assertIcmp(later[0], [128, 0], "0x0080: echo request");
  assertIcmp(later[1], [1, 4], "0x0401: port unreachable");
  assertIcmp(later[2], [136, 0], "0x0088: neighbour advertisement");
  assert.equal(later[2]["netflow.community_id"], "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=");
  assertIcmp(later[3], [129, 0], "IE 139 0x0081: echo reply");
  assert.equal(later[3]["netflow.icmp_type_code_ipv6"], 0x0081, "the raw element stays as exported");
  assertIcmp(later[4], [128, 0], "IE 178/179");
  assertIcmp(later[5], [3, 3], "ICMPv4 0x0303");
  assertIcmp(later[6], [0, 128], "ICMPv4 0x0080");

  // Another exporter, another domain of the same exporter, and IPFIX with the same domain number: standard.
  const others = [
    xr(d, [port6(0x8000), port6(0x0401)], { exporter: E2 }),
    xr(d, [port6(0x8000), port6(0x0401)], { domain: 2 }),
    xr(d, [port6(0x8000), port6(0x0401)], { version: 10 }),
  ];
  for (const [i, [echo, unreachable]] of others.entries()) {
    assertIcmp(echo, [128, 0], `stream ${i}: 0x8000`);
    assertIcmp(unreachable, [4, 1], `stream ${i}: 0x0401`);
  }
  // And the swapped stream stays swapped.
  assertIcmp(xr(d, [port6(0x0401)], { seq: 2 })[0], [1, 4], "still swapped");
});

Deno.test("IOS-XR: the value that reveals the swap is itself read swapped, also through IE 139", () => {
  const d = decoder();
  const [na, after] = xr(d, [
    { label: "IE 139", template: IE139, record: [NS_DST, NS_SRC, ICMP6, 0x0088], expected: undefined },
    port6(0x0081),
  ]);
  assertIcmp(na, [136, 0], "IE 139 0x0088");
  assert.equal(na["netflow.community_id"], "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=");
  assertIcmp(after, [129, 0], "then the destination port");
  // Before any such value, a stream is read the standard way.
  assertIcmp(xr(decoder(), [port6(0x0401)])[0], [4, 1], "fresh stream");
});

Deno.test("IOS-XR: the swap flag lives in the bounded domain state and goes with it", () => {
  const d = decoder({ maxDomainsPerExporter: 1 });
  assertIcmp(xr(d, [port6(0x0087)])[0], [135, 0], "swap seen on domain 1");
  assertIcmp(xr(d, [port6(0x0401)], { domain: 2 })[0], [4, 1], "domain 2 evicts domain 1");
  assertIcmp(xr(d, [port6(0x0401)], { seq: 1 })[0], [4, 1], "domain 1 again: fresh state");
  assert.equal(d.stats.domainEvictions, 2);
});

Deno.test("flows built outside the decoder: type and code from the destination port, ICMPv6 0 gives none", () => {
  const v6 = { srcAddr: A6[0], dstAddr: A6[1], protocol: ICMP6 };
  assertIcmp(flowAttributes({ ...v6, dstPort: 0x8000 }, 0, 9), [128, 0], "0x8000");
  assertIcmp(flowAttributes({ ...v6, dstPort: 0 }, 0, 9), undefined, "0");
  assertIcmp(
    flowAttributes({ ...v6, icmpType: 136, icmpCode: 0, dstPort: 0x0088 }, 0, 9),
    [136, 0],
    "decoded",
  );
});

// ---------------------------------------------------------------------------------------------------------
// A real exporter: softflowd, read back by tshark
// ---------------------------------------------------------------------------------------------------------

const CI = Deno.env.get("CI") === "true";
const TOOLS = ["softflowd", "tshark"];
const missing = missingTools(TOOLS);

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };

/** tshark's ICMP records (v1/v5 `pdu i/n`, v9/IPFIX `Flow i`): addresses and the type/code it reads. */
function tsharkIcmp(
  layer: Record<string, Json>,
): { src: string; dst: string; proto: number; tc: [number, number] }[] {
  const out: { src: string; dst: string; proto: number; tc: [number, number] }[] = [];
  const visit = (o: Record<string, Json>) => {
    for (const [k, v] of Object.entries(o)) {
      if (!v || typeof v !== "object" || Array.isArray(v)) continue;
      if (/^(pdu \d+\/\d+|Flow \d+)$/.test(k)) {
        const r = v as Record<string, string>;
        const proto = Number(r["cflow.protocol"]);
        if (proto !== ICMP && proto !== ICMP6) continue;
        const combined = r["cflow.icmp_type_code_ipv4"] ?? r["cflow.dstport"];
        const tc: [number, number] = r["cflow.icmp_ipv6_type"] !== undefined
          ? [Number(r["cflow.icmp_ipv6_type"]), Number(r["cflow.icmp_ipv6_code"])]
          : r["cflow.icmp_ipv4_type"] !== undefined
          ? [Number(r["cflow.icmp_ipv4_type"]), Number(r["cflow.icmp_ipv4_code"])]
          : [Number(combined) >> 8, Number(combined) & 0xff];
        out.push({
          src: r["cflow.srcaddr"] ?? r["cflow.srcaddrv6"],
          dst: r["cflow.dstaddr"] ?? r["cflow.dstaddrv6"],
          proto,
          tc,
        });
      } else visit(v as Record<string, Json>);
    }
  };
  visit(layer);
  return out;
}

for (const version of [1, 5, 9, 10] as const) {
  Deno.test({
    name: `interop: softflowd v${version} ICMP/ICMPv6 echo: netflow.icmp.type/code equal tshark's reading`,
    ignore: missing.length > 0 && !CI,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      if (missing.length > 0) assert.fail(`needs: ${missing.join(", ")}`);
      const dir = Deno.makeTempDirSync({ prefix: "icmp-interop-" });
      const sock = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
      const port = (sock.addr as Deno.NetAddr).port;
      try {
        // Echo request/reply over ICMP (8/0, 0/0) and ICMPv6 (128/0, 129/0), among TCP and UDP.
        const traffic = writeTrafficPcap(join(dir, "traffic.pcap"), { small: true });
        const received: Uint8Array[] = [];
        const loop = (async () => {
          try {
            for (;;) received.push((await sock.receive())[0]);
          } catch {
            // closed
          }
        })();
        await runSoftflowd(traffic.path, version, port);
        await new Promise((r) => setTimeout(r, 300));
        sock.close();
        await loop;
        assert.ok(received.length > 0, "no datagram from softflowd");

        const d = decoder();
        const ours = received.flatMap((data) => d.decode(data, "127.0.0.1", 9995, Date.now()))
          .flatMap((p) => spans(p))
          .filter((a) => a["network.protocol.number"] === ICMP || a["network.protocol.number"] === ICMP6);

        const capture = join(dir, "export.pcap");
        writePcap(
          capture,
          received.map((payload) => ({
            src: "127.0.0.1",
            srcPort: 9995,
            dst: "127.0.0.1",
            dstPort: port,
            payload,
          })),
        );
        const r = await runBounded(
          [findTool("tshark")!, "-r", capture, "-d", `udp.port==${port},cflow`, "-T", "json", "-J", "cflow"],
          20_000,
        );
        assert.equal(r.code, 0, r.stderr);
        const frames = JSON.parse(r.stdout) as { _source: { layers: { cflow: Record<string, Json> } } }[];
        const reference = frames.flatMap((fr) => tsharkIcmp(fr._source.layers.cflow));

        // The traffic's ground truth: v1/v5 carry IPv4 only.
        const truth = new Map<string, [number, number]>([
          ["10.1.0.4>192.0.2.4", [8, 0]],
          ["192.0.2.4>10.1.0.4", [0, 0]],
        ]);
        if (version >= 9) {
          truth.set("2001:db8::4>2001:db8:1::4", [128, 0]).set("2001:db8:1::4>2001:db8::4", [129, 0]);
        }
        assert.equal(reference.length, truth.size, JSON.stringify(reference));
        assert.equal(ours.length, truth.size);
        for (const ref of reference) {
          const key = `${ref.src}>${ref.dst}`;
          assert.deepEqual(ref.tc, truth.get(key), `tshark ${key}`);
          const a = ours.find((x) => x["source.address"] === ref.src && x["destination.address"] === ref.dst);
          assert.ok(a, `our span for ${key}`);
          assertIcmp(a, ref.tc, `softflowd v${version} ${key}`);
        }
      } finally {
        try {
          sock.close();
        } catch {
          // already closed
        }
        Deno.removeSync(dir, { recursive: true });
      }
    },
  });
}
