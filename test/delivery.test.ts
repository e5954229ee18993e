/**
 * Delivery of encoded requests (src/traces/delivery.ts) against a scripted transport, the spool on a real
 * directory, and the encoder's request cutting: retried until accepted (never abandoned), malformed dropped
 * once, partial success counted, Retry-After honoured, one probe at a time while failing, the books, the
 * spool's replay, eviction of whole packets and tolerance of damaged files, and whole traces across cuts.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger, type Logger } from "../src/log.ts";
import { NetflowDecoder } from "../src/netflow/decoder.ts";
import { TrafficGenerator } from "../src/tools/traffic.ts";
import { Delivery, RETRY_INITIAL_MS } from "../src/traces/delivery.ts";
import { type ExportCounters, zeroExportCounters } from "../src/counters.ts";
import { type EncodedTraceRequest, OtlpTraceEncoder } from "../src/traces/otlp_encoder.ts";
import { planTrace } from "../src/traces/spans.ts";
import { Spool } from "../src/traces/spool.ts";
import type { SendOutcome, Transport } from "../src/traces/transport.ts";
import {
  describeNetworkError,
  parseGrpcRetryInfo,
  parseRetryAfter,
  readPartialSuccess,
} from "../src/traces/transport.ts";
import { decodeTraceRequest } from "./support/otlp_receiver.ts";
import { parseCli } from "../src/config.ts";
import { pipelineSettings } from "../src/pipeline_protocol.ts";
import { OtlpSpanSink } from "../src/traces/sink.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A transport that answers from a script (then accepts), recording each attempt. */
class ScriptedTransport implements Transport {
  attempts: { at: number; body: Uint8Array }[] = [];
  inFlight = 0;
  maxInFlight = 0;
  /** `latencyMs`: for every attempt, or one per attempt (the last repeats). */
  constructor(public script: SendOutcome[] = [], private readonly latencyMs: number | number[] = 5) {}
  async send(body: Uint8Array): Promise<SendOutcome> {
    const n = this.attempts.push({ at: Date.now(), body: body.slice() });
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const l = this.latencyMs;
    await sleep(typeof l === "number" ? l : l[Math.min(n - 1, l.length - 1)]);
    this.inFlight--;
    return this.script.shift() ?? { kind: "accepted", rejectedSpans: 0 };
  }
  close(): void {}
}

function capture(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: createLogger("DEBUG", { write: (l) => lines.push(l) }), lines };
}

const refused: SendOutcome = { kind: "retry", problem: { message: "connection refused by 127.0.0.1:4317" } };

function delivery(
  transport: Transport,
  log: Logger,
  extra: Partial<ConstructorParameters<typeof Delivery>[0]> = {},
) {
  const counters = zeroExportCounters();
  const d = new Delivery({
    transport,
    timeoutMs: 1_000,
    concurrency: 4,
    memorySpans: 10_000,
    endpoint: "http://127.0.0.1:4317",
    log,
    counters,
    ...extra,
  });
  return { d, counters };
}

/** Adds a request the way the sink does: counted as held first. */
function add(
  d: Delivery,
  c: ExportCounters,
  n: number,
  spans = 10,
  flows = 8,
  continued = false,
  endsInside = false,
): void {
  c.spansHeld += spans;
  c.flowsHeld += flows;
  c.spansQueued += spans;
  c.flowsQueued += flows;
  d.add({ body: new Uint8Array([n, 1, 2, 3]), spans, flows, continued, endsInside });
}

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await sleep(10);
  }
}

