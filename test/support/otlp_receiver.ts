/**
 * A real OTLP trace receiver for tests, in-process and without dependencies: http/protobuf (node:http,
 * `POST /v1/traces`) or gRPC (./grpc_server.ts, unary `TraceService/Export`). It decodes every request with the
 * small protobuf walker below and keeps the spans, so a test can assert on what actually went over the wire.
 *
 * ```ts
 * const receiver = await startOtlpReceiver({ protocol: "grpc" });
 * // … point an exporter at receiver.url …
 * const spans = await receiver.waitForSpans(3, 5_000);
 * await receiver.close();
 * ```
 */
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { Buffer } from "node:buffer";
import zlib from "node:zlib";
import {
  type GrpcAnswer,
  grpcRetryInfoDetails,
  type GrpcServerTls,
  pbLen,
  pbString,
  pbUint,
  startGrpcServer,
} from "./grpc_server.ts";

// ---------------------------------------------------------------------------------------------------------
// Protobuf wire decoding (OTLP trace v1 field numbers)
// ---------------------------------------------------------------------------------------------------------

/** An attribute value as decoded from an OTLP `AnyValue`. `null` for an empty AnyValue. */
export type AttributeValue =
  | string
  | number
  | boolean
  | bigint
  | Uint8Array
  | null
  | AttributeValue[]
  | { [key: string]: AttributeValue };

export type Attributes = Record<string, AttributeValue>;

export interface DecodedEvent {
  name: string;
  timeNs: bigint;
  attributes: Attributes;
}

export interface DecodedLink {
  traceId: string;
  spanId: string;
  attributes: Attributes;
}

/** One span, flattened with its resource and scope. Ids are lowercase hex, `""` when absent. */
export interface DecodedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  traceState: string;
  name: string;
  /** OTLP `Span.SpanKind`: 0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  startNs: bigint;
  endNs: bigint;
  attributes: Attributes;
  droppedAttributesCount: number;
  events: DecodedEvent[];
  links: DecodedLink[];
  /** OTLP `Status.StatusCode`: 0 unset, 1 ok, 2 error. */
  status: { code: number; message: string };
  flags: number;
  resource: Attributes;
  scope: { name: string; version: string };
}

const WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_I32 = 5;
const utf8 = new TextDecoder();

