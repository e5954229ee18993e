/**
 * Delivery end to end (SPEC §2 "every trace is whole", §6 Operation; issue 10): the real collector process,
 * fed NetFlow v5 over UDP from one exporter socket, exporting to the in-process OTLP receiver
 * (test/support/otlp_receiver.ts) over http/protobuf and gRPC. Every flow has its own source address and
 * port, so a test can tell exactly which flows arrived and how often.
 *
 * Checked: an outage loses nothing while the queue has room (60 s at 500 flows/s); beyond it the newest
 * packets are refused whole and counted; a malformed request (400 / INVALID_ARGUMENT) is dropped at once
 * with a WARN; Retry-After / RetryInfo is honoured; a slow backend is retried; a partial success is
 * counted; trouble is logged at once and /healthz and /metrics show it; the spool survives a SIGKILL,
 * evicts the oldest packets when full, and skips files it cannot read. Throughout: the books balance,
 * nothing is delivered twice, traces are whole.
 *
 * Each test runs both protocols concurrently (two collectors, two receivers) to keep CI time low, and
 * prints one figures line.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { encodeV5, type FixedFlow } from "../src/tools/encode.ts";
import { type CollectorProcess, freeTcpPort, startCollectorProcess } from "./support/collector.ts";
import {
  type DecodedSpan,
  type Receiver,
  type ReceiverOptions,
  startOtlpReceiver,
} from "./support/otlp_receiver.ts";
import { parseMetrics } from "./support/prometheus.ts";

type Protocol = "http" | "grpc";
const PROTOCOLS: Protocol[] = ["http", "grpc"];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------------------
// Flows: flow k has source 10.<k>>16>.<k>>8>.<k> and port 1024 + k % 60000, so arrivals name their flow.
// ---------------------------------------------------------------------------------------------------------

function flow(k: number): FixedFlow {
  return {
    srcAddr: `10.${(k >>> 16) & 255}.${(k >>> 8) & 255}.${k & 255}`,
    srcPort: 1024 + (k % 60_000),
    dstAddr: "192.168.0.1",
    dstPort: 443,
    protocol: 6,
    packets: 10,
    bytes: 1_500,
    firstSwitched: 90_000,
    lastSwitched: 99_000,
  };
}

/** Datagram `n` of a stream with `flows` flows each: flows n·flows … n·flows + flows − 1. */
function datagram(n: number, flows: number): Uint8Array {
  return encodeV5(
    { sysUptimeMs: 100_000, exportTimeMs: Date.now(), sequence: n * flows },
    Array.from({ length: flows }, (_, i) => flow(n * flows + i)),
  );
}

/** The flow index a flow span carries (-1 when its address and port do not name one of ours). */
function flowIndex(s: DecodedSpan): number {
  const parts = String(s.attributes["source.address"]).split(".").map(Number);
  if (parts.length !== 4 || parts[0] !== 10) return -1;
  const k = (parts[1] << 16) | (parts[2] << 8) | parts[3];
  return s.attributes["source.port"] === 1024 + (k % 60_000) ? k : -1;
}

/** How often each flow arrived, against the flows that should have: missing, twice, unexpected. */
function tally(spans: DecodedSpan[], expected: Iterable<number>) {
  const seen = new Map<number, number>();
  for (const s of spans) {
    if (s.name !== "netflow.flow") continue;
    const k = flowIndex(s);
    seen.set(k, (seen.get(k) ?? 0) + 1);
  }
  const want = new Set(expected);
  const missing = [...want].filter((k) => !seen.has(k));
  const twice = [...seen].filter(([, n]) => n > 1).map(([k]) => k);
  const unexpected = [...seen.keys()].filter((k) => !want.has(k));
  return { seen, arrived: seen.size, missing, twice, unexpected };
}

const range = (from: number, to: number) =>
  Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);

/**
 * SPEC §2: per trace one `netflow.export` root, one `netflow.process_flows` child of it, exactly
 * `netflow.flow.count` flow spans under that, nothing else. Returns the number of traces and the broken ones.
 */
function traceCheck(spans: DecodedSpan[]): { traces: number; broken: number; firstBroken: string } {
  const byTrace = new Map<string, DecodedSpan[]>();
  for (const s of spans) {
    const list = byTrace.get(s.traceId);
    if (list) list.push(s);
    else byTrace.set(s.traceId, [s]);
  }
  let broken = 0, firstBroken = "";
  for (const [id, list] of byTrace) {
    const roots = list.filter((s) => s.name === "netflow.export");
    const procs = list.filter((s) => s.name === "netflow.process_flows");
    const flows = list.filter((s) => s.name === "netflow.flow");
    const root = roots[0], proc = procs[0];
    const whole = roots.length === 1 && procs.length === 1 && root.parentSpanId === "" &&
      proc.parentSpanId === root.spanId && flows.length === root.attributes["netflow.flow.count"] &&
      flows.every((f) => f.parentSpanId === proc.spanId) &&
      list.length === flows.length + 2;
    if (!whole) {
      broken++;
      firstBroken ||= `trace ${id}: ${roots.length} roots, ${procs.length} process_flows, ${flows.length} ` +
        `flows (count ${root?.attributes["netflow.flow.count"]}), ${list.length} spans`;
    }
  }
  return { traces: byTrace.size, broken, firstBroken };
}

/** The numbers of the `stopped` line's totals. */
function stoppedTotals(log: string): Record<string, number> {
  const line = log.split("\n").find((l) => / INFO stopped /.test(l));
  assert.ok(line, "no stopped line");
  return numbers(line);
}

