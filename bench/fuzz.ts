/**
 * Decoder fuzzing: `deno task fuzz [--seconds N] [--seed S] [--inputs N]`.
 *
 * Runs {@link NetflowDecoder} on mutated valid v1/v5/v9/IPFIX datagrams (bit flips, truncation, header and
 * set length/count fields set to extremes, random set ids, field lengths and counts set to extremes,
 * splices, template storms with many template ids from many exporters) and on fully random bytes. A crash
 * is an exception escaping `decode()`/`expire()` (the decoder promises never to throw) or a packet whose
 * error kind is `internal` (the decoder's last-resort catch: a bug inside). Prints inputs run, inputs/s,
 * crashes, the slowest decode, heap before/after, and the decoder's bounded-state counters; last, one JSON
 * line. Exit code 1 when there was a crash or a bound was broken.
 *
 * `runFuzz()` is also used by test/fuzz.test.ts for a short deterministic run.
 */
import v8 from "node:v8";
import vm from "node:vm";
import { NetflowDecoder } from "../src/netflow/decoder.ts";
import {
  encodeIpfix,
  encodeV1,
  encodeV5,
  encodeV9,
  flowRecord,
  type RawValue,
  standardTemplate,
  type Template,
  VARIABLE_LENGTH,
} from "../src/tools/encode.ts";

export interface FuzzOptions {
  seed: number;
  /** Stop after this many milliseconds… */
  durationMs?: number;
  /** …or after this many inputs, whichever comes first. */
  maxInputs?: number;
  /** Decoder bounds, small so the fuzzer reaches eviction quickly. */
  decoder?: ConstructorParameters<typeof NetflowDecoder>[0];
}

export interface FuzzCrash {
  mutation: string;
  exporter: string;
  message: string;
  /** The input, hex. */
  hex: string;
}

export interface FuzzResult {
  seed: number;
  inputs: number;
  seconds: number;
  inputsPerSecond: number;
  crashes: number;
  firstCrashes: FuzzCrash[];
  /** The slowest decode (an input over 10 ms is re-timed twice and its fastest time kept). */
  maxDecodeMs: number;
  /** Inputs that stayed over 10 ms when re-timed. */
  slowInputs: number;
  slowestMutation: string;
  heapBeforeMb: number;
  heapAfterMb: number;
  errorsByKind: Record<string, number>;
  flows: number;
  stats: NetflowDecoder["templates"]["stats"];
  /** Bounds broken at the end of the run (empty when all held). */
  boundViolations: string[];
}

/** Small, fast, seedable PRNG (mulberry32). */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

const EXTREMES_16 = [0, 1, 2, 3, 4, 5, 15, 16, 19, 20, 255, 256, 0x7fff, 0x8000, 0xfffe, 0xffff];
/** Inputs slower than this (after re-timing) are counted as slow. */
const SLOW_MS = 10;
const EXPORT_MS = 1_700_000_000_000;
const UPTIME = 3_600_000;

