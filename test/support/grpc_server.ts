/**
 * A small unary gRPC server for the tests' OTLP receivers: HTTP/2 (RFC 9113) of its own over a plain TCP
 * listener (h2c, prior knowledge) or node:tls (ALPN "h2", optionally mutual TLS). Not node:http2: Deno's
 * node:http2 server aborts the whole process (an nghttp2 assertion in find_stream_on_goaway_func) when a
 * client sends GOAWAY with streams in flight, which is exactly what the collector does at shutdown, and a
 * receiver that dies takes the test's evidence with it.
 *
 * Unary calls need little of HTTP/2: request headers are decoded (HPACK, CONTINUATION), answers use HPACK
 * literals only, and the receive windows are opened wide once so the server never sets the client's pace.
 */
import tls from "node:tls";
import type { AddressInfo } from "node:net";
import { Buffer } from "node:buffer";
import { encodeHeaderBlock, HpackDecoder } from "../../src/traces/hpack.ts";

/** One call, fully received. */
export interface GrpcCall {
  /** `:path`, e.g. `/opentelemetry.proto.collector.trace.v1.TraceService/Export`. */
  path: string;
  /** Request headers, lowercase names, pseudo-headers included; repeated names joined with ", ". */
  headers: Record<string, string>;
  /** The request's DATA payload: gRPC length-prefixed messages. */
  body: Uint8Array;
  /** True once the client reset the stream or the connection is gone: an answer would reach nobody. */
  readonly abandoned: boolean;
}

/** A gRPC answer: status 0 sends `message` as the one response message, any other status trailers-only. */
export interface GrpcAnswer {
  status: number;
  /** grpc-message (status ≠ 0). */
  message?: string;
  /** grpc-status-details-bin (status ≠ 0), already base64. */
  details?: string;
  /** The response message (status 0); empty when absent. */
  response?: Uint8Array;
}

/** undefined: send nothing (the call was abandoned). */
export type GrpcHandler = (call: GrpcCall) => Promise<GrpcAnswer | undefined> | GrpcAnswer | undefined;

export interface GrpcServerTls {
  key: string | Uint8Array;
  cert: string | Uint8Array;
  /** CA certificates that client certificates must chain to. */
  ca?: string | Uint8Array;
  /** Ask for a client certificate and refuse connections without a valid one. */
  requestCert?: boolean;
}

export interface GrpcServerOptions {
  /** 0 picks a free port. */
  port: number;
  tls?: GrpcServerTls;
  /**
   * How close() ends open connections. `graceful`: GOAWAY naming the last stream seen, the answers already
   * due written out, then the socket closed (a dropped answer to a request already counted would make the
   * client's retry look like a span delivered twice). `drop`: the sockets are closed at once, like a backend
   * that goes away mid-request.
   */
  close: "graceful" | "drop";
}

export interface GrpcServer {
  port: number;
  close(): Promise<void>;
}

/**
 * `grpc-status-details-bin`: google.rpc.Status{code = 1, message = 2, details = 3: Any{type_url = 1,
 * value = 2: RetryInfo{retry_delay = 1: Duration{seconds = 1, nanos = 2}}}}, base64 without padding as gRPC
 * sends it.
 */
export function grpcRetryInfoDetails(code: number, message: string, retryAfterSeconds: number): string {
  const seconds = Math.floor(retryAfterSeconds);
  const nanos = Math.round((retryAfterSeconds - seconds) * 1e9);
  const duration = [...pbUint(1, seconds), ...(nanos ? pbUint(2, nanos) : [])];
  const any = [...pbString(1, "type.googleapis.com/google.rpc.RetryInfo"), ...pbLen(2, pbLen(1, duration))];
  const status = [...pbUint(1, code), ...pbString(2, message), ...pbLen(3, any)];
  return Buffer.from(status).toString("base64").replace(/=+$/, "");
}

function pbVarint(v: number): number[] {
  const out: number[] = [];
  for (; v >= 0x80; v = Math.floor(v / 128)) out.push((v % 128) | 0x80);
  out.push(v);
  return out;
}
/** A length-delimited protobuf field. */
export const pbLen = (field: number, body: number[] | Uint8Array): number[] => [
  (field << 3) | 2,
  ...pbVarint(body.length),
  ...body,
];
/** A varint protobuf field. */
export const pbUint = (field: number, v: number): number[] => [field << 3, ...pbVarint(v)];
/** A string protobuf field. */
export const pbString = (field: number, s: string): number[] => pbLen(field, new TextEncoder().encode(s));

