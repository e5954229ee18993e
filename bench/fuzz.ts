/**
 * Decoder fuzzing: `deno task fuzz [--seconds N] [--seed S] [--inputs N]`.
 *
 * Runs {@link NetflowDecoder} on mutated valid v1/v5/v9/IPFIX datagrams (bit flips, truncation, header and
 * set length/count fields set to extremes, random set ids, field lengths and counts set to extremes,
 * splices, template storms with many template ids from many exporters) and on fully random bytes; and on
 * the hostile shapes of issue 11 and of nfdump's and pmacct's 2026 security fixes (options/data template
 * id swaps, length fields that wrap, zero-size and overflowing structured data, records whose fields sum
 * past their set, templates of up to 16,377 fields, withdraw-all storms, 65,400-flow data sets, padding).
 * A crash is an exception escaping `decode()`/`expire()` (the decoder promises never to throw) or a
 * packet whose error kind is `internal` (the decoder's last-resort catch: a bug inside). Prints inputs
 * run, inputs/s, crashes, the slowest datagram (time, mutation, size, hex prefix), heap before/peak/after,
 * and the decoder's bounded-state counters; last, one JSON line. Exit code 1 when there was a crash or a
 * bound was broken (the heap growing past `--max-heap-mb` stops the run: it is a bound, not an OOM).
 *
 * `runFuzz()` is also used by test/fuzz.test.ts for a short deterministic run. `--print-corpus` prints
 * {@link regressionCases} in the format of test/fixtures/fuzz_regressions.txt (how that file was made).
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
  type SetSpec,
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
  /** Stop (and report a broken bound) when the heap grows by more than this. Default 768 MiB. */
  maxHeapGrowthMb?: number;
}

