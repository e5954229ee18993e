/**
 * Helpers for the tests that prove the compiled binaries (test/binary.test.ts, test/image.test.ts): build a
 * Bun binary once per test run (reused while it is newer than every source file), and run one end to end:
 * NetFlow v5 and IPFIX datagrams in over UDP, spans out over OTLP to a real receiver.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, statSync } from "node:fs";
import { binaryName } from "../../scripts/build.ts";
import { encodeIpfix, encodeV5, flowRecord, standardTemplate } from "../../src/tools/encode.ts";
import { type CollectorProcess, sendDatagrams, startCollectorProcess } from "./collector.ts";
import { type DecodedSpan, startOtlpReceiver } from "./otlp_receiver.ts";
import { dirname, fromFileUrl, join } from "./paths.ts";

export const ROOT = join(dirname(fromFileUrl(import.meta.url)), "..", "..");
export const DIST = join(ROOT, "dist");
export const CI = Deno.env.get("CI") === "true";

/** An executable on PATH (or an absolute path that exists), else undefined. */
export function which(name: string): string | undefined {
  if (name.startsWith("/")) return existsSync(name) ? name : undefined;
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    const p = join(dir, name);
    try {
      if (statSync(p).isFile()) return p;
    } catch { /* not here */ }
  }
  return undefined;
}

function newestSourceMtime(): number {
  let newest = 0;
  const visit = (p: string) => {
    const st = statSync(p);
    if (st.isDirectory()) { for (const e of readdirSync(p)) visit(join(p, e)); }
    else newest = Math.max(newest, st.mtimeMs);
  };
  for (const p of ["main.ts", "src", "package.json", "deno.json", "deno.lock", "scripts/build.ts"]) {
    if (existsSync(join(ROOT, p))) visit(join(ROOT, p));
  }
  return newest;
}

const builds = new Map<string, Promise<string>>();

/**
 * The path of `dist/netflow2traces-bun-<target>`, compiled by `scripts/build.ts` (exactly what
 * `deno task build:bun -- <target>` does) unless an up-to-date one is already there.
 */
