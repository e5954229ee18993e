/**
 * What real exporters send beyond the plain RFC layouts (SPEC §2, §3): each case is a byte fixture built
 * from the vendor's documented (or observed and reported) layout, with the source named, and the attributes
 * it must give, present when they should be and absent when not.
 */
import assert from "node:assert/strict";
import { flowTimes } from "../src/netflow/time.ts";
import type { ExportPacket } from "../src/netflow/types.ts";
import { flowAttributes } from "../src/traces/attributes.ts";
import { NetflowDecoder } from "../src/netflow/decoder.ts";
import { B } from "./support/bytes.ts";
import { freeUdpPort, startCollectorProcess } from "./support/collector.ts";
import { findTool } from "./support/exporters.ts";
import { startOtlpReceiver } from "./support/otlp_receiver.ts";
import { writeTrafficPcap } from "./support/traffic.ts";
import { join } from "./support/paths.ts";
import {
  decoder,
  E1,
  EXPORT_S,
  type Field,
  ipfix,
  NOW,
  one,
  optTplIpfix,
  set,
  tpl,
  v9,
} from "./support/v9_ipfix_fixtures.ts";

const EXPORT_MS = EXPORT_S * 1000;

// ---------------------------------------------------------------------------------------------------------
// Cisco ASA / FTD: NetFlow Secure Event Logging (NSEL), v9
// Source: Cisco, "Cisco ASA NetFlow Implementation Guide" (NSEL field list: NF_F_FWD_FLOW_DELTA_BYTES 231,
// NF_F_REV_FLOW_DELTA_BYTES 232, NF_F_FW_EVENT 233, NF_F_XLATE_SRC_ADDR_IPV4 225, NF_F_EVENT_TIME_MSEC 323,
// NF_F_FLOW_CREATE_TIME_MSEC 152), and Cisco FTD's initiatorPackets/responderPackets (298/299). NSEL
// carries no octetDeltaCount and no flow end time.
// ---------------------------------------------------------------------------------------------------------

const NSEL: Field[] = [
  [4, 1], // protocolIdentifier
  [8, 4], // sourceIPv4Address
  [7, 2], // sourceTransportPort
  [12, 4], // destinationIPv4Address
  [11, 2], // destinationTransportPort
  [233, 1], // firewallEvent: 1 created, 2 deleted
  [225, 4], // postNATSourceIPv4Address
  [231, 4], // initiatorOctets
  [232, 4], // responderOctets
  [298, 4], // initiatorPackets
  [299, 4], // responderPackets
  [152, 8], // flowStartMilliseconds (create time; 0 in a creation event)
  [323, 8], // observationTimeMilliseconds (event time)
];

function nselRecord(event: number, start: number, eventTime: number): Uint8Array {
  return new B().u8(6).ip("10.1.1.10").u16(51000).ip("203.0.113.5").u16(443).u8(event).ip("198.51.100.7")
    .u32(1_200, 34_000, 15, 30).u64(start).u64(eventTime).build();
}

Deno.test("Cisco ASA/FTD NSEL: initiator/responder counters, event and NAT named, span times from the event time", () => {
  const d = decoder();
  const created = EXPORT_MS - 60_000, deleted = EXPORT_MS - 2_000;
  const p = one(
    d,
    v9(7, 1, 3_600_000, [
      set(0, tpl(260, NSEL, false)),
      set(260, new B().raw(nselRecord(1, 0, created)).raw(nselRecord(2, created, deleted)).build()),
    ]),
  );
  assert.equal(p.error, undefined);
  const [create, teardown] = p.flows;
  for (const f of [create, teardown]) {
    assert.equal(f.bytes, 1_200);
    assert.equal(f.packets, 15);
    assert.equal(f.reverseBytes, 34_000);
    assert.equal(f.reversePackets, 30);
  }
  const a = flowAttributes(teardown, 1, 9);
  assert.equal(a["netflow.flow.bytes"], 1_200);
  assert.equal(a["netflow.flow.reverse.bytes"], 34_000);
  assert.equal(a["netflow.flow.reverse.packets"], 30);
  assert.equal(a["netflow.firewall_event"], 2);
  assert.equal(a["netflow.post_nat_source_ipv4_address"], "198.51.100.7");
  // The counters are the SPEC's, not further attributes.
  for (const k of ["netflow.initiator_octets", "netflow.responder_octets", "netflow.initiator_packets"]) {
    assert.equal(k in a, false, k);
  }
  // A creation event (no start: 0) spans its event instant; a teardown runs from its start to the event.
  const t1 = flowTimes(create, p), t2 = flowTimes(teardown, p);
  assert.deepEqual([t1.startMs, t1.endMs, t1.adjusted], [created, created, false]);
  assert.deepEqual([t2.startMs, t2.endMs, t2.adjusted], [created, deleted, false]);
});

