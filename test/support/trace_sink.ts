/**
 * A light OTLP trace receiver in its own process, for integrity tests at volume (SPEC §2, "every trace is
 * whole"). It walks each ExportTraceServiceRequest with a number-only varint reader, keeps per trace ID only
 * what the check needs (roots, the process_flows span, flow spans and their parents) and every span ID seen,
 * and can be told to fail or go down over a separate control port. It runs apart from the test process so
 * that its work is not the test's, and it shares the CPU with the collector lightly: no attribute maps, no
 * BigInt, no span objects (about 2 s of CPU for 200,000 flows). gRPC is served by ./grpc_server.ts, not
 * node:http2 (see there for why).
 *
 * Server: `deno run -A test/support/trace_sink.ts --grpc PORT|--http PORT [--control PORT] [--down]`
 * (port 0: any free port; prints one JSON ready line with the ports). Client: {@link startTraceSink}.
 *
 * Control (JSON over HTTP): `POST /mode` with any of `{"fail": {"http": 503, "grpc": 14,
 * "retryAfterSeconds": 1} | null, "delayMs": N, "down": true|false}`; `GET /summary` returns a
 * {@link TraceSummary}.
 * State is kept across down/up. A trace whose spans straddle requests is incomplete until its last request
 * arrived, so read the summary once the collector has stopped or drained.
 */
import { cpuUsage } from "node:process";
import { gunzipSync } from "node:zlib";
import { type GrpcAnswer, type GrpcCall, grpcRetryInfoDetails, startGrpcServer } from "./grpc_server.ts";
import { fromFileUrl } from "./paths.ts";

/** What the sink saw. Only accepted requests count towards spans and traces. */
export interface TraceSummary {
  /** Export requests that arrived: accepted + rejected (fault mode) + bad (undecodable) + abandoned. */
  requests: number;
  acceptedRequests: number;
  rejectedRequests: number;
  /** Requests that could not be decoded (answered 400 / INVALID_ARGUMENT). */
  badRequests: number;
  /** Requests whose client went away during a delay: not counted, as a backend that never committed them. */
  abandonedRequests: number;
  spans: number;
  traces: number;
  brokenTraces: number;
  duplicateSpanIds: number;
  /** Spans with a trace ID that is not 16 bytes or a span ID that is not 8 bytes. */
  invalidIds: number;
  /** Spans other than netflow.export, netflow.process_flows and netflow.flow. */
  otherSpans: number;
  flowSpans: number;
  rootSpans: number;
  maxSpansPerRequest: number;
  minSpansPerRequest: number;
  /** The first broken trace found and why, "" when none. */
  firstBroken: string;
  /** CPU time the sink process used so far (user + system), to show it stayed light. */
  cpuSeconds: number;
}

export interface SinkFault {
  /** HTTP status for http/protobuf (default 503). */
  http?: number;
  /** gRPC status for gRPC (default 14, UNAVAILABLE). */
  grpc?: number;
  /** Sent as Retry-After (HTTP) or google.rpc.RetryInfo (gRPC). */
  retryAfterSeconds?: number;
}

export interface SinkMode {
  /** Reject every export request (not counted as received); null accepts again. */
  fail?: SinkFault | null;
  /** Answer every export request this much later. */
  delayMs?: number;
  /** true closes the OTLP listener and its connections (connection refused); false listens again. */
  down?: boolean;
}

export type SinkProtocol = "grpc" | "http/protobuf";

// ---------------------------------------------------------------------------------------------------------
// Protobuf walking: one shared cursor, numbers only (span counts and IDs never need 64-bit precision).
// ---------------------------------------------------------------------------------------------------------

let pos = 0;

function varint(b: Uint8Array, end: number): number {
  let x = b[pos++];
  if (x < 0x80 && pos <= end) return x;
  let v = x & 0x7f, mul = 128;
  for (let i = 0; i < 9; i++) {
    if (pos >= end) break;
    x = b[pos++];
    v += (x & 0x7f) * mul;
    if (x < 0x80) return v;
    mul *= 128;
  }
  throw new Error("protobuf: truncated or overlong varint");
}