/** Valid datagrams of every version: the seeds the mutators start from. */
export function seedCorpus(): { name: string; bytes: Uint8Array }[] {
  const flows = Array.from({ length: 8 }, (_, i) => ({
    srcAddr: `10.0.0.${i + 1}`,
    dstAddr: "192.168.1.10",
    nextHop: "10.0.0.254",
    srcPort: 40000 + i,
    dstPort: 443,
    protocol: 6,
    tcpFlags: 0x1b,
    bytes: 1500 * (i + 1),
    packets: i + 1,
    firstSwitched: UPTIME - 5000,
    lastSwitched: UPTIME - 100,
    startMs: EXPORT_MS - 5000,
    endMs: EXPORT_MS - 100,
  }));
  const v4 = standardTemplate(4);
  const v6 = standardTemplate(6);
  const ms = standardTemplate(4, { id: 300, times: "milliseconds" });
  const varLen: Template = {
    id: 400,
    fields: [
      { id: 8, length: 4 },
      { id: 12, length: 4 },
      { id: 82, length: VARIABLE_LENGTH }, // interfaceName
      { id: 7, length: VARIABLE_LENGTH },
      { id: 1234, length: 6, enterprise: 9 },
      { id: 99, length: VARIABLE_LENGTH, enterprise: 29305 },
    ],
  };
  const options: Template = {
    id: 500,
    scopeFields: [{ id: 144, length: 4 }], // exportingProcessId / observation domain scope
    fields: [{ id: 34, length: 4 }, { id: 35, length: 1 }, { id: 160, length: 8 }],
  };
  const v9Options: Template = {
    id: 501,
    scopeFields: [{ id: 1, length: 4 }],
    fields: [{ id: 34, length: 4 }],
  };
  const v6flows = flows.map((f, i) => ({ ...f, srcAddr: `2001:db8::${i + 1}`, dstAddr: "2001:db8::ff" }));
  const rec = (t: Template) => flows.map((f) => flowRecord(f, t));
  const varRecords: RawValue[][] = flows.map((_, i) => [
    "10.1.1.1",
    "10.2.2.2",
    "eth" + "x".repeat(i * 40),
    new Uint8Array([0x01, 0xbb]),
    new Uint8Array(6).fill(i),
    new Uint8Array(300 + i),
  ]);
  return [
    { name: "v1", bytes: encodeV1({ sysUptimeMs: UPTIME, exportTimeMs: EXPORT_MS }, flows) },
    {
      name: "v5",
      bytes: encodeV5(
        { sysUptimeMs: UPTIME, exportTimeMs: EXPORT_MS, sequence: 7, samplingInterval: 10 },
        flows,
      ),
    },
    {
      name: "v9",
      bytes: encodeV9({ sysUptimeMs: UPTIME, exportTimeMs: EXPORT_MS, sequence: 1, sourceId: 3 }, [
        { type: "templates", templates: [v4, v6] },
        { type: "options", templates: [v9Options] },
        { type: "data", template: v9Options, records: [[1, 100]] },
        { type: "data", template: v4, records: rec(v4) },
        { type: "data", template: v6, records: v6flows.map((f) => flowRecord(f, v6)), padding: "align" },
      ]),
    },
    {
      name: "v9-data-only",
      bytes: encodeV9({ sysUptimeMs: UPTIME, exportTimeMs: EXPORT_MS, sequence: 2, sourceId: 3 }, [
        { type: "data", template: v4, records: rec(v4) },
      ]),
    },
    {
      name: "ipfix",
      bytes: encodeIpfix({ exportTimeMs: EXPORT_MS, sequence: 1, observationDomainId: 9 }, [
        { type: "templates", templates: [ms, varLen] },
        { type: "options", templates: [options] },
        { type: "data", template: options, records: [[9, 100, 1, BigInt(EXPORT_MS - UPTIME)]] },
        { type: "data", template: ms, records: rec(ms) },
        { type: "data", template: varLen, records: varRecords, padding: 3 },
      ]),
    },
    {
      name: "ipfix-withdraw",
      bytes: encodeIpfix({ exportTimeMs: EXPORT_MS, sequence: 9, observationDomainId: 9 }, [
        { type: "templates", templates: [{ id: 300, fields: [] }] },
      ]),
    },
    {
      name: "ipfix-data-only",
      bytes: encodeIpfix({ exportTimeMs: EXPORT_MS, sequence: 2, observationDomainId: 9 }, [
        { type: "data", template: ms, records: rec(ms) },
      ]),
    },
  ];
}

/** A template set full of random template ids and random field lists (for template storms). */
function stormDatagram(rng: Rng): Uint8Array {
  const ipfix = rng.next() < 0.5;
  const templates: Template[] = [];
  const n = 1 + rng.int(40);
  for (let i = 0; i < n; i++) {
    const fields = Array.from({ length: 1 + rng.int(12) }, () => ({
      id: 1 + rng.int(ipfix ? 0x7fff : 0xffff),
      length: rng.next() < 0.1 ? (ipfix ? VARIABLE_LENGTH : 0xfffe) : 1 + rng.int(16),
      ...(ipfix && rng.next() < 0.2 ? { enterprise: rng.int(2 ** 32) } : {}),
    }));
    templates.push({ id: 256 + rng.int(0xffff - 256), fields });
  }
  const sets = [{ type: "templates" as const, templates }];
  return ipfix
    ? encodeIpfix(
      { exportTimeMs: EXPORT_MS, sequence: rng.int(2 ** 32), observationDomainId: rng.int(8) },
      sets,
    )
    : encodeV9({ sysUptimeMs: UPTIME, exportTimeMs: EXPORT_MS, sourceId: rng.int(8) }, sets);
}