// ---------------------------------------------------------------------------------------------------------
// RFC 5103 biflows (IPFIX): reverse elements are the forward ones under PEN 29305.
// ---------------------------------------------------------------------------------------------------------

Deno.test("RFC 5103 biflow: reverse octet/packet counts become netflow.flow.reverse.*; delta counts win over totals", () => {
  const d = decoder();
  const p = one(
    d,
    ipfix(1, 0, [
      set(2, tpl(256, [[8, 4], [12, 4], [1, 8], [2, 8], [1, 8, 29305], [2, 8, 29305]])),
      set(2, tpl(257, [[8, 4], [12, 4], [85, 8], [86, 8], [85, 8, 29305], [86, 4, 29305]])),
      set(2, tpl(258, [[8, 4], [85, 8, 29305], [1, 4, 29305]])),
      set(256, new B().ip("10.0.0.1").ip("10.0.0.2").u64(5_000).u64(10).u64(900).u64(7).build()),
      set(257, new B().ip("10.0.0.3").ip("10.0.0.4").u64(6_000).u64(11).u64(800).u32(6).build()),
      set(258, new B().ip("10.0.0.5").u64(123_456).u32(321).build()),
    ]),
  );
  const [delta, total, both] = p.flows;
  assert.deepEqual([delta.bytes, delta.packets, delta.reverseBytes, delta.reversePackets], [
    5_000,
    10,
    900,
    7,
  ]);
  assert.deepEqual([total.bytes, total.packets, total.reverseBytes, total.reversePackets], [
    6_000,
    11,
    800,
    6,
  ]);
  assert.equal(both.reverseBytes, 321, "reverse octetDeltaCount wins over reverse octetTotalCount");
  const a = flowAttributes(delta, 0, 10);
  assert.equal(a["netflow.flow.reverse.bytes"], 900);
  assert.equal("netflow.reverse.octet_delta_count" in a, false);
  // A unidirectional flow has no reverse attributes.
  const plain = one(
    decoder(),
    ipfix(1, 0, [set(2, tpl(256, [[8, 4], [1, 4]])), set(256, new B().ip("10.0.0.1").u32(5).build())]),
  );
  assert.equal("netflow.flow.reverse.bytes" in flowAttributes(plain.flows[0], 0, 10), false);
});

// ---------------------------------------------------------------------------------------------------------
// Nokia SR OS (IPFIX): a selector (302) announced in options data with count-based systematic sampling,
// samplingPacketInterval (305) packets taken out of every 305 + 306 (RFC 5477 / IANA IEs 305, 306). 1:1000
// is interval 1, space 999.
// ---------------------------------------------------------------------------------------------------------

Deno.test("Nokia sampling: selector options data with 305/306 gives each record of that selector 1-in-1000", () => {
  const d = decoder();
  const p = one(
    d,
    ipfix(5, 0, [
      set(3, optTplIpfix(400, [[302, 8]], [[305, 4], [306, 4]])),
      set(400, new B().u64(77).u32(1, 999).u64(78).u32(1, 99).build()),
      set(2, tpl(256, [[8, 4], [1, 4], [302, 8]])),
      set(256, new B().ip("10.0.0.1").u32(1_500).u64(77).ip("10.0.0.2").u32(40).u64(78).build()),
    ]),
  );
  const [a, b] = p.flows;
  assert.equal(a.samplingInterval, 1_000);
  assert.equal(b.samplingInterval, 100);
  const attrs = flowAttributes(a, 0, 10);
  assert.equal(attrs["netflow.sampling.interval"], 1_000);
  assert.equal(attrs["netflow.flow.bytes.estimated"], 1_500_000);
});