/** The slowest datagram of a run, to reproduce it. */
export interface SlowestInput {
  ms: number;
  mutation: string;
  exporter: string;
  bytes: number;
  /** The first 48 bytes, hex. */
  hexPrefix: string;
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
  slowestInput: SlowestInput;
  /**
   * The slowest first decode, not re-timed: it includes the odd GC pause, but also what a re-decode no
   * longer pays (compiling a new template: the second decode finds it cached).
   */
  slowestFirstDecode: SlowestInput;
  heapBeforeMb: number;
  /** Highest heap seen (sampled every 256 inputs, without a GC). */
  heapPeakMb: number;
  heapAfterMb: number;
  /** Most flows decoded from one datagram. */
  maxFlowsPerPacket: number;
  errorsByKind: Record<string, number>;
  flows: number;
  stats: NetflowDecoder["stats"];
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

// ---------------------------------------------------------------------------------------------------------
// Hostile shapes: the findings of issue 11 and the bug classes of nfdump's and pmacct's 2026 fixes. The
// mutators draw them at random sizes; regressionCases() pins the extreme of each for the corpus.
// ---------------------------------------------------------------------------------------------------------

/** Field specifiers one template can carry in a 64 KiB message: IPFIX (16-byte header), v9 (20). */
const MAX_FIELDS = { 10: Math.floor((0xffff - 16 - 8) / 4), 9: Math.floor((0xffff - 20 - 8) / 4) };
/** One-field (8-byte) template records in one IPFIX message. */
const MAX_SMALL_TEMPLATES = Math.floor((0xffff - 20) / 8);
/** 4-byte withdrawal records in one IPFIX message (issue 11: 16,000; up to 16,379 fit). */
const MAX_WITHDRAWALS = 16_000;
/** One-byte records after a one-byte template, in one message (issue 11: 65,400 flows). */
const MAX_FLOOD_RECORDS = 65_400;
/** Template ids the seeds use (so hostile templates clobber live ones), and a few others. */
const TEMPLATE_IDS = [256, 257, 300, 400, 500, 501, 0xffff];
const DOMAINS = [0, 1, 3, 9];

const ipfixMessage = (sets: SetSpec[], domain = 0) =>
  encodeIpfix({ exportTimeMs: EXPORT_MS, sequence: 0, observationDomainId: domain }, sets);
const v9Message = (sets: SetSpec[], sourceId = 0) =>
  encodeV9({ sysUptimeMs: UPTIME, exportTimeMs: EXPORT_MS, sourceId }, sets);
const message = (version: 9 | 10, sets: SetSpec[], domain = 0) =>
  version === 10 ? ipfixMessage(sets, domain) : v9Message(sets, domain);

const u16 = (v: number) => [(v >> 8) & 0xff, v & 0xff];
function cat(...parts: ArrayLike<number>[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * `extra` inserted at the end of set `index` of a v9/IPFIX datagram, counted in the set's length and the
 * IPFIX message length (padding, or bytes that look like one more record).
 */
function appendToSet(datagram: Uint8Array, index: number, extra: ArrayLike<number>): Uint8Array {
  const offs = setOffsets(datagram);
  if (offs.length === 0) return datagram;
  const off = offs[Math.min(index, offs.length - 1)];
  const end = Math.min(datagram.length, off + ((datagram[off + 2] << 8) | datagram[off + 3]));
  const out = cat(datagram.subarray(0, end), extra, datagram.subarray(end));
  put16(out, off + 2, Math.min(0xffff, end - off + extra.length));
  if (((out[0] << 8) | out[1]) === 10) put16(out, 2, Math.min(0xffff, out.length));
  return out;
}

/** A template of `fields` one-byte fields, each an element the table does not know (one attribute each). */
export function wideTemplate(fields: number, id = 256): Template {
  return { id, fields: Array.from({ length: fields }, (_, i) => ({ id: 1000 + i, length: 1 })) };
}
/** One record of a {@link wideTemplate}, as a raw data set (encoding 16,000 values one by one is slow). */
const wideRecord = (t: Template): SetSpec => ({
  type: "raw",
  setId: t.id,
  body: Uint8Array.from(t.fields, (_, i) => 1 + (i % 255)),
});

/** `n` one-field templates (ids from 256) in one message: fills an exporter's template budget. */
function manyTemplates(n: number, domain: number): Uint8Array {
  const templates = Array.from({ length: n }, (_, i) => ({ id: 256 + i, fields: [{ id: 8, length: 4 }] }));
  return ipfixMessage([{ type: "templates", templates }], domain);
}

/**
 * `n` withdrawal records (RFC 7011 §8.1: a template id equal to the set id, with no fields, withdraws every
 * template of that kind) in a template set, an options template set, or half in each; every
 * `singleEvery`-th record withdraws one id instead.
 */
function withdrawStorm(n: number, domain: number, kind: "data" | "options" | "both", singleEvery = 0) {
  const set = (setId: number, records: number): SetSpec => {
    const body = new Uint8Array(4 * records);
    for (let i = 0; i < records; i++) {
      put16(body, 4 * i, singleEvery && i % singleEvery === 0 ? 256 + i : setId);
    }
    return { type: "raw", setId, body };
  };
  if (kind === "both") return ipfixMessage([set(2, n >> 1), set(3, n - (n >> 1))], domain);
  return ipfixMessage([set(kind === "options" ? 3 : 2, n)], domain);
}

/** A one-byte template and `n` one-byte records: `n` flows from one datagram. */
function floodMessage(n: number, version: 9 | 10 = 10): Uint8Array {
  const t: Template = { id: 256, fields: [{ id: 4, length: 1 }] }; // protocolIdentifier
  // A raw data set: encoding 65,400 records one value at a time takes longer than decoding them.
  return message(version, [{ type: "templates", templates: [t] }, {
    type: "raw",
    setId: 256,
    body: new Uint8Array(n).fill(6),
  }]);
}

const FLOW = {
  srcAddr: "10.0.0.1",
  dstAddr: "192.168.1.10",
  srcPort: 40000,
  dstPort: 443,
  protocol: 6,
  bytes: 1500,
  packets: 3,
  firstSwitched: UPTIME - 5000,
  lastSwitched: UPTIME - 100,
};

/** An IPFIX options template and a data template, or v9 ones, for the id-swap shapes. */
function swapTemplates(id: number, version: 9 | 10): { options: Template; data: Template } {
  return {
    options: {
      id,
      // IPFIX scope: exportingProcessId; v9 scope types: 1 = system.
      scopeFields: [{ id: version === 10 ? 144 : 1, length: 4 }],
      fields: [{ id: 34, length: 4 }], // samplingInterval
    },
    data: standardTemplate(4, { id }),
  };
}

type SwapStep = "options" | "data" | "optionsRecord" | "flowRecord";
/** Options and data templates of one id and records shaped for either kind, sets in the order given. */
function idSwap(id: number, version: 9 | 10, order: SwapStep[], domain = 0): Uint8Array {
  const t = swapTemplates(id, version);
  const sets: SetSpec[] = order.map((step) => {
    if (step === "options") return { type: "options", templates: [t.options] };
    if (step === "data") return { type: "templates", templates: [t.data] };
    // Records shaped for one kind, sent under the id whatever it means now.
    if (step === "optionsRecord") return { type: "data", template: t.options, records: [[9, 100]] };
    return { type: "data", template: t.data, records: [flowRecord(FLOW, t.data)] };
  });
  return message(version, sets, domain);
}

/** A template whose variable-length field (interfaceName) is followed by a raw data set body. */
function variableBody(body: ArrayLike<number>, id = 331): Uint8Array {
  return ipfixMessage([
    { type: "templates", templates: [{ id, fields: [{ id: 82, length: VARIABLE_LENGTH }] }] },
    { type: "raw", setId: id, body: cat(body) },
  ]);
}

/**
 * Contents of basicList (291), subTemplateList (292) and subTemplateMultiList (293) values (RFC 6313):
 * empty, header only, element or record lengths of 0 (no progress for a naive list walker), lengths past
 * the value, the enterprise bit without its PEN, and references to the list's own template.
 */
const BASIC_LISTS: number[][] = [
  [],
  [3],
  [3, ...u16(8), ...u16(0)],
  [3, ...u16(8), ...u16(0), 10, 0, 0, 1],
  [3, ...u16(8), ...u16(0xffff)],
  [3, ...u16(8), ...u16(0xffff), 255, ...u16(0xffff), 1],
  [3, ...u16(0x8008), ...u16(4)],
  [3, ...u16(8), ...u16(4), 10, 0, 0],
];
const SUB_TEMPLATE_LISTS: number[][] = [
  [],
  [3],
  [3, ...u16(310)],
  [3, ...u16(310), 10, 0, 0, 1, 0],
  [3, ...u16(0)],
  [3, ...u16(255)],
  [3, ...u16(0xffff), 1, 2],
];
const SUB_TEMPLATE_MULTI_LISTS: number[][] = [
  [],
  [3],
  [3, ...u16(256), ...u16(0)],
  [3, ...u16(256), ...u16(2)],
  [3, ...u16(256), ...u16(0xffff)],
  [3, ...u16(310), ...u16(4), ...u16(310), ...u16(4)],
];
/** Source address, then the three list elements, each variable-length. */
const STRUCTURED: Template = {
  id: 310,
  fields: [
    { id: 8, length: 4 },
    { id: 291, length: VARIABLE_LENGTH },
    { id: 292, length: VARIABLE_LENGTH },
    { id: 293, length: VARIABLE_LENGTH },
  ],
};

function structuredRecords(pick: (lists: number[][], i: number) => number[], n: number): RawValue[][] {
  return Array.from({ length: n }, (_, i) => [
    "10.0.0.1",
    cat(pick(BASIC_LISTS, i)),
    cat(pick(SUB_TEMPLATE_LISTS, i)),
    cat(pick(SUB_TEMPLATE_MULTI_LISTS, i)),
  ]);
}

/** The list elements with fixed length 0, alone (zero-length records) or after an address. */
function zeroSizeLists(withAddress: boolean, id: number): Uint8Array {
  const lists = [291, 292, 293].map((e) => ({ id: e, length: 0 }));
  const t: Template = { id, fields: withAddress ? [{ id: 8, length: 4 }, ...lists] : lists };
  return ipfixMessage([
    { type: "templates", templates: [t] },
    { type: "raw", setId: id, body: cat([10, 0, 0, 1, 10, 0, 0, 2]) },
  ]);
}

/** A list element whose outer variable length (255 + 2 bytes) claims more than the set holds. */
function overflowingList(element: 291 | 292 | 293): Uint8Array {
  const t: Template = { id: 312, fields: [{ id: 8, length: 4 }, { id: element, length: VARIABLE_LENGTH }] };
  return ipfixMessage([
    { type: "templates", templates: [t] },
    { type: "raw", setId: 312, body: cat([10, 0, 0, 1, 255], u16(0xfff0), [3], u16(256), [1, 2, 3]) },
  ]);
}

/** Templates whose field lengths sum past 65,535 (a 16-bit sum wraps to a few bytes) or past the set. */
function offsetOverflow(version: 9 | 10, lengths: number[], dataBytes: number): Uint8Array {
  const t: Template = { id: 320, fields: lengths.map((length, i) => ({ id: 1000 + i, length })) };
  return message(version, [
    { type: "templates", templates: [t] },
    { type: "raw", setId: 320, body: new Uint8Array(dataBytes).fill(0x11) },
  ]);
}

/** A standard record cut `cut` bytes short: the last record's fields run past its set. */
function cutRecord(cut: number): Uint8Array {
  const t = standardTemplate(4);
  const whole = ipfixMessage([
    { type: "templates", templates: [t] },
    { type: "data", template: t, records: [flowRecord(FLOW, t), flowRecord(FLOW, t)] },
  ]);
  const out = whole.slice(0, whole.length - cut);
  put16(out, 2, out.length);
  const offs = setOffsets(whole);
  put16(out, offs[offs.length - 1] + 2, out.length - offs[offs.length - 1]);
  return out;
}

/** Raw template / options template set bodies whose counts or lengths do not fit their set. */
const BAD_TEMPLATE_SETS: { version: 9 | 10; setId: number; body: number[] }[] = [
  { version: 10, setId: 2, body: [...u16(256), ...u16(0xffff), ...u16(8), ...u16(4)] },
  { version: 10, setId: 3, body: [...u16(256), ...u16(2), ...u16(0xffff), ...u16(8), ...u16(4)] },
  {
    version: 10,
    setId: 3,
    body: [...u16(256), ...u16(2), ...u16(3), ...u16(8), ...u16(4), ...u16(12), ...u16(4)],
  },
  { version: 10, setId: 2, body: [...u16(256), ...u16(1), ...u16(0x8008), ...u16(4)] },
  { version: 9, setId: 1, body: [...u16(256), ...u16(0xfffc), ...u16(4), ...u16(1), ...u16(4)] },
  { version: 9, setId: 1, body: [...u16(256), ...u16(2), ...u16(4), ...u16(1), ...u16(4)] },
  { version: 9, setId: 0, body: [...u16(256), ...u16(0xffff), ...u16(8), ...u16(4)] },
];

/** A data template and two records, then `set` of it given length `length` (for set lengths below 4). */
function setLengthWrap(set: "template" | "data", length: number, version: 9 | 10): Uint8Array {
  const t = standardTemplate(4);
  const b = message(version, [
    { type: "templates", templates: [t] },
    { type: "data", template: t, records: [flowRecord(FLOW, t), flowRecord(FLOW, t)] },
  ]);
  put16(b, setOffsets(b)[set === "template" ? 0 : 1] + 2, length);
  return b;
}

/** Bodies of a data set for a one-field variable-length template whose length octets run past the set. */
const VARIABLE_OVERRUNS: number[][] = [
  [255],
  [255, 0],
  [255, 0xff, 0xff, 1, 2, 3],
  [255, 0, 16, 1, 2, 3, 4, 5],
  [254, 1, 2, 3],
  [255, 0, 0], // the 3-byte form of length 0: valid, one empty value
];

/** One record of a variable-length-only (or one fixed + one variable field) template, then `padding`. */
function paddedVariable(mixed: boolean, padding: ArrayLike<number>): Uint8Array {
  const t: Template = {
    id: 256,
    fields: [...(mixed ? [{ id: 4, length: 1 }] : []), { id: 82, length: VARIABLE_LENGTH }],
  };
  const record: RawValue[] = [...(mixed ? [6] : []), "eth0"];
  const b = ipfixMessage([{ type: "templates", templates: [t] }, {
    type: "data",
    template: t,
    records: [record],
  }]);
  return appendToSet(b, 1, padding);
}

/** Template 256, then `01 00 00 00` inside its template set (reads as "withdraw 256"), then data for 256. */
function templateSetPadding(): Uint8Array {
  const t = standardTemplate(4);
  const b = ipfixMessage([
    { type: "templates", templates: [t] },
    { type: "data", template: t, records: [flowRecord(FLOW, t), flowRecord(FLOW, t)] },
  ]);
  return appendToSet(b, 0, [1, 0, 0, 0]);
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
  // The hostile shapes (see above).
  optionsSwap(_input, rng) {
    const steps: SwapStep[] = ["options", "data", "optionsRecord", "flowRecord"];
    const order = Array.from({ length: 1 + rng.int(6) }, () => rng.pick(steps));
    return idSwap(rng.pick(TEMPLATE_IDS), rng.next() < 0.7 ? 10 : 9, order, rng.pick(DOMAINS));
  },
  lengthWrap(input, rng) {
    switch (rng.int(5)) {
      case 0:
        return setLengthWrap(rng.next() < 0.5 ? "template" : "data", rng.int(4), rng.next() < 0.5 ? 9 : 10);
      case 1: {
        // IPFIX message length (v9: record count) below the header, off by a few, or 65,535.
        const b = input.slice();
        put16(b, 2, rng.pick([0, 1, 15, 16, 19, 20, b.length - 1, b.length - 3, b.length + 1, 0xffff]));
        return b;
      }
      case 2:
        return variableBody(rng.pick(VARIABLE_OVERRUNS));
      case 3: {
        // Every field length of every template set set to one extreme (65,535 is variable in IPFIX only).
        const b = input.slice();
        const length = rng.pick([0, 255, 256, 0xfffe, 0xffff]);
        for (const off of setOffsets(b)) {
          if (((b[off] << 8) | b[off + 1]) > 3) continue;
          const end = Math.min(b.length, off + ((b[off + 2] << 8) | b[off + 3]));
          for (let p = off + 4 + 4 + 2; p + 2 <= end; p += 4) put16(b, p, length);
        }
        return b;
      }
      default: {
        const s = rng.pick(BAD_TEMPLATE_SETS);
        return message(s.version, [{ type: "raw", setId: s.setId, body: cat(s.body) }], rng.pick(DOMAINS));
      }
    }
  },
  structured(_input, rng) {
    const r = rng.int(4);
    if (r === 0) return zeroSizeLists(rng.next() < 0.5, 311);
    if (r === 1) return overflowingList(rng.pick([291, 292, 293] as const));
    const records = structuredRecords((lists) => rng.pick(lists), 1 + rng.int(8));
    return ipfixMessage([
      { type: "templates", templates: [STRUCTURED] },
      { type: "data", template: STRUCTURED, records },
    ], rng.pick(DOMAINS));
  },
  offsetOverflow(_input, rng) {
    if (rng.next() < 0.3) return cutRecord(1 + rng.int(20));
    const version = rng.next() < 0.5 ? 9 : 10;
    const lengths = Array.from(
      { length: 1 + rng.int(6) },
      () => rng.pick([1, 4, 8, 0x8000, 0xfff0, 0xfffe, version === 9 ? 0xffff : 2]),
    );
    return offsetOverflow(version, lengths, rng.int(64));
  },
  padding(input, rng) {
    const extra = rng.pick([[0], [0, 0, 0], [0, 0, 0, 0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0xff]]);
    if (rng.next() < 0.3) return paddedVariable(rng.next() < 0.5, extra);
    return appendToSet(input, rng.int(8), extra);
  },
  hugeTemplate(_input, rng) {
    const version = rng.next() < 0.8 ? 10 : 9;
    const fields = 1 + rng.int(MAX_FIELDS[version]);
    const t = wideTemplate(fields, rng.pick(TEMPLATE_IDS));
    const sets: SetSpec[] = [{ type: "templates", templates: [t] }];
    // A record too, when it still fits in the message.
    if (20 + 8 + 4 * fields + 4 + fields <= 0xffff) {
      sets.push(wideRecord(t));
    }
    return message(version, sets, rng.pick(DOMAINS));
  },
  withdrawStorm(_input, rng) {
    const domain = rng.pick(DOMAINS);
    // Half the time the templates a storm has to scan, from the same exporters.
    if (rng.next() < 0.5) return manyTemplates(1 + rng.int(MAX_SMALL_TEMPLATES), domain);
    return withdrawStorm(
      1 + rng.int(MAX_WITHDRAWALS),
      domain,
      rng.pick(["data", "options", "both"] as const),
      rng.next() < 0.3 ? 1 + rng.int(16) : 0,
    );
  },
  flood(_input, rng) {
    return floodMessage(rng.int(MAX_FLOOD_RECORDS + 1), rng.next() < 0.8 ? 10 : 9);
  },
};

/** 64 KiB generators: drawn 100 times less often than the others, to keep the rate up. */
const HEAVY = new Set(["hugeTemplate", "withdrawStorm", "flood"]);
/** Mutator names, each repeated by its weight (rng.pick() draws from it). */
const MUTATOR_NAMES = Object.keys(MUTATORS).flatMap((name) =>
  Array<string>(HEAVY.has(name) ? 1 : 100).fill(name)
);

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

/** Heap in use after a full GC, MiB. */
export function heapMb(): number {
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
  let crashes = 0, slowInputs = 0, inputs = 0, flows = 0, maxDecodeMs = 0, maxFlowsPerPacket = 0;
  let slowestInput: SlowestInput = { ms: 0, mutation: "", exporter: "", bytes: 0, hexPrefix: "" };
  let slowestFirstDecode = slowestInput;
  const describe = (ms: number, mutation: string, exporter: string, input: Uint8Array): SlowestInput => ({
    ms,
    mutation,
    exporter,
    bytes: input.length,
    hexPrefix: hex(input.subarray(0, 48)),
  });
  let clock = EXPORT_MS;
  const heapBeforeMb = heapMb();
  const maxHeapMb = heapBeforeMb + (options.maxHeapGrowthMb ?? 768);
  let heapPeakMb = heapBeforeMb;
  const boundViolations: string[] = [];
  const started = performance.now();
  const crash = (mutation: string, exporter: string, message: string, input: Uint8Array) => {
    crashes++;
    if (firstCrashes.length < 20) firstCrashes.push({ mutation, exporter, message, hex: hex(input) });
  };
  while (inputs < maxInputs) {
    if ((inputs & 255) === 0) {
      if (performance.now() - started >= durationMs) break;
      // Sampled without a GC (garbage counts too); over the bound, a GC tells what is really retained.
      const heap = Deno.memoryUsage().heapUsed / 2 ** 20;
      if (heap > heapPeakMb) heapPeakMb = heap;
      const retained = heap > maxHeapMb ? heapMb() : 0;
      if (retained > maxHeapMb) {
        boundViolations.push(`heap ${retained.toFixed(0)} MiB after ${inputs} inputs (run stopped)`);
        break;
      }
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
        if (p.flows.length > maxFlowsPerPacket) maxFlowsPerPacket = p.flows.length;
        if (p.error) {
          errorsByKind[p.error.kind] = (errorsByKind[p.error.kind] ?? 0) + 1;
          if (p.error.kind === "internal") crash(name, exporter, p.error.message, input);
        }
      }
    } catch (err) {
      crash(name, exporter, `decode threw: ${(err as Error)?.stack ?? err}`, input);
    }
    let dt = performance.now() - t0;
    if (dt > slowestFirstDecode.ms) slowestFirstDecode = describe(dt, name, exporter, input);
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
      slowestInput = describe(dt, name, exporter, input);
    }
    inputs++;
  }
  const seconds = (performance.now() - started) / 1000;
  const stats = { ...decoder.stats };
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
    slowestMutation: slowestInput.mutation,
    slowestInput,
    slowestFirstDecode,
    heapBeforeMb,
    heapPeakMb,
    heapAfterMb: heapMb(),
    maxFlowsPerPacket,
    errorsByKind,
    flows,
    stats,
    boundViolations,
  };
}