type Mutator = (input: Uint8Array, rng: Rng, corpus: Uint8Array[]) => Uint8Array;

/** Offsets of the set headers of a v9/IPFIX datagram (as long as lengths are sane). */
function setOffsets(b: Uint8Array): number[] {
  const version = (b[0] << 8) | b[1];
  if (version !== 9 && version !== 10) return [];
  const out: number[] = [];
  for (let off = version === 9 ? 20 : 16; off + 4 <= b.length;) {
    out.push(off);
    const len = (b[off + 2] << 8) | b[off + 3];
    if (len < 4) break;
    off += len;
  }
  return out;
}

function put16(b: Uint8Array, off: number, v: number): void {
  if (off + 2 <= b.length) {
    b[off] = v >> 8;
    b[off + 1] = v & 0xff;
  }
}

const MUTATORS: Record<string, Mutator> = {
  bitflip(input, rng) {
    const b = input.slice();
    for (let i = 1 + rng.int(8); i > 0 && b.length; i--) b[rng.int(b.length)] ^= 1 << rng.int(8);
    return b;
  },
  bytes(input, rng) {
    const b = input.slice();
    for (let i = 1 + rng.int(4); i > 0 && b.length; i--) {
      b[rng.int(b.length)] = rng.pick([0, 0xff, rng.int(256)]);
    }
    return b;
  },
  truncate(input, rng) {
    return input.slice(0, rng.int(input.length + 1));
  },
  extend(input, rng) {
    const out = new Uint8Array(input.length + 1 + rng.int(64));
    out.set(input);
    out.set(rng.bytes(out.length - input.length), input.length);
    return out;
  },
  headerCount(input, rng) {
    const b = input.slice();
    put16(b, 2, rng.pick(EXTREMES_16)); // v1/v5/v9 count, IPFIX length
    return b;
  },
  setLength(input, rng) {
    const b = input.slice();
    const offs = setOffsets(b);
    if (offs.length) put16(b, rng.pick(offs) + 2, rng.pick(EXTREMES_16));
    return b;
  },
  setId(input, rng) {
    const b = input.slice();
    const offs = setOffsets(b);
    if (offs.length) {
      put16(b, rng.pick(offs), rng.pick([0, 1, 2, 3, 4, 255, 256, 257, 300, 400, rng.int(65536)]));
    }
    return b;
  },
  templateFields(input, rng) {
    // Field counts, scope counts and field lengths inside template sets set to extremes.
    const b = input.slice();
    for (const off of setOffsets(b)) {
      const id = (b[off] << 8) | b[off + 1];
      if (id > 3) continue;
      const len = (b[off + 2] << 8) | b[off + 3];
      const end = Math.min(b.length, off + len);
      for (let p = off + 4 + 2; p + 2 <= end; p += 2 + 2 * rng.int(4)) {
        if (rng.next() < 0.15) put16(b, p, rng.pick(EXTREMES_16));
      }
    }
    return b;
  },
  splice(input, rng, corpus) {
    const other = rng.pick(corpus);
    const cut = rng.int(input.length + 1);
    const from = rng.int(other.length + 1);
    const out = new Uint8Array(cut + other.length - from);
    out.set(input.subarray(0, cut));
    out.set(other.subarray(from), cut);
    return out;
  },
  random(_input, rng) {
    const n = rng.next() < 0.02 ? rng.int(65536) : rng.int(1500);
    const b = rng.bytes(n);
    if (n >= 2 && rng.next() < 0.7) put16(b, 0, rng.pick([1, 5, 9, 10]));
    return b;
  },
  storm(_input, rng) {
    return stormDatagram(rng);
  },
  valid(input) {
    return input;
  },
};