/** Skips a field's value; for LEN fields returns nothing but checks the length fits. */
function skip(b: Uint8Array, wire: number, end: number): void {
  if (wire === 0) varint(b, end);
  else if (wire === 1) pos += 8;
  else if (wire === 5) pos += 4;
  else if (wire === 2) {
    const n = varint(b, end); // not `pos += varint()`: that reads pos before varint moves it
    pos += n;
  } else throw new Error(`protobuf: wire type ${wire}`);
  if (pos > end) throw new Error("protobuf: truncated field");
}

/** The end of the LEN field whose length is at `pos` (pos moves to its payload). */
function lenEnd(b: Uint8Array, end: number): number {
  const n = varint(b, end);
  const e = pos + n;
  if (e > end) throw new Error("protobuf: truncated field");
  return e;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

function hex(b: Uint8Array, s: number, e: number): string {
  let out = "";
  for (let i = s; i < e; i++) out += HEX[b[i]];
  return out;
}

const ascii = (s: string) => new TextEncoder().encode(s);
const ROOT = ascii("netflow.export");
const PROCESS = ascii("netflow.process_flows");
const FLOW = ascii("netflow.flow");
const COUNT_KEY = ascii("netflow.flow.count");

function bytesEqual(b: Uint8Array, s: number, e: number, want: Uint8Array): boolean {
  if (e - s !== want.length) return false;
  for (let i = 0; i < want.length; i++) if (b[s + i] !== want[i]) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------------------
// The books
// ---------------------------------------------------------------------------------------------------------

/** Per trace ID: just enough to decide whether the trace is whole. */
interface Trace {
  roots: number;
  rootSid: string;
  rootHasParent: boolean;
  /** netflow.flow.count of the (last) root; -1 while unknown. */
  count: number;
  procs: number;
  procSid: string;
  procParent: string;
  flows: number;
  flowParent: string;
  flowParentsDiffer: boolean;
  other: number;
}

const traces = new Map<string, Trace>();
const spanIds = new Set<string>();
const s = {
  requests: 0,
  acceptedRequests: 0,
  rejectedRequests: 0,
  badRequests: 0,
  abandonedRequests: 0,
  spans: 0,
  duplicateSpanIds: 0,
  invalidIds: 0,
  otherSpans: 0,
  flowSpans: 0,
  rootSpans: 0,
  maxSpansPerRequest: 0,
  minSpansPerRequest: 0,
};

const KIND_OTHER = 0, KIND_ROOT = 1, KIND_PROCESS = 2, KIND_FLOW = 3;

/** One decoded span, before it is booked: IDs as hex ("" when absent). */
interface SpanFields {
  tid: string;
  sid: string;
  pid: string;
  /** A 16-byte trace ID and an 8-byte span ID. */
  validIds: boolean;
  kind: number;
  /** netflow.flow.count of a root, else -1. */
  count: number;
}

/** netflow.flow.count from the span's attributes (field 9, KeyValue), or -1. Called for roots only. */
function flowCount(b: Uint8Array, start: number, end: number): number {
  pos = start;
  while (pos < end) {
    const key = varint(b, end);
    if (key !== 0x4a /* 9, LEN */) {
      skip(b, key & 7, end);
      continue;
    }
    const kvEnd = lenEnd(b, end);
    let isCount = false, value = -1;
    while (pos < kvEnd) {
      const k = varint(b, kvEnd);
      if (k === 0x0a /* key */) {
        const e = lenEnd(b, kvEnd);
        isCount = bytesEqual(b, pos, e, COUNT_KEY);
        pos = e;
      } else if (k === 0x12 /* value: AnyValue */) {
        const e = lenEnd(b, kvEnd);
        while (pos < e) {
          const ak = varint(b, e);
          if (ak === 0x18 /* int_value */) value = varint(b, e);
          else skip(b, ak & 7, e);
        }
        pos = e;
      } else skip(b, k & 7, kvEnd);
    }
    pos = kvEnd;
    if (isCount) return value;
  }
  return -1;
}

function decodeSpan(b: Uint8Array, start: number, end: number, out: SpanFields): void {
  pos = start;
  out.tid = out.sid = out.pid = "";
  out.kind = KIND_OTHER;
  out.count = -1;
  let tidLen = 0, sidLen = 0;
  while (pos < end) {
    const key = varint(b, end);
    const field = key >>> 3, wire = key & 7;
    if (wire !== 2 || (field !== 1 && field !== 2 && field !== 4 && field !== 5)) {
      skip(b, wire, end);
      continue;
    }
    const e = lenEnd(b, end);
    if (field === 1) (out.tid = hex(b, pos, e)), (tidLen = e - pos);
    else if (field === 2) (out.sid = hex(b, pos, e)), (sidLen = e - pos);
    else if (field === 4) out.pid = hex(b, pos, e);
    else {
      out.kind = bytesEqual(b, pos, e, FLOW)
        ? KIND_FLOW
        : bytesEqual(b, pos, e, ROOT)
        ? KIND_ROOT
        : bytesEqual(b, pos, e, PROCESS)
        ? KIND_PROCESS
        : KIND_OTHER;
    }
    pos = e;
  }
  out.validIds = tidLen === 16 && sidLen === 8;
  if (out.kind === KIND_ROOT) out.count = flowCount(b, start, end);
}

const span: SpanFields = { tid: "", sid: "", pid: "", validIds: false, kind: 0, count: -1 };

function book(f: SpanFields): void {
  s.spans++;
  if (!f.validIds) s.invalidIds++;
  if (spanIds.has(f.sid)) s.duplicateSpanIds++;
  else spanIds.add(f.sid);
  let t = traces.get(f.tid);
  if (t === undefined) {
    t = {
      roots: 0,
      rootSid: "",
      rootHasParent: false,
      count: -1,
      procs: 0,
      procSid: "",
      procParent: "",
      flows: 0,
      flowParent: "",
      flowParentsDiffer: false,
      other: 0,
    };
    traces.set(f.tid, t);
  }
  if (f.kind === KIND_FLOW) {
    s.flowSpans++;
    if (t.flows++ === 0) t.flowParent = f.pid;
    else if (f.pid !== t.flowParent) t.flowParentsDiffer = true;
  } else if (f.kind === KIND_ROOT) {
    s.rootSpans++;
    t.roots++;
    t.rootSid = f.sid;
    t.rootHasParent ||= f.pid !== "";
    t.count = f.count;
  } else if (f.kind === KIND_PROCESS) {
    t.procs++;
    t.procSid = f.sid;
    t.procParent = f.pid;
  } else {
    s.otherSpans++;
    t.other++;
  }
}

/** Decodes a whole request before booking any of it, so that an undecodable request changes nothing. */
function acceptRequest(b: Uint8Array): void {
  const found: SpanFields[] = [];
  const end = b.length;
  pos = 0;
  while (pos < end) {
    const key = varint(b, end);
    if (key !== 0x0a /* resource_spans */) {
      skip(b, key & 7, end);
      continue;
    }
    const rsEnd = lenEnd(b, end);
    while (pos < rsEnd) {
      const k = varint(b, rsEnd);
      if (k !== 0x12 /* scope_spans */) {
        skip(b, k & 7, rsEnd);
        continue;
      }
      const ssEnd = lenEnd(b, rsEnd);
      while (pos < ssEnd) {
        const k2 = varint(b, ssEnd);
        if (k2 !== 0x12 /* spans */) {
          skip(b, k2 & 7, ssEnd);
          continue;
        }
        const spEnd = lenEnd(b, ssEnd);
        decodeSpan(b, pos, spEnd, span);
        found.push({ ...span });
        pos = spEnd;
      }
      pos = ssEnd;
    }
    pos = rsEnd;
  }
  for (const f of found) book(f);
  s.acceptedRequests++;
  if (found.length > s.maxSpansPerRequest) s.maxSpansPerRequest = found.length;
  if (s.acceptedRequests === 1 || found.length < s.minSpansPerRequest) s.minSpansPerRequest = found.length;
}

/** Why trace `t` is not whole, or "" when it is. */
function brokenReason(t: Trace): string {
  if (t.roots !== 1) return `${t.roots} netflow.export roots`;
  if (t.rootHasParent) return "root has a parent";
  if (t.procs !== 1) return `${t.procs} netflow.process_flows spans`;
  if (t.procParent !== t.rootSid) return "process_flows is not a child of the root";
  if (t.count < 0) return "root without netflow.flow.count";
  if (t.flows !== t.count) return `${t.flows} flow spans, netflow.flow.count ${t.count}`;
  if (t.flows > 0 && (t.flowParentsDiffer || t.flowParent !== t.procSid)) {
    return "flow spans not all children of process_flows";
  }
  if (t.other > 0) return `${t.other} other spans`;
  return "";
}

function summary(): TraceSummary {
  let brokenTraces = 0, firstBroken = "";
  for (const [tid, t] of traces) {
    const why = brokenReason(t);
    if (why === "") continue;
    brokenTraces++;
    if (firstBroken === "") {
      firstBroken = `trace ${tid}: ${why} (roots ${t.roots}, process_flows ${t.procs}, flows ${t.flows})`;
    }
  }
  const cpu = cpuUsage();
  return { ...s, traces: traces.size, brokenTraces, firstBroken, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

// ---------------------------------------------------------------------------------------------------------
// Server: OTLP listener (gRPC h2c or http/protobuf), fault modes, control port
// ---------------------------------------------------------------------------------------------------------

const mode: { fail: SinkFault | null; delayMs: number } = { fail: null, delayMs: 0 };
/** Requests waiting out a delay; going down ends their wait at once (they are then not counted). */
const waiting = new Set<() => void>();
/** False from the moment the listener starts going down: what is still in flight is answered, not counted. */
let listening = true;
let generation = 0;

/** Waits `mode.delayMs`; false when the listener is or went down meanwhile (the request is not booked). */
async function delay(): Promise<boolean> {
  if (mode.delayMs <= 0) return listening;
  const gen = generation;
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      waiting.delete(done);
      resolve();
    };
    const timer = setTimeout(done, mode.delayMs);
    waiting.add(done);
  });
  return listening && gen === generation;
}

/** Counts an undecodable request; the first few are logged, for the test's failure message. */
function bad(e: unknown): void {
  if (s.badRequests++ < 5) console.error(`trace sink: bad request: ${e}`);
}

function inflate(body: Uint8Array, gzip: boolean): Uint8Array {
  return gzip ? new Uint8Array(gunzipSync(body)) : body;
}

interface Listener {
  close(): Promise<void>;
}

async function listenHttp(port: number): Promise<{ port: number; listener: Listener }> {
  const ready = Promise.withResolvers<number>();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port,
    onListen: (addr) => ready.resolve(addr.port),
    onError: () => new Response(null, { status: 500 }),
  }, async (req) => {
    if (req.method !== "POST" || new URL(req.url).pathname !== "/v1/traces") {
      return new Response(null, { status: 404 });
    }
    const raw = new Uint8Array(await req.arrayBuffer());
    s.requests++;
    if (!(await delay()) || req.signal.aborted) {
      s.abandonedRequests++;
      return new Response(null, { status: 503 });
    }
    if (mode.fail) {
      s.rejectedRequests++;
      const headers: Record<string, string> = { "content-type": "text/plain" };
      if (mode.fail.retryAfterSeconds !== undefined) {
        headers["retry-after"] = String(mode.fail.retryAfterSeconds);
      }
      return new Response("unavailable (trace sink fault mode)", { status: mode.fail.http ?? 503, headers });
    }
    try {
      acceptRequest(inflate(raw, req.headers.get("content-encoding") === "gzip"));
    } catch (e) {
      bad(e);
      return new Response(String(e), { status: 400 });
    }
    // An empty ExportTraceServiceResponse is zero bytes.
    return new Response(null, { status: 200, headers: { "content-type": "application/x-protobuf" } });
  });
  return { port: await ready.promise, listener: { close: () => server.shutdown() } };
}

