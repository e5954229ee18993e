/**
 * `netflow2traces send`: sends synthetic NetFlow v1/v5/v9 or IPFIX exports over UDP (node:dgram, so it
 * runs on Deno and Bun). The datagrams come from the pure generator in `traffic.ts`.
 *
 * ```sh
 * netflow2traces send --version 10 --count 100 --rate 20 --exporters 3 --ipv6 0.3 --sampling 100
 * ```
 */
import dgram from "node:dgram";
import { lookup } from "node:dns/promises";
import process from "node:process";
import { parseArgs } from "node:util";
import { formatHostPort } from "../netflow/addresses.ts";
import {
  DEFAULT_FLOWS_PER_PACKET,
  MAX_FLOWS_PER_PACKET,
  type NetflowVersion,
  TrafficGenerator,
} from "./traffic.ts";

const SEND_HELP = `Usage: netflow2traces send [options]

Sends synthetic NetFlow/IPFIX exports (realistic TCP/UDP/ICMP flows) to a collector over UDP.

Options:
  --host HOST               destination host or address (default 127.0.0.1)
  --port PORT               destination UDP port (default 2055)
  --version 1|5|9|10        NetFlow version; 10 is IPFIX (default 9)
  --count N                 datagrams to send; 0 sends until interrupted (default 10)
  --rate N                  datagrams per second; 0 sends as fast as possible (default 10)
  --flows-per-packet N      flow records per datagram (default 24 for v1, 30 for v5, 20 for v9/IPFIX)
  --exporters N             export streams: v9 source IDs / IPFIX observation domains 1..N,
                            v5 engine IDs 0..N-1, each with its own sequence numbers and templates (default 1)
  --ipv6 [RATIO]            share of IPv6 flows, 0..1 (v9/IPFIX; the bare flag means 0.25; default 0)
  --template-interval SECS  re-send templates and options data this often (default 60; 0: every datagram)
  --sampling N              announce 1-in-N packet sampling: v5 header, v9/IPFIX options data (default off)
  --seed N                  seed for the traffic generator, for reproducible flows (default: random)
  --help                    show this help

Ends with one line: datagrams, flows and bytes sent, and the duration.`;

export interface SendOptions {
  host: string;
  port: number;
  version: NetflowVersion;
  count: number;
  rate: number;
  flowsPerPacket: number;
  exporters: number;
  ipv6: number;
  templateIntervalMs: number;
  sampling: number;
  seed: number;
}

/** An invalid `send` flag: the message is shown to the user (exit code 2). */
export class UsageError extends Error {}

