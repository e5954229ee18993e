/**
 * `netflow2traces replay FILE`: exports the NetFlow/IPFIX datagrams of a packet capture as traces, like the
 * live path (same configuration, same pipeline), for backfill and forensics. Each datagram keeps the
 * address it was sent from and its capture time as the receive time, so flows keep their own times.
 * `--dry-run` decodes and prints the summary only, like `nfdump -I`.
 *
 * The template cache file and the spool of the configuration are not used: a replay must not overwrite what
 * a running collector keeps there.
 */
import { closeSync, openSync, readSync } from "node:fs";
import process from "node:process";
import { parseArgs } from "node:util";
import { ConfigError, parseCli, PRODUCT_VERSION } from "../config.ts";
import { createLogger } from "../log.ts";
import { NetflowDecoder } from "../netflow/decoder.ts";
import { Pipeline } from "../pipeline.ts";
import { pipelineSettings } from "../pipeline_protocol.ts";
import { type CapturedDatagram, CaptureError, newSkips, type ReadAt, readCapture } from "./pcap.ts";

export const REPLAY_HELP = `Usage: netflow2traces replay FILE [--port N] [--dry-run]
Exports the NetFlow v1/v5/v9/IPFIX datagrams of a pcap or pcapng file as traces, with the collector's
configuration (environment, .env). Each datagram keeps its sender's address and its capture time.
  --port N     only UDP datagrams to port N (default: every UDP datagram that starts like NetFlow/IPFIX)
  --dry-run    decode only: print what the file holds, export nothing
Exit status: 0 when everything was read and exported, 1 otherwise, 2 for a usage error.
`;

/** Versions a datagram may start with to be taken for NetFlow/IPFIX when no port is given. */
const NETFLOW_VERSIONS = new Set([1, 5, 9, 10]);
/** The replay waits while the pipeline holds more than this share of its queue: a replay drops nothing. */
const QUEUE_SHARE = 0.5;
const PROGRESS_INTERVAL_MS = 1_000;

/** What a file held, for the summary. */
interface Summary {
  datagrams: number;
  flows: number;
  errors: Record<string, number>;
  exporters: Map<
    string,
    { versions: Set<number>; datagrams: number; flows: number; first: number; last: number }
  >;
  skippedNotNetflow: number;
}

