/**
 * End-to-end throughput: sender process → collector process → OTLP receiver process, on loopback, for the
 * product and, in the same run, the SDK path (bench/sdk_collector.ts: what a user would write with the
 * OpenTelemetry SDK) as the baseline.
 *
 *   deno task bench:e2e [--rates 10000,50000,100000] [--seconds 10] [--protocols http,grpc] [--version 5]
 *                       [--collectors deno,sdk] [--collector "cmd args…"] [--compression gzip]
 *                       [--exporters N] [--workers N] [--page] [--repeat N]
 *
 * --collectors: run in turn for each protocol and rate (a fresh receiver for each):
 *   deno      the product from source on Deno, as `deno task start` runs it (its V8 flags included)
 *   bun       the product from source on Bun (bun main.ts; `BUN` or bun on PATH, else npx bun@BUN_VERSION)
 *   sdk       the SDK path on Deno; sdk-bun: the SDK path on Bun. It decodes NetFlow v5 only: skipped for
 *             --version 9/10.
 *   custom    the command of --collector (e.g. a compiled binary, dist/netflow2traces-bun-linux-x64); with
 *             --collector the default is `custom,sdk`.
 * --compression: OTEL_EXPORTER_OTLP_COMPRESSION for the product's collectors (none by default; the SDK path
 *             always sends uncompressed).
 * --exporters: export streams the sender takes in turn (v5 engine IDs, v9 source IDs, IPFIX domains; 1 by
 *             default): with several, NETFLOW_WORKERS has streams to spread.
 * --workers:  NETFLOW_WORKERS for the product's collectors (default: the product's own, cores − 1).
 * --page:     also run each product collector with the status page open: NETFLOW_HTTP_LISTEN on and, as the
 *             page does, its four JSON endpoints fetched (by this process) once a second; the rows are named
 *             `<collector>+page` and a ratio page/no-page of flow spans per CPU-second follows. Without it the
 *             product runs with NETFLOW_HTTP_LISTEN=off.
 * --repeat:   run every case this many times in turn (default 1); ratios are the median over the runs.
 *
 * For each protocol, offered rate (flows/s) and collector: flows offered, flows that arrived as spans, datagram
 * loss (sender vs the collector's own count, and the kernel's UDP receive-buffer drops), spans dropped or
 * failed by the collector, p50/p99 export lag (arrival at the receiver − the packet's export time), the
 * collector's peak RSS and CPU, and flow spans delivered per CPU-second of the collector. Prints a table, the
 * ratios product/SDK path of flow spans per CPU-second and of peak RSS (bun against sdk-bun when both ran),
 * then one JSON line.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import process from "node:process";
import { bunCommand, DENO_V8_FLAGS } from "../scripts/build.ts";

const { values } = parseArgs({
  options: {
    rates: { type: "string", default: "10000,50000,100000" },
    seconds: { type: "string", default: "10" },
    protocols: { type: "string", default: "http,grpc" },
    version: { type: "string", default: "5" },
    collectors: { type: "string" },
    collector: { type: "string" },
    compression: { type: "string", default: "none" },
    exporters: { type: "string", default: "1" },
    workers: { type: "string" },
    page: { type: "boolean", default: false },
    repeat: { type: "string", default: "1" },
  },
});
const rates = values.rates!.split(",").map(Number);
const seconds = Number(values.seconds);
const protocols = values.protocols!.split(",") as ("http" | "grpc")[];
let collectors = (values.collectors ?? (values.collector ? "custom,sdk" : "deno,sdk")).split(",");
if (values.version !== "5" && collectors.some(isSdk)) {
  console.log(`note: the SDK path decodes NetFlow v5 only: skipped for --version ${values.version}`);
  collectors = collectors.filter((c) => !isSdk(c));
}
const deno = Deno.execPath();
const runtimes: Record<string, string> = { deno: Deno.version.deno };
let bun = "bun";
if (collectors.some((c) => c.includes("bun"))) {
  // The bun executable itself (not npx), so that the CPU and RSS measured are Bun's.
  const [cmd, ...args] = bunCommand();
  const probe = ["-e", "console.log(process.execPath, Bun.version)"];
  const out = new Deno.Command(cmd, { args: [...args, ...probe], stderr: "inherit" }).outputSync();
  [bun, runtimes.bun] = new TextDecoder().decode(out.stdout).trim().split(" ");
}
const perms = ["--allow-net", "--allow-env", "--allow-read", "--allow-write", "--allow-sys"];
const commands: Record<string, string[]> = {
  deno: [deno, "run", DENO_V8_FLAGS, ...perms, "main.ts"],
  bun: [bun, "main.ts"],
  sdk: [deno, "run", ...perms, "bench/sdk_collector.ts"],
  "sdk-bun": [bun, "bench/sdk_collector.ts"],
  ...values.collector ? { custom: values.collector.split(" ") } : {},
};
for (const c of collectors) if (!commands[c]) throw new Error(`unknown collector ${c}`);

function isSdk(collector: string): boolean {
  return collector.startsWith("sdk");
}

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

type Row = Awaited<ReturnType<typeof measure>>;

/** What the status page fetches every second (each of its panels' JSON). */
const PAGE_PATHS = ["/api/exporters", "/api/export", "/api/top?minutes=1", "/api/flows"];

