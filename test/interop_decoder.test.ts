/**
 * Interoperability: real exporters (softflowd, pmacctd's nfprobe) turn a known traffic capture into NetFlow
 * v1/v5/v9 and IPFIX; Wireshark's dissector (tshark) is the independent reference decoder.
 *
 * For each exporter and version: the exporter replays test/support/traffic.ts's pcap to a UDP socket this
 * test opens, while tshark captures the same datagrams on the loopback interface. Every datagram is decoded
 * with our NetflowDecoder and compared with tshark's decode, header field by header field and record by
 * record (same count per datagram, matched by order, every field tshark reports must equal ours). Then the
 * records are checked against the traffic itself (packets and bytes per unidirectional flow, absolute
 * times when exported).
 *
 * Needs softflowd, pmacct and tshark (.ci/install-apt.sh) and permission to capture on `lo` (root or
 * dumpcap capabilities). A missing tool skips the test, or fails it when CI=true.
 */
import assert from "node:assert/strict";
import { NetflowDecoder } from "../src/netflow/decoder.ts";
import {
  captureDatagrams,
  compareRecord,
  type Comparison,
  missingTools,
  normalizeFlow,
  normalizeHeader,
  readUdpPayloads,
  runPmacctd,
  runSoftflowd,
  tsharkDecode,
} from "./support/exporters.ts";
import { type ExpectedFlow, writeTrafficPcap } from "./support/traffic.ts";
import { join } from "./support/paths.ts";
import type { Flow } from "../src/netflow/types.ts";

interface InteropCase {
  label: string;
  tools: string[];
  version: 1 | 5 | 9 | 10;
  run: (pcap: string, port: number) => Promise<unknown>;
  /** The exporter's records carry absolute times that must equal the capture's packet times. */
  absoluteTimes: boolean;
}

const CASES: InteropCase[] = [
  ...([1, 5, 9, 10] as const).map((version): InteropCase => ({
    label: `softflowd v${version}`,
    tools: ["softflowd", "tshark", "dumpcap"],
    version,
    run: (pcap, port) => runSoftflowd(pcap, version, port),
    absoluteTimes: false,
  })),
  {
    label: "softflowd v10 -A milli",
    tools: ["softflowd", "tshark", "dumpcap"],
    version: 10,
    run: (pcap, port) => runSoftflowd(pcap, 10, port, { extraArgs: ["-A", "milli"] }),
    absoluteTimes: true,
  },
  ...(["micro", "nano"] as const).map((unit): InteropCase => ({
    label: `softflowd v10 -A ${unit}`,
    tools: ["softflowd", "tshark", "dumpcap"],
    version: 10,
    run: (pcap, port) => runSoftflowd(pcap, 10, port, { extraArgs: ["-A", unit] }),
    absoluteTimes: true,
  })),
  ...([9, 10] as const).map((version): InteropCase => ({
    label: `pmacctd nfprobe v${version}`,
    tools: ["pmacctd", "tshark", "dumpcap"],
    version,
    run: (pcap, port) => runPmacctd(pcap, version, port, { engine: 7 }),
    absoluteTimes: true,
  })),
];

const CI = Deno.env.get("CI") === "true";

/** Receives every datagram to a fresh 127.0.0.1 port until closed. */
function openReceiver() {
  const sock = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const port = (sock.addr as Deno.NetAddr).port;
  const received: { data: Uint8Array; from: Deno.NetAddr }[] = [];
  const loop = (async () => {
    try {
      for (;;) {
        const [data, from] = await sock.receive();
        received.push({ data, from: from as Deno.NetAddr });
      }
    } catch {
      // closed
    }
  })();
  return {
    port,
    received,
    async close() {
      sock.close();
      await loop;
    },
  };
}

/** The ground truth for the flows an exporter of `version` reports (v1/v5 carry IPv4 only). */
function expectedFlows(flows: ExpectedFlow[], version: number): ExpectedFlow[] {
  return version === 1 || version === 5 ? flows.filter((f) => f.ipVersion === 4) : flows;
}

function sameFlow(e: ExpectedFlow, f: Flow): boolean {
  if (f.srcAddr !== e.srcAddr || f.dstAddr !== e.dstAddr || f.protocol !== e.protocol) return false;
  // ICMP "ports" are exporter-specific (type/code in the destination port, or none).
  return e.protocol === 1 || e.protocol === 58 || (f.srcPort === e.srcPort && f.dstPort === e.dstPort);
}