const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const DATA = 0x0, HEADERS = 0x1, RST_STREAM = 0x3, SETTINGS = 0x4, PING = 0x6, GOAWAY = 0x7;
const WINDOW_UPDATE = 0x8, CONTINUATION = 0x9;
const END_STREAM = 0x1, ACK = 0x1, END_HEADERS = 0x4, PADDED = 0x8, PRIORITY = 0x20;
const COMPRESSION_ERROR = 0x9, PROTOCOL_ERROR = 0x1;
const WINDOW = 1 << 30;
const CONTENT_TYPE: [string, string] = ["content-type", "application/grpc"];

function frame(type: number, flags: number, stream: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(9 + payload.length);
  const n = payload.length;
  out[0] = n >>> 16, out[1] = (n >>> 8) & 0xff, out[2] = n & 0xff, out[3] = type, out[4] = flags;
  new DataView(out.buffer).setUint32(5, stream & 0x7fffffff);
  out.set(payload, 9);
  return out;
}

function u32(...values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  values.forEach((v, i) => new DataView(out.buffer).setUint32(i * 4, v));
  return out;
}

function concat(parts: Uint8Array[], size = parts.reduce((n, p) => n + p.length, 0)): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(size);
  for (let off = 0, i = 0; i < parts.length; off += parts[i++].length) out.set(parts[i], off);
  return out;
}

/** The frames answering one call. */
function answerFrames(id: number, a: GrpcAnswer): Uint8Array[] {
  if (a.status === 0) {
    const response = a.response ?? new Uint8Array();
    const message = new Uint8Array(5 + response.length); // one uncompressed length-prefixed message
    new DataView(message.buffer).setUint32(1, response.length);
    message.set(response, 5);
    return [
      frame(HEADERS, END_HEADERS, id, encodeHeaderBlock([[":status", "200"], CONTENT_TYPE])),
      frame(DATA, 0, id, message),
      frame(HEADERS, END_HEADERS | END_STREAM, id, encodeHeaderBlock([["grpc-status", "0"]])),
    ];
  }
  const fields: [string, string][] = [
    [":status", "200"],
    CONTENT_TYPE,
    ["grpc-status", String(a.status)],
    ["grpc-message", encodeURIComponent(a.message ?? "")],
  ];
  if (a.details) fields.push(["grpc-status-details-bin", a.details]);
  return [frame(HEADERS, END_HEADERS | END_STREAM, id, encodeHeaderBlock(fields))]; // trailers-only
}

interface Stream {
  id: number;
  headerBlock: Uint8Array[];
  headers: Record<string, string>;
  chunks: Uint8Array[];
  size: number;
  abandoned: boolean;
}

/** The bytes of one connection, both ways. */
interface Wire {
  /** Queues bytes for the peer, in order. */
  write(bytes: Uint8Array): void;
  /** Resolves once everything queued so far is written (or the socket is gone). */
  flushed(): Promise<void>;
  close(): void;
}

/** The HTTP/2 side of one connection: fed the bytes read, it answers through `wire`. */
class Connection {
  private buf = new Uint8Array(1 << 16);
  private start = 0;
  private end = 0;
  private prefaced = false;
  private consumed = 0;
  private lastStream = 0;
  private headersOpen: Stream | undefined;
  private readonly hpack = new HpackDecoder();
  private readonly streams = new Map<number, Stream>();
  private gone = false;

  constructor(private readonly wire: Wire, private readonly handler: GrpcHandler) {
    wire.write(concat([
      frame(SETTINGS, 0, 0, new Uint8Array([0, 3, ...u32(1000), 0, 4, ...u32(WINDOW)])),
      frame(WINDOW_UPDATE, 0, 0, u32(WINDOW - 65_535)),
    ]));
  }

  /** Room to read into (Deno.Conn), then {@link commit}. */
  space(): Uint8Array {
    if (this.end === this.buf.length) {
      if (this.start > 0) {
        this.buf.copyWithin(0, this.start, this.end);
        this.end -= this.start, this.start = 0;
      } else {
        const bigger = new Uint8Array(this.buf.length * 2);
        bigger.set(this.buf);
        this.buf = bigger;
      }
    }
    return this.buf.subarray(this.end);
  }

  /** `n` bytes were read into {@link space}. False: the connection is unusable and was closed. */
  commit(n: number): boolean {
    this.end += n;
    return this.parse();
  }