// ---------------------------------------------------------------------------------------------------------
// The regression corpus
// ---------------------------------------------------------------------------------------------------------

/** One reproducer: datagrams sent in order from one exporter to a fresh decoder. */
export interface RegressionCase {
  name: string;
  /** What it reproduces (one line). */
  about: string;
  /** Flows the last datagram must decode to, when that is the point of the case (padding). */
  expectFlows?: number;
  datagrams: Uint8Array[];
}

/**
 * The reproducers of issue 11 and of the bug classes of nfdump's and pmacct's 2026 fixes, at their
 * extremes. test/fixtures/fuzz_regressions.txt was printed from this (`--print-corpus`); the file, not
 * this function, is what the test replays, so a change here changes nothing until the file is rewritten.
 */
export function regressionCases(): RegressionCase[] {
  const t4 = standardTemplate(4);
  const flows = [FLOW, { ...FLOW, srcAddr: "10.0.0.2", srcPort: 40001 }];
  const counters: Template = {
    id: 256,
    fields: [
      { id: 8, length: 4 },
      { id: 12, length: 4 },
      { id: 4, length: 1 },
      { id: 1, length: 8 }, // octetDeltaCount → netflow.flow.bytes
      { id: 2, length: 8 }, // packetDeltaCount → netflow.flow.packets
      { id: 85, length: 8 }, // octetTotalCount → an extra attribute
    ],
  };
  const sampling: Template = {
    id: 500,
    scopeFields: [{ id: 144, length: 4 }],
    fields: [{ id: 34, length: 4 }],
  };
  const deltas: Template = {
    id: 256,
    fields: [
      { id: 8, length: 4 },
      { id: 12, length: 4 },
      { id: 4, length: 1 },
      { id: 158, length: 4 }, // flowStartDeltaMicroseconds (before the export time)
      { id: 159, length: 4 },
    ],
  };
  const farTimes: Template = {
    id: 256,
    fields: [{ id: 8, length: 4 }, { id: 12, length: 4 }, { id: 152, length: 8 }, { id: 153, length: 8 }],
  };
  const wide = wideTemplate(16_000);
  const wide500 = wideTemplate(500);
  const dataOf = (template: Template, records: RawValue[][]): SetSpec => ({
    type: "data",
    template,
    records,
  });
  const templatesOf = (...templates: Template[]): SetSpec => ({ type: "templates", templates });
  return [
    {
      name: "seeds",
      about: "the fuzzer's valid seed datagrams (v1, v5, v9, IPFIX): every check holds on valid input",
      datagrams: seedCorpus().map((s) => s.bytes),
    },
    {
      name: "huge-template-16000-fields",
      about: "a 64 KB IPFIX template of 16,000 fields (about 3.2 MiB of heap each), then a record of " +
        "16,000 elements (a span of 16,000+ attributes)",
      datagrams: [ipfixMessage([templatesOf(wide)]), ipfixMessage([wideRecord(wide)])],
    },
    {
      name: "record-500-elements",
      about: "a record of 500 elements, a template that a field limit of 512 still accepts: over " +
        "OpenTelemetry's default attribute count limit of 128 (the replay also checks that limit)",
      datagrams: [ipfixMessage([templatesOf(wide500), wideRecord(wide500)])],
    },
    {
      name: "withdraw-all-storm",
      about: "1,024 templates (domain 1), then 16,000 withdraw-all records, 8,000 data and 8,000 options " +
        "(domain 2): each record scanned every template of the exporter",
      datagrams: [manyTemplates(1_024, 1), withdrawStorm(MAX_WITHDRAWALS, 2, "both")],
    },
    {
      name: "flood-65400-flows",
      about: "a 1-byte template and a 65,400-byte data set: 65,400 flows, one 14.5 MiB OTLP request",
      datagrams: [floodMessage(MAX_FLOOD_RECORDS)],
    },
    {
      name: "v5-unix-secs-0",
      about: "v5 with unix_secs 0 (unset exporter clock): flow times before 1970",
      datagrams: [encodeV5({ sysUptimeMs: UPTIME, unixSecs: 0, unixNsecs: 0, sequence: 1 }, flows)],
    },
    {
      name: "v9-unix-secs-0",
      about: "v9 with unix_secs 0 and uptime-relative flow times: times before 1970",
      datagrams: [
        encodeV9({ sysUptimeMs: UPTIME, unixSecs: 0, sequence: 1 }, [
          templatesOf(t4),
          dataOf(t4, flows.map((f) => flowRecord(f, t4))),
        ]),
      ],
    },
    {
      name: "ipfix-export-time-0-deltas",
      about: "IPFIX export time 0 with flowStart/EndDeltaMicroseconds (158/159): times before 1970",
      datagrams: [
        encodeIpfix({ unixSecs: 0 }, [
          templatesOf(deltas),
          dataOf(deltas, [["10.0.0.1", "10.0.0.2", 6, 5_000_000, 100_000]]),
        ]),
      ],
    },
    {
      name: "ipfix-times-beyond-2262",
      about: "flowStart/EndMilliseconds of 2^62 and 2^64-1 ms: past what int64 nanoseconds hold",
      datagrams: [
        ipfixMessage([
          templatesOf(farTimes),
          dataOf(farTimes, [["10.0.0.1", "10.0.0.2", 2n ** 62n, 2n ** 64n - 1n]]),
        ]),
      ],
    },
    {
      name: "counters-2^63",
      about: "octet/packet counters of 2^63, 2^64-1 and 2^53+1: wrapped to negative numbers or 0",
      datagrams: [
        ipfixMessage([
          templatesOf(counters),
          dataOf(counters, [
            ["10.0.0.1", "10.0.0.2", 6, 2n ** 63n, 2n ** 64n - 1n, 2n ** 64n - 1n],
            ["10.0.0.1", "10.0.0.2", 6, 2n ** 53n + 1n, 2n ** 63n - 1n, 2n ** 63n],
          ]),
        ]),
      ],
    },
    {
      name: "estimated-counter-overflow",
      about: "a sampling options record (interval 2^32-1) and counters of 2^53 and 2^64-1: estimates " +
        "beyond 2^64",
      datagrams: [
        ipfixMessage([
          { type: "options", templates: [sampling] },
          dataOf(sampling, [[1, 0xffffffff]]),
          templatesOf(counters),
          dataOf(counters, [
            ["10.0.0.1", "10.0.0.2", 6, 2n ** 53n, 2n ** 40n, 1],
            ["10.0.0.1", "10.0.0.2", 6, 2n ** 64n - 1n, 1, 1],
          ]),
        ]),
      ],
    },
    {
      name: "padding-variable-only-template",
      about: "one record of a variable-length-only template, then 3 zero bytes of padding (decoded as " +
        "3 empty flows)",
      expectFlows: 1,
      datagrams: [paddedVariable(false, [0, 0, 0])],
    },
    {
      name: "padding-mixed-template",
      about: "one record of a template with a 1-byte and a variable-length field, then 3 zero bytes of " +
        "padding (decoded as one more flow)",
      expectFlows: 1,
      datagrams: [paddedVariable(true, [0, 0, 0])],
    },
    {
      name: "template-set-padding-01000000",
      about: 'template 256, then `01 00 00 00` at the end of its template set (read as "withdraw 256"), ' +
        "then 2 records of 256",
      expectFlows: 2,
      datagrams: [templateSetPadding()],
    },
    {
      name: "options-data-template-id-swap",
      about: "IPFIX: options template 300 replaced by data template 300 and back, with records of the " +
        "other kind under each",
      datagrams: [
        idSwap(300, 10, ["options", "optionsRecord"]),
        idSwap(300, 10, ["data", "flowRecord", "optionsRecord"]),
        idSwap(300, 10, ["options", "flowRecord", "optionsRecord"]),
        idSwap(300, 10, ["options", "data", "options", "flowRecord", "optionsRecord"]),
        idSwap(300, 10, ["data", "options", "data", "optionsRecord", "flowRecord"]),
      ],
    },
    {
      name: "v9-options-data-template-id-swap",
      about: "v9: options template 300 replaced by data template 300 and back",
      datagrams: [
        idSwap(300, 9, ["options", "optionsRecord"]),
        idSwap(300, 9, ["data", "flowRecord", "optionsRecord"]),
        idSwap(300, 9, ["options", "data", "options", "flowRecord", "optionsRecord"]),
      ],
    },
    {
      name: "set-length-below-4",
      about: "template and data set lengths 0-3 (IPFIX and v9): a set that does not cover its own header",
      datagrams: [
        ...[0, 1, 2, 3].map((n) => setLengthWrap("data", n, 10)),
        setLengthWrap("template", 3, 10),
        setLengthWrap("data", 0, 9),
        setLengthWrap("template", 2, 9),
      ],
    },
    {
      name: "message-length-wrap",
      about: "IPFIX message length 0, 15, 16, 3 bytes short and 65,535; v9 record count 65,535",
      datagrams: [0, 15, 16, -3, 0xffff, 0xffff].map((n, i) => {
        const version = i === 5 ? 9 : 10;
        const b = message(version, [templatesOf(t4), dataOf(t4, flows.map((f) => flowRecord(f, t4)))]);
        put16(b, 2, n < 0 ? b.length + n : n);
        return b;
      }),
    },
    {
      name: "field-length-65535",
      about: "v9 field length 65,535 (literal there) and 0, IPFIX fixed length 65,534, with short data",
      datagrams: [
        offsetOverflow(9, [4, 0xffff], 40),
        offsetOverflow(9, [0, 4], 8),
        offsetOverflow(10, [4, 0xfffe], 40),
        offsetOverflow(10, [0, 0], 8),
      ],
    },
    {
      name: "variable-length-255-beyond-set",
      about: "variable-length prefixes 255 + 2-byte length (and a 1-byte length) running past the set",
      datagrams: VARIABLE_OVERRUNS.map((body) => variableBody(body)),
    },
    {
      name: "template-counts-beyond-set",
      about: "field count 65,535, scope count 65,535 or above the field count, enterprise bit without " +
        "its PEN, v9 scope length 65,532 or not a multiple of 4: counts and lengths that do not fit their set",
      datagrams: BAD_TEMPLATE_SETS.map((s) =>
        message(s.version, [{ type: "raw", setId: s.setId, body: cat(s.body) }])
      ),
    },
    {
      name: "structured-data-zero-size",
      about: "basicList, subTemplateList, subTemplateMultiList (291-293) of fixed length 0, alone " +
        "(zero-length records) and after an address",
      datagrams: [zeroSizeLists(true, 311), zeroSizeLists(false, 312)],
    },
    {
      name: "structured-data-hostile-content",
      about: "291-293 values empty, header-only, with element/record lengths 0 or 65,535, the enterprise " +
        "bit without a PEN, and subTemplate(Multi)Lists naming their own template",
      datagrams: [
        ipfixMessage([
          templatesOf(STRUCTURED),
          dataOf(STRUCTURED, structuredRecords((lists, i) => lists[i % lists.length], BASIC_LISTS.length)),
        ]),
      ],
    },
    {
      name: "structured-data-length-overflow",
      about: "291-293 whose variable length (255 + 65,520) runs past the set",
      datagrams: [overflowingList(291), overflowingList(292), overflowingList(293)],
    },
    {
      name: "offset-overflow",
      about: "templates whose field lengths sum past 65,535 (a 16-bit sum wraps to 4 or 16 bytes) and a " +
        "record cut short: fields that sum past their set",
      datagrams: [
        offsetOverflow(9, [0xffff, 5], 4),
        offsetOverflow(10, [0xfffe, 6], 4),
        offsetOverflow(10, [0xfff0, 0xfff0, 0xfff0, 0xfff0, 0x40], 16),
        cutRecord(1),
        cutRecord(20),
      ],
    },
  ];
}