const MUTATOR_NAMES = Object.keys(MUTATORS);

/** The exporter address an input comes from: a few "stable" exporters and many spoofed ones. */
function exporterFor(rng: Rng): string {
  const r = rng.next();
  if (r < 0.4) return `192.0.2.${1 + rng.int(4)}`;
  if (r < 0.5) return `2001:db8::${(1 + rng.int(4)).toString(16)}`;
  return `10.${rng.int(256)}.${rng.int(256)}.${rng.int(256)}`;
}

/** V8's gc(), also without `--v8-flags=--expose-gc` (as under `deno test`). */
function collectGarbage(): void {
  let gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) {
    v8.setFlagsFromString("--expose-gc");
    gc = vm.runInNewContext("gc") as () => void;
  }
  gc();
  gc();
}

function heapMb(): number {
  collectGarbage();
  return Deno.memoryUsage().heapUsed / 2 ** 20;
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/** Runs the fuzzer; never throws for a decoder crash (they are counted and returned). */
export function runFuzz(options: FuzzOptions): FuzzResult {
  const rng = new Rng(options.seed);
  const decoderOptions = {
    maxExporters: 500,
    maxTemplates: 5_000,
    maxTemplatesPerExporter: 200,
    maxPendingSets: 256,
    maxPendingSetsPerExporter: 16,
    maxPendingBytes: 512 * 1024,
    pendingTimeoutMs: 2_000,
    ...options.decoder,
  };
  const decoder = new NetflowDecoder(decoderOptions);
  const seeds = seedCorpus();
  const corpus = seeds.map((s) => s.bytes);
  const durationMs = options.durationMs ?? Infinity;
  const maxInputs = options.maxInputs ?? Infinity;
  const errorsByKind: Record<string, number> = {};
  const firstCrashes: FuzzCrash[] = [];
  let crashes = 0, slowInputs = 0, inputs = 0, flows = 0, maxDecodeMs = 0, slowestMutation = "";
  let clock = EXPORT_MS;
  const heapBeforeMb = heapMb();
  const started = performance.now();
  const crash = (mutation: string, exporter: string, message: string, input: Uint8Array) => {
    crashes++;
    if (firstCrashes.length < 20) firstCrashes.push({ mutation, exporter, message, hex: hex(input) });
  };
  while (inputs < maxInputs) {
    if ((inputs & 255) === 0) {
      if (performance.now() - started >= durationMs) break;
      clock += 250;
      try {
        for (const p of decoder.expire(clock)) {
          if (p.error?.kind === "internal") crash("expire", "", p.error.message, new Uint8Array());
        }
      } catch (err) {
        crash("expire", "", `expire threw: ${(err as Error)?.stack ?? err}`, new Uint8Array());
      }
    }
    const name = rng.pick(MUTATOR_NAMES);
    let input = rng.pick(corpus);
    // Stack up to three mutations sometimes.
    input = MUTATORS[name](input, rng, corpus);
    if (name !== "random" && name !== "storm" && rng.next() < 0.3) {
      input = MUTATORS.bitflip(input, rng, corpus);
    }
    const exporter = exporterFor(rng);
    const t0 = performance.now();
    try {
      const packets = decoder.decode(input, exporter, 2055, clock);
      for (const p of packets) {
        flows += p.flows.length;
        if (p.error) {
          errorsByKind[p.error.kind] = (errorsByKind[p.error.kind] ?? 0) + 1;
          if (p.error.kind === "internal") crash(name, exporter, p.error.message, input);
        }
      }
    } catch (err) {
      crash(name, exporter, `decode threw: ${(err as Error)?.stack ?? err}`, input);
    }
    let dt = performance.now() - t0;
    if (dt > SLOW_MS) {
      // A GC pause or JIT tier-up can land on any input: time it twice more and keep the fastest.
      for (let i = 0; i < 2; i++) {
        const t1 = performance.now();
        try {
          decoder.decode(input, exporter, 2055, clock);
        } catch { /* counted above */ }
        dt = Math.min(dt, performance.now() - t1);
      }
      if (dt > SLOW_MS) slowInputs++;
    }
    if (dt > maxDecodeMs) {
      maxDecodeMs = dt;
      slowestMutation = name;
    }
    inputs++;
  }
  const seconds = (performance.now() - started) / 1000;
  const stats = { ...decoder.templates.stats };
  const boundViolations: string[] = [];
  if (stats.exporters > decoderOptions.maxExporters) boundViolations.push(`exporters ${stats.exporters}`);
  if (stats.templates > decoderOptions.maxTemplates) boundViolations.push(`templates ${stats.templates}`);
  if (stats.pendingSets > decoderOptions.maxPendingSets) {
    boundViolations.push(`pendingSets ${stats.pendingSets}`);
  }
  if (stats.pendingBytes > decoderOptions.maxPendingBytes) {
    boundViolations.push(`pendingBytes ${stats.pendingBytes}`);
  }
  return {
    seed: options.seed,
    inputs,
    seconds,
    inputsPerSecond: inputs / seconds,
    crashes,
    firstCrashes,
    maxDecodeMs,
    slowInputs,
    slowestMutation,
    heapBeforeMb,
    heapAfterMb: heapMb(),
    errorsByKind,
    flows,
    stats,
    boundViolations,
  };
}

function parseArgs(args: string[]): FuzzOptions {
  const opts: FuzzOptions = { seed: Date.now() >>> 0, durationMs: 30_000 };
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split("=", 2);
    const value = () => inline ?? args[++i];
    if (flag === "--seconds" || flag === "-s") opts.durationMs = Number(value()) * 1000;
    else if (flag === "--seed") opts.seed = Number(value()) >>> 0;
    else if (flag === "--inputs" || flag === "-n") opts.maxInputs = Number(value());
    else if (flag === "--help" || flag === "-h") {
      console.log("usage: deno task fuzz [--seconds N (default 30)] [--seed S] [--inputs N]");
      Deno.exit(0);
    } else throw new Error(`unknown option ${args[i]}`);
  }
  return opts;
}

