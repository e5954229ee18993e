/**
 * A short, deterministic fuzz run of the decoder (the long run is `deno task fuzz`): mutated valid
 * v1/v5/v9/IPFIX datagrams, template storms from many exporters, the hostile shapes of issue 11 and random
 * bytes. No exception may escape, no `internal` error (the decoder's last-resort catch) may appear, every
 * input decodes in bounded time, and the decoder's caches stay within their bounds.
 *
 * Then the regression corpus (test/fixtures/fuzz_regressions.txt): every case through a fresh decoder, the
 * same checks, and every packet through planTrace() and the OTLP encoder, checked on the wire.
 */
import assert from "node:assert/strict";
import { heapMb, runFuzz, seedCorpus } from "../bench/fuzz.ts";
import { DEFAULTS } from "../src/config.ts";
import { NetflowDecoder } from "../src/netflow/decoder.ts";
import { ElementType, knownElements } from "../src/netflow/elements.ts";
import type { ExportPacket } from "../src/netflow/types.ts";
import { type EncodedTraceRequest, OtlpTraceEncoder } from "../src/traces/otlp_encoder.ts";
import { planTrace, type TracePlanOptions } from "../src/traces/spans.ts";
import { type Attributes, decodeTraceRequest } from "./support/otlp_receiver.ts";

Deno.test("fuzz: mutated and random datagrams never crash the decoder, in bounded time and state", () => {
  for (const seed of [1, 0xc0ffee]) {
    const r = runFuzz({ seed, maxInputs: 40_000, durationMs: 4_000 });
    const detail = JSON.stringify({ ...r, stats: undefined }, null, 1).slice(0, 4000);
    const slow = r.slowestInput, first = r.slowestFirstDecode, ms = (x: number) => x.toFixed(1);
    console.log(
      `seed ${seed}: ${r.inputs} inputs (${r.inputsPerSecond.toFixed(0)}/s); slowest ${ms(slow.ms)} ms ` +
        `(${slow.mutation}, ${slow.bytes} bytes), first decode ${ms(first.ms)} ms (${first.mutation}); ` +
        `heap ${ms(r.heapBeforeMb)} → ${ms(r.heapAfterMb)} MiB`,
    );
    assert.ok(r.inputs >= 5_000, `too few inputs: ${r.inputs}`);
    assert.equal(r.crashes, 0, detail);
    assert.deepEqual(r.boundViolations, []);
    // Re-timed slow inputs (see runFuzz): a single input never takes long.
    assert.ok(r.maxDecodeMs < 100, `slowest input took ${r.maxDecodeMs} ms`);
    assert.ok(r.heapAfterMb - r.heapBeforeMb < 64, `heap grew ${r.heapBeforeMb} → ${r.heapAfterMb} MiB`);
    // The mutators reach the interesting paths.
    assert.ok(r.flows > 0 && r.stats.exporterEvictions > 0 && r.stats.pendingDropped > 0);
    for (const kind of ["truncated", "bad_set", "unknown_version", "bad_template", "template_missing"]) {
      assert.ok((r.errorsByKind[kind] ?? 0) > 0, `no ${kind} error reached`);
    }
  }
});

Deno.test("fuzz: the seed corpus decodes cleanly (the mutators start from valid input)", () => {
  const decoder = new NetflowDecoder();
  for (const { name, bytes } of seedCorpus()) {
    const [packet] = decoder.decode(bytes, "192.0.2.1", 2055, 1_700_000_000_000);
    assert.equal(packet.error, undefined, `${name}: ${packet.error?.message}`);
  }
});

/** The regression corpus; its header gives the format. Written by `deno run -A bench/fuzz.ts --print-corpus`. */
const FIXTURES = new URL("./fixtures/fuzz_regressions.txt", import.meta.url);

interface CorpusCase {
  name: string;
  /** Line of its `# name:` header, for messages. */
  line: number;
  /** Flows the first packet of the last datagram must hold (`[flows=N]`). */
  expectFlows?: number;
  datagrams: Uint8Array[];
}

function parseCorpus(text: string): CorpusCase[] {
  const cases: CorpusCase[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("##")) return;
    if (line.startsWith("#")) {
      const m = line.match(/^#\s*([^\s:[]+)\s*(?:\[flows=(\d+)\])?\s*:/);
      assert.ok(m, `${FIXTURES.pathname}:${i + 1}: a case starts with "# name: what it reproduces"`);
      assert.ok(!cases.some((c) => c.name === m[1]), `${FIXTURES.pathname}:${i + 1}: ${m[1]} twice`);
      cases.push({ name: m[1], line: i + 1, expectFlows: m[2] ? Number(m[2]) : undefined, datagrams: [] });
      return;
    }
    assert.ok(/^(?:[0-9a-f]{2})+$/i.test(line), `${FIXTURES.pathname}:${i + 1}: not a hex datagram`);
    assert.ok(cases.length > 0, `${FIXTURES.pathname}:${i + 1}: a datagram before the first case`);
    cases[cases.length - 1].datagrams.push(Uint8Array.from(line.match(/../g)!, (h) => parseInt(h, 16)));
  });
  return cases;
}