Deno.test("delivery: a failing backend is retried until it takes the request; one WARN, one INFO", async () => {
  const t = new ScriptedTransport([refused, refused, refused, refused, refused]);
  const { log, lines } = capture();
  const { d, counters: c } = delivery(t, log);
  add(d, c, 1);
  await until(() => c.spansExported === 10);
  assert.equal(t.attempts.length, 6);
  assert.equal(c.spansFailed, 0);
  assert.equal(c.exportFailures, 5);
  assert.equal(c.spansHeld, 0);
  assert.equal(c.flowsExported, 8);
  const warns = lines.filter((l) => l.includes("WARNING"));
  assert.equal(warns.length, 1, lines.join("\n"));
  assert.match(warns[0], /export failing endpoint=http:\/\/127\.0\.0\.1:4317 error="connection refused/);
  assert.match(warns[0], /spans_held=10/);
  const info = lines.filter((l) => l.includes("INFO export recovered"));
  assert.equal(info.length, 1);
  assert.match(info[0], /outage_s=\d+(\.\d)? failed_attempts=5 backlog_spans=0 spans_dropped=0/);
  // Backoff doubles: the gaps grow (250, 500, 1000, 2000 ms ± 20 %).
  const gaps = t.attempts.slice(1).map((a, i) => a.at - t.attempts[i].at);
  assert.ok(gaps[0] >= RETRY_INITIAL_MS * 0.75, `first gap ${gaps[0]}`);
  assert.ok(gaps[3] > gaps[0] * 4, `gaps ${gaps}`);
  // The same bytes every time.
  for (const a of t.attempts) assert.deepEqual(a.body, t.attempts[0].body);
  assert.equal(d.status().state, "ok");
  await d.drain(Date.now());
});

Deno.test("delivery: malformed requests are dropped at once with a WARN; partial success is counted", async () => {
  const t = new ScriptedTransport([
    { kind: "rejected", problem: { message: "HTTP 400 Bad Request: bad proto" } },
    { kind: "accepted", rejectedSpans: 3, message: "too old" },
  ], 1);
  const { log, lines } = capture();
  const { d, counters: c } = delivery(t, log, { concurrency: 1 });
  add(d, c, 1);
  add(d, c, 2);
  await until(() => c.spansHeld === 0);
  assert.equal(t.attempts.length, 2);
  assert.equal(c.spansFailed, 10 + 3);
  assert.equal(c.flowsFailed, 8 + 3);
  assert.equal(c.spansExported, 7);
  assert.equal(c.flowsExported, 5);
  assert.ok(
    lines.some((l) => /WARNING export: the backend rejected a request as malformed.*HTTP 400/.test(l)),
  );
  assert.ok(
    lines.some((l) => /WARNING export: the backend accepted a request but rejected some spans/.test(l)),
  );
  assert.equal(c.spansQueued, c.spansExported + c.spansFailed + c.spansDropped + c.spansHeld);
  await d.drain(Date.now());
});

Deno.test("delivery: Retry-After sets the next attempt; while failing one request probes at a time", async () => {
  const t = new ScriptedTransport([{ ...refused, retryAfterMs: 700 }], 20);
  const { log } = capture();
  const { d, counters: c } = delivery(t, log);
  add(d, c, 1);
  await until(() => d.status().state === "failing");
  for (let i = 2; i <= 9; i++) add(d, c, i);
  await until(() => c.spansExported === 90);
  assert.ok(t.attempts[1].at - t.attempts[0].at >= 650, `waited ${t.attempts[1].at - t.attempts[0].at} ms`);
  // The retried request goes first again (sending order is kept).
  assert.equal(t.attempts[1].body[0], 1);
  assert.equal(t.attempts.length, 10);
  await d.drain(Date.now());

  // Four at once while healthy, one at a time while failing.
  const busy = new ScriptedTransport([], 30);
  const h = delivery(busy, log);
  for (let i = 0; i < 8; i++) add(h.d, h.counters, i);
  await until(() => h.counters.spansExported === 80);
  assert.equal(busy.maxInFlight, 4);
  const failing = new ScriptedTransport(Array(4).fill(refused), 30);
  const f = delivery(failing, log);
  add(f.d, f.counters, 0);
  await until(() => failing.attempts.length === 1);
  await sleep(40);
  for (let i = 1; i < 8; i++) add(f.d, f.counters, i);
  failing.maxInFlight = 0;
  await until(() => failing.attempts.length >= 4);
  assert.equal(failing.maxInFlight, 1);
  await until(() => f.counters.spansExported === 80);
  await h.d.drain(Date.now());
  await f.d.drain(Date.now());
});

Deno.test("delivery: at the shutdown deadline, held requests without a spool count as failed", async () => {
  const t = new ScriptedTransport(Array(100).fill(refused), 1);
  const { log, lines } = capture();
  const { d, counters: c } = delivery(t, log);
  add(d, c, 1);
  add(d, c, 2);
  await d.drain(Date.now() + 600);
  await sleep(50);
  assert.equal(c.spansExported, 0);
  assert.equal(c.spansFailed + c.spansHeld, 20);
  assert.ok(c.spansFailed >= 10);
  assert.ok(lines.some((l) => /WARNING export: stopping with spans not delivered/.test(l)));
});

Deno.test("spool: requests survive a restart and replay oldest first, byte for byte, once", async () => {
  const dir = mkdtempSync(join(tmpdir(), "n2t-spool-"));
  const down = new ScriptedTransport(Array(1000).fill(refused), 1);
  const { log, lines } = capture();
  const first = delivery(down, log, { spool: { store: new Spool(dir), maxBytes: 1 << 30 } });
  first.d.restore();
  for (let i = 1; i <= 5; i++) add(first.d, first.counters, i, 10, 8, i === 3, i === 2);
  assert.equal(readdirSync(dir).filter((f) => f.endsWith(".otlp")).length, 5);
  await first.d.drain(Date.now() + 100);
  await sleep(20);
  assert.equal(first.counters.spansFailed, 0, "spooled requests are kept, not failed");
  assert.equal(first.counters.spansHeld, 50);

  const up = new ScriptedTransport([], 1);
  const second = delivery(up, log, { spool: { store: new Spool(dir), maxBytes: 1 << 30 }, concurrency: 1 });
  second.d.restore();
  await until(() => second.counters.spansExported === 50);
  assert.deepEqual(up.attempts.map((a) => a.body[0]), [1, 2, 3, 4, 5]);
  assert.deepEqual(Array.from(up.attempts[0].body), [1, 1, 2, 3]);
  assert.equal(second.counters.spansRestored, 50);
  assert.equal(second.counters.flowsRestored, 40);
  assert.equal(readdirSync(dir).length, 0, "delivered batches are deleted");
  assert.ok(lines.some((l) => /INFO spool: replaying batches a previous run left.*batches=5/.test(l)));
  await second.d.drain(Date.now());
});

Deno.test("spool: requests beyond half the queue live on disk only, so memory stays bounded", async () => {
  const dir = mkdtempSync(join(tmpdir(), "n2t-spool-"));
  const down = new ScriptedTransport(Array(1000).fill(refused), 1);
  const { log } = capture();
  const { d, counters: c } = delivery(down, log, {
    memorySpans: 100,
    spool: { store: new Spool(dir), maxBytes: 1 << 30 },
  });
  d.restore();
  for (let i = 0; i < 50; i++) add(d, c, i);
  assert.equal(c.spansHeld, 500);
  assert.ok(d.residentSpans <= 60, `${d.residentSpans} spans in memory`);
  assert.equal(c.spansDropped, 0);
  await d.drain(Date.now());
});

Deno.test("spool: over its bound the oldest whole packets go; damaged and foreign files are skipped", async () => {
  const dir = mkdtempSync(join(tmpdir(), "n2t-spool-"));
  const down = new ScriptedTransport(Array(1000).fill(refused), [1, 3_000]);
  const { log, lines } = capture();
  // Each file is 32 + 4 bytes: room for four.
  const { d, counters: c } = delivery(down, log, { spool: { store: new Spool(dir), maxBytes: 4 * 36 } });
  d.restore();
  add(d, c, 1); // fails at once, then is the probe in flight (slow)
  await until(() => down.attempts.length === 2);
  add(d, c, 2, 10, 8, false, true);
  add(d, c, 3, 10, 8, true); // continues packet of 2
  add(d, c, 4);
  add(d, c, 5); // over the bound: 1 goes, although in flight (the oldest, whatever its state)
  assert.equal(c.spansDropped, 0, "an evicted request in flight counts as dropped when its answer fails");
  assert.ok(lines.some((l) => /WARNING spool full: dropped the oldest batches/.test(l)));
  add(d, c, 6); // over the bound: 2 and 3 go together
  assert.equal(c.spansDropped, 20);
  assert.equal(c.flowsDropped, 16);
  await until(() => c.spansDropped === 30); // the probe's answer: refused
  assert.equal(c.spansQueued, c.spansExported + c.spansFailed + c.spansDropped + c.spansHeld);
  await d.drain(Date.now());

  writeFileSync(join(dir, "0000000000000000.otlp"), "garbage that is not a batch at all");
  writeFileSync(join(dir, "notes.txt"), "hello");
  writeFileSync(join(dir, ".0000000000000099.tmp"), "half written");
  const up = new ScriptedTransport([], 1);
  const after = delivery(up, log, { spool: { store: new Spool(dir), maxBytes: 1 << 30 }, concurrency: 1 });
  after.d.restore();
  await until(() => after.counters.spansExported === 30);
  assert.deepEqual(up.attempts.map((a) => a.body[0]), [4, 5, 6]);
  assert.ok(lines.some((l) => /WARNING spool: skipping.*file=0000000000000000\.otlp.*bad magic/.test(l)));
  assert.ok(lines.some((l) => /WARNING spool: skipping.*file=notes\.txt/.test(l)));
  assert.deepEqual(readdirSync(dir).sort(), ["0000000000000000.otlp", "notes.txt"]);
  await after.d.drain(Date.now());
});

Deno.test("encoder: requests never exceed the span limit and every trace is whole across them", () => {
  const gen = new TrafficGenerator({ version: 10, exporters: 3, ipv6: 0.3, seed: 11, flowsPerPacket: 150 });
  const decoder = new NetflowDecoder();
  const packets = [];
  for (let i = 0; i < 16; i++) {
    packets.push(...decoder.decode(gen.next(Date.now()).payload, "192.0.2.9", 2055, Date.now()));
  }
  const options = { spanTime: "flow" as const, collectorHost: "0.0.0.0", collectorPort: 2055 };
  for (const maxSpans of [1, 7, 97, 1024]) {
    const requests: EncodedTraceRequest[] = [];
    const encoder: OtlpTraceEncoder = new OtlpTraceEncoder(
      { resource: { "service.name": "t" }, scopeName: "s", scopeVersion: "1" },
      { maxSpans, maxBytes: 1 << 22, onFull: () => requests.push(encoder.takeRequest()!) },
    );
    let spans = 0, flows = 0;
    for (const p of packets) {
      spans += encoder.write(planTrace(p, options));
      flows += p.flows.length;
    }
    const last = encoder.takeRequest();
    if (last) requests.push(last);
    assert.equal(requests.reduce((n, r) => n + r.spans, 0), spans);
    assert.equal(requests.reduce((n, r) => n + r.flows, 0), flows);
    const decoded = requests.map((r) => decodeTraceRequest(r.body));
    for (let i = 0; i < requests.length; i++) {
      assert.ok(requests[i].spans <= maxSpans);
      assert.equal(decoded[i].length, requests[i].spans);
      assert.equal(decoded[i].filter((s) => s.name === "netflow.flow").length, requests[i].flows);
      // A request continues a packet exactly when it does not begin with a root span.
      assert.equal(requests[i].continued, decoded[i][0].name !== "netflow.export", `request ${i}`);
      assert.equal(requests[i].endsInside, requests[i + 1]?.continued ?? false, `request ${i}`);
      // Only a packet larger than a request (150 flows: 152 spans) straddles requests.
      if (maxSpans >= 152) assert.equal(requests[i].continued, false);
    }
    const all = decoded.flat();
    assert.equal(new Set(all.map((s) => s.spanId)).size, all.length, "span ids unique");
    const roots = all.filter((s) => s.name === "netflow.export");
    assert.equal(new Set(roots.map((s) => s.traceId)).size, roots.length, "trace ids unique");
    const byTrace = Map.groupBy(all, (s) => s.traceId);
    for (const root of roots) {
      const trace = byTrace.get(root.traceId)!;
      const procs = trace.filter((s) => s.name === "netflow.process_flows");
      assert.equal(procs.length, 1);
      assert.equal(procs[0].parentSpanId, root.spanId);
      const kids = trace.filter((s) => s.name === "netflow.flow");
      assert.equal(kids.length, root.attributes["netflow.flow.count"]);
      for (const k of kids) assert.equal(k.parentSpanId, procs[0].spanId);
    }
    assert.equal(byTrace.size, roots.length);
  }
});

Deno.test("transport helpers: network errors in words, Retry-After, RetryInfo, partial success", () => {
  const err = (code: string, message = code) => Object.assign(new Error(message), { code });
  assert.match(describeNetworkError(err("ECONNREFUSED"), "h:1"), /^connection refused by h:1/);
  assert.match(describeNetworkError(err("ENOTFOUND"), "tempo:4317"), /^DNS lookup failed for tempo:4317/);
  const wrapped = Object.assign(new Error("The pending stream has been canceled"), {
    code: "ERR_HTTP2_STREAM_CANCEL",
    cause: err("ECONNREFUSED"),
  });
  assert.match(describeNetworkError(wrapped, "h:1"), /^connection refused/);
  assert.match(
    describeNetworkError(err("DEPTH_ZERO_SELF_SIGNED_CERT", "self-signed certificate"), "h"),
    /^TLS: /,
  );
  assert.equal(parseRetryAfter("3"), 3000);
  assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6_000);
  assert.equal(parseRetryAfter("soon"), undefined);
  // google.rpc.Status{details: [Any{type_url, value: RetryInfo{retry_delay: Duration{seconds 2, nanos 5e8}}}]}
  const duration = [0x08, 2, 0x10, ...varint(500_000_000)];
  const retryInfo = [0x0a, duration.length, ...duration];
  const url = new TextEncoder().encode("type.googleapis.com/google.rpc.RetryInfo");
  const any = [0x0a, url.length, ...url, 0x12, retryInfo.length, ...retryInfo];
  const status = new Uint8Array([0x08, 14, 0x1a, any.length, ...any]);
  assert.equal(parseGrpcRetryInfo(status), 2500);
  assert.equal(parseGrpcRetryInfo(new Uint8Array([0x08, 14])), undefined);
  const msg = new TextEncoder().encode("old");
  const partial = [0x08, 7, 0x12, msg.length, ...msg];
  assert.deepEqual(readPartialSuccess(new Uint8Array([0x0a, partial.length, ...partial])), {
    rejected: 7,
    message: "old",
  });
  assert.deepEqual(readPartialSuccess(new Uint8Array(0)), { rejected: 0 });
  assert.deepEqual(readPartialSuccess(new TextEncoder().encode("{}")), { rejected: 0 });
});