if (import.meta.main) {
  const opts = parseArgs(Deno.args);
  console.log(
    `fuzzing NetflowDecoder: seed=${opts.seed} seconds=${(opts.durationMs ?? 0) / 1000}` +
      (opts.maxInputs ? ` inputs<=${opts.maxInputs}` : ""),
  );
  const r = runFuzz(opts);
  console.log(`inputs run        ${r.inputs}`);
  console.log(`inputs/s          ${r.inputsPerSecond.toFixed(0)}`);
  console.log(`crashes           ${r.crashes}`);
  console.log(
    `max decode time   ${
      r.maxDecodeMs.toFixed(2)
    } ms (${r.slowestMutation}), ${r.slowInputs} inputs > ${SLOW_MS} ms`,
  );
  console.log(`heap before/after ${r.heapBeforeMb.toFixed(1)} / ${r.heapAfterMb.toFixed(1)} MiB`);
  console.log(`flows decoded     ${r.flows}`);
  console.log(`errors by kind    ${JSON.stringify(r.errorsByKind)}`);
  console.log(
    `decoder state     exporters=${r.stats.exporters} templates=${r.stats.templates} ` +
      `pending_sets=${r.stats.pendingSets} exporter_evictions=${r.stats.exporterEvictions} ` +
      `template_evictions=${r.stats.templateEvictions} pending_dropped=${r.stats.pendingDropped}`,
  );
  console.log(`bounds            ${r.boundViolations.length ? r.boundViolations.join(", ") : "held"}`);
  for (const c of r.firstCrashes) {
    console.log(`CRASH ${c.mutation} from ${c.exporter}: ${c.message}\n  ${c.hex}`);
  }
  const { firstCrashes: _, ...summary } = r;
  console.log(JSON.stringify(summary));
  Deno.exit(r.crashes || r.boundViolations.length ? 1 : 0);
}