  /** Bytes read elsewhere (node sockets). */
  feed(chunk: Uint8Array): boolean {
    for (let off = 0; off < chunk.length;) {
      const room = this.space();
      const n = Math.min(room.length, chunk.length - off);
      room.set(chunk.subarray(off, off + n));
      off += n;
      this.end += n;
    }
    return this.parse();
  }

  /** The socket closed: every call still open is abandoned. */
  ended(): void {
    this.gone = true;
    for (const st of this.streams.values()) st.abandoned = true;
    this.streams.clear();
  }

  /** Graceful close: GOAWAY, the answers due, then the socket. */
  async goAway(): Promise<void> {
    this.wire.write(frame(GOAWAY, 0, 0, u32(this.lastStream, 0)));
    // Answers to calls already received are still owed; wait for them (briefly: the client may be gone).
    for (let i = 0; i < 50 && this.streams.size > 0 && !this.gone; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await this.wire.flushed();
    await new Promise((r) => setTimeout(r, 100)); // let the client read it before the socket goes
    this.wire.close();
  }

  private fail(code: number): false {
    this.wire.write(frame(GOAWAY, 0, 0, u32(this.lastStream, code)));
    this.wire.flushed().then(() => this.wire.close());
    this.ended();
    return false;
  }

  private parse(): boolean {
    const b = this.buf;
    if (!this.prefaced) {
      if (this.end - this.start < PREFACE.length) return true;
      for (let i = 0; i < PREFACE.length; i++) {
        if (b[this.start + i] !== PREFACE[i]) return this.fail(PROTOCOL_ERROR);
      }
      this.start += PREFACE.length, this.prefaced = true;
    }
    while (this.end - this.start >= 9) {
      const s = this.start;
      const len = (b[s] << 16) | (b[s + 1] << 8) | b[s + 2];
      if (this.end - s < 9 + len) break;
      const type = b[s + 3], flags = b[s + 4];
      const id = (b[s + 5] & 0x7f) * 2 ** 24 + (b[s + 6] << 16 | b[s + 7] << 8 | b[s + 8]);
      let p = s + 9, q = p + len;
      this.start = q;
      if ((type === DATA || type === HEADERS) && flags & PADDED) p++, q -= b[p - 1];
      if (this.headersOpen && (type !== CONTINUATION || id !== this.headersOpen.id)) {
        return this.fail(PROTOCOL_ERROR); // RFC 9113 §6.10: nothing may come between a block's frames
      }
      if (type === DATA) {
        this.consumed += len;
        const st = this.streams.get(id);
        if (st && q > p) st.chunks.push(b.slice(p, q)), st.size += q - p;
        if (st && flags & END_STREAM) this.call(st);
      } else if (type === HEADERS) {
        if (flags & PRIORITY) p += 5;
        let st = this.streams.get(id);
        const trailers = st !== undefined;
        if (!st) {
          st = { id, headerBlock: [], headers: {}, chunks: [], size: 0, abandoned: false };
          this.streams.set(id, st);
          if (id > this.lastStream) this.lastStream = id;
        }
        st.headerBlock.push(b.slice(p, q));
        if (flags & END_HEADERS) {
          if (!this.decodeHeaders(st, trailers)) return false;
        } else this.headersOpen = st;
        if (flags & END_STREAM) this.call(st);
      } else if (type === CONTINUATION) {
        const st = this.headersOpen;
        if (!st) return this.fail(PROTOCOL_ERROR);
        st.headerBlock.push(b.slice(p, q));
        if (flags & END_HEADERS) {
          this.headersOpen = undefined;
          if (!this.decodeHeaders(st, Object.keys(st.headers).length > 0)) return false;
        }
      } else if (type === RST_STREAM) {
        const st = this.streams.get(id);
        if (st) st.abandoned = true, this.streams.delete(id);
      } else if (type === SETTINGS && !(flags & ACK)) {
        this.wire.write(frame(SETTINGS, ACK, 0, new Uint8Array(0)));
      } else if (type === PING && !(flags & ACK)) {
        this.wire.write(frame(PING, ACK, 0, b.slice(p, q)));
      }
      // GOAWAY: the client leaves, but still expects answers to the streams it opened, then closes.
      // PRIORITY and WINDOW_UPDATE carry nothing this server needs (its answers are small).
      if (this.consumed >= WINDOW / 2) {
        this.wire.write(frame(WINDOW_UPDATE, 0, 0, u32(this.consumed)));
        this.consumed = 0;
      }
    }
    if (this.start === this.end) this.start = this.end = 0;
    return true;
  }

  /** Decodes a complete header block into the stream's headers (trailers are decoded, then dropped). */
  private decodeHeaders(st: Stream, trailers: boolean): boolean {
    const block = concat(st.headerBlock);
    st.headerBlock = [];
    const into: Record<string, string> = trailers ? {} : st.headers;
    try {
      this.hpack.decode(block, (name, value) => {
        into[name] = name in into ? `${into[name]}, ${value}` : value;
      });
    } catch {
      return this.fail(COMPRESSION_ERROR); // the HPACK context is lost with it
    }
    return true;
  }

  private async call(st: Stream): Promise<void> {
    const call: GrpcCall = {
      path: st.headers[":path"] ?? "",
      headers: st.headers,
      body: concat(st.chunks, st.size),
      get abandoned() {
        return st.abandoned;
      },
    };
    st.chunks = [];
    let answer: GrpcAnswer | undefined;
    try {
      answer = await this.handler(call);
    } catch (e) {
      answer = { status: 13, message: String(e) };
    }
    if (st.abandoned || this.gone) return;
    this.streams.delete(st.id);
    if (answer) this.wire.write(concat(answerFrames(st.id, answer)));
  }
}

/** Writes to a Deno.Conn in order, never two writes at once. */
function denoWire(conn: Deno.Conn): Wire {
  let writing = Promise.resolve();
  return {
    write(bytes) {
      writing = writing.then(async () => {
        for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
      }).catch(() => {});
    },
    flushed: () => writing,
    close() {
      try {
        conn.close();
      } catch { /* closed */ }
    },
  };
}

async function serveDenoConn(conn: Deno.Conn, h2: Connection): Promise<void> {
  try {
    for (;;) {
      const n = await conn.read(h2.space());
      if (n === null || !h2.commit(n)) break;
    }
  } catch { /* reset, or closed by close() */ }
  h2.ended();
  try {
    conn.close();
  } catch { /* closed */ }
}

/** Starts a server on 127.0.0.1 and resolves once it is listening. */
export function startGrpcServer(handler: GrpcHandler, options: GrpcServerOptions): Promise<GrpcServer> {
  return options.tls ? startTls(handler, options, options.tls) : startPlain(handler, options);
}

function startPlain(handler: GrpcHandler, options: GrpcServerOptions): Promise<GrpcServer> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: options.port, transport: "tcp" });
  const open = new Map<Connection, Wire>();
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        conn.setNoDelay(true);
        const wire = denoWire(conn);
        const h2 = new Connection(wire, handler);
        open.set(h2, wire);
        serveDenoConn(conn, h2).finally(() => open.delete(h2));
      }
    } catch { /* closed */ }
  })();
  return Promise.resolve({
    port: (listener.addr as Deno.NetAddr).port,
    async close() {
      listener.close();
      // A closed listener keeps its connections; a backend that is down does not.
      await Promise.all(
        [...open].map(([h2, wire]) => options.close === "graceful" ? h2.goAway() : wire.close()),
      );
      await accepting;
    },
  });
}

