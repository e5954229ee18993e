/**
 * End-to-end throughput: sender process → collector process → OTLP receiver process, on loopback.
 *
 *   deno task bench:e2e [--rates 10000,50000,100000] [--seconds 10] [--protocols http,grpc] [--version 5]
 *                       [--collector "cmd args…"]   (default: deno run main.ts; e.g. a compiled binary)
 *
 * For each protocol and offered rate (flows/s): flows offered, flows that arrived as spans, datagram loss
 * (sender vs the collector's own count, and the kernel's UDP receive-buffer drops), spans dropped or failed
 * by the collector, p50/p99 export lag (arrival at the receiver − the packet's export time), the
 * collector's peak RSS and CPU, and flow spans delivered per CPU-second of the collector. Prints a table, then
 * one JSON line.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import process from "node:process";

const { values } = parseArgs({
  options: {
    rates: { type: "string", default: "10000,50000,100000" },
    seconds: { type: "string", default: "10" },
    protocols: { type: "string", default: "http,grpc" },
    version: { type: "string", default: "5" },
    collector: { type: "string" },
  },
});
const rates = values.rates!.split(",").map(Number);
const seconds = Number(values.seconds);
const protocols = values.protocols!.split(",") as ("http" | "grpc")[];
const deno = Deno.execPath();
const collectorCmd = values.collector?.split(" ") ??
  [deno, "run", "--allow-net", "--allow-env", "--allow-read", "--allow-write", "--allow-sys", "main.ts"];

interface Proc {
  child: Deno.ChildProcess;
  lines: string[];
  stderr: string[];
  /** Resolves once both output streams are read to the end (after exit). */
  drained: Promise<unknown>;
}

function spawn(cmd: string[], env: Record<string, string> = {}): Proc {
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const p: Proc = { child, lines: [], stderr: [], drained: Promise.resolve() };
  const pump = async (s: ReadableStream<Uint8Array>, out: string[]) => {
    let buf = "";
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        out.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    }
  };
  p.drained = Promise.all([pump(child.stdout, p.lines), pump(child.stderr, p.stderr)]);
  return p;
}

async function until<T>(fn: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function udpDrops(): number {
  const lines = readFileSync("/proc/net/snmp", "utf8").split("\n").filter((l) => l.startsWith("Udp:"));
  const names = lines[0].split(/\s+/), vals = lines[1].split(/\s+/).map(Number);
  return vals[names.indexOf("RcvbufErrors")];
}

function procStats(pid: number): { rssKb: number; hwmKb: number; cpuTicks: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k: string) => Number(status.match(new RegExp(`${k}:\\s+(\\d+)`))?.[1] ?? 0);
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return { rssKb: kb("VmRSS"), hwmKb: kb("VmHWM"), cpuTicks: Number(stat[11]) + Number(stat[12]) };
}

const freePort = () => {
  const s = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const port = (s.addr as Deno.NetAddr).port;
  s.close();
  return port;
};