// ---------------------------------------------------------------------------------------------------------
// Juniper: flowDirection 255 (observed on MX/PTX IPFIX exports; IANA defines only 0 ingress and 1 egress).
// ---------------------------------------------------------------------------------------------------------

Deno.test("flowDirection other than 0/1 (Juniper's 255) gives no direction", () => {
  const d = decoder();
  const p = one(
    d,
    ipfix(1, 0, [
      set(2, tpl(256, [[8, 4], [61, 1]])),
      set(256, new B().ip("10.0.0.1").u8(255).ip("10.0.0.2").u8(0).ip("10.0.0.3").u8(1).build()),
    ]),
  );
  const directions = p.flows.map((f, i) => flowAttributes(f, i, 10)["netflow.flow.direction"]);
  assert.deepEqual(directions, [undefined, "ingress", "egress"]);
});

// ---------------------------------------------------------------------------------------------------------
// Cisco NX-OS (Nexus 7700, NX-OS 8.1): LAST_SWITCHED (21) and FIRST_SWITCHED (22) in 8-octet fields, the
// 32-bit uptime value in the low four octets (nfdump issue #80, 2017).
// ---------------------------------------------------------------------------------------------------------

Deno.test("NX-OS: v9 first/last switched as 8-octet fields give the right times", () => {
  const d = decoder();
  const uptime = 3_600_000;
  const p = one(
    d,
    v9(1, 1, uptime, [
      set(0, tpl(256, [[8, 4], [22, 8], [21, 8], [1, 4]], false)),
      set(256, new B().ip("10.0.0.1").u32(0, uptime - 30_000).u32(0, uptime - 5_000).u32(999).build()),
    ]),
  );
  const f = p.flows[0];
  assert.equal(f.firstSwitched, uptime - 30_000);
  assert.equal(f.lastSwitched, uptime - 5_000);
  const t = flowTimes(f, p);
  assert.deepEqual([t.startMs, t.endMs, t.adjusted], [EXPORT_MS - 30_000, EXPORT_MS - 5_000, false]);
});

// ---------------------------------------------------------------------------------------------------------
// MikroTik RouterOS (Traffic Flow, IPFIX): flowStartSysUpTime (22) / flowEndSysUpTime (21) with
// systemInitTimeMilliseconds (160) inside each data record, not in options data (RouterOS 7 exports).
// ---------------------------------------------------------------------------------------------------------

Deno.test("MikroTik: IPFIX uptime times with systemInitTimeMilliseconds in the data record", () => {
  const d = decoder();
  const init = EXPORT_MS - 86_400_000;
  const p = one(
    d,
    ipfix(0, 0, [
      set(2, tpl(256, [[8, 4], [22, 4], [21, 4], [160, 8]])),
      set(256, new B().ip("10.0.0.1").u32(86_400_000 - 20_000, 86_400_000 - 1_000).u64(init).build()),
    ]),
  );
  const t = flowTimes(p.flows[0], p);
  assert.deepEqual([t.startMs, t.endMs, t.adjusted], [EXPORT_MS - 20_000, EXPORT_MS - 1_000, false]);
});

Deno.test("uptime-relative IPFIX times with no system init time known are marked time_adjusted", () => {
  const d = decoder();
  const p = one(
    d,
    ipfix(0, 0, [
      set(2, tpl(256, [[8, 4], [22, 4], [21, 4]])),
      set(256, new B().ip("10.0.0.1").u32(5_000, 9_000).build()),
    ]),
  );
  const f = p.flows[0];
  const t = flowTimes(f, p);
  assert.deepEqual([t.startMs, t.endMs, t.adjusted], [NOW, NOW, true]);
  // A record with no times at all just takes the receive time, unmarked.
  const bare = one(
    decoder(),
    ipfix(0, 0, [set(2, tpl(256, [[8, 4]])), set(256, new B().ip("10.0.0.1").build())]),
  );
  assert.equal(flowTimes(bare.flows[0], bare).adjusted, false);
});