const EXPORTER = "192.0.2.1";
const RECEIVED_MS = 1_700_000_000_000;
/** The collector's defaults: what a packet meets on its way to the wire. */
const TRACE_OPTIONS: TracePlanOptions = {
  spanTime: "flow",
  collectorHost: "0.0.0.0",
  collectorPort: 2055,
  attributeValueLengthLimit: DEFAULTS.attributeValueLengthLimit,
  attributeCountLimit: DEFAULTS.attributeCountLimit,
};
const MAX_SPANS = DEFAULTS.maxExportBatchSize;
const MAX_BYTES = DEFAULTS.maxRequestBytes;
/** A request is cut after the span that fills it: it may exceed the byte limit by that one span. */
const ONE_SPAN_BYTES = 256 * 1024;
/**
 * OpenTelemetry's default attribute count limit. With a field limit per template in the decoder, a record
 * cannot reach the collector's 1,024; packets with records of more elements than this are also replayed
 * with it, so the direct path's attribute limit is still exercised.
 */
const OTEL_DEFAULT_ATTRIBUTE_COUNT_LIMIT = 128;
/** Issue 11's per-packet flow limit: beyond it a packet is one ERROR export span with the count. */
const MAX_FLOWS_PER_PACKET = 10_000;
/** A generous bound for one datagram (the target is a few ms). */
const MAX_DECODE_MS = 100;
/** Integer attributes that may be negative: signed by definition. */
const SIGNED = new Set([
  "netflow.exporter.clock_skew_ms",
  ...knownElements().filter((e) => e.type === ElementType.Signed).flatMap((e) => [
    e.key,
    "netflow.reverse." + e.snake,
  ]),
]);
const IDENTITY = { resource: { "service.name": "fuzz" }, scopeName: "netflow2traces", scopeVersion: "" };
const utf8 = new TextEncoder();

/** What the fuzz harness checks of a decoded packet, and that padding did not become flows. */
function packetProblems(p: ExportPacket): string[] {
  const out: string[] = [];
  if (p.error?.kind === "internal") out.push(`internal error: ${p.error.message}`);
  else if (p.error && (!/^[a-z][a-z0-9_]*$/.test(p.error.kind) || !p.error.message)) {
    out.push(`malformed error ${JSON.stringify(p.error)}`);
  }
  // A record takes at least one byte: a datagram cannot give more flows than it has bytes.
  if (p.flows.length > p.sizeBytes) out.push(`${p.flows.length} flows from ${p.sizeBytes} bytes`);
  const empty = p.flows.filter((f) => !Object.values(f).some((v) => v !== undefined)).length;
  if (empty > 0) out.push(`${empty} flows without a single value (padding decoded as records)`);
  return out;
}

/** `wire` (an integer attribute as decoded) is not what `planned` was, or is negative. */
function integerProblem(key: string, wire: number | bigint, planned: unknown): string | undefined {
  if (wire < 0 && !SIGNED.has(key)) return `${key} = ${wire} on the wire (planned ${planned})`;
  if (typeof planned !== "number" || !Number.isInteger(planned) || planned < 0) return undefined;
  // Above 2^53 the plan's number is inexact; it must still arrive as a large number, not wrapped.
  if (planned <= Number.MAX_SAFE_INTEGER ? Number(wire) !== planned : Number(wire) < 2 ** 53) {
    return `${key} = ${wire} on the wire, planned ${planned}`;
  }
}

/**
 * The packet through the OTLP encoder (as the collector writes it) with the collector's default limits,
 * decoded from the wire and held against its planTrace(): requests within the span and byte limits, one whole trace, no flood of flow spans (or an ERROR
 * root), attribute counts and value lengths within the limits, times between 1970 and 2262 with the root
 * enclosing every span, and integers neither negative nor wrapped.
 */