async function startTls(
  handler: GrpcHandler,
  options: GrpcServerOptions,
  t: GrpcServerTls,
): Promise<GrpcServer> {
  const pem = (v: string | Uint8Array) => (typeof v === "string" ? v : Buffer.from(v));
  const open = new Map<Connection, { socket: tls.TLSSocket; wire: Wire }>();
  const server = tls.createServer({
    key: pem(t.key),
    cert: pem(t.cert),
    ...(t.ca ? { ca: pem(t.ca) } : {}),
    requestCert: t.requestCert ?? false,
    rejectUnauthorized: t.requestCert ?? false,
    ALPNProtocols: ["h2"],
  }, (socket) => {
    socket.setNoDelay(true);
    const wire: Wire = {
      write: (bytes) => void socket.write(bytes),
      flushed: () =>
        new Promise((resolve) =>
          socket.destroyed ? resolve() : socket.write(new Uint8Array(0), () => resolve())
        ),
      close: () => void socket.destroy(),
    };
    const h2 = new Connection(wire, handler);
    open.set(h2, { socket, wire });
    socket.on("data", (chunk: Uint8Array) => {
      if (!h2.feed(chunk)) socket.destroy();
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      h2.ended();
      open.delete(h2);
    });
  });
  server.on("tlsClientError", () => {}); // a refused client certificate is the point of some tests
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, "127.0.0.1", () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all(
        [...open].map(([h2, { wire }]) => options.close === "graceful" ? h2.goAway() : wire.close()),
      );
      await closed;
    },
  };
}