function varint(v: number): number[] {
  const out = [];
  while (v > 127) {
    out.push((v & 127) | 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

Deno.test({
  name: "sink: once the queue is half full, a flooding exporter gets its fair share and the others keep room",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const cli = parseCli([], {
      // Nothing listens there: everything stays held, as in an outage.
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
      OTEL_BSP_MAX_QUEUE_SIZE: "1000",
      OTEL_BSP_EXPORT_TIMEOUT: "100",
    }, tmpdir());
    assert.equal(cli.kind, "run");
    if (cli.kind !== "run") return;
    const { log } = capture();
    const sink = new OtlpSpanSink(pipelineSettings(cli.config, 2055, { name: "t", version: "1" }), log);
    const decoder = new NetflowDecoder();
    const packet = (exporter: string) => {
      const gen = new TrafficGenerator({ version: 5, seed: 3, flowsPerPacket: 30 });
      return decoder.decode(gen.next(Date.now()).payload, exporter, 2055, Date.now())[0];
    };
    const flood = packet("192.0.2.1"), quiet = packet("192.0.2.2");
    const admitted = { flood: 0, quiet: 0 }, refused = { flood: 0, quiet: 0 };
    const emit = (p: typeof flood, who: "flood" | "quiet") => {
      const before = sink.counters.spansDropped;
      sink.emit(p);
      if (sink.counters.spansDropped > before) refused[who]++;
      else admitted[who]++;
    };
    // Ten packets of one exporter to one of the other's, until the quiet one has sent 14 (448 spans).
    for (let round = 0; round < 14; round++) {
      for (let i = 0; i < 10; i++) emit(flood, "flood");
      emit(quiet, "quiet");
    }
    console.log(`admitted ${JSON.stringify(admitted)}, refused ${JSON.stringify(refused)}`);
    assert.equal(refused.quiet, 0, "the quiet exporter keeps its room");
    assert.ok(admitted.flood * 32 <= 500 + 32, `the flood holds ${admitted.flood * 32} spans`);
    assert.ok(refused.flood > 0);
    assert.ok(sink.counters.spansHeld <= 1000);
    await sink.shutdown();
  },
});