const rows: Record<string, unknown>[] = [];
for (const protocol of protocols) {
  for (const rate of rates) {
    const receiver = spawn([deno, "run", "-A", "bench/count_receiver.ts", protocol]);
    const rport = await until(
      () => {
        const l = receiver.lines.find((x) => x.includes('"port"'));
        return l ? JSON.parse(l).port as number : undefined;
      },
      10_000,
      "receiver",
    );
    const port = freePort();
    const collector = spawn(collectorCmd, {
      NETFLOW_LISTEN_HOST: "127.0.0.1",
      NETFLOW_LISTEN_PORT: String(port),
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${rport}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: protocol === "http" ? "http/protobuf" : "grpc",
      OTEL_BSP_SCHEDULE_DELAY: "200",
      NETFLOW_STATS_INTERVAL: "0",
      PATH: Deno.env.get("PATH") ?? "",
      HOME: Deno.env.get("HOME") ?? "/tmp",
    });
    await until(
      () => collector.stderr.some((l) => l.includes("listening")) || undefined,
      20_000,
      "collector",
    );
    const pid = collector.child.pid;
    const drops0 = udpDrops();
    const cpu0 = procStats(pid).cpuTicks;
    const receiverCpu0 = procStats(receiver.child.pid).cpuTicks;
    const t0 = performance.now();
    const sender = spawn([
      deno,
      "run",
      "-A",
      "bench/e2e_sender.ts",
      String(port),
      String(rate),
      String(seconds),
      values.version!,
    ]);
    let peakRss = 0;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, procStats(pid).rssKb)), 250);
    await sender.child.status;
    await sender.drained;
    const sent = JSON.parse(sender.lines.at(-1)!);
    // Wait until the receiver has everything or nothing moved for 3 s.
    let last = -1, lastChange = Date.now();
    for (;;) {
      const progress = receiver.lines.filter((l) => l.includes("progress")).at(-1);
      const n = progress ? JSON.parse(progress).progress : 0;
      if (n !== last) [last, lastChange] = [n, Date.now()];
      if (n >= sent.flows || Date.now() - lastChange > 3000) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    clearInterval(sampler);
    const cpuSeconds = (procStats(pid).cpuTicks - cpu0) / 100;
    const receiverCpuSeconds = (procStats(receiver.child.pid).cpuTicks - receiverCpu0) / 100;
    const wall = (performance.now() - t0) / 1000;
    const hwmKb = procStats(pid).hwmKb;
    const drops = udpDrops() - drops0;
    collector.child.kill("SIGTERM");
    await collector.child.status;
    await collector.drained;
    const totals = collector.stderr.find((l) => l.includes("stopped")) ?? "";
    const num = (k: string) => Number(totals.match(new RegExp(`${k}=(\\d+)`))?.[1] ?? NaN);
    try {
      receiver.child.kill("SIGTERM");
    } catch { /* it exited already: its stderr says why */ }
    await receiver.child.status;
    await receiver.drained;
    const final = receiver.lines.filter((l) => l.includes("requests")).at(-1);
    if (!final) throw new Error(`receiver gave no totals:\n${receiver.stderr.slice(-20).join("\n")}`);
    const got = JSON.parse(final);
    rows.push({
      protocol,
      offeredFlowsPerSec: rate,
      sentDatagrams: sent.datagrams,
      sentFlows: sent.flows,
      collectorDatagrams: num("packets"),
      datagramLossPct: +(100 * (1 - num("packets") / sent.datagrams)).toFixed(3),
      kernelUdpDrops: drops,
      flowSpansReceived: got.flowSpans,
      flowsLostPct: +(100 * (1 - got.flowSpans / sent.flows)).toFixed(3),
      spansDropped: num("spans_dropped"),
      spansFailed: num("spans_failed"),
      lagP50Ms: got.lagP50Ms,
      lagP99Ms: got.lagP99Ms,
      peakRssMb: Math.round(Math.max(peakRss, hwmKb) / 1024),
      cpuPct: Math.round((100 * cpuSeconds) / wall),
      // The cost figure that compares across rates and machines: flow spans delivered per CPU-second of the
      // collector (user + system).
      flowSpansPerCpuSecond: Math.round(got.flowSpans / Math.max(cpuSeconds, 0.01)),
      receiverCpuPct: Math.round((100 * receiverCpuSeconds) / wall),
      achievedFlowsPerSec: Math.round(sent.flows / sent.seconds),
    });
    console.error(JSON.stringify(rows.at(-1)));
  }
}

const cols = Object.keys(rows[0] ?? {});
console.log(cols.join("\t"));
for (const r of rows) console.log(cols.map((c) => r[c]).join("\t"));
console.log(JSON.stringify({ runtime: `deno ${Deno.version.deno}`, seconds, version: values.version, rows }));
process.exit(0);