export async function runReplay(
  args: string[],
  env: Record<string, string | undefined> = process.env,
): Promise<number> {
  let values, positionals;
  try {
    ({ values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        port: { type: "string" },
        "dry-run": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (err) {
    return usage((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(REPLAY_HELP);
    return 0;
  }
  if (positionals.length !== 1) return usage("one capture file is needed");
  const port = values.port === undefined ? undefined : Number(values.port);
  if (port !== undefined && !(Number.isInteger(port) && port >= 1 && port <= 65535)) {
    return usage(`invalid --port ${values.port}: a UDP port (1-65535) is needed`);
  }
  const file = positionals[0];
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch (err) {
    process.stderr.write(`replay: cannot open ${file}: ${(err as Error).message}\n`);
    return 1;
  }
  const read: ReadAt = (position, length) => {
    const out = new Uint8Array(length);
    return out.subarray(0, readSync(fd, out, 0, length, position));
  };
  try {
    return values["dry-run"] ? dryRun(file, read, port) : await replay(file, read, port, env);
  } finally {
    closeSync(fd);
  }
}

function usage(message: string): number {
  process.stderr.write(`replay: ${message}\n${REPLAY_HELP}`);
  return 2;
}

/** The capture's NetFlow datagrams (by port, or by their first bytes when no port is given). */
function* netflowDatagrams(read: ReadAt, port: number | undefined, summary: Summary, skips = newSkips()) {
  for (const d of readCapture(read, skips)) {
    const version = d.payload.length >= 2 ? (d.payload[0] << 8) | d.payload[1] : -1;
    if (port !== undefined ? d.destinationPort !== port : !NETFLOW_VERSIONS.has(version)) {
      summary.skippedNotNetflow++;
      continue;
    }
    let e = summary.exporters.get(d.source);
    if (!e) {
      summary.exporters.set(
        d.source,
        e = { versions: new Set(), datagrams: 0, flows: 0, first: d.timeMs, last: 0 },
      );
    }
    e.versions.add(version);
    e.datagrams++;
    e.last = d.timeMs;
    summary.datagrams++;
    yield d;
  }
}

function newSummary(): Summary {
  return { datagrams: 0, flows: 0, errors: {}, exporters: new Map(), skippedNotNetflow: 0 };
}

function dryRun(file: string, read: ReadAt, port: number | undefined): number {
  const summary = newSummary();
  const decoder = new NetflowDecoder();
  const skips = newSkips();
  let failure: string | undefined;
  try {
    for (const d of netflowDatagrams(read, port, summary, skips)) {
      for (const packet of decoder.decode(d.payload, d.source, d.sourcePort, d.timeMs)) {
        count(summary, packet.exporterAddress, packet.flows.length, packet.error?.kind);
      }
    }
  } catch (err) {
    if (!(err instanceof CaptureError)) throw err;
    failure = err.message;
  }
  for (const packet of decoder.expire(Infinity)) {
    count(summary, packet.exporterAddress, packet.flows.length, packet.error?.kind);
  }
  printSummary(file, summary, decoder.stats.templates, skips, failure);
  for (const [address, e] of summary.exporters) {
    process.stdout.write(
      `  exporter ${address}: versions=${
        [...e.versions].join(",")
      } datagrams=${e.datagrams} flows=${e.flows} ` +
        `first=${new Date(e.first).toISOString()} last=${new Date(e.last).toISOString()}\n`,
    );
  }
  return failure ? 1 : 0;
}

function count(summary: Summary, exporter: string, flows: number, error: string | undefined): void {
  summary.flows += flows;
  const e = summary.exporters.get(exporter);
  if (e) e.flows += flows;
  if (error) summary.errors[error] = (summary.errors[error] ?? 0) + 1;
}

async function replay(
  file: string,
  read: ReadAt,
  port: number | undefined,
  env: Record<string, string | undefined>,
): Promise<number> {
  let cli;
  try {
    cli = parseCli([], env as Record<string, string>);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`replay: ${err.message}\n`);
    return 2;
  }
  if (cli.kind !== "run") return 2;
  const config = cli.config;
  const log = createLogger(config.logLevel, { format: config.logFormat });
  const settings = {
    ...pipelineSettings(config, config.listenPort, { name: "netflow2traces", version: PRODUCT_VERSION }),
    templateCacheFile: undefined,
    spoolDir: undefined,
  };
  const pipeline = new Pipeline(settings, log);
  const summary = newSummary();
  const skips = newSkips();
  const queueLimit = settings.bsp.maxQueueSize * QUEUE_SHARE;
  let failure: string | undefined;
  let lastProgress = Date.now();
  const started = lastProgress;
  try {
    for (const d of netflowDatagrams(read, port, summary, skips) as Generator<CapturedDatagram>) {
      pipeline.handle(d.payload, d.source, d.sourcePort, d.timeMs);
      while (pipeline.snapshot().queueDepth > queueLimit) await new Promise((r) => setTimeout(r, 5));
      if (Date.now() - lastProgress >= PROGRESS_INTERVAL_MS) {
        lastProgress = Date.now();
        const s = pipeline.snapshot();
        process.stderr.write(
          `replay: ${summary.datagrams} datagrams, ${s.decode.flows} flows, ${s.export.spansExported} spans exported\n`,
        );
      }
    }
  } catch (err) {
    if (!(err instanceof CaptureError)) throw err;
    failure = err.message;
  }
  await pipeline.stop();
  const s = pipeline.snapshot();
  summary.flows = s.decode.flows;
  summary.errors = s.decode.errors;
  printSummary(file, summary, s.decoder.templates, skips, failure);
  const e = s.export;
  process.stdout.write(
    `replay: exported spans=${e.spansExported} flows=${e.flowsExported} dropped=${e.spansDropped} ` +
      `failed=${e.spansFailed} in ${((Date.now() - started) / 1000).toFixed(1)} s` +
      (s.exportStatus.lastError ? ` last_error="${s.exportStatus.lastError}"` : "") + "\n",
  );
  return failure || e.spansFailed + e.spansDropped > 0 || e.spansHeld > 0 ? 1 : 0;
}

function printSummary(
  file: string,
  s: Summary,
  templates: number,
  skips: ReturnType<typeof newSkips>,
  failure: string | undefined,
): void {
  const errors = Object.entries(s.errors).map(([k, n]) => `${k}:${n}`).join(",") || "0";
  process.stdout.write(
    `replay: file=${file} datagrams=${s.datagrams} exporters=${s.exporters.size} templates=${templates} ` +
      `flows=${s.flows} errors=${errors} skipped_not_netflow=${s.skippedNotNetflow} ` +
      `skipped_not_udp=${skips.notUdp} skipped_snapped=${skips.snapped} incomplete_fragments=${skips.fragments}\n`,
  );
  if (failure) process.stderr.write(`replay: ${file}: ${failure}\n`);
}
