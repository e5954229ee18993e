/**
 * The pipeline (decode → trace plan → OTLP → transport) in one thread, for profiling what the Worker does:
 *
 *   deno run -A --cpu-prof --cpu-prof-dir=prof bench/pipeline_profile.ts [FLOWS_PER_SEC] [SECONDS] [VERSION]
 *
 * Needs an OTLP receiver at OTEL_EXPORTER_OTLP_ENDPOINT (e.g. `deno run -A bench/count_receiver.ts grpc`);
 * reads the collector's usual configuration from the environment. Datagrams come from the synthetic traffic
 * generator, paced every 5 ms; prints the pipeline's counters when done.
 */
import process from "node:process";
import { parseCli } from "../src/config.ts";
import { createLogger } from "../src/log.ts";
import { Pipeline } from "../src/pipeline.ts";
import { pipelineSettings } from "../src/pipeline_protocol.ts";
import { TrafficGenerator } from "../src/tools/traffic.ts";

const [rate = 30_000, seconds = 10, version = 5] = process.argv.slice(2).map(Number);
const cli = parseCli([], process.env as Record<string, string>);
if (cli.kind !== "run") throw new Error("configuration expected");
const pipeline = new Pipeline(
  pipelineSettings(cli.config, 2055, { name: "netflow2traces", version: "profile" }),
  createLogger(cli.config.logLevel),
);
const gen = new TrafficGenerator({ version: version as 5 | 9 | 10, seed: 7, templateIntervalMs: 1000 });
const pool = Array.from({ length: 2000 }, (_, i) => gen.next(Date.now() + i).payload);
const perMs = rate / gen.flowsPerPacket / 1000;
const start = performance.now();
let sent = 0, elapsed = 0;
while ((elapsed = performance.now() - start) < seconds * 1000) {
  const now = Date.now();
  while (sent < elapsed * perMs) pipeline.handle(pool[sent++ % pool.length].slice(), "192.0.2.1", 2055, now);
  await new Promise((r) => setTimeout(r, 5));
}
await pipeline.stop();
console.log(JSON.stringify({ datagrams: sent, ...pipeline.snapshot().export }));
process.exit(0);