for (const c of CASES) {
  const missing = missingTools(c.tools);
  Deno.test({
    name: `interop decoder: ${c.label} vs tshark`,
    ignore: missing.length > 0 && !CI,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      if (missing.length > 0) {
        assert.fail(`interop test needs: ${missing.join(", ")} (see .ci/install-apt.sh)`);
      }
      const dir = Deno.makeTempDirSync({ prefix: "interop-" });
      const receiver = openReceiver();
      let capture: Awaited<ReturnType<typeof captureDatagrams>> | undefined;
      try {
        const traffic = writeTrafficPcap(join(dir, "traffic.pcap"));
        capture = await captureDatagrams(receiver.port, () => c.run(traffic.path, receiver.port));
        await receiver.close();
        const datagrams = receiver.received;
        assert.ok(datagrams.length > 0, `${c.label}: no datagram received`);

        // The capture and the socket saw the same datagrams, byte for byte.
        const captured = readUdpPayloads(capture.path, receiver.port);
        assert.equal(
          captured.length,
          datagrams.length,
          "datagrams captured by tshark vs received by the test",
        );
        captured.forEach((d, i) =>
          assert.deepEqual(d, datagrams[i].data, `datagram ${i} differs from capture`)
        );

        const reference = await tsharkDecode(capture.path, receiver.port);
        assert.equal(reference.datagrams, datagrams.length, "datagrams dissected by tshark");

        const decoder = new NetflowDecoder();
        const cmp: Comparison = { fields: 0, mismatches: [] };
        const ours: Flow[] = [];
        let headerFields = 0;
        datagrams.forEach(({ data, from }, i) => {
          const packets = decoder.decode(data, from.hostname, from.port, Date.now());
          const packet = packets[0];
          const ref = reference.perDatagram[i];
          if (packet.error) {
            cmp.mismatches.push(`datagram ${i}: our decoder: ${packet.error.kind}: ${packet.error.message}`);
          }
          if (packets.length !== 1 || packet.awaitingTemplateSets) {
            cmp.mismatches.push(
              `datagram ${i}: ${packets.length} packets, ${packet.awaitingTemplateSets} sets held`,
            );
          }
          if (ref.setsWithoutTemplate > 0) {
            cmp.mismatches.push(
              `datagram ${i}: tshark found ${ref.setsWithoutTemplate} sets without template`,
            );
          }
          const before = cmp.fields;
          compareRecord({ ...ref.header }, { ...normalizeHeader(packet) }, `datagram ${i} header`, cmp);
          headerFields += cmp.fields - before;
          if (ref.records.length !== packet.flows.length) {
            cmp.mismatches.push(
              `datagram ${i}: tshark ${ref.records.length} records, ours ${packet.flows.length}`,
            );
          }
          ref.records.forEach((r, j) => {
            const flow = packet.flows[j];
            if (flow) {
              compareRecord(
                { ...r },
                { ...normalizeFlow(flow, packet.version) },
                `datagram ${i} record ${j}`,
                cmp,
              );
            }
          });
          ours.push(...packet.flows);
        });

        // Against the traffic itself: every unidirectional flow once, with its exact packets and bytes.
        const expected = expectedFlows(traffic.flows, c.version);
        let truthFields = 0;
        for (const e of expected) {
          const matches = ours.filter((f) => sameFlow(e, f));
          const name = `${e.srcAddr}:${e.srcPort} > ${e.dstAddr}:${e.dstPort}/${e.protocol}`;
          if (matches.length !== 1) {
            cmp.mismatches.push(`traffic flow ${name}: ${matches.length} records`);
            continue;
          }
          const [f] = matches;
          const truth: Record<string, unknown> = { packets: e.packets, bytes: e.bytes };
          if (c.absoluteTimes) {
            // Both exporters (pmacct's nfprobe is softflowd's code) keep one bidirectional flow per 5-tuple
            // and report both directions with the conversation's first and last packet time. ICMP echo
            // request and reply differ in type, so they are two flows with their own times.
            const bidirectional = e.protocol === 6 || e.protocol === 17;
            Object.assign(truth, {
              startMs: bidirectional ? e.conversationFirstMs : e.firstMs,
              endMs: bidirectional ? e.conversationLastMs : e.lastMs,
            });
          }
          const before = cmp.fields;
          // softflowd's NTP timestamps (-A micro/nano) come out 1 µs late (fraction 0x10c6 for .000000 s).
          compareRecord(truth, { ...f }, `traffic flow ${name}`, cmp, {
            referenceName: "traffic",
            timeToleranceMs: 0.0015,
          });
          truthFields += cmp.fields - before;
        }
        if (ours.length !== expected.length) {
          cmp.mismatches.push(`${ours.length} flow records, the traffic has ${expected.length} flows`);
        }

        const recordFields = cmp.fields - headerFields - truthFields;
        console.log(
          `interop ${c.label}: ${datagrams.length} datagrams, ${reference.records.length} records, ` +
            `${recordFields} record fields + ${headerFields} header fields compared with tshark, ` +
            `${truthFields} with the traffic; ` +
            (cmp.mismatches.length === 0 ? "all equal" : `${cmp.mismatches.length} MISMATCHES`),
        );
        assert.ok(reference.records.length > 0, "tshark decoded no flow records");
        assert.deepEqual(cmp.mismatches.slice(0, 40), [], `${c.label}: ${cmp.mismatches.length} mismatches`);
      } finally {
        await receiver.close().catch(() => {});
        capture?.cleanup();
        Deno.removeSync(dir, { recursive: true });
      }
    },
  });
}