export function bunBinary(target: "linux-x64" | "linux-arm64"): Promise<string> {
  let build = builds.get(target);
  if (!build) {
    build = (async () => {
      const out = join(DIST, binaryName("bun", target));
      if (existsSync(out) && statSync(out).mtimeMs > newestSourceMtime()) return out;
      const t0 = performance.now();
      const r = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "scripts/build.ts", "bun", target],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const log = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
      if (!r.success) throw new Error(`build of ${target} failed:\n${log}`);
      console.log(`built ${out} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      return out;
    })();
    builds.set(target, build);
  }
  return build;
}

/** Runs `command` and returns its exit code and output. */
export async function run(command: string[], env?: Record<string, string>) {
  const r = await new Deno.Command(command[0], {
    args: command.slice(1),
    env,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

const EXPORT_MS = 1_700_000_000_000;
const UPTIME = 500_000;

/** A v5 datagram with `flows` TCP flows 10.9.0.x:4000x → 192.0.2.80:443. */
export function v5Datagram(sequence: number, flows: number): Uint8Array {
  return encodeV5(
    { sysUptimeMs: UPTIME, exportTimeMs: EXPORT_MS, sequence },
    Array.from({ length: flows }, (_, i) => ({
      srcAddr: `10.9.0.${i + 1}`,
      dstAddr: "192.0.2.80",
      srcPort: 40000 + i,
      dstPort: 443,
      protocol: 6,
      packets: 3 + i,
      bytes: 900 + i,
      firstSwitched: UPTIME - 20_000,
      lastSwitched: UPTIME - 1_000,
    })),
  );
}

/** IPFIX: one template datagram, then `datagrams` data datagrams of `flowsEach` UDP flows (IPv6). */
export function ipfixDatagrams(datagrams: number, flowsEach: number): Uint8Array[] {
  const template = standardTemplate(6, { times: "milliseconds" });
  const header = (sequence: number) => ({ exportTimeMs: EXPORT_MS, sequence, observationDomainId: 42 });
  const out = [encodeIpfix(header(0), [{ type: "templates", templates: [template] }])];
  for (let d = 0; d < datagrams; d++) {
    const records = Array.from({ length: flowsEach }, (_, i) =>
      flowRecord({
        srcAddr: `2001:db8::${(d * flowsEach + i + 1).toString(16)}`,
        dstAddr: "2001:db8:ffff::53",
        srcPort: 50000 + i,
        dstPort: 53,
        protocol: 17,
        packets: 1,
        bytes: 80 + i,
        startMs: EXPORT_MS - 5_000,
        endMs: EXPORT_MS - 4_000,
      }, template));
    out.push(encodeIpfix(header(d * flowsEach), [{ type: "data", template, records }]));
  }
  return out;
}

export interface EndToEndResult {
  spans: DecodedSpan[];
  /** From spawn to the collector's "listening" line. */
  startupMs: number;
  exitCode: number;
  collector: CollectorProcess;
}

/**
 * Starts `command` as the collector against a fresh OTLP receiver, sends one v5 datagram (3 flows) and
 * `ipfix` IPFIX data datagrams of 30 flows, waits for every span, stops the collector with SIGTERM (which
 * must flush and exit 0) and checks the spans.
 */
export async function endToEnd(
  command: string[],
  protocol: "http" | "grpc",
  options: {
    ipfix?: number;
    env?: Record<string, string>;
    cwd?: string;
    timeoutMs?: number;
    /** Runs while the collector is up, after the spans arrived. */
    onRunning?: () => Promise<void>;
  } = {},
): Promise<EndToEndResult> {
  const ipfix = options.ipfix ?? 10;
  const receiver = await startOtlpReceiver({ protocol });
  const t0 = performance.now();
  const collector = await startCollectorProcess({
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: protocol === "http" ? "http/protobuf" : "grpc",
    OTEL_BSP_SCHEDULE_DELAY: "100",
    OTEL_SERVICE_NAME: "nf2t-binary",
    ...options.env,
  }, { command, cwd: options.cwd });
  const startupMs = performance.now() - t0;
  try {
    const datagrams = [v5Datagram(1, 3), ...ipfixDatagrams(ipfix, 30)];
    // Small bursts: the point is the binary's export path, not the loopback's UDP buffers.
    for (let i = 0; i < datagrams.length; i += 20) {
      await sendDatagrams(collector.port, datagrams.slice(i, i + 20));
    }
    const flowSpans = 3 + 30 * ipfix;
    const expected = flowSpans + 2 * (1 + ipfix); // + export and process_flows per data datagram
    await receiver.waitForSpans(expected, options.timeoutMs ?? 20_000).catch((err) => {
      throw new Error(
        `${err.message}; got ${receiver.spans.length} spans; collector log:\n${collector.stderr()}`,
      );
    });
    await options.onRunning?.();
    const exitCode = await collector.stop("SIGTERM");
    assert.equal(exitCode, 0, `SIGTERM must flush and exit 0; log:\n${collector.stderr()}`);
    checkSpans(receiver.spans, ipfix);
    return { spans: receiver.spans, startupMs, exitCode, collector };
  } finally {
    await collector.stop("SIGKILL");
    await receiver.close();
  }
}

function checkSpans(spans: DecodedSpan[], ipfix: number): void {
  const flows = spans.filter((s) => s.name === "netflow.flow");
  assert.equal(flows.length, 3 + 30 * ipfix, "one netflow.flow span per flow, none lost or doubled");
  assert.equal(new Set(spans.map((s) => s.spanId)).size, spans.length, "no span exported twice");
  const v5 = flows.filter((s) => s.attributes["netflow.version"] === 5);
  assert.equal(v5.length, 3);
  const f = v5.find((s) => s.attributes["netflow.flow.index"] === 1)!;
  assert.equal(f.attributes["source.address"], "10.9.0.2");
  assert.equal(f.attributes["destination.port"], 443);
  assert.equal(f.attributes["network.transport"], "tcp");
  assert.equal(f.attributes["netflow.flow.bytes"], 901);
  assert.equal(f.startNs, BigInt(EXPORT_MS - 20_000) * 1_000_000n);
  assert.equal(f.resource["service.name"], "nf2t-binary");
  const roots = spans.filter((s) => s.name === "netflow.export" && s.attributes["netflow.version"] === 5);
  assert.equal(roots.length, 1);
  const proc = spans.find((s) => s.parentSpanId === roots[0].spanId)!;
  assert.equal(proc.name, "netflow.process_flows");
  assert.equal(f.parentSpanId, proc.spanId);
  const v6 = flows.filter((s) => s.attributes["netflow.version"] === 10);
  assert.equal(v6.length, 30 * ipfix);
  const g = v6[0];
  assert.equal(g.attributes["destination.address"], "2001:db8:ffff::53");
  assert.equal(g.attributes["network.type"], "ipv6");
  assert.equal(g.attributes["network.transport"], "udp");
  assert.equal(g.attributes["server.port"], 53);
  assert.equal(g.endNs - g.startNs, 1_000_000_000n);
}