function traceProblems(p: ExportPacket, options: TracePlanOptions): { spans: number; problems: string[] } {
  const out: string[] = [];
  const limit = options.attributeCountLimit ?? Infinity;
  const plan = planTrace(p, options);
  const requests: EncodedTraceRequest[] = [];
  const take = () => {
    const r = encoder.takeRequest();
    if (r) requests.push({ ...r, body: r.body.slice() });
  };
  const encoder: OtlpTraceEncoder = new OtlpTraceEncoder(IDENTITY, {
    maxSpans: MAX_SPANS,
    maxBytes: MAX_BYTES,
    onFull: take,
  });
  encoder.writePacket(p, options);
  take();
  const spans = [];
  for (const r of requests) {
    if (r.spans > MAX_SPANS) out.push(`a request of ${r.spans} spans (limit ${MAX_SPANS})`);
    if (r.body.length > MAX_BYTES + ONE_SPAN_BYTES) out.push(`a request of ${r.body.length} bytes`);
    spans.push(...decodeTraceRequest(r.body));
  }
  const roots = spans.filter((s) => s.name === "netflow.export");
  if (roots.length !== 1) return { spans: spans.length, problems: [...out, `${roots.length} root spans`] };
  const root = roots[0];
  const flowSpans = spans.filter((s) => s.name === "netflow.flow");
  if (flowSpans.length > MAX_FLOWS_PER_PACKET) {
    out.push(`${flowSpans.length} flow spans from one packet (limit ${MAX_FLOWS_PER_PACKET})`);
  }
  if (flowSpans.length < p.flows.length && root.status.code !== 2) {
    out.push(`${p.flows.length - flowSpans.length} flows left out without an ERROR root span`);
  }
  const planned = new Map<unknown, Record<string, unknown>>([[root, plan.exportAttributes]]);
  flowSpans.forEach((s, i) => planned.set(s, plan.flows[i]?.attributes ?? {}));
  // Every further element of a flow is an attribute: kept, or counted in droppedAttributesCount.
  const elements = new Map<unknown, number>();
  flowSpans.forEach((s, i) => elements.set(s, Object.keys(p.flows[i]?.extra ?? {}).length));
  const seen = new Set<string>();
  const once = (problem: string) => {
    // One line per kind of problem (a flood repeats the same one 65,400 times).
    const kind = problem.replace(/[\d.-]+/g, "N");
    if (!seen.has(kind)) out.push(problem), seen.add(kind);
  };
  for (const s of spans) {
    if (s.traceId !== root.traceId) once(`${s.name} in another trace`);
    const count = Object.keys(s.attributes).length;
    if (count > limit) once(`${s.name} with ${count} attributes (limit ${limit})`);
    const plannedAttributes = planned.get(s) ?? {};
    const atLeast = Math.max(Object.keys(plannedAttributes).length, elements.get(s) ?? 0);
    if (count + s.droppedAttributesCount < atLeast) {
      once(`${s.name}: ${count} attributes + ${s.droppedAttributesCount} dropped, of ${atLeast} or more`);
    }
    // fixed64 on the wire, int64 nanoseconds to the SDKs: read as int64, 1970 to 2262 is exactly >= 0.
    const start = BigInt.asIntN(64, s.startNs), end = BigInt.asIntN(64, s.endNs);
    if (!(start >= 0n && start <= end)) {
      once(`${s.name} from ${start} to ${end} ns (1970 to 2262, start <= end)`);
    } else if (s !== root && (s.startNs < root.startNs || s.endNs > root.endNs)) {
      once(`${s.name} (${start} to ${end} ns) outside its root (${root.startNs} to ${root.endNs} ns)`);
    }
    attributeProblems(s.attributes, plannedAttributes, once);
  }
  return { spans: spans.length, problems: out };
}

function attributeProblems(wire: Attributes, planned: Record<string, unknown>, report: (p: string) => void) {
  for (const [key, value] of Object.entries(wire)) {
    if (typeof value === "bigint" || (typeof value === "number" && Number.isInteger(value))) {
      const problem = integerProblem(key, value, planned[key]);
      if (problem) report(problem);
    } else if (typeof value === "string" && value.length > DEFAULTS.attributeValueLengthLimit / 3) {
      const bytes = utf8.encode(value).length;
      if (bytes > DEFAULTS.attributeValueLengthLimit) report(`${key} of ${bytes} bytes`);
    }
  }
}

interface Replay {
  packets: ExportPacket[];
  /** Decode time of each datagram. */
  ms: number[];
  /** Flows of the first packet of the last datagram. */
  lastFlows: number;
  /** Exceptions that escaped the decoder. */
  thrown: string[];
}