function numbers(line: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of line.matchAll(/([a-z_]+)=(\d+)/g)) out[m[1]] = Number(m[2]);
  return out;
}

/**
 * SPEC §6: flows received + restored = exported + dropped + failed + held, and the same for spans, where
 * the spans built are the flows plus two per packet (root and process_flows; every test packet is a v5
 * packet with flows).
 */
function assertBooks(t: Record<string, number>, where: string): void {
  const built = { flows: t.flows, spans: t.flows + 2 * t.packets };
  for (const unit of ["flows", "spans"] as const) {
    const books = t[`${unit}_exported`] + t[`${unit}_dropped`] + t[`${unit}_failed`] + t[`${unit}_held`];
    assert.equal(built[unit] + t[`${unit}_restored`], books, `${where}: the ${unit} books do not balance`);
  }
}

/** Every `stats` line balances too (SPEC §6: "at every stats line"). */
function assertStatsBooks(log: string): number {
  const lines = log.split("\n").filter((l) => / INFO stats /.test(l));
  for (const l of lines) {
    const t = numbers(l);
    assert.equal(
      t.flows + t.flows_restored,
      t.flows_exported + t.flows_dropped + t.flows_failed + t.flows_held,
      `stats line does not balance: ${l}`,
    );
  }
  return lines.length;
}

/** The first log line matching `re`, and its time (the line's leading ISO timestamp). */
function logLine(log: string, re: RegExp): { line: string; at: number } | undefined {
  const line = log.split("\n").find((l) => re.test(l));
  return line === undefined ? undefined : { line, at: Date.parse(line.slice(0, line.indexOf(" "))) };
}

async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs: number,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

// ---------------------------------------------------------------------------------------------------------
// A rig: one collector (restartable on the same endpoint), its receivers and one exporter socket.
// ---------------------------------------------------------------------------------------------------------

class Rig {
  readonly otlpPort = freeTcpPort();
  readonly httpPort = freeTcpPort();
  collector!: CollectorProcess;
  /** Every receiver started on the endpoint, in order (one per "up" period). */
  readonly receivers: Receiver[] = [];
  private receiver: Receiver | undefined;
  private readonly sock = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  /** Datagrams and flows sent to the current collector. */
  sent = 0;
  sentFlows = 0;
  /** Logs of collectors that already exited (restarts), for error messages. */
  private earlierLogs = "";
  /** The test's figures, printed whether it passes or not. */
  readonly figures: string[] = [];

  constructor(readonly protocol: Protocol, private readonly env: Record<string, string>) {}

  async start(extra: Record<string, string> = {}): Promise<void> {
    if (this.collector) this.earlierLogs += this.collector.stderr();
    this.sent = this.sentFlows = 0;
    this.collector = await startCollectorProcess({
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${this.otlpPort}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: this.protocol === "http" ? "http/protobuf" : "grpc",
      NETFLOW_HTTP_LISTEN: `127.0.0.1:${this.httpPort}`,
      ...this.env,
      ...extra,
    });
  }

  /** The endpoint answers (a new receiver on the same port). */
  async up(options: Partial<ReceiverOptions> = {}): Promise<Receiver> {
    assert.equal(this.receiver, undefined, "a receiver is already up");
    this.receiver = await startOtlpReceiver({ protocol: this.protocol, port: this.otlpPort, ...options });
    this.receivers.push(this.receiver);
    return this.receiver;
  }

  /** The endpoint goes away: its port is closed, so connections are refused. */
  async down(): Promise<void> {
    await this.receiver?.close();
    this.receiver = undefined;
  }

  /** Every span any receiver took. */
  spans(): DecodedSpan[] {
    return this.receivers.flatMap((r) => r.spans);
  }

  async send(...datagrams: Uint8Array[]): Promise<void> {
    for (const d of datagrams) {
      await this.sock.send(d, { transport: "udp", hostname: "127.0.0.1", port: this.collector.port });
      this.sent++;
      this.sentFlows += (d[2] << 8) | d[3]; // the v5 header's count
    }
  }

  async metrics(): Promise<Map<string, number>> {
    return parseMetrics(await (await fetch(`http://127.0.0.1:${this.httpPort}/metrics`)).text());
  }

  async metric(name: string): Promise<number> {
    return (await this.metrics()).get(`netflow2traces_${name}`) ?? NaN;
  }

  /** `/healthz`: its status line and `key=value` lines. */
  async healthz(): Promise<{ code: number; verdict: string; fields: Record<string, string> }> {
    const res = await fetch(`http://127.0.0.1:${this.httpPort}/healthz`);
    const [verdict, ...lines] = (await res.text()).trim().split("\n");
    const fields: Record<string, string> = {};
    for (const l of lines) {
      const i = l.indexOf("=");
      fields[l.slice(0, i)] = l.slice(i + 1);
    }
    return { code: res.status, verdict, fields };
  }

  /** The collector has every datagram sent (it keeps receiving whatever the backend does). */
  async received(): Promise<void> {
    await waitFor(
      `${this.sent} datagrams received`,
      async () => (await this.metric("datagrams_total")) === this.sent,
      10_000,
    );
  }