/** A cursor over one protobuf message. */
class Reader {
  private readonly view: DataView;
  pos: number;
  constructor(private readonly buf: Uint8Array, start = 0, readonly end = buf.length) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = start;
  }

  /** Next field as [field number, wire type], or undefined at the end of the message. */
  tag(): [number, number] | undefined {
    if (this.pos >= this.end) return undefined;
    const t = Number(this.varint());
    return [t >>> 3, t & 7];
  }

  varint(): bigint {
    let result = 0n, shift = 0n;
    for (;;) {
      if (this.pos >= this.end) throw new Error("protobuf: truncated varint");
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return result;
      shift += 7n;
      if (shift > 63n) throw new Error("protobuf: varint too long");
    }
  }

  uint(): number {
    return Number(this.varint());
  }

  fixed64(): bigint {
    this.need(8);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }

  double(): number {
    this.need(8);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  fixed32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** The payload of a length-delimited field (a view, not a copy). */
  bytes(): Uint8Array {
    const n = this.uint();
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  string(): string {
    return utf8.decode(this.bytes());
  }

  skip(wire: number): void {
    if (wire === WIRE_VARINT) this.varint();
    else if (wire === WIRE_I64) this.fixed64();
    else if (wire === WIRE_LEN) this.bytes();
    else if (wire === WIRE_I32) this.fixed32();
    else throw new Error(`protobuf: unsupported wire type ${wire}`);
  }

  private need(n: number): void {
    if (this.pos + n > this.end) throw new Error("protobuf: truncated field");
  }
}

/** Walks the fields of `buf`, calling `on(field, wireType, reader)`; unhandled fields must return false. */
function walk(buf: Uint8Array, on: (field: number, wire: number, r: Reader) => boolean | void): void {
  const r = new Reader(buf);
  for (let t = r.tag(); t; t = r.tag()) {
    const [field, wire] = t;
    if (on(field, wire, r) === false) r.skip(wire);
  }
}

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/** int64 → number when it is a safe integer, else bigint. */
function int64(v: bigint): number | bigint {
  const signed = BigInt.asIntN(64, v);
  return signed >= BigInt(Number.MIN_SAFE_INTEGER) && signed <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(signed)
    : signed;
}

function decodeAnyValue(buf: Uint8Array): AttributeValue {
  let value: AttributeValue = null;
  walk(buf, (field, wire, r) => {
    if (field === 1 && wire === WIRE_LEN) value = r.string();
    else if (field === 2 && wire === WIRE_VARINT) value = r.varint() !== 0n;
    else if (field === 3 && wire === WIRE_VARINT) value = int64(r.varint());
    else if (field === 4 && wire === WIRE_I64) value = r.double();
    else if (field === 5 && wire === WIRE_LEN) {
      const items: AttributeValue[] = [];
      walk(
        r.bytes(),
        (f, w, rr) => f === 1 && w === WIRE_LEN ? void items.push(decodeAnyValue(rr.bytes())) : false,
      );
      value = items;
    } else if (field === 6 && wire === WIRE_LEN) value = decodeKeyValueList(r.bytes());
    else if (field === 7 && wire === WIRE_LEN) value = r.bytes().slice();
    else return false;
  });
  return value;
}

/** KeyValueList / any message whose field 1 is `repeated KeyValue`. */
function decodeKeyValueList(buf: Uint8Array): Attributes {
  const out: Attributes = {};
  walk(buf, (field, wire, r) => field === 1 && wire === WIRE_LEN ? addKeyValue(out, r.bytes()) : false);
  return out;
}

function addKeyValue(into: Attributes, buf: Uint8Array): void {
  let key = "";
  let value: AttributeValue = null;
  walk(buf, (field, wire, r) => {
    if (field === 1 && wire === WIRE_LEN) key = r.string();
    else if (field === 2 && wire === WIRE_LEN) value = decodeAnyValue(r.bytes());
    else return false;
  });
  into[key] = value;
}

function decodeEvent(buf: Uint8Array): DecodedEvent {
  const event: DecodedEvent = { name: "", timeNs: 0n, attributes: {} };
  walk(buf, (field, wire, r) => {
    if (field === 1 && wire === WIRE_I64) event.timeNs = r.fixed64();
    else if (field === 2 && wire === WIRE_LEN) event.name = r.string();
    else if (field === 3 && wire === WIRE_LEN) addKeyValue(event.attributes, r.bytes());
    else return false;
  });
  return event;
}

function decodeLink(buf: Uint8Array): DecodedLink {
  const link: DecodedLink = { traceId: "", spanId: "", attributes: {} };
  walk(buf, (field, wire, r) => {
    if (field === 1 && wire === WIRE_LEN) link.traceId = hex(r.bytes());
    else if (field === 2 && wire === WIRE_LEN) link.spanId = hex(r.bytes());
    else if (field === 4 && wire === WIRE_LEN) addKeyValue(link.attributes, r.bytes());
    else return false;
  });
  return link;
}

function decodeStatus(buf: Uint8Array): { code: number; message: string } {
  const status = { code: 0, message: "" };
  walk(buf, (field, wire, r) => {
    if (field === 2 && wire === WIRE_LEN) status.message = r.string();
    else if (field === 3 && wire === WIRE_VARINT) status.code = r.uint();
    else return false;
  });
  return status;
}

function decodeSpan(buf: Uint8Array, resource: Attributes, scope: DecodedSpan["scope"]): DecodedSpan {
  const span: DecodedSpan = {
    traceId: "",
    spanId: "",
    parentSpanId: "",
    traceState: "",
    name: "",
    kind: 0,
    startNs: 0n,
    endNs: 0n,
    attributes: {},
    droppedAttributesCount: 0,
    events: [],
    links: [],
    status: { code: 0, message: "" },
    flags: 0,
    resource,
    scope,
  };
  walk(buf, (field, wire, r) => {
    if (wire === WIRE_LEN) {
      if (field === 1) span.traceId = hex(r.bytes());
      else if (field === 2) span.spanId = hex(r.bytes());
      else if (field === 3) span.traceState = r.string();
      else if (field === 4) span.parentSpanId = hex(r.bytes());
      else if (field === 5) span.name = r.string();
      else if (field === 9) addKeyValue(span.attributes, r.bytes());
      else if (field === 11) span.events.push(decodeEvent(r.bytes()));
      else if (field === 13) span.links.push(decodeLink(r.bytes()));
      else if (field === 15) span.status = decodeStatus(r.bytes());
      else return false;
    } else if (wire === WIRE_VARINT && field === 6) span.kind = r.uint();
    else if (wire === WIRE_VARINT && field === 10) span.droppedAttributesCount = r.uint();
    else if (wire === WIRE_I64 && field === 7) span.startNs = r.fixed64();
    else if (wire === WIRE_I64 && field === 8) span.endNs = r.fixed64();
    else if (wire === WIRE_I32 && field === 16) span.flags = r.fixed32();
    else return false;
  });
  return span;
}

function decodeScopeSpans(buf: Uint8Array, resource: Attributes, out: DecodedSpan[]): void {
  const scope = { name: "", version: "" };
  const spans: Uint8Array[] = [];
  walk(buf, (field, wire, r) => {
    if (field === 1 && wire === WIRE_LEN) {
      walk(r.bytes(), (f, w, rr) => {
        if (f === 1 && w === WIRE_LEN) scope.name = rr.string();
        else if (f === 2 && w === WIRE_LEN) scope.version = rr.string();
        else return false;
      });
    } else if (field === 2 && wire === WIRE_LEN) spans.push(r.bytes());
    else return false;
  });
  // The scope may follow its spans on the wire; decode spans once it is known.
  for (const s of spans) out.push(decodeSpan(s, resource, scope));
}

/**
 * Decodes an `ExportTraceServiceRequest` (protobuf bytes) into flat spans, in wire order.
 * Throws on malformed input.
 */
export function decodeTraceRequest(bytes: Uint8Array): DecodedSpan[] {
  const out: DecodedSpan[] = [];
  walk(bytes, (field, wire, r) => {
    if (field !== 1 || wire !== WIRE_LEN) return false;
    let resource: Attributes = {};
    const scopeSpans: Uint8Array[] = [];
    walk(r.bytes(), (f, w, rr) => {
      if (f === 1 && w === WIRE_LEN) resource = decodeKeyValueList(rr.bytes());
      else if (f === 2 && w === WIRE_LEN) scopeSpans.push(rr.bytes());
      else return false;
    });
    for (const s of scopeSpans) decodeScopeSpans(s, resource, out);
  });
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------------------------

export const GRPC_TRACE_EXPORT_PATH = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
export const GRPC_METRICS_EXPORT_PATH = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

/** One data point of an OTLP metric, as far as the tests need it. */
export interface DecodedMetricPoint {
  value: number;
  attributes: Attributes;
}

/** One metric of an `ExportMetricsServiceRequest` (sum or gauge). */
export interface DecodedMetric {
  name: string;
  kind: "sum" | "gauge" | "other";
  points: DecodedMetricPoint[];
  resource: Attributes;
}

function decodeNumberPoint(buf: Uint8Array): DecodedMetricPoint {
  const point: DecodedMetricPoint = { value: NaN, attributes: {} };
  walk(buf, (field, wire, r) => {
    if (field === 4 && wire === WIRE_I64) point.value = r.double();
    else if (field === 6 && wire === WIRE_I64) point.value = Number(BigInt.asIntN(64, r.fixed64()));
    else if (field === 7 && wire === WIRE_LEN) addKeyValue(point.attributes, r.bytes());
    else return false;
  });
  return point;
}

/** Decodes an `ExportMetricsServiceRequest` (sums and gauges of number points). */
export function decodeMetricsRequest(bytes: Uint8Array): DecodedMetric[] {
  const out: DecodedMetric[] = [];
  walk(bytes, (field, wire, r) => {
    if (field !== 1 || wire !== WIRE_LEN) return false;
    let resource: Attributes = {};
    const scopes: Uint8Array[] = [];
    walk(r.bytes(), (f, w, rr) => {
      if (f === 1 && w === WIRE_LEN) resource = decodeKeyValueList(rr.bytes());
      else if (f === 2 && w === WIRE_LEN) scopes.push(rr.bytes());
      else return false;
    });
    for (const scope of scopes) {
      walk(scope, (f, w, rr) => {
        if (f !== 2 || w !== WIRE_LEN) return false;
        const metric: DecodedMetric = { name: "", kind: "other", points: [], resource };
        walk(rr.bytes(), (mf, mw, mr) => {
          if (mf === 1 && mw === WIRE_LEN) metric.name = mr.string();
          else if ((mf === 5 || mf === 7) && mw === WIRE_LEN) {
            metric.kind = mf === 7 ? "sum" : "gauge";
            walk(mr.bytes(), (df, dw, dr) => {
              if (df === 1 && dw === WIRE_LEN) metric.points.push(decodeNumberPoint(dr.bytes()));
              else return false;
            });
          } else return false;
        });
        out.push(metric);
      });
    }
  });
  return out;
}

/** How a failing receiver answers (defaults: HTTP 503, gRPC 14 UNAVAILABLE). */
export interface FailWith {
  httpStatus?: number;
  grpcStatus?: number;
  message?: string;
  /**
   * Ask the client to wait this long: HTTP `Retry-After: N`; gRPC a google.rpc.Status with a
   * google.rpc.RetryInfo detail in `grpc-status-details-bin`.
   */
  retryAfterSeconds?: number;
  /**
   * Accept the request (its spans are kept) but answer with an OTLP partial success: `rejectedSpans` of it
   * refused, `message` as error_message. The status fields above do not apply then.
   */
  partialSuccess?: { rejectedSpans: number; message?: string };
  /** Answer only the next this-many export requests this way, then accept again. */
  times?: number;
}

/** What became of one export request, in arrival order ({@link Receiver.requestLog}). */
export interface RequestRecord {
  /** `Date.now()` when its body had arrived (before any delay). */
  at: number;
  /**
   * `accepted`; `partial` (accepted with a partial success); `rejected` (failing mode); `abandoned` (the
   * client gave up during a delay, so nothing was kept); `bad` (could not be decoded).
   */
  outcome: "accepted" | "partial" | "rejected" | "abandoned" | "bad";
  /** Spans in the request (-1 when it could not be decoded). */
  spans: number;
  /** The first span's ID: tells a retried request (same bytes) from a new one. `""` when none. */
  firstSpanId: string;
}

export interface ReceiverOptions {
  protocol: "http" | "grpc";
  /** 0 (default) picks a free port. */
  port?: number;
  /** Start in failing mode: every export request is rejected (see {@link Receiver.setFailing}). */
  failWith?: FailWith | boolean;
  /** Serve over TLS (https:// endpoint): PEM key and certificate; `ca` + `requestCert` for mutual TLS. */
  tls?: ReceiverTls;
  /** Wait this long before answering each export request (a slow backend); see {@link Receiver.setDelay}. */
  delayMs?: number;
}

export type ReceiverTls = GrpcServerTls;

export interface Receiver {
  readonly protocol: "http" | "grpc";
  /** Base endpoint, e.g. `http://127.0.0.1:PORT` (append nothing for gRPC; `/v1/traces` for HTTP). */
  readonly url: string;
  /** The full HTTP traces endpoint (`url + "/v1/traces"`) or, for gRPC, `url`. */
  readonly tracesUrl: string;
  readonly port: number;
  /** Every span accepted so far, in arrival order. */
  readonly spans: DecodedSpan[];
  /** Export requests received (accepted and rejected). */
  readonly requests: number;
  /** Export requests rejected because the receiver was failing. */
  readonly rejected: number;
  /** Every export request that arrived (rejected, abandoned and undecodable ones too), in arrival order. */
  readonly requestLog: RequestRecord[];
  /** The last export request's headers (lowercase names; gRPC pseudo-headers included). */
  readonly headers: Record<string, string>;
  /** Resolves with all spans once at least `n` have arrived; rejects after `timeoutMs`. */
  waitForSpans(n: number, timeoutMs?: number): Promise<DecodedSpan[]>;
  /** Rejects (true / custom answer) or accepts (false) every following export request. */
  setFailing(failing: boolean | FailWith): void;
  /** Delays every following answer by `ms` (0: answer at once). */
  setDelay(ms: number): void;
  /** Every OTLP metric received (http `/v1/metrics`, gRPC MetricsService), in arrival order. */
  readonly metrics: DecodedMetric[];
  /** Forgets the spans received so far (counters stay). */
  clear(): void;
  close(): Promise<void>;
}

interface State {
  spans: DecodedSpan[];
  requests: number;
  rejected: number;
  requestLog: RequestRecord[];
  headers: Record<string, string>;
  failing: FailWith | undefined;
  waiters: Set<() => void>;
  metrics: DecodedMetric[];
  delayMs: number;
  /** Requests left in the current failing mode when it has {@link FailWith.times}. */
  remaining?: number;
}

function later(state: State, fn: () => void): void {
  if (state.delayMs > 0) setTimeout(fn, state.delayMs);
  else fn();
}

function flattenHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(", ") : v;
  return out;
}

function inflate(body: Uint8Array, encoding: string | undefined): Uint8Array {
  switch ((encoding ?? "identity").toLowerCase()) {
    case "identity":
      return body;
    case "gzip":
      return zlib.gunzipSync(body);
    case "deflate":
      return zlib.inflateSync(body);
    default:
      throw new Error(`unsupported encoding ${encoding}`);
  }
}

/** Keeps the spans of an accepted request; returns them. */
function accept(state: State, body: Uint8Array): DecodedSpan[] {
  const spans = decodeTraceRequest(body);
  for (const s of spans) state.spans.push(s); // push(...spans) overflows the stack for large requests
  for (const wake of [...state.waiters]) wake();
  return spans;
}

/** Logs a request with its spans (undefined: not decodable). */
function record(
  state: State,
  at: number,
  outcome: RequestRecord["outcome"],
  spans: DecodedSpan[] | undefined,
): void {
  state.requestLog.push({ at, outcome, spans: spans?.length ?? -1, firstSpanId: spans?.[0]?.spanId ?? "" });
}

/** The spans of a request that is not kept (rejected, abandoned), for the log; undefined if undecodable. */
function peek(bodies: () => Uint8Array[]): DecodedSpan[] | undefined {
  try {
    return bodies().flatMap((b) => decodeTraceRequest(b));
  } catch {
    return undefined;
  }
}

/** The failing mode to answer this request with (counting down {@link FailWith.times}). */
function takeFailing(state: State): FailWith | undefined {
  const f = state.failing;
  if (f?.times !== undefined) {
    state.remaining = (state.remaining ?? f.times) - 1;
    if (state.remaining <= 0) {
      state.failing = undefined;
      state.remaining = undefined;
    }
  }
  return f;
}

/** ExportTraceServiceResponse{partial_success: {rejected_spans = 1, error_message = 2}}. */
export function partialSuccessResponse(p: { rejectedSpans: number; message?: string }): Uint8Array {
  return new Uint8Array(
    pbLen(1, [...pbUint(1, p.rejectedSpans), ...(p.message ? pbString(2, p.message) : [])]),
  );
}

function failingFrom(v: FailWith | boolean | undefined): FailWith | undefined {
  return v === true ? {} : v === false || v === undefined ? undefined : v;
}

/** Starts a receiver on 127.0.0.1 and resolves once it is listening. */
export async function startOtlpReceiver(options: ReceiverOptions): Promise<Receiver> {
  const state: State = {
    spans: [],
    requests: 0,
    rejected: 0,
    requestLog: [],
    headers: {},
    failing: failingFrom(options.failWith),
    waiters: new Set(),
    metrics: [],
    delayMs: options.delayMs ?? 0,
  };
  const { port, close } = options.protocol === "http"
    ? await startHttp(state, options.port ?? 0, options.tls)
    : await startGrpc(state, options.port ?? 0, options.tls);
  const url = `${options.tls ? "https" : "http"}://127.0.0.1:${port}`;
  let closed: Promise<void> | undefined;
  return {
    protocol: options.protocol,
    url,
    tracesUrl: options.protocol === "http" ? `${url}/v1/traces` : url,
    port,
    get spans() {
      return state.spans;
    },
    get requests() {
      return state.requests;
    },
    get rejected() {
      return state.rejected;
    },
    get requestLog() {
      return state.requestLog;
    },
    get metrics() {
      return state.metrics;
    },
    get headers() {
      return state.headers;
    },
    waitForSpans(n, timeoutMs = 10_000) {
      if (state.spans.length >= n) return Promise.resolve(state.spans.slice());
      return new Promise((resolve, reject) => {
        const wake = () => {
          if (state.spans.length < n) return;
          clearTimeout(timer);
          state.waiters.delete(wake);
          resolve(state.spans.slice());
        };
        const timer = setTimeout(() => {
          state.waiters.delete(wake);
          const names = [...new Set(state.spans.map((s) => s.name))].join(", ");
          reject(
            new Error(
              `OTLP receiver (${options.protocol}): expected ${n} spans within ${timeoutMs} ms, ` +
                `got ${state.spans.length} [${names}] in ${state.requests} requests (${state.rejected} rejected)`,
            ),
          );
        }, timeoutMs);
        state.waiters.add(wake);
      });
    },
    setFailing(failing) {
      state.failing = failingFrom(failing);
      state.remaining = undefined;
    },
    setDelay(ms) {
      state.delayMs = ms;
    },
    clear() {
      state.spans.length = 0;
    },
    close() {
      return closed ??= close();
    },
  };
}

function tlsServerOptions(tls: ReceiverTls) {
  const pem = (v: string | Uint8Array) => (typeof v === "string" ? v : Buffer.from(v));
  return {
    key: pem(tls.key),
    cert: pem(tls.cert),
    ...(tls.ca ? { ca: pem(tls.ca) } : {}),
    requestCert: tls.requestCert ?? false,
    rejectUnauthorized: tls.requestCert ?? false,
  };
}

async function startHttp(
  state: State,
  port: number,
  tls?: ReceiverTls,
): Promise<{ port: number; close: () => Promise<void> }> {
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const at = Date.now();
      const bodies = () => [inflate(Buffer.concat(chunks), req.headers["content-encoding"])];
      later(state, () => {
        if (res.destroyed || req.socket.destroyed) {
          // The client gave up (timeout) while we waited: like a backend that never committed it.
          if (req.url === "/v1/traces") record(state, at, "abandoned", peek(bodies));
          return;
        }
        if (req.method === "POST" && req.url === "/v1/metrics" && !state.failing) {
          try {
            state.metrics.push(
              ...decodeMetricsRequest(inflate(Buffer.concat(chunks), req.headers["content-encoding"])),
            );
          } catch (e) {
            res.writeHead(400, { "content-type": "text/plain" }).end(String(e));
            return;
          }
          res.writeHead(200, { "content-type": "application/x-protobuf", "content-length": "0" }).end();
          return;
        }
        if (req.method !== "POST" || req.url !== "/v1/traces") {
          res.writeHead(404).end();
          return;
        }
        state.requests++;
        state.headers = flattenHeaders(req.headers);
        const failing = takeFailing(state);
        if (failing && !failing.partialSuccess) {
          state.rejected++;
          record(state, at, "rejected", peek(bodies));
          const headers: Record<string, string> = { "content-type": "text/plain" };
          // Retry-After is whole seconds.
          if (failing.retryAfterSeconds !== undefined) {
            headers["retry-after"] = String(Math.ceil(failing.retryAfterSeconds));
          }
          res.writeHead(failing.httpStatus ?? 503, headers);
          res.end(failing.message ?? "unavailable");
          return;
        }
        if (!String(req.headers["content-type"] ?? "").startsWith("application/x-protobuf")) {
          record(state, at, "bad", undefined);
          res.writeHead(415).end();
          return;
        }
        let spans: DecodedSpan[];
        try {
          spans = accept(state, bodies()[0]);
        } catch (e) {
          record(state, at, "bad", undefined);
          res.writeHead(400, { "content-type": "text/plain" }).end(String(e));
          return;
        }
        if (failing?.partialSuccess) {
          record(state, at, "partial", spans);
          const body = partialSuccessResponse(failing.partialSuccess);
          const type = "application/x-protobuf";
          res.writeHead(200, { "content-type": type, "content-length": String(body.length) }).end(body);
          return;
        }
        record(state, at, "accepted", spans);
        // An empty ExportTraceServiceResponse is zero bytes.
        res.writeHead(200, { "content-type": "application/x-protobuf", "content-length": "0" }).end();
      });
    });
  };
  const server = tls ? https.createServer(tlsServerOptions(tls), handler) : http.createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Splits a gRPC body into its length-prefixed messages, inflating compressed ones. */
