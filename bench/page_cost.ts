/**
 * What the status page costs the collector: one collector under a steady load (the project's sender, v5, to a
 * light counting OTLP receiver), measured in alternating windows with the page's four JSON endpoints fetched
 * once a second (as an open page does, twice as often) and without. One process for both, so the ratio is
 * not blurred by run-to-run differences.
 *
 *   deno task bench:page [--rate 30000] [--window 10] [--windows 12] [--polls 1] [--paths /api/top,…]
 *                        [--collector "cmd…"]
 *
 * --polls: polls a second in the page windows. The figure asked for is at 1; more (e.g. 10) lifts the page's
 * cost above the run-to-run noise (±5–8 ms of CPU a second here), and the cost per poll is divided out.
 *
 * Prints each window's collector CPU (ms per second, all threads), then the mean of each kind, their ratio,
 * the cost per poll, and what one poll a second costs against the collector's CPU without the page, as a
 * table and one JSON line.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { collectorCommand, freeTcpPort, startCollectorProcess } from "../test/support/collector.ts";

const { values } = parseArgs({
  options: {
    rate: { type: "string", default: "30000" },
    window: { type: "string", default: "10" },
    windows: { type: "string", default: "12" },
    paths: { type: "string", default: "/api/exporters,/api/export,/api/top?minutes=1,/api/flows" },
    collector: { type: "string" },
    polls: { type: "string", default: "1" },
  },
});
const rate = Number(values.rate), windowS = Number(values.window), windows = Number(values.windows);
const paths = values.paths!.split(",");
const pollsPerSecond = Number(values.polls);
const FLOWS_PER_DATAGRAM = 30;

function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(stat[11]) + Number(stat[12])) * 10; // clock ticks of 10 ms
}

const receiver = new Deno.Command(Deno.execPath(), {
  args: ["run", "-A", "bench/count_receiver.ts", "grpc"],
  stdout: "piped",
  stderr: "null",
}).spawn();
const lines = receiver.stdout.pipeThrough(new TextDecoderStream()).getReader();
let head = "";
while (!head.includes('"port"')) head += (await lines.read()).value ?? "";
const receiverPort = JSON.parse(head.split("\n").find((l) => l.includes('"port"'))!).port;
(async () => { // keep reading, so the receiver never blocks on a full pipe
  while (!(await lines.read()).done) { /* progress lines */ }
})();

const httpPort = freeTcpPort();
const collector = await startCollectorProcess({
  NETFLOW_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
  OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiverPort}`,
  NETFLOW_STATS_INTERVAL: "0",
}, values.collector ? { command: values.collector.split(" ") } : {});
const [cmd, ...args] = collectorCommand([
  "send",
  "--port",
  String(collector.port),
  "--version",
  "5",
  "--count",
  "0",
  "--rate",
  String(rate / FLOWS_PER_DATAGRAM),
  "--flows-per-packet",
  String(FLOWS_PER_DATAGRAM),
]);
const sender = new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).spawn();
await new Promise((r) => setTimeout(r, 5_000)); // warm up: JIT, sketches and rings full

const poll = () =>
  Promise.all(paths.map((p) => fetch(`http://127.0.0.1:${httpPort}${p}`).then((r) => r.text())));
const rows: { window: number; page: boolean; cpuMsPerSecond: number }[] = [];
for (let w = 0; w < windows; w++) {
  const page = w % 2 === 1;
  const t0 = performance.now(), c0 = cpuMs(collector.pid);
  const timer = page ? setInterval(poll, 1_000 / pollsPerSecond) : undefined;
  await new Promise((r) => setTimeout(r, windowS * 1_000));
  clearInterval(timer);
  const cpuMsPerSecond = Math.round((cpuMs(collector.pid) - c0) / ((performance.now() - t0) / 1_000));
  rows.push({ window: w, page, cpuMsPerSecond });
  console.log(`${page ? "page" : "off "}\t${cpuMsPerSecond} ms CPU per s`);
}
for (const child of [sender, receiver]) {
  try {
    child.kill("SIGTERM");
  } catch { /* it has exited already */ }
}
await sender.status;
await collector.stop();
await receiver.status;

const mean = (page: boolean) => {
  const xs = rows.filter((r) => r.page === page).map((r) => r.cpuMsPerSecond);
  return xs.reduce((a, b) => a + b, 0) / xs.length;
};
const off = mean(false), on = mean(true);
const perPoll = (on - off) / pollsPerSecond;
const result = {
  offeredFlowsPerSec: rate,
  paths,
  pollsPerSecond,
  cpuMsPerSecondWithout: +off.toFixed(1),
  cpuMsPerSecondWithPage: +on.toFixed(1),
  ratio: +(on / off).toFixed(3),
  cpuMsPerPoll: +perPoll.toFixed(2),
  /** The page polled once a second, against the collector's CPU without it. */
  oncePerSecondRatio: +((off + perPoll) / off).toFixed(4),
};
console.log("\nwithout\twith page\tratio\tms per poll\tonce a second");
console.log(
  [off.toFixed(1), on.toFixed(1), result.ratio, result.cpuMsPerPoll, result.oncePerSecondRatio].join("\t"),
);
console.log(JSON.stringify({ rows, ...result }));