  /**
   * The collector decoded every flow sent and holds nothing any more: the backend answered for all of it.
   * (Both figures come from one snapshot of the pipeline, so a stale one cannot pass for idle.)
   */
  async idle(timeoutMs = 30_000): Promise<void> {
    await waitFor("nothing held", async () => {
      const m = await this.metrics();
      return m.get("netflow2traces_flows_total") === this.sentFlows &&
        m.get("netflow2traces_spans_held") === 0;
    }, timeoutMs);
  }

  log(): string {
    return this.collector?.stderr() ?? "";
  }

  /** SIGTERM, exit 0, the stopped line's totals (books checked). */
  async stop(): Promise<Record<string, number>> {
    assert.equal(await this.collector.stop(), 0, "exit code after SIGTERM");
    const t = stoppedTotals(this.log());
    assertBooks(t, `${this.protocol} stopped line`);
    return t;
  }

  async close(): Promise<void> {
    await this.collector?.stop("SIGKILL");
    for (const r of this.receivers) await r.close();
    this.sock.close();
  }

  /** Records figures (`key=value`) for the test's line; noted before asserting, so a failure shows them. */
  note(values: Record<string, unknown>): void {
    for (const [k, v] of Object.entries(values)) this.figures.push(`${k}=${v}`);
  }

  context(): string {
    const all = this.earlierLogs + this.log();
    const outcomes = new Map<string, number>();
    for (const r of this.receivers.flatMap((r) => r.requestLog)) {
      outcomes.set(r.outcome, (outcomes.get(r.outcome) ?? 0) + 1);
    }
    const requests = [...outcomes].map(([k, n]) => `${k}=${n}`).join(" ");
    return `[${this.protocol}] receiver requests: ${requests}; spans=${this.spans().length}\n` +
      `collector log (tail):\n${all.slice(-4000)}`;
  }
}

/**
 * Registers one test that runs `body` for both protocols at once, each with its own rig, and prints one
 * figures line; a failure names its protocol and carries that collector's log.
 */
function e2e(
  name: string,
  env: Record<string, string>,
  body: (rig: Rig) => Promise<void>,
  options: { start?: boolean; protocols?: Protocol[] } = {},
): void {
  Deno.test({
    name,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const started = Date.now();
      const rigs = (options.protocols ?? PROTOCOLS).map((protocol) => new Rig(protocol, env));
      const results = await Promise.allSettled(rigs.map(async (rig) => {
        try {
          if (options.start !== false) await rig.start();
          await body(rig);
        } catch (err) {
          throw new Error(`${rig.protocol}: ${(err as Error).stack ?? err}\n${rig.context()}`);
        } finally {
          await rig.close();
        }
      }));
      const figures = rigs.map((rig, i) =>
        `${rig.protocol}${results[i].status === "fulfilled" ? "" : " FAILED"}: ${rig.figures.join(" ")}`
      );
      console.log(
        `${name.split(":")[0]} (${((Date.now() - started) / 1000).toFixed(1)} s) | ${figures.join(" | ")}`,
      );
      const errors = results.filter((r) => r.status === "rejected").map((r) =>
        String(r.reason?.message ?? r.reason)
      );
      if (errors.length) throw new Error(errors.join("\n\n"));
    },
  });
}

/** Asserts every flow of `expected` arrived exactly once and nothing else did; returns the tally. */
function assertExactlyOnce(rig: Rig, expected: number[]) {
  const t = tally(rig.spans(), expected);
  assert.deepEqual(
    { missing: t.missing.length, twice: t.twice.length, unexpected: t.unexpected.length },
    { missing: 0, twice: 0, unexpected: 0 },
    `flows: ${t.missing.length} missing (first ${t.missing.slice(0, 5)}), ${t.twice.length} twice ` +
      `(first ${t.twice.slice(0, 5)}), ${t.unexpected.length} unexpected`,
  );
  const ids = new Set(rig.spans().map((s) => s.spanId));
  assert.equal(rig.spans().length - ids.size, 0, "duplicate span ids");
  return t;
}

function assertWhole(rig: Rig): { traces: number; broken: number } {
  const c = traceCheck(rig.spans());
  assert.equal(c.broken, 0, `${c.broken} broken traces; ${c.firstBroken}`);
  return c;
}

// ---------------------------------------------------------------------------------------------------------
// The headline: 60 s outage at 500 flows/s, default queue
// ---------------------------------------------------------------------------------------------------------

const RATE = 25; // datagrams/s
const FLOWS = 20; // flows per datagram: 500 flows/s
const SPANS = FLOWS + 2; // per datagram
const BEFORE_S = 5, OUTAGE_S = 60, AFTER_S = 5;