/** {@link regressionCases} in the corpus file's format (see the header it starts with). */
export function formatCorpus(cases: RegressionCase[]): string {
  const lines = [
    "## Regression corpus of the NetFlow decoder, replayed by test/fuzz.test.ts: each case through a fresh",
    "## decoder, every packet through planTrace() and the OTLP encoder, and the checks of the fuzz harness.",
    '## Format: "## " lines are comments. "# name: what it reproduces" starts a case; "# name [flows=N]: …"',
    "## also expects N flows from its last datagram. Each following line is one datagram, hex, sent in order",
    "## from one exporter. Written by `deno run -A bench/fuzz.ts --print-corpus` (regressionCases()); add",
    "## new reproducers (e.g. a CRASH line of `deno task fuzz`) at the end by hand.",
  ];
  for (const c of cases) {
    lines.push(`# ${c.name}${c.expectFlows !== undefined ? ` [flows=${c.expectFlows}]` : ""}: ${c.about}`);
    for (const d of c.datagrams) lines.push(hex(d));
  }
  return lines.join("\n") + "\n";
}

function parseArgs(args: string[]): FuzzOptions & { printCorpus?: boolean } {
  const opts: FuzzOptions & { printCorpus?: boolean } = { seed: Date.now() >>> 0, durationMs: 30_000 };
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--") continue; // `deno task fuzz -- …` passes the separator through
    const [flag, inline] = args[i].split("=", 2);
    const value = () => inline ?? args[++i];
    if (flag === "--seconds" || flag === "-s") opts.durationMs = Number(value()) * 1000;
    else if (flag === "--seed") opts.seed = Number(value()) >>> 0;
    else if (flag === "--inputs" || flag === "-n") opts.maxInputs = Number(value());
    else if (flag === "--max-heap-mb") opts.maxHeapGrowthMb = Number(value());
    else if (flag === "--print-corpus") opts.printCorpus = true;
    else if (flag === "--help" || flag === "-h") {
      console.log(
        "usage: deno task fuzz [--seconds N (default 30)] [--seed S] [--inputs N] [--max-heap-mb N (768)]\n" +
          "       deno task fuzz --print-corpus   (the regression cases, as test/fixtures/fuzz_regressions.txt)",
      );
      Deno.exit(0);
    } else throw new Error(`unknown option ${args[i]}`);
  }
  return opts;
}

