/**
 * End-to-end interoperability: a real exporter (softflowd, pmacctd) replays the traffic capture to the REAL
 * collector process (main.ts), which exports spans over OTLP/HTTP to a test receiver. tshark captures the
 * same datagrams and is the reference: every record it decodes must come out as one `netflow.flow` span
 * with the SPEC attributes, in a `netflow.export` → `netflow.process_flows` → `netflow.flow` tree, and at
 * the time its packets were captured.
 *
 * The traffic is stamped a few seconds in the past so the exporters' times are plausible (an old capture
 * would legitimately give `netflow.flow.time_adjusted` spans at receive time, SPEC §2).
 *
 * Needs softflowd, pmacct and tshark (.ci/install-apt.sh); a missing tool skips, or fails when CI=true.
 */
import assert from "node:assert/strict";
import {
  captureDatagrams,
  missingTools,
  runPmacctd,
  runSoftflowd,
  tsharkDecode,
} from "./support/exporters.ts";
import type { NormalizedRecord } from "./support/exporters.ts";
import { startCollectorProcess } from "./support/collector.ts";
import { type DecodedSpan, startOtlpReceiver } from "./support/otlp_receiver.ts";
import { type ExpectedFlow, writeTrafficPcap } from "./support/traffic.ts";
import { join } from "./support/paths.ts";

interface E2eCase {
  label: string;
  tools: string[];
  version: 5 | 9 | 10;
  run: (pcap: string, port: number) => Promise<unknown>;
  /**
   * How far a flow span's start/end may be from the capture time of the flow's packets: v9 headers carry
   * whole export seconds only, so uptime-relative times are exact to a second at best.
   */
  timeToleranceMs: number;
}

const CASES: E2eCase[] = [
  {
    label: "softflowd v5",
    tools: ["softflowd", "tshark", "dumpcap"],
    version: 5,
    run: (pcap, port) => runSoftflowd(pcap, 5, port),
    timeToleranceMs: 50,
  },
  {
    label: "softflowd v9",
    tools: ["softflowd", "tshark", "dumpcap"],
    version: 9,
    run: (pcap, port) => runSoftflowd(pcap, 9, port),
    timeToleranceMs: 1050,
  },
  {
    label: "softflowd v10",
    tools: ["softflowd", "tshark", "dumpcap"],
    version: 10,
    run: (pcap, port) => runSoftflowd(pcap, 10, port),
    timeToleranceMs: 50,
  },
  {
    label: "pmacctd nfprobe v10",
    tools: ["pmacctd", "tshark", "dumpcap"],
    version: 10,
    run: (pcap, port) => runPmacctd(pcap, 10, port, { engine: 3 }),
    timeToleranceMs: 1,
  },
];

const CI = Deno.env.get("CI") === "true";

function num(v: unknown): number | undefined {
  return typeof v === "bigint" ? Number(v) : typeof v === "number" ? v : undefined;
}

const hasPorts = (p: number | undefined) => p === 6 || p === 17 || p === 132;

/** SPEC §3 attributes a span must carry for a record tshark decoded. */
function expectedAttributes(r: NormalizedRecord): Record<string, string | number> {
  const a: Record<string, string | number> = {};
  const put = (k: string, v: string | number | undefined) => {
    if (v !== undefined) a[k] = v;
  };
  put("netflow.version", r.version);
  put("source.address", r.srcAddr);
  put("destination.address", r.dstAddr);
  put("network.peer.address", r.dstAddr);
  if (hasPorts(r.protocol)) {
    put("source.port", r.srcPort);
    put("destination.port", r.dstPort);
    put("network.peer.port", r.dstPort);
  }
  put("network.protocol.number", r.protocol);
  put("network.transport", { 1: "icmp", 6: "tcp", 17: "udp", 58: "ipv6-icmp" }[r.protocol ?? -1]);
  put("network.type", r.srcAddr === undefined ? undefined : r.srcAddr.includes(":") ? "ipv6" : "ipv4");
  put("netflow.flow.bytes", r.bytes);
  put("netflow.flow.packets", r.packets);
  put("netflow.tcp_flags", r.tcpFlags);
  put("netflow.tos", r.tos);
  put("netflow.interface.input", r.inputIf);
  put("netflow.interface.output", r.outputIf);
  put("netflow.nexthop", r.nextHop);
  put("netflow.src_as", r.srcAs);
  put("netflow.dst_as", r.dstAs);
  put("netflow.src_mask", r.srcMask);
  put("netflow.dst_mask", r.dstMask);
  put("netflow.flow.first_switched", r.firstSwitched);
  put("netflow.flow.last_switched", r.lastSwitched);
  if (r.direction === 0 || r.direction === 1) {
    put("netflow.flow.direction", r.direction ? "egress" : "ingress");
  }
  return a;
}