function integer(name: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (text.trim() === "" || !Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name}: "${text}" is not an integer in ${min}–${max}`);
  }
  return n;
}

function decimal(name: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`--${name}: "${text}" is not a number in ${min}–${max}`);
  }
  return n;
}

/** Parses the flags of `send`; `undefined` means `--help`. Throws {@link UsageError}. */
export function parseSendArgs(args: string[]): SendOptions | undefined {
  // `--ipv6` is both a flag and an option with a value: a bare `--ipv6` means a 25 % share.
  const argv = args.flatMap((a, i) => {
    if (a !== "--ipv6") return [a];
    const next = args[i + 1];
    return next === undefined || next.startsWith("--") ? ["--ipv6=0.25"] : [a];
  });
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        host: { type: "string" },
        port: { type: "string" },
        version: { type: "string" },
        count: { type: "string" },
        rate: { type: "string" },
        "flows-per-packet": { type: "string" },
        exporters: { type: "string" },
        ipv6: { type: "string" },
        "template-interval": { type: "string" },
        sampling: { type: "string" },
        seed: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return undefined;
  const version = integer("version", values.version, 9, 1, 10);
  if (version !== 1 && version !== 5 && version !== 9 && version !== 10) {
    throw new UsageError(`--version: "${values.version}" is not one of 1, 5, 9, 10`);
  }
  const maxSampling = version === 5 ? 0x3fff : 0xffffffff;
  const options: SendOptions = {
    host: values.host ?? "127.0.0.1",
    port: integer("port", values.port, 2055, 1, 65535),
    version,
    count: integer("count", values.count, 10, 0, Number.MAX_SAFE_INTEGER),
    rate: decimal("rate", values.rate, 10, 0, 10_000_000),
    flowsPerPacket: integer(
      "flows-per-packet",
      values["flows-per-packet"],
      DEFAULT_FLOWS_PER_PACKET[version],
      1,
      MAX_FLOWS_PER_PACKET[version],
    ),
    exporters: integer("exporters", values.exporters, 1, 1, 255),
    ipv6: decimal("ipv6", values.ipv6, 0, 0, 1),
    templateIntervalMs: decimal("template-interval", values["template-interval"], 60, 0, 86_400) * 1000,
    sampling: integer("sampling", values.sampling, 0, 0, maxSampling),
    seed: integer("seed", values.seed, Math.floor(Math.random() * 2 ** 32), 0, 2 ** 32 - 1),
  };
  if (options.host === "") throw new UsageError("--host: empty");
  if (options.ipv6 > 0 && version < 9) throw new UsageError(`--ipv6: v${version} carries only IPv4 flows`);
  if (options.sampling > 0 && version === 1) throw new UsageError("--sampling: v1 has no sampling field");
  return options;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Runs `send` with its arguments (after the subcommand name). Returns the exit code. */
export async function runSend(args: string[]): Promise<number> {
  let options;
  try {
    options = parseSendArgs(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`netflow2traces send: ${err.message}\n(see netflow2traces send --help)\n`);
    return 2;
  }
  if (options === undefined) {
    process.stdout.write(SEND_HELP + "\n");
    return 0;
  }
  const o = options;
  const generator = new TrafficGenerator({
    version: o.version,
    flowsPerPacket: o.flowsPerPacket,
    exporters: o.exporters,
    ipv6: o.ipv6,
    templateIntervalMs: o.templateIntervalMs,
    sampling: o.sampling,
    seed: o.seed,
  });

  let address: string, family: number;
  try {
    ({ address, family } = await lookup(o.host));
  } catch (err) {
    process.stderr.write(`netflow2traces send: cannot resolve ${o.host}: ${(err as Error).message}\n`);
    return 1;
  }
  const socket = dgram.createSocket(family === 6 ? "udp6" : "udp4");
  // Nothing listening yet (ICMP port unreachable) is normal for an exporter: count it and go on, as routers
  // do. Any other error stops the sender.
  let sendError: Error | undefined;
  let refused = 0;
  const onError = (err: Error) => {
    if ((err as { code?: string }).code === "ECONNREFUSED") refused++;
    else sendError ??= err;
  };
  socket.on("error", onError);
  const send = (payload: Uint8Array) =>
    new Promise<void>((resolve) => {
      socket.send(payload, o.port, address, (err) => {
        if (err) onError(err);
        resolve();
      });
    });

  let stop = false;
  const onSignal = () => (stop = true);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  const started = performance.now();
  let datagrams = 0, flows = 0, bytes = 0;
  try {
    while (!stop && (o.count === 0 || datagrams < o.count) && sendError === undefined) {
      if (o.rate > 0) {
        // Datagram i is due at start + i / rate: bursts catch up when timers fire late, never run ahead.
        const wait = started + (datagrams * 1000) / o.rate - performance.now();
        if (wait > 0) {
          await sleep(Math.min(wait, 1000));
          continue;
        }
      }
      const d = generator.next(Date.now());
      await send(d.payload);
      datagrams++;
      flows += d.flows.length;
      bytes += d.payload.length;
      // Yield now and then so signals and timers are seen when sending flat out.
      if (o.rate === 0 && datagrams % 256 === 0) await sleep(0);
    }
    // The last datagram's slot ends 1/rate after it was sent: so `--count 10 --rate 10` takes one second.
    const rest = started + (datagrams * 1000) / o.rate - performance.now();
    if (o.rate > 0 && !stop && rest > 0) await sleep(rest);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    socket.close();
  }
  const seconds = (performance.now() - started) / 1000;
  const target = formatHostPort(address, o.port);
  const name = o.version === 10 ? "IPFIX" : `NetFlow v${o.version}`;
  process.stdout.write(
    `sent ${datagrams} datagrams, ${flows} flows, ${bytes} bytes (${name}, ${o.exporters} exporter` +
      `${o.exporters === 1 ? "" : "s"}) to ${target} in ${seconds.toFixed(2)} s` +
      ` (${(datagrams / Math.max(seconds, 1e-9)).toFixed(1)} datagrams/s, seed ${o.seed})` +
      (refused > 0 ? `; ${refused} refused (nothing listening on the port)` : "") + "\n",
  );
  if (sendError) {
    process.stderr.write(`netflow2traces send: ${sendError.message}\n`);
    return 1;
  }
  return 0;
}