e2e(
  // http/protobuf here, to keep the suite's wall time: test/trace_integrity.test.ts runs the same 60 s
  // outage over gRPC.
  "outage 60 s at 500 flows/s, default queue: every flow arrives exactly once, traces whole",
  { NETFLOW_STATS_INTERVAL: "5" },
  async (rig) => {
    await rig.up();
    const total = (BEFORE_S + OUTAGE_S + AFTER_S) * RATE;
    const t0 = Date.now();
    let maxHeld = 0, failingSeen = false, failuresSeen = 0;
    // Paced by absolute time so the rate holds whatever a send costs.
    const stream = (async () => {
      for (let n = 0; n < total; n++) {
        const due = t0 + (n * 1000) / RATE;
        if (due > Date.now()) await sleep(due - Date.now());
        await rig.send(datagram(n, FLOWS));
      }
    })();
    await sleep(t0 + BEFORE_S * 1000 - Date.now());
    const downAt = Date.now();
    await rig.down();
    // While down: the queue holds everything (the default 65,536 spans are room enough), health shows it.
    while (Date.now() < downAt + OUTAGE_S * 1000 - 1_000) {
      const m = await rig.metrics();
      maxHeld = Math.max(maxHeld, m.get("netflow2traces_spans_held") ?? 0);
      failuresSeen = Math.max(failuresSeen, m.get("netflow2traces_export_consecutive_failures") ?? 0);
      if (!failingSeen && Date.now() > downAt + 5_000) {
        failingSeen = (await rig.healthz()).fields.export_state === "failing";
      }
      await sleep(1_000);
    }
    await sleep(downAt + OUTAGE_S * 1000 - Date.now());
    const upAt = Date.now();
    await rig.up();
    await stream;
    await rig.received();
    await rig.idle(60_000);
    const idleAt = Date.now();
    const t = await rig.stop();
    const log = rig.log();
    const flows = tally(rig.spans(), range(0, total * FLOWS));
    const whole = traceCheck(rig.spans());
    const warn = logLine(log, /WARNING export failing /);
    const recovered = logLine(log, /INFO export recovered /);
    const r = recovered ? numbers(recovered.line) : {};
    const outageS = Number(/outage_s=([\d.]+)/.exec(recovered?.line ?? "")?.[1]);
    rig.note({
      flows_sent: total * FLOWS,
      arrived: flows.arrived,
      twice: flows.twice.length,
      traces: whole.traces,
      broken: whole.broken,
      outage_s: ((upAt - downAt) / 1000).toFixed(1),
      warn_after_ms: warn ? warn.at - downAt : "none",
      max_held_spans: maxHeld,
      recovered_info_after_ms: recovered ? recovered.at - upAt : "none",
      logged_outage_s: outageS,
      failed_attempts: r.failed_attempts,
      backlog_spans: r.backlog_spans,
      backlog_delivered_after_ms: idleAt - upAt,
      spans_exported: t.spans_exported,
      spans_dropped: t.spans_dropped,
      spans_failed: t.spans_failed,
    });

    assertExactlyOnce(rig, range(0, total * FLOWS));
    assertWhole(rig);
    assert.equal(whole.traces, total, "one trace per datagram");
    assert.equal(t.packets, total);
    assert.equal(t.flows, total * FLOWS);
    assert.equal(t.spans_failed, 0, "nothing abandoned");
    assert.equal(t.spans_dropped, 0, "nothing dropped: the queue had room");
    assert.equal(t.spans_held, 0);
    assert.equal(t.flows_exported, total * FLOWS);
    assert.equal(t.spans_exported, rig.spans().length);
    assert.ok(maxHeld > OUTAGE_S * RATE * SPANS * 0.8, `held at most ${maxHeld} spans during the outage`);
    assert.ok(maxHeld <= 65_536);
    assert.ok(failingSeen, "/healthz said export_state=failing during the outage");
    assert.ok(failuresSeen > 0, "/metrics export_consecutive_failures > 0 during the outage");
    assert.ok(warn, "a WARN line at the first failure");
    // A gRPC stream in flight when the backend goes down is refused by its GOAWAY; later ones see the refused
    // connection. Either way the line says what happened.
    assert.match(warn.line, /connection refused|refused the request/);
    assert.ok(warn.at - downAt < 10_000, `WARN ${warn.at - downAt} ms after the outage began`);
    assert.equal(log.match(/WARNING export failing /g)?.length, 1, "one WARN at the start of the outage");
    assert.ok((log.match(/WARNING export still failing /g)?.length ?? 0) <= 1, "at most one WARN a minute");
    assert.ok(recovered, "an INFO line at recovery");
    assert.ok(outageS >= OUTAGE_S - 2 && outageS <= OUTAGE_S + 10, `outage_s=${outageS}`);
    rig.note({ stats_lines_balanced: assertStatsBooks(log) });
  },
  { protocols: ["http"] },
);

// ---------------------------------------------------------------------------------------------------------
// Outages longer than the queue holds, malformed requests, Retry-After, slow backends, partial success
// ---------------------------------------------------------------------------------------------------------

const SMALL_QUEUE = 600;

e2e(
  "down longer than the queue holds: exactly the queue's worth of whole packets arrives, the newest are counted as dropped",
  {
    OTEL_BSP_MAX_QUEUE_SIZE: String(SMALL_QUEUE),
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "50",
    OTEL_BSP_SCHEDULE_DELAY: "100",
  },
  async (rig) => {
    const packets = 60;
    const fits = Math.floor(SMALL_QUEUE / SPANS); // 27 packets of 22 spans
    for (let n = 0; n < packets; n++) await rig.send(datagram(n, FLOWS));
    await rig.received();
    // The queue holds whole packets, as many as fit (the export counters reach /metrics within 250 ms).
    await waitFor(
      `${fits * SPANS} spans held`,
      async () => (await rig.metric("spans_held")) === fits * SPANS,
      3_000,
    );
    await sleep(1_000);
    await rig.up();
    await rig.idle();
    const t = await rig.stop();
    const flows = tally(rig.spans(), range(0, fits * FLOWS));
    const whole = traceCheck(rig.spans());
    rig.note({
      packets_sent: packets,
      queue_holds_packets: fits,
      packets_arrived: whole.traces,
      flows_sent: packets * FLOWS,
      flows_arrived: flows.arrived,
      flows_dropped: t.flows_dropped,
      spans_dropped: t.spans_dropped,
      spans_failed: t.spans_failed,
    });
    // What arrives is the first packets that fitted; the newest were refused whole.
    assertExactlyOnce(rig, range(0, fits * FLOWS));
    assertWhole(rig);
    assert.equal(whole.traces, fits);
    assert.equal(t.flows_dropped, packets * FLOWS - flows.arrived);
    assert.equal(t.spans_dropped, (packets - fits) * SPANS);
    assert.equal(t.spans_failed, 0);
    assert.equal(t.flows_exported, flows.arrived);
  },
);