function flowKey(
  addr: [unknown, unknown],
  ports: [unknown, unknown],
  proto: unknown,
  bytes: unknown,
): string {
  return JSON.stringify([addr, ports, proto, bytes]);
}

for (const c of CASES) {
  const missing = missingTools(c.tools);
  Deno.test({
    name: `interop e2e: ${c.label} → collector → OTLP spans`,
    ignore: missing.length > 0 && !CI,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      if (missing.length > 0) {
        assert.fail(`interop test needs: ${missing.join(", ")} (see .ci/install-apt.sh)`);
      }
      const dir = Deno.makeTempDirSync({ prefix: "interop-e2e-" });
      const receiver = await startOtlpReceiver({ protocol: "http" });
      let collector: Awaited<ReturnType<typeof startCollectorProcess>> | undefined;
      let capture: Awaited<ReturnType<typeof captureDatagrams>> | undefined;
      try {
        collector = await startCollectorProcess({
          OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
          OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
          OTEL_BSP_SCHEDULE_DELAY: "100",
        });
        const port = collector.port;
        // A recent, whole-second start: exporters stamp flows with plausible times.
        const baseMs = Math.floor(Date.now() / 1000) * 1000 - 10_000;
        const traffic = writeTrafficPcap(join(dir, "traffic.pcap"), { baseMs });
        capture = await captureDatagrams(port, () => c.run(traffic.path, port));
        const reference = await tsharkDecode(capture.path, port);
        assert.ok(reference.records.length > 0, "tshark decoded no flow records");

        // One export + one process_flows span per datagram, one flow span per record.
        const total = 2 * reference.datagrams + reference.records.length;
        await receiver.waitForSpans(total, 20_000).catch((e) => {
          throw new Error(`${e.message}: ${receiver.spans.length}/${total} spans\n${collector?.stderr()}`);
        });
        await new Promise((r) => setTimeout(r, 300)); // nothing more may arrive
        const spans = receiver.spans;
        const byName = (n: string) => spans.filter((s) => s.name === n);
        const exports = byName("netflow.export"), processes = byName("netflow.process_flows");
        const flows = byName("netflow.flow");
        assert.equal(exports.length, reference.datagrams, "netflow.export spans");
        assert.equal(processes.length, reference.datagrams, "netflow.process_flows spans");
        assert.equal(flows.length, reference.records.length, "netflow.flow spans");
        assert.equal(spans.length, total, "no other spans");

        const mismatches: string[] = [];
        let fields = 0;
        const byId = new Map(spans.map((s) => [s.spanId, s]));
        // Tree: flow → process_flows → export (root), one trace each; counts agree.
        for (const f of flows) {
          const p = byId.get(f.parentSpanId), e = p && byId.get(p.parentSpanId);
          if (p?.name !== "netflow.process_flows" || e?.name !== "netflow.export" || e.parentSpanId !== "") {
            mismatches.push(`flow span ${f.spanId}: not under process_flows under a root export span`);
          } else if (f.traceId !== e.traceId) mismatches.push(`flow span ${f.spanId}: other trace`);
        }
        for (const e of exports) {
          fields++;
          const n = flows.filter((f) => f.traceId === e.traceId).length;
          if (num(e.attributes["netflow.flow.count"]) !== n) {
            mismatches.push(
              `export span: netflow.flow.count ${e.attributes["netflow.flow.count"]}, ${n} flow spans`,
            );
          }
          if (e.status.code === 2) mismatches.push(`export span status ERROR: ${e.status.message}`);
        }

        // Every tshark record ↔ exactly one flow span (by addresses, ports, protocol and bytes).
        const index = new Map<string, DecodedSpan[]>();
        for (const s of flows) {
          const a = s.attributes;
          const proto = num(a["network.protocol.number"]);
          const key = flowKey(
            [a["source.address"], a["destination.address"]],
            hasPorts(proto) ? [num(a["source.port"]), num(a["destination.port"])] : [0, 0],
            proto,
            num(a["netflow.flow.bytes"]),
          );
          index.set(key, [...(index.get(key) ?? []), s]);
        }
        const truth = new Map<string, ExpectedFlow>(
          traffic.flows.map((t) => [`${t.srcAddr}|${t.dstAddr}|${t.protocol}|${t.srcPort}|${t.dstPort}`, t]),
        );
        let adjusted = 0;
        for (const [i, r] of reference.records.entries()) {
          const key = flowKey(
            [r.srcAddr, r.dstAddr],
            hasPorts(r.protocol) ? [r.srcPort, r.dstPort] : [0, 0],
            r.protocol,
            r.bytes,
          );
          const candidates = index.get(key) ?? [];
          const span = candidates.shift();
          if (!span) {
            mismatches.push(`record ${i} ${key}: no flow span`);
            continue;
          }
          for (const [k, v] of Object.entries(expectedAttributes(r))) {
            fields++;
            const got = span.attributes[k];
            if ((typeof v === "number" ? num(got) : got) !== v) {
              mismatches.push(`record ${i} ${key}: ${k} tshark ${JSON.stringify(v)}, span ${String(got)}`);
            }
          }
          // Times: the span covers the flow's packets as captured (the exporters report each direction of a
          // TCP/UDP conversation with the conversation's times; ICMP request and reply are separate flows).
          const t = truth.get(`${r.srcAddr}|${r.dstAddr}|${r.protocol}|${r.srcPort}|${r.dstPort}`) ??
            traffic.flows.find((x) =>
              x.srcAddr === r.srcAddr && x.dstAddr === r.dstAddr && x.protocol === r.protocol
            );
          if (span.attributes["netflow.flow.time_adjusted"] === true) adjusted++;
          if (t) {
            const bidi = hasPorts(t.protocol);
            const start = bidi ? t.conversationFirstMs : t.firstMs,
              end = bidi ? t.conversationLastMs : t.lastMs;
            const startMs = Number(span.startNs) / 1e6, endMs = Number(span.endNs) / 1e6;
            fields += 2;
            if (Math.abs(startMs - start) > c.timeToleranceMs || Math.abs(endMs - end) > c.timeToleranceMs) {
              mismatches.push(
                `record ${i} ${key}: span ${new Date(startMs).toISOString()}..${
                  new Date(endMs).toISOString()
                }` +
                  `, packets ${new Date(start).toISOString()}..${new Date(end).toISOString()}` +
                  (span.attributes["netflow.flow.time_adjusted"] ? " (time_adjusted)" : ""),
              );
            }
          } else mismatches.push(`record ${i} ${key}: not in the traffic`);
        }
        console.log(
          `interop e2e ${c.label}: ${reference.datagrams} datagrams, ${flows.length} flow spans, ` +
            `${fields} attributes/times compared with tshark and the traffic, ${adjusted} time-adjusted; ` +
            (mismatches.length === 0 ? "all equal" : `${mismatches.length} MISMATCHES`),
        );
        assert.deepEqual(mismatches.slice(0, 30), [], `${c.label}: ${mismatches.length} mismatches`);
      } finally {
        if (collector) await collector.stop("SIGKILL").catch(() => {});
        await receiver.close().catch(() => {});
        capture?.cleanup();
        Deno.removeSync(dir, { recursive: true });
      }
    },
  });
}