async function measure(protocol: "http" | "grpc", rate: number, name: string, page = false) {
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
  const httpPort = freePort(); // a UDP port free is almost surely free for TCP too
  const collector = spawn(commands[name], {
    NETFLOW_HTTP_LISTEN: page ? `127.0.0.1:${httpPort}` : "off",
    NETFLOW_LISTEN_HOST: "127.0.0.1",
    NETFLOW_LISTEN_PORT: String(port),
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${rport}`,
    OTEL_EXPORTER_OTLP_PROTOCOL: protocol === "http" ? "http/protobuf" : "grpc",
    OTEL_BSP_SCHEDULE_DELAY: "200",
    OTEL_EXPORTER_OTLP_COMPRESSION: values.compression!,
    NETFLOW_STATS_INTERVAL: "0",
    ...(values.workers ? { NETFLOW_WORKERS: values.workers } : {}),
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
    values.exporters!,
  ]);
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, procStats(pid).rssKb)), 250);
  let polls = 0;
  const poller = page
    ? setInterval(async () => {
      await Promise.all(
        PAGE_PATHS.map((p) => fetch(`http://127.0.0.1:${httpPort}${p}`).then((r) => r.text())),
      );
      polls++;
    }, 1_000)
    : undefined;
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
  clearInterval(poller);
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
  return {
    protocol,
    collector: page ? `${name}+page` : name,
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
    pagePolls: polls,
  };
}

const rows: Row[] = [];
const repeat = Number(values.repeat);
for (let run = 0; run < repeat; run++) {
  for (const protocol of protocols) {
    for (const rate of rates) {
      for (const name of collectors) {
        rows.push(await measure(protocol, rate, name));
        console.error(JSON.stringify(rows.at(-1)));
        if (values.page && !isSdk(name)) {
          rows.push(await measure(protocol, rate, name, true));
          console.error(JSON.stringify(rows.at(-1)));
        }
      }
    }
  }
}

const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
/** `r` against `base` over the runs of one protocol and rate: the median of the per-run ratios. */
const ratioRow = (protocol: string, rate: number, name: string, baseName: string) => {
  const of = (n: string) =>
    rows.filter((x) => x.collector === n && x.protocol === protocol && x.offeredFlowsPerSec === rate);
  const a = of(name), b = of(baseName);
  if (a.length === 0 || b.length === 0) return [];
  const n = Math.min(a.length, b.length);
  const ratio = (k: "flowSpansPerCpuSecond" | "peakRssMb") =>
    +median(Array.from({ length: n }, (_, i) => a[i][k] / b[i][k])).toFixed(3);
  return [{
    protocol,
    offeredFlowsPerSec: rate,
    ratio: `${name}/${baseName}`,
    runs: n,
    flowSpansPerCpuSecond: ratio("flowSpansPerCpuSecond"),
    peakRssMb: ratio("peakRssMb"),
  }];
};
// Each product run against the SDK path's run of the same protocol and rate (on the same runtime if it ran),
// and with the page open against without.
const ratios = protocols.flatMap((protocol) =>
  rates.flatMap((rate) =>
    collectors.filter((c) => !isSdk(c)).flatMap((c) => [
      ...ratioRow(protocol, rate, c, c === "bun" && collectors.includes("sdk-bun") ? "sdk-bun" : "sdk"),
      ...(values.page ? ratioRow(protocol, rate, `${c}+page`, c) : []),
    ])
  )
);

const table = (xs: Record<string, unknown>[]) => {
  const cols = Object.keys(xs[0] ?? {});
  console.log(cols.join("\t"));
  for (const x of xs) console.log(cols.map((c) => x[c]).join("\t"));
};
table(rows);
if (ratios.length) {
  console.log();
  table(ratios);
}
const commandLines = Object.fromEntries(collectors.map((c) => [c, commands[c].join(" ")]));
console.log(
  JSON.stringify({ runtimes, collectors: commandLines, seconds, version: values.version, rows, ratios }),
);
process.exit(0);