e2e(
  "down longer than the queue holds, with a spool: nothing is dropped, every flow arrives once",
  {
    OTEL_BSP_MAX_QUEUE_SIZE: String(SMALL_QUEUE),
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "50",
    OTEL_BSP_SCHEDULE_DELAY: "100",
  },
  async (rig) => {
    const dir = Deno.makeTempDirSync({ prefix: "n2t-spool-" });
    await rig.start({ NETFLOW_SPOOL_DIR: dir });
    const packets = 60; // more than twice what the queue holds in memory
    for (let n = 0; n < packets; n++) await rig.send(datagram(n, FLOWS));
    await rig.received();
    await sleep(1_000);
    await rig.up();
    await rig.idle();
    const t = await rig.stop();
    const whole = traceCheck(rig.spans());
    rig.note({ packets_sent: packets, traces: whole.traces, flows_dropped: t.flows_dropped });
    assertExactlyOnce(rig, range(0, packets * FLOWS));
    assertWhole(rig);
    assert.equal(t.spans_dropped + t.spans_failed, 0);
    assert.equal(t.flows_exported, packets * FLOWS);
    Deno.removeSync(dir, { recursive: true });
  },
  { start: false },
);

e2e(
  "400 / INVALID_ARGUMENT: dropped at once with a WARN, counted as failed, no retry; later flows arrive",
  { OTEL_BSP_SCHEDULE_DELAY: "100" },
  async (rig) => {
    const receiver = await rig.up({
      failWith: { httpStatus: 400, grpcStatus: 3, message: "bad request: test" },
    });
    const rejected = 3, small = 4;
    // One request each: the schedule delay (100 ms) cuts between them.
    for (let n = 0; n < rejected; n++) {
      await rig.send(datagram(n, small));
      await sleep(300);
    }
    await waitFor(
      "the malformed spans counted",
      async () => (await rig.metric("spans_failed_total")) === rejected * (small + 2),
      10_000,
    );
    receiver.setFailing(false);
    for (let n = rejected; n < 2 * rejected; n++) await rig.send(datagram(n, small));
    await waitFor("later flows", () => tally(rig.spans(), []).arrived === rejected * small, 10_000);
    await sleep(1_000); // time for any (wrong) retry of a rejected request to show up
    const t = await rig.stop();
    const log = rig.log();
    const refusals = receiver.requestLog.filter((r) => r.outcome === "rejected");
    const warn = logLine(log, /WARNING export: the backend rejected a request as malformed; dropped/);
    rig.note({
      rejected_requests: refusals.length,
      distinct: new Set(refusals.map((r) => r.firstSpanId)).size,
      spans_failed: t.spans_failed,
      flows_failed: t.flows_failed,
      exported_after: t.spans_exported,
      warn_after_first_refusal_ms: warn ? warn.at - refusals[0].at : "none",
    });
    assertExactlyOnce(rig, range(rejected * small, 2 * rejected * small));
    assertWhole(rig);
    assert.equal(refusals.length, rejected, "each malformed request was sent once");
    assert.equal(new Set(refusals.map((r) => r.firstSpanId)).size, rejected);
    assert.equal(refusals.reduce((n, r) => n + r.spans, 0), rejected * (small + 2));
    assert.equal(t.spans_failed, rejected * (small + 2));
    assert.equal(t.flows_failed, rejected * small);
    assert.equal(t.spans_dropped, 0);
    assert.equal(t.spans_exported, rejected * (small + 2));
    assert.ok(warn, "the malformed WARN line");
    assert.match(warn.line, rig.protocol === "http" ? /HTTP 400/ : /INVALID_ARGUMENT/);
    assert.match(warn.line, /spans=6\b/);
    assert.equal(log.match(/malformed/g)?.length, 1, "rate-limited to one line a minute");
  },
);

e2e(
  "503 / UNAVAILABLE with Retry-After / RetryInfo 2 s: the next attempt waits about that long; then all arrives once",
  { OTEL_BSP_SCHEDULE_DELAY: "100" },
  async (rig) => {
    const receiver = await rig.up({ failWith: { httpStatus: 503, grpcStatus: 14, retryAfterSeconds: 2 } });
    // One request: three datagrams sent at once, cut together.
    await rig.send(datagram(0, FLOWS), datagram(1, FLOWS), datagram(2, FLOWS));
    await waitFor("three refused attempts", () => receiver.rejected >= 3, 15_000);
    receiver.setFailing(false);
    await rig.idle(10_000);
    const t = await rig.stop();
    const times = receiver.requestLog.map((r) => r.at);
    const gaps = times.slice(1).map((at, i) => at - times[i]);
    rig.note({
      attempts: times.length,
      refused: receiver.rejected,
      gaps_ms: gaps.join(","),
      exported: t.spans_exported,
      failed: t.spans_failed,
    });
    assertExactlyOnce(rig, range(0, 3 * FLOWS));
    assertWhole(rig);
    // Without the hint the backoff would start at 250 ms, 500 ms, …
    for (const g of gaps) assert.ok(g >= 1_500, `an attempt ${g} ms after the previous one (gaps ${gaps})`);
    assert.ok(gaps[0] <= 3_500, `the first retry came ${gaps[0]} ms later`);
    assert.equal(t.spans_failed, 0);
    assert.equal(t.spans_dropped, 0);
  },
);