function grpcMessages(body: Uint8Array, encoding: string | undefined): Uint8Array[] {
  const out: Uint8Array[] = [];
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  for (let off = 0; off < body.length;) {
    if (off + 5 > body.length) throw new Error("truncated gRPC frame header");
    const compressed = body[off] === 1;
    const len = view.getUint32(off + 1);
    if (off + 5 + len > body.length) throw new Error("truncated gRPC message");
    const msg = body.subarray(off + 5, off + 5 + len);
    out.push(compressed ? inflate(msg, encoding) : msg);
    off += 5 + len;
  }
  return out;
}

async function startGrpc(
  state: State,
  port: number,
  tls?: ReceiverTls,
): Promise<{ port: number; close: () => Promise<void> }> {
  const answer = (path: string, headers: Record<string, string>, bodies: () => Uint8Array[]): GrpcAnswer => {
    const at = Date.now();
    if (path === GRPC_METRICS_EXPORT_PATH && !state.failing) {
      try {
        for (const msg of bodies()) state.metrics.push(...decodeMetricsRequest(msg));
      } catch (e) {
        return { status: 13, message: String(e) };
      }
      return { status: 0 };
    }
    if (path !== GRPC_TRACE_EXPORT_PATH) return { status: 12, message: "unimplemented" };
    state.requests++;
    state.headers = { ...headers };
    const failing = takeFailing(state);
    if (failing && !failing.partialSuccess) {
      state.rejected++;
      record(state, at, "rejected", peek(bodies));
      const status = failing.grpcStatus ?? 14, message = failing.message ?? "unavailable";
      const retry = failing.retryAfterSeconds;
      return {
        status,
        message,
        details: retry === undefined ? undefined : grpcRetryInfoDetails(status, message, retry),
      };
    }
    const spans: DecodedSpan[] = [];
    try {
      for (const msg of bodies()) for (const s of accept(state, msg)) spans.push(s);
    } catch (e) {
      record(state, at, "bad", undefined);
      return { status: 13, message: String(e) };
    }
    record(state, at, failing?.partialSuccess ? "partial" : "accepted", spans);
    // One uncompressed ExportTraceServiceResponse: empty, or carrying the partial success.
    return {
      status: 0,
      response: failing?.partialSuccess ? partialSuccessResponse(failing.partialSuccess) : undefined,
    };
  };
  const server = await startGrpcServer((call) => {
    const at = Date.now();
    const encoding = call.headers["grpc-encoding"];
    const bodies = () => grpcMessages(call.body, encoding);
    return new Promise<GrpcAnswer | undefined>((resolve) =>
      later(state, () => {
        if (call.abandoned) {
          // The client gave up (deadline) while we waited: like a backend that never committed it.
          if (call.path === GRPC_TRACE_EXPORT_PATH) record(state, at, "abandoned", peek(bodies));
          return resolve(undefined);
        }
        resolve(answer(call.path, call.headers, bodies));
      })
    );
  }, { port, tls, close: "drop" }); // a backend that goes away mid-request is what the tests mean by "down"

  return { port: server.port, close: () => server.close() };
}