// ---------------------------------------------------------------------------------------------------------
// A router reboot: the same template ID comes back with another layout (RFC 7011 §8.1: a new template
// replaces the old one; RFC 3954 §5.2 likewise for v9).
// ---------------------------------------------------------------------------------------------------------

Deno.test("a template ID reused with a new layout after a reboot replaces the old one cleanly", () => {
  const d = decoder();
  one(d, v9(1, 100, 9_000_000, [set(0, tpl(256, [[8, 4], [12, 4]], false))]));
  const before = one(d, v9(1, 101, 9_000_100, [set(256, new B().ip("10.0.0.1").ip("10.0.0.2").build())]));
  assert.equal(before.flows[0].dstAddr, "10.0.0.2");
  // Rebooted: uptime and sequence start again, template 256 now has protocol and ports first.
  const after = one(
    d,
    v9(1, 0, 1_000, [
      set(0, tpl(256, [[4, 1], [7, 2], [11, 2], [8, 4], [12, 4]], false)),
      set(256, new B().u8(17).u16(5353, 53).ip("10.9.9.9").ip("10.8.8.8").build()),
    ]),
  );
  assert.equal(after.error, undefined);
  const f = after.flows[0];
  assert.deepEqual([f.protocol, f.srcPort, f.dstPort, f.srcAddr, f.dstAddr], [
    17,
    5353,
    53,
    "10.9.9.9",
    "10.8.8.8",
  ]);
  assert.equal(d.stats.templates, 1);
  assert.equal(after.sequenceLost, undefined, "a reboot resets the sequence without a loss");
});

// ---------------------------------------------------------------------------------------------------------
// softflowd (ipfix.c): each IPFIX message's sequence number counts the data records sent *including* its
// own, where RFC 7011 §3.1 counts those sent before it.
// ---------------------------------------------------------------------------------------------------------

function dataMessage(domain: number, seq: number, records: number, withTemplate: boolean): Uint8Array {
  const body = new B();
  for (let i = 0; i < records; i++) body.ip(`10.0.${domain}.${i + 1}`).u32(100 + i);
  const sets = [set(256, body.build())];
  if (withTemplate) sets.unshift(set(2, tpl(256, [[8, 4], [1, 4]])));
  return ipfix(domain, seq, sets);
}

function lossesOf(d: NetflowDecoder, messages: Uint8Array[]): number[] {
  return messages.map((m) => one(d, m).sequenceLost ?? 0);
}