e2e(
  "slow backend (answers after OTEL_EXPORTER_OTLP_TIMEOUT): retried, everything arrives exactly once after",
  { OTEL_BSP_SCHEDULE_DELAY: "100", OTEL_EXPORTER_OTLP_TIMEOUT: "700" },
  async (rig) => {
    const receiver = await rig.up();
    // First fast, so the slow requests go over a connection already used (as in real life).
    await rig.send(datagram(0, FLOWS), datagram(1, FLOWS));
    await rig.idle(10_000);
    receiver.setDelay(2_000);
    await rig.send(datagram(2, FLOWS), datagram(3, FLOWS), datagram(4, FLOWS));
    await waitFor(
      "two abandoned attempts",
      () => receiver.requestLog.filter((r) => r.outcome === "abandoned").length >= 2,
      15_000,
    );
    receiver.setDelay(0);
    await rig.idle(15_000);
    await sleep(2_500); // let any request still delayed in the receiver be answered (or found abandoned)
    const t = await rig.stop();
    const log = rig.log();
    const flows = tally(rig.spans(), range(0, 5 * FLOWS));
    const warn = logLine(log, /WARNING export failing /);
    rig.note({
      requests: receiver.requestLog.map((r) => `${r.outcome}@${r.at - receiver.requestLog[0].at}`).join(","),
      flows_twice: flows.twice.length,
      exported: t.spans_exported,
      received: rig.spans().length,
      failed: t.spans_failed,
    });
    assertExactlyOnce(rig, range(0, 5 * FLOWS));
    assertWhole(rig);
    assert.equal(t.spans_failed, 0);
    assert.equal(t.spans_exported, rig.spans().length);
    assert.ok(warn);
    assert.match(warn.line, /no answer from 127\.0\.0\.1:\d+ within 700 ms/);
    assert.ok(logLine(log, /INFO export recovered /), "recovery logged");
  },
);

e2e(
  "partial success: rejected_spans of an accepted request are counted as failed, with a WARN",
  { OTEL_BSP_SCHEDULE_DELAY: "100" },
  async (rig) => {
    const rejectedSpans = 3, small = 4;
    const receiver = await rig.up({
      failWith: { partialSuccess: { rejectedSpans, message: "3 spans too old" }, times: 1 },
    });
    await rig.send(datagram(0, small));
    await waitFor(
      "the partial answer",
      () => receiver.requestLog.some((r) => r.outcome === "partial"),
      10_000,
    );
    await rig.idle(5_000);
    await rig.send(datagram(1, small));
    await waitFor(
      "the next request",
      () => receiver.requestLog.some((r) => r.outcome === "accepted"),
      10_000,
    );
    await rig.idle(5_000);
    const t = await rig.stop();
    const warn = logLine(rig.log(), /WARNING export: the backend accepted a request but rejected some spans/);
    rig.note({
      rejected_spans: rejectedSpans,
      spans_failed: t.spans_failed,
      flows_failed: t.flows_failed,
      spans_exported: t.spans_exported,
      requests: receiver.requestLog.length,
    });
    assert.equal(t.spans_failed, rejectedSpans);
    assert.equal(t.flows_failed, rejectedSpans);
    assert.equal(t.spans_exported, 2 * (small + 2) - rejectedSpans);
    assert.equal(t.flows_exported, 2 * small - rejectedSpans);
    assert.equal(receiver.requestLog.length, 2, "a partial success is not retried");
    assert.ok(warn, "the partial-success WARN");
    assert.match(warn.line, /rejected_spans=3\b/);
    assert.match(warn.line, /3 spans too old/);
  },
);

// ---------------------------------------------------------------------------------------------------------
// Visible trouble
// ---------------------------------------------------------------------------------------------------------