if (import.meta.main) {
  const opts = parseArgs(Deno.args);
  if (opts.printCorpus) {
    await Deno.stdout.write(new TextEncoder().encode(formatCorpus(regressionCases())));
    Deno.exit(0);
  }
  console.log(
    `fuzzing NetflowDecoder: seed=${opts.seed} seconds=${(opts.durationMs ?? 0) / 1000}` +
      (opts.maxInputs ? ` inputs<=${opts.maxInputs}` : ""),
  );
  const r = runFuzz(opts);
  console.log(`inputs run        ${r.inputs}`);
  console.log(`inputs/s          ${r.inputsPerSecond.toFixed(0)}`);
  console.log(`crashes           ${r.crashes}`);
  const slow = (label: string, s: SlowestInput) =>
    console.log(
      `${label} ${s.ms.toFixed(2)} ms: ${s.mutation}, ${s.bytes} bytes from ${s.exporter}\n` +
        `                  ${s.hexPrefix}${s.bytes > 48 ? "…" : ""}`,
    );
  slow("max decode time  ", r.slowestInput);
  console.log(`                  fastest of 3 decodes; ${r.slowInputs} inputs stayed > ${SLOW_MS} ms`);
  slow("max first decode ", r.slowestFirstDecode);
  console.log(
    `heap before/peak/after ${r.heapBeforeMb.toFixed(1)} / ${r.heapPeakMb.toFixed(1)} / ` +
      `${r.heapAfterMb.toFixed(1)} MiB`,
  );
  console.log(`flows decoded     ${r.flows} (at most ${r.maxFlowsPerPacket} from one datagram)`);
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