Deno.test("softflowd's inclusive IPFIX numbering is recognised: no false loss, a real loss counted exactly", () => {
  const counts = [3, 5, 2, 2, 7, 1, 4];
  const inclusive: Uint8Array[] = [], rfc: Uint8Array[] = [];
  let total = 1_000;
  counts.forEach((n, i) => {
    rfc.push(dataMessage(1, total, n, i === 0));
    total += n;
    inclusive.push(dataMessage(1, total, n, i === 0));
  });
  assert.deepEqual(lossesOf(decoder(), inclusive), [0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(lossesOf(decoder(), rfc), [0, 0, 0, 0, 0, 0, 0]);
  // Message 4 (7 records) lost: both numberings report exactly 7, where it is noticed.
  const skip = (list: Uint8Array[]) => list.filter((_, i) => i !== 4);
  assert.deepEqual(lossesOf(decoder(), skip(inclusive)), [0, 0, 0, 0, 7, 0]);
  assert.deepEqual(lossesOf(decoder(), skip(rfc)), [0, 0, 0, 0, 7, 0]);
});

Deno.test({
  name: "softflowd itself (IPFIX): a loss-free stream reports no sequence loss",
  ignore: findTool("softflowd") === undefined && Deno.env.get("CI") !== "true",
  async fn() {
    const dir = Deno.makeTempDirSync();
    const traffic = writeTrafficPcap(join(dir, "traffic.pcap"));
    const sock = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
    const port = (sock.addr as Deno.NetAddr).port;
    const received: Uint8Array[] = [];
    const receiving = (async () => {
      try {
        for await (const [data] of sock) received.push(data);
      } catch { /* closed */ }
    })();
    const run = await new Deno.Command(findTool("softflowd") ?? "softflowd", {
      args: [
        "-r",
        traffic.path,
        "-n",
        `127.0.0.1:${port}`,
        "-v",
        "10",
        "-d",
        "-c",
        "none",
        "-p",
        join(dir, "pid"),
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
    await new Promise((r) => setTimeout(r, 300));
    sock.close();
    await receiving;
    assert.ok(received.length >= 3, `${received.length} messages`);
    const d = new NetflowDecoder();
    const packets: ExportPacket[] = received.flatMap((m) => d.decode(m, E1, 9995, Date.now()));
    // The capture tells the numberings apart: read as RFC 7011 numbers, some messages would show a gap.
    let rfcGaps = 0, prev: ExportPacket | undefined;
    for (const p of packets) {
      if (prev && p.flows.length !== prev.flows.length && p.sequence !== prev.sequence! + prev.flows.length) {
        rfcGaps++;
      }
      prev = p;
    }
    assert.ok(rfcGaps > 0, "softflowd's numbering differs from RFC 7011's in this capture");
    assert.equal(packets.reduce((n, p) => n + (p.sequenceLost ?? 0), 0), 0);
    assert.equal(d.stats.sequenceLostTotal, 0);
  },
});

// ---------------------------------------------------------------------------------------------------------
// Options tables that name ids (SPEC §3): Cisco IOS-XE Flexible NetFlow `option interface-table`,
// `option vrf-table` and `option application-table` (IPFIX: scope ingressInterface 10 with interfaceName
// 82 / interfaceDescription 83; scope ingressVRFID 234 with VRFname 236; scope applicationId 95 with
// applicationName 96 / applicationDescription 94), and the v9 form with scope type 2 (RFC 3954 §6.1).
// ---------------------------------------------------------------------------------------------------------

const VAR = 65535;

/** An IPFIX variable-length string field (RFC 7011 §7: one length octet, or 255 and two for 255 or more). */
function vstr(b: B, s: string): B {
  const bytes = new TextEncoder().encode(s);
  return (bytes.length < 255 ? b.u8(bytes.length) : b.u8(255).u16(bytes.length)).raw(bytes);
}

function interfaceTable(domain: number, rows: [number, string, string][]): Uint8Array {
  const body = new B();
  for (const [ifIndex, name, description] of rows) vstr(vstr(body.u32(ifIndex), name), description);
  return ipfix(domain, 0, [
    set(3, optTplIpfix(300, [[10, 4]], [[82, VAR], [83, VAR]])),
    set(300, body.build()),
  ]);
}

const IF_TEMPLATE = set(2, tpl(256, [[8, 4], [10, 4], [14, 4], [1, 4]]));

function flowsThrough(domain: number, pairs: [number, number][]): Uint8Array {
  const body = new B();
  for (const [input, output] of pairs) body.ip("10.0.0.1").u32(input, output, 100);
  return ipfix(domain, 1, [IF_TEMPLATE, set(256, body.build())]);
}

Deno.test("interface table: names and descriptions by ifIndex, per exporter and domain, never crossing", () => {
  const d = decoder();
  one(
    d,
    interfaceTable(1, [[3, "Gi0/0/1", "uplink to core"], [7, "Gi0/0/2", "customer <script>A</script>"]]),
  );
  const p = one(d, flowsThrough(1, [[3, 7], [99, 3]]));
  const a = flowAttributes(p.flows[0], 0, 10), b = flowAttributes(p.flows[1], 1, 10);
  assert.equal(a["netflow.interface.input.name"], "Gi0/0/1");
  assert.equal(a["netflow.interface.input.description"], "uplink to core");
  assert.equal(a["netflow.interface.output.name"], "Gi0/0/2");
  assert.equal(a["netflow.interface.output.description"], "customer <script>A</script>", "kept as text");
  assert.equal("netflow.interface.input.name" in b, false, "an unknown ifIndex has no name");
  assert.equal(b["netflow.interface.output.name"], "Gi0/0/1");
  // Another domain of the same exporter, and another exporter with the same ifIndex: no names.
  const other = one(d, flowsThrough(2, [[3, 7]]));
  assert.equal(other.flows[0].extra?.["netflow.interface.input.name"], undefined);
  const p2 = one(d, flowsThrough(1, [[3, 7]]), "192.0.2.99");
  assert.equal(p2.flows[0].extra?.["netflow.interface.input.name"], undefined);
  assert.equal(d.stats.optionNames, 2);
});

Deno.test("interface table over v9: scope type 2 (Interface) names the ifIndex", () => {
  const d = decoder();
  const p = one(
    d,
    v9(0, 1, 1_000_000, [
      set(1, optTplV9Scope(301, [[2, 4]], [[82, 16]])),
      set(301, new B().u32(12).str("Te0/1/0").zeros(9).build()),
      set(0, tpl(256, [[8, 4], [10, 2]], false)),
      set(256, new B().ip("10.0.0.1").u16(12).build()),
    ]),
  );
  assert.equal(p.flows[0].extra?.["netflow.interface.input.name"], "Te0/1/0", "trailing NULs removed");
});

/** v9 options template record (set 1) with scope types and option fields. */
function optTplV9Scope(id: number, scope: Field[], fields: Field[]): Uint8Array {
  const b = new B().u16(id, scope.length * 4, fields.length * 4);
  for (const [type, len] of [...scope, ...fields]) b.u16(type, len);
  return b.build();
}

Deno.test("VRF and application tables: names for the ids records carry; a record's own name wins", () => {
  const d = decoder();
  const appId = [13, 0, 0, 80]; // classification engine 13 (IANA L4 port), selector 80
  const p = one(
    d,
    ipfix(4, 0, [
      set(3, optTplIpfix(310, [[234, 4]], [[236, VAR]])),
      set(310, vstr(new B().u32(5), "CUST-A").build()),
      set(3, optTplIpfix(311, [[95, 4]], [[96, VAR], [94, VAR]])),
      set(311, vstr(vstr(new B().raw(appId), "http"), "World Wide Web").build()),
      set(2, tpl(257, [[8, 4], [234, 4], [235, 4], [95, 4]])),
      set(2, tpl(258, [[8, 4], [95, 4], [96, VAR]])),
      set(
        257,
        new B().ip("10.0.0.1").u32(5, 5).raw(appId).ip("10.0.0.2").u32(6, 6).raw([13, 0, 1, 187]).build(),
      ),
      set(258, vstr(new B().ip("10.0.0.3").raw(appId), "my-http").build()),
    ]),
  );
  const [named, unknown, own] = p.flows.map((f, i) => flowAttributes(f, i, 10));
  assert.equal(named["netflow.ingress_vrf_name"], "CUST-A");
  assert.equal(named["netflow.egress_vrf_name"], "CUST-A", "one VRF id space per domain");
  assert.equal(named["netflow.application_name"], "http");
  assert.equal(named["netflow.application_description"], "World Wide Web");
  assert.equal("netflow.ingress_vrf_name" in unknown, false);
  assert.equal("netflow.application_name" in unknown, false);
  assert.equal(own["netflow.application_name"], "my-http", "the record's own applicationName wins");
  assert.equal(own["netflow.application_description"], "World Wide Web");
});

Deno.test("options names: survive a restart through the snapshot, and stay bounded per domain and in all", () => {
  const d = decoder();
  one(d, interfaceTable(1, [[3, "Gi0/0/1", "uplink"]]));
  const r = decoder();
  r.restore(JSON.parse(JSON.stringify(d.snapshot())));
  const p = one(r, flowsThrough(1, [[3, 3]]));
  assert.equal(p.flows[0].extra?.["netflow.interface.input.name"], "Gi0/0/1");
  assert.equal(r.stats.optionNames, 1);

  // One domain announcing 5,000 interfaces keeps 4,096, the newest; long names are cut to 256 characters.
  const big = decoder();
  for (let start = 0; start < 5_000; start += 500) {
    const rows: [number, string, string][] = [];
    for (let i = start; i < start + 500; i++) rows.push([i, i === 4_999 ? "x".repeat(300) : `if${i}`, ""]);
    assert.equal(one(big, interfaceTable(1, rows)).error, undefined);
  }
  assert.equal(big.stats.optionNames, 4_096);
  const last = one(big, flowsThrough(1, [[4_999, 0]])).flows[0].extra!;
  assert.equal((last["netflow.interface.input.name"] as string).length, 256);
  assert.equal(last["netflow.interface.output.name"], undefined, "the oldest went first");
  // The decoder-wide bound: past it, new ids are refused and counted.
  const small = new NetflowDecoder({ maxOptionNames: 3 });
  small.decode(interfaceTable(1, [[1, "a", ""], [2, "b", ""], [3, "c", ""], [4, "d", ""]]), E1, 2055, NOW);
  assert.equal(small.stats.optionNames, 3);
  assert.equal(small.stats.optionNamesRefused, 1);
});

Deno.test("end to end: interface names from options data on the spans, and after a restart from the cache file", async () => {
  const dir = Deno.makeTempDirSync();
  const receiver = await startOtlpReceiver({ protocol: "grpc" });
  const port = freeUdpPort();
  const env = {
    NETFLOW_LISTEN_PORT: String(port),
    NETFLOW_TEMPLATE_CACHE_FILE: `${dir}/templates.json`,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_BSP_SCHEDULE_DELAY: "100",
    NETFLOW_STATS_INTERVAL: "0",
  };
  const sock = Deno.listenDatagram({ hostname: "127.0.0.5", port: 0, transport: "udp" });
  const send = (d: Uint8Array) => sock.send(d, { transport: "udp", hostname: "127.0.0.1", port });
  const now = () => Math.floor(Date.now() / 1000);
  const table = (exportS: number) => {
    const body = vstr(vstr(new B().u32(3), "Gi0/0/1"), "uplink to core");
    return ipfix(
      1,
      0,
      [set(3, optTplIpfix(300, [[10, 4]], [[82, VAR], [83, VAR]])), set(300, body.build())],
      exportS,
    );
  };
  const data = (seq: number) =>
    ipfix(1, seq, [IF_TEMPLATE, set(256, new B().ip("10.0.0.1").u32(3, 8, 100).build())], now());
  const dataOnly = (seq: number) =>
    ipfix(1, seq, [set(256, new B().ip("10.0.0.1").u32(3, 8, 100).build())], now());
  let collector = await startCollectorProcess(env);
  try {
    await send(table(now()));
    await send(data(0));
    let spans = await receiver.waitForSpans(2 + 3, 10_000);
    let flow = spans.filter((s) => s.name === "netflow.flow").at(-1)!;
    assert.equal(flow.attributes["netflow.interface.input.name"], "Gi0/0/1");
    assert.equal(flow.attributes["netflow.interface.input.description"], "uplink to core");
    assert.equal("netflow.interface.output.name" in flow.attributes, false);
    assert.equal(await collector.stop(), 0);
    // Restarted: the router sends only data; templates and names come back from the file.
    receiver.clear();
    collector = await startCollectorProcess(env);
    await send(dataOnly(1));
    spans = await receiver.waitForSpans(3, 10_000);
    flow = spans.find((s) => s.name === "netflow.flow")!;
    assert.equal(flow.attributes["netflow.interface.input.name"], "Gi0/0/1");
    assert.equal(await collector.stop(), 0);
  } finally {
    sock.close();
    collector.kill("SIGKILL");
    await collector.exited;
    await receiver.close();
  }
});