e2e(
  "visibility: nothing listening → WARN within 10 s naming endpoint and error; 401 / UNAUTHENTICATED → credentials; recovery INFO; /healthz, /metrics",
  {}, // defaults (1 s schedule delay), as a new user has them
  async (rig) => {
    const endpoint = rig.protocol === "http"
      ? `http://127.0.0.1:${rig.otlpPort}/v1/traces`
      : `http://127.0.0.1:${rig.otlpPort}`;
    const healthState = (state: string) =>
      waitFor(`/healthz export_state=${state}`, async () => {
        const h = await rig.healthz();
        return h.fields.export_state === state ? h : undefined;
      }, 5_000);

    // 1. Nothing listening on the endpoint.
    const sentAt = Date.now();
    await rig.send(datagram(0, 4));
    const warn = await waitFor("the WARN line", () => logLine(rig.log(), /WARNING export failing /), 10_000);
    rig.note({ refused_warn_after_ms: warn.at - sentAt });
    assert.ok(warn.line.includes(`endpoint=${endpoint} `), warn.line);
    assert.match(warn.line, new RegExp(`error="connection refused by 127\\.0\\.0\\.1:${rig.otlpPort}`));
    assert.match(warn.line, /spans_held=6\b/);
    const failing = await healthState("failing");
    assert.equal(failing.code, 200, "still healthy: a short outage is not a reason to restart");
    assert.ok(Number(failing.fields.export_consecutive_failures) > 0);
    assert.match(failing.fields.export_last_error, /connection refused/);
    assert.equal(failing.fields.spans_held, "6");
    assert.ok(failing.fields.export_failing_since);
    const m = await rig.metrics();
    rig.note({ healthz_failures: failing.fields.export_consecutive_failures });
    assert.ok((m.get("netflow2traces_export_consecutive_failures") ?? 0) > 0);
    assert.ok((m.get("netflow2traces_export_failures_total") ?? 0) > 0);
    assert.equal(m.get("netflow2traces_spans_held"), 6);

    // 2. It comes up: one INFO line, /healthz ok.
    const upAt = Date.now();
    const receiver = await rig.up();
    const recovered = await waitFor(
      "the recovery INFO",
      () => logLine(rig.log(), /INFO export recovered /),
      10_000,
    );
    rig.note({
      recovered_info_after_ms: recovered.at - upAt,
      outage_s: /outage_s=([\d.]+)/.exec(recovered.line)?.[1],
    });
    assert.match(recovered.line, /outage_s=[\d.]+ failed_attempts=\d+ backlog_spans=\d+ spans_dropped=0/);
    assert.ok(recovered.line.includes(`endpoint=${endpoint} `));
    const ok = await healthState("ok");
    assert.ok(ok.fields.export_last_success);
    assert.equal(ok.fields.export_consecutive_failures, "0");
    assert.equal(ok.fields.export_last_error, undefined);
    assert.ok(((await rig.metrics()).get("netflow2traces_export_last_success_timestamp_seconds") ?? 0) > 0);

    // 3. Bad credentials: the WARN says so.
    receiver.setFailing({ httpStatus: 401, grpcStatus: 16, message: "invalid token" });
    const badAt = Date.now();
    await rig.send(datagram(1, 4));
    const cred = await waitFor(
      "the credentials WARN",
      () => logLine(rig.log(), /WARNING export failing: credentials rejected /),
      10_000,
    );
    rig.note({ credentials_warn_after_ms: cred.at - badAt });
    assert.match(cred.line, /error="credentials rejected: check OTEL_EXPORTER_OTLP_HEADERS \(/);
    assert.match(cred.line, rig.protocol === "http" ? /HTTP 401/ : /UNAUTHENTICATED/);
    assert.match((await healthState("failing")).fields.export_last_error, /credentials/);
    receiver.setFailing(false);
    await waitFor(
      "the second recovery",
      () => (rig.log().match(/INFO export recovered /g)?.length ?? 0) >= 2,
      15_000,
    );
    await healthState("ok");
    await rig.idle(5_000);
    const t = await rig.stop();
    assertExactlyOnce(rig, range(0, 8));
    assert.equal(t.spans_failed, 0);
  },
);

// ---------------------------------------------------------------------------------------------------------
// The spool
// ---------------------------------------------------------------------------------------------------------

const otlpFiles = (dir: string) => [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".otlp"));
const spoolBytes = (dir: string) =>
  otlpFiles(dir).reduce((n, e) => n + Deno.statSync(join(dir, e.name)).size, 0);

e2e(
  "spool restart: backend down, SIGKILL, restart on the same directory, backend up → every flow exactly once",
  // 100-span requests: packets (22 spans) straddle requests, and must still arrive whole after the replay.
  { OTEL_BSP_SCHEDULE_DELAY: "200", OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "100" },
  async (rig) => {
    const dir = Deno.makeTempDirSync({ prefix: "n2t-spool-" });
    await rig.start({ NETFLOW_SPOOL_DIR: dir });
    const before = 20, after = 5;
    for (let n = 0; n < before; n++) await rig.send(datagram(n, FLOWS));
    await rig.received();
    await sleep(2_000);
    rig.note({ files_before_kill: otlpFiles(dir).length, bytes_before_kill: spoolBytes(dir) });
    assert.ok(otlpFiles(dir).length > 0, "batches on disk before the kill");
    rig.collector.kill("SIGKILL");
    await rig.collector.exited;
    await rig.up();
    await rig.start({ NETFLOW_SPOOL_DIR: dir });
    const replay = logLine(rig.log(), /INFO spool: replaying /);
    for (let n = before; n < before + after; n++) await rig.send(datagram(n, FLOWS));
    await rig.received();
    await rig.idle();
    const t = await rig.stop();
    const whole = traceCheck(rig.spans());
    rig.note({
      replay: replay?.line.replace(/^.* INFO spool: /, "").replace(/ dir=\S+/, ""),
      flows_restored: t.flows_restored,
      flows_new: t.flows,
      arrived: tally(rig.spans(), []).arrived,
      traces: whole.traces,
      files_left: otlpFiles(dir).length,
    });
    assert.ok(replay, "the restart says it replays");
    assertExactlyOnce(rig, range(0, (before + after) * FLOWS));
    assertWhole(rig);
    assert.equal(whole.traces, before + after);
    assert.equal(t.flows_restored, before * FLOWS);
    assert.equal(t.flows, after * FLOWS);
    assert.equal(t.flows_exported, (before + after) * FLOWS);
    assert.equal(t.spans_failed + t.spans_dropped, 0);
    assert.equal(otlpFiles(dir).length, 0, "delivered batches are deleted");
    Deno.removeSync(dir, { recursive: true }); // kept when a check fails, to look at
  },
  { start: false },
);