/** One unary TraceService/Export call, fully received: its answer. */
async function handleGrpc(call: GrpcCall): Promise<GrpcAnswer> {
  s.requests++;
  if (!(await delay()) || call.abandoned) {
    s.abandonedRequests++;
    return { status: 14, message: "gone down" };
  }
  if (mode.fail) {
    s.rejectedRequests++;
    const status = mode.fail.grpc ?? 14, message = "unavailable (trace sink fault mode)";
    const retry = mode.fail.retryAfterSeconds;
    return {
      status,
      message,
      details: retry === undefined ? undefined : grpcRetryInfoDetails(status, message, retry),
    };
  }
  const body = call.body;
  try {
    // One message per unary call, but walk the frames anyway; a trailing partial frame is malformed.
    const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    let off = 0;
    do {
      if (off + 5 > body.length) throw new Error("truncated gRPC frame");
      const n = view.getUint32(off + 1);
      if (off + 5 + n > body.length) throw new Error("truncated gRPC message");
      acceptRequest(inflate(body.subarray(off + 5, off + 5 + n), body[off] === 1));
      off += 5 + n;
    } while (off < body.length);
  } catch (e) {
    bad(e);
    return { status: 3, message: String(e) };
  }
  return { status: 0, message: "" };
}

async function listenGrpc(port: number): Promise<{ port: number; listener: Listener }> {
  const server = await startGrpcServer(handleGrpc, { port, close: "graceful" });
  return { port: server.port, listener: server };
}