/** One case through a fresh decoder, then its held data expired. */
function replay(c: CorpusCase): Replay {
  const decoder = new NetflowDecoder();
  const r: Replay = { packets: [], ms: [], lastFlows: 0, thrown: [] };
  c.datagrams.forEach((d, i) => {
    const t0 = performance.now();
    try {
      const packets = decoder.decode(d, EXPORTER, 2055, RECEIVED_MS);
      r.ms.push(performance.now() - t0);
      r.packets.push(...packets);
      r.lastFlows = packets[0]?.flows.length ?? 0;
    } catch (err) {
      r.ms.push(performance.now() - t0);
      r.thrown.push(`datagram ${i + 1}: decode threw ${(err as Error)?.stack ?? err}`);
    }
  });
  try {
    r.packets.push(...decoder.expire(RECEIVED_MS + 86_400_000));
  } catch (err) {
    r.thrown.push(`expire threw ${(err as Error)?.stack ?? err}`);
  }
  return r;
}

/** What the decoder keeps after a case (for the memory findings: printed, not checked). */
function retained(c: CorpusCase): string {
  const before = heapMb();
  const decoder = new NetflowDecoder();
  for (const d of c.datagrams) decoder.decode(d, EXPORTER, 2055, RECEIVED_MS);
  const mb = heapMb() - before;
  return `, decoder keeps ${mb.toFixed(2)} MiB in ${decoder.stats.templates} templates`;
}

/** Cases with this many datagram bytes also get their retained heap measured (two full GCs each). */
const MEASURE_HEAP_BYTES = 16 * 1024;

Deno.test("fuzz: the regression corpus replays cleanly through the decoder, planTrace() and the OTLP encoder", () => {
  let text: string;
  try {
    text = Deno.readTextFileSync(FIXTURES);
  } catch (err) {
    throw new Error(`${FIXTURES.pathname} cannot be read (${err}): the corpus is part of the repository`);
  }
  const cases = parseCorpus(text);
  assert.ok(cases.length > 0, `${FIXTURES.pathname} holds no case`);
  const failures: string[] = [];
  let slowest = { ms: 0, where: "" };
  for (const c of cases) {
    const where = `${c.name} (line ${c.line})`;
    if (c.datagrams.length === 0) {
      failures.push(`${where}: no datagram`);
      continue;
    }
    const r = replay(c);
    // A GC pause or a JIT tier-up can land on any datagram: a slow case is timed twice more, fastest kept.
    for (let i = 0; i < 2 && Math.max(...r.ms) > MAX_DECODE_MS; i++) {
      replay(c).ms.forEach((ms, j) => (r.ms[j] = Math.min(r.ms[j], ms)));
    }
    const problems = [...r.thrown];
    let spans = 0, flows = 0;
    for (const p of r.packets) {
      flows += p.flows.length;
      const t = traceProblems(p, TRACE_OPTIONS);
      spans += t.spans;
      const found = [...packetProblems(p), ...t.problems];
      if (p.flows.some((f) => Object.keys(f.extra ?? {}).length > OTEL_DEFAULT_ATTRIBUTE_COUNT_LIMIT)) {
        const low = { ...TRACE_OPTIONS, attributeCountLimit: OTEL_DEFAULT_ATTRIBUTE_COUNT_LIMIT };
        found.push(...traceProblems(p, low).problems.map((x) => `with the limit of 128 attributes: ${x}`));
      }
      for (const problem of found) problems.push(`packet ${r.packets.indexOf(p) + 1}: ${problem}`);
    }
    if (c.expectFlows !== undefined && r.lastFlows !== c.expectFlows) {
      problems.push(`last datagram gave ${r.lastFlows} flows, expected ${c.expectFlows}`);
    }
    const ms = Math.max(...r.ms);
    if (ms > MAX_DECODE_MS) {
      problems.push(`datagram ${r.ms.indexOf(ms) + 1} took ${ms.toFixed(1)} ms to decode`);
    }
    if (ms > slowest.ms) slowest = { ms, where: `${c.name}, datagram ${r.ms.indexOf(ms) + 1}` };
    const verdict = problems.length ? "FAIL" : "ok  ";
    const bytes = c.datagrams.reduce((n, d) => n + d.length, 0);
    const heap = bytes >= MEASURE_HEAP_BYTES ? retained(c) : "";
    console.log(
      `${verdict} ${c.name}: ${c.datagrams.length} datagrams (${bytes} bytes), ${r.packets.length} packets, ` +
        `${flows} flows, ${spans} spans, slowest decode ${ms.toFixed(2)} ms${heap}`,
    );
    for (const problem of problems) failures.push(`${where}: ${problem}`);
  }
  console.log(`slowest datagram: ${slowest.ms.toFixed(2)} ms (${slowest.where}; bound ${MAX_DECODE_MS} ms)`);
  assert.equal(failures.length, 0, `${failures.length} problems:\n${failures.join("\n")}`);
});