const SPOOL_MAX = 1_048_576;

e2e(
  "spool full: NETFLOW_SPOOL_MAX_BYTES=1 MiB, the oldest whole packets are dropped and counted, the newest arrive once",
  // 100-span requests: packets (22 spans) straddle requests, so eviction must take whole packets.
  {
    OTEL_BSP_SCHEDULE_DELAY: "100",
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "100",
    NETFLOW_SPOOL_MAX_BYTES: String(SPOOL_MAX),
  },
  async (rig) => {
    const dir = Deno.makeTempDirSync({ prefix: "n2t-spool-" });
    await rig.start({ NETFLOW_SPOOL_DIR: dir });
    const packets = 150; // about 20 KB each on disk: three times the bound
    // Paced: a burst of 150 datagrams (about 2.3 KB each in the kernel) can overflow the socket buffer of a
    // collector starved of CPU by the rest of the suite, and this test is about the spool, not the socket.
    for (let n = 0; n < packets; n++) {
      await rig.send(datagram(n, FLOWS));
      if (n % 10 === 9) await sleep(10);
    }
    await rig.received();
    await sleep(1_000);
    const metricBytes = await rig.metric("spool_bytes"), diskBytes = spoolBytes(dir);
    await rig.up();
    await rig.idle();
    const t = await rig.stop();
    const log = rig.log();
    const flows = tally(rig.spans(), range(0, packets * FLOWS));
    const whole = traceCheck(rig.spans());
    const arrived = [...new Set([...flows.seen.keys()].map((k) => Math.floor(k / FLOWS)))].sort((a, b) =>
      a - b
    );
    // The newest arrive, and only they: eviction is strictly oldest first, requests in flight included (the
    // backend is down, so none of those is accepted).
    const older = arrived.filter((p) => p < packets - arrived.length);
    rig.note({
      packets_sent: packets,
      spool_bytes_while_down: metricBytes,
      on_disk: diskBytes,
      bound: SPOOL_MAX,
      packets_arrived: arrived.length,
      first_arrived: arrived[0],
      older_than_newest_run: older.length,
      flows_dropped: t.flows_dropped,
      spans_dropped: t.spans_dropped,
      traces: whole.traces,
      broken: whole.broken,
    });
    assert.ok(logLine(log, /WARNING spool full: dropped the oldest batches/), "the spool-full WARN");
    assert.ok(t.flows_dropped > 0);
    assert.equal(flows.twice.length, 0, "nothing twice");
    assert.equal(flows.unexpected.length, 0);
    assertWhole(rig);
    assert.equal(t.flows_dropped + flows.arrived, packets * FLOWS, "dropped + arrived = sent");
    assert.equal(t.spans_dropped % SPANS, 0, "whole packets dropped");
    assert.equal(t.flows_exported, flows.arrived);
    assert.equal(t.spans_failed, 0);
    assert.ok(arrived.includes(packets - 1), "the newest packet arrived");
    assert.deepEqual(older, [], "packets older than the newest run arrived");
    assert.ok(metricBytes <= SPOOL_MAX, `spool_bytes ${metricBytes} > ${SPOOL_MAX} while down`);
    assert.ok(diskBytes <= SPOOL_MAX, `${diskBytes} bytes on disk while down`);
    Deno.removeSync(dir, { recursive: true });
  },
  { start: false },
);

e2e(
  "spool corrupt file: a corrupt batch file and a foreign file are skipped with a WARN; the real batches replay",
  { OTEL_BSP_SCHEDULE_DELAY: "200", OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "100" },
  async (rig) => {
    const dir = Deno.makeTempDirSync({ prefix: "n2t-spool-" });
    await rig.start({ NETFLOW_SPOOL_DIR: dir });
    const packets = 10;
    for (let n = 0; n < packets; n++) await rig.send(datagram(n, FLOWS));
    await rig.received();
    await sleep(1_500);
    rig.collector.kill("SIGKILL");
    await rig.collector.exited;
    const real = otlpFiles(dir).map((e) => e.name).sort();
    // Sequence 0: below every real batch, so it is the first one read.
    Deno.writeFileSync(join(dir, "0000000000000000.otlp"), crypto.getRandomValues(new Uint8Array(200)));
    Deno.writeTextFileSync(join(dir, "notes.txt"), "not a batch\n");
    await rig.up();
    await rig.start({ NETFLOW_SPOOL_DIR: dir });
    await rig.idle();
    const t = await rig.stop();
    const log = rig.log();
    const skips = log.split("\n").filter((l) =>
      /WARNING spool: skipping a file that is not a readable batch/.test(l)
    );
    rig.note({
      real_batches: real.length,
      skipped: skips.length,
      flows_restored: t.flows_restored,
      arrived: tally(rig.spans(), []).arrived,
    });
    assert.ok(real.length > 0);
    assert.equal(skips.length, 2, skips.join("\n"));
    assert.ok(skips.some((l) => l.includes("0000000000000000.otlp")));
    assert.ok(skips.some((l) => l.includes("notes.txt")));
    assert.ok(logLine(log, /INFO spool: replaying /));
    assertExactlyOnce(rig, range(0, packets * FLOWS));
    assertWhole(rig);
    assert.equal(t.flows_restored, packets * FLOWS);
    assert.equal(t.spans_failed + t.spans_dropped, 0);
    Deno.removeSync(dir, { recursive: true });
  },
  { start: false },
);