async function serve(): Promise<void> {
  const args = Deno.args;
  const flag = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args[i + 1]) : undefined;
  };
  const protocol: SinkProtocol = flag("grpc") !== undefined ? "grpc" : "http/protobuf";
  const listen = protocol === "grpc" ? listenGrpc : listenHttp;
  let port = flag("grpc") ?? flag("http") ?? 0;
  let listener: Listener | undefined;
  // Bind once even when starting down, so the port is known and stays the same across down/up.
  ({ port, listener } = await listen(port));
  if (args.includes("--down")) {
    listening = false;
    await listener.close();
    listener = undefined;
  }
  let switching = Promise.resolve();
  const setDown = (down: boolean) =>
    switching = switching.then(async () => {
      if (down && listener) {
        listening = false;
        generation++;
        for (const done of [...waiting]) done();
        await listener.close();
        listener = undefined;
      } else if (!down && !listener) {
        ({ listener } = await listen(port));
        listening = true;
      }
    });

  const control = Deno.serve({
    hostname: "127.0.0.1",
    port: flag("control") ?? 0,
    onListen: () => {},
  }, async (req) => {
    const path = new URL(req.url).pathname;
    if (req.method === "GET" && path === "/summary") return Response.json(summary());
    if (req.method === "POST" && path === "/mode") {
      const body = await req.json() as SinkMode;
      if (body.fail !== undefined) mode.fail = body.fail;
      if (body.delayMs !== undefined) mode.delayMs = body.delayMs;
      if (body.down !== undefined) await setDown(body.down);
      return Response.json({ ...mode, down: listener === undefined });
    }
    return new Response("not found", { status: 404 });
  });
  console.log(JSON.stringify({ ready: true, protocol, port, control: control.addr.port }));

  // With --watch-stdin the sink ends when its parent does (stdin closes), so no test leaves one behind.
  if (args.includes("--watch-stdin")) {
    for await (const _ of Deno.stdin.readable) { /* wait for EOF */ }
    Deno.exit(0);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Client, for tests
// ---------------------------------------------------------------------------------------------------------

export interface TraceSink {
  protocol: SinkProtocol;
  /** The OTLP endpoint to give the collector (OTEL_EXPORTER_OTLP_ENDPOINT). */
  url: string;
  port: number;
  controlPort: number;
  setMode(mode: SinkMode): Promise<void>;
  summary(): Promise<TraceSummary>;
  /** Polls the summary until `done(summary)` or `timeoutMs` passed; returns the last summary either way. */
  waitFor(done: (s: TraceSummary) => boolean, timeoutMs: number): Promise<TraceSummary>;
  /** What the sink wrote to stderr (for failure messages). */
  stderr(): string;
  close(): Promise<void>;
}

/** Starts the sink as a child process and waits until it listens (or, with `down`, knows its port). */
export async function startTraceSink(
  options: { protocol: SinkProtocol | "http"; port?: number; down?: boolean },
): Promise<TraceSink> {
  const protocol: SinkProtocol = options.protocol === "grpc" ? "grpc" : "http/protobuf";
  const args = [
    "run",
    "-A",
    // request.signal then means "the client went away", not also "answered" (and Deno stops warning).
    "--unstable-no-legacy-abort",
    fromFileUrl(import.meta.url),
    protocol === "grpc" ? "--grpc" : "--http",
    String(options.port ?? 0),
    "--watch-stdin",
    ...(options.down ? ["--down"] : []),
  ];
  const child = new Deno.Command(Deno.execPath(), { args, stdin: "piped", stdout: "piped", stderr: "piped" })
    .spawn();
  let out = "", err = "";
  const ready = Promise.withResolvers<{ port: number; control: number }>();
  const pump = async (stream: ReadableStream<Uint8Array>, onText: (t: string) => void) => {
    for await (const t of stream.pipeThrough(new TextDecoderStream())) onText(t);
  };
  const pumps = Promise.all([
    pump(child.stdout, (t) => {
      out += t;
      const line = out.split("\n").find((l) => l.startsWith('{"ready"'));
      if (line) ready.resolve(JSON.parse(line));
    }),
    pump(child.stderr, (t) => (err += t)),
  ]).catch(() => {});
  const exited = child.status.then((st) => {
    ready.reject(new Error(`trace sink exited with ${st.code} before it was ready:\n${err}`));
    return st;
  });
  const timer = setTimeout(() => ready.reject(new Error(`trace sink not ready after 20 s:\n${err}`)), 20_000);
  let ports;
  try {
    ports = await ready.promise;
  } catch (e) {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await exited;
    throw e;
  } finally {
    clearTimeout(timer);
  }
  const control = `http://127.0.0.1:${ports.control}`;
  const stdin = child.stdin.getWriter();
  const summary = async (): Promise<TraceSummary> => {
    const res = await fetch(`${control}/summary`).catch((e) => {
      throw new Error(`trace sink unreachable (${e}); its stderr:\n${err}`);
    });
    return await res.json();
  };
  return {
    protocol,
    url: `http://127.0.0.1:${ports.port}`,
    port: ports.port,
    controlPort: ports.control,
    async setMode(m) {
      const res = await fetch(`${control}/mode`, { method: "POST", body: JSON.stringify(m) });
      if (!res.ok) throw new Error(`trace sink /mode: HTTP ${res.status}`);
      await res.body?.cancel();
    },
    summary,
    async waitFor(done, timeoutMs) {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const sum = await summary();
        if (done(sum) || performance.now() >= deadline) return sum;
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    stderr: () => err,
    async close() {
      await stdin.close().catch(() => {});
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 2_000);
      await exited;
      clearTimeout(timer);
      await pumps;
    },
  };
}

if (import.meta.main) await serve();
