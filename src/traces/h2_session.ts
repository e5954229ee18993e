/**
 * A small HTTP/2 client (RFC 9113) over node:net (h2c, prior knowledge) or node:tls (ALPN "h2"): just what
 * unary gRPC needs. Why not node:http2: under Deno it cost ≈1.5 µs CPU per exported span, inflated memory,
 * and crashed in places. Here a request body goes out as views of the caller's bytes (no copy), many
 * streams share one connection, and every failure rejects the request with an H2Error naming the cause.
 * Header blocks: hpack.ts.
 */
import net from "node:net";
import tls from "node:tls";
import type { Buffer } from "node:buffer";
import { encodeHeaderBlock, HpackDecoder, HpackError } from "./hpack.ts";

const utf8 = new TextDecoder();

type Pem = string | Buffer;

const DATA = 0, HEADERS = 1, RST_STREAM = 3, SETTINGS = 4, PUSH_PROMISE = 5, PING = 6, GOAWAY = 7;
const WINDOW_UPDATE = 8, CONTINUATION = 9;
const END_STREAM = 0x1, ACK = 0x1, END_HEADERS = 0x4, PADDED = 0x8, PRIORITY_FLAG = 0x20;

const H2_ERROR_CODES = [
  "NO_ERROR",
  "PROTOCOL_ERROR",
  "INTERNAL_ERROR",
  "FLOW_CONTROL_ERROR",
  "SETTINGS_TIMEOUT",
  "STREAM_CLOSED",
  "FRAME_SIZE_ERROR",
  "REFUSED_STREAM",
  "CANCEL",
  "COMPRESSION_ERROR",
  "CONNECT_ERROR",
  "ENHANCE_YOUR_CALM",
  "INADEQUATE_SECURITY",
  "HTTP_1_1_REQUIRED",
] as const;
const NO_ERROR = 0, PROTOCOL_ERROR = 1, FLOW_CONTROL_ERROR = 3, FRAME_SIZE_ERROR = 6, CANCEL = 8;
const COMPRESSION_ERROR = 9, ENHANCE_YOUR_CALM = 11;
const codeName = (code: number) => H2_ERROR_CODES[code] ?? `error ${code}`;

const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const MAX_WINDOW = 2 ** 31 - 1;
const MAX_STREAM_ID = 2 ** 31 - 1;
/** Our receive windows: responses are small, but a server must never wait on us. */
const STREAM_WINDOW = 4 << 20, CONNECTION_WINDOW = 16 << 20;
/** We keep SETTINGS_MAX_FRAME_SIZE at its default. */
const LOCAL_MAX_FRAME = 16384;
/** Stop writing DATA while this much is queued on the socket; 'drain' resumes. */
const SOCKET_HIGH_WATER = 1 << 20;
/** How long a PING may go unanswered, when a request timed out on a silent connection. */
const PING_TIMEOUT_MS = 2_000;

export type H2ErrorKind =
  /** A socket or TLS error (`cause` is the error from node:net/node:tls, with its `code`). */
  | "network"
  /** The connection closed without an error while the request was open. */
  | "closed"
  /** The server sent GOAWAY. */
  | "goaway"
  /** The server reset the stream (`h2Code`). */
  | "reset"
  | "timeout"
  /** The server broke HTTP/2 (or does not speak it). */
  | "protocol"
  /** The response went beyond the header list or data limit. */
  | "limit";

export class H2Error extends Error {
  /** HTTP/2 error code (RST_STREAM, GOAWAY), when there is one. */
  readonly h2Code?: number;
  /** The server certainly did not process the request (RFC 9113 §8.7): sending it again is safe. */
  readonly unprocessed: boolean;
  constructor(
    message: string,
    readonly kind: H2ErrorKind,
    options: { cause?: unknown; h2Code?: number; unprocessed?: boolean } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "H2Error";
    this.h2Code = options.h2Code;
    this.unprocessed = options.unprocessed ?? false;
  }
}

export interface H2ConnectOptions {
  host: string;
  port: number;
  /** `:authority` of requests; `host:port` by default. */
  authority?: string;
  /** TLS with ALPN "h2"; without: cleartext HTTP/2 with prior knowledge (h2c). */
  tls?: {
    ca?: Pem;
    key?: Pem;
    cert?: Pem;
    servername?: string;
  };
  /** Decoded header list limit per header block (64 KiB). */
  maxHeaderListSize?: number;
  /** Response body limit (4 MiB). */
  maxResponseBytes?: number;
}

export interface H2Response {
  status: number;
  headers: Record<string, string>;
  trailers: Record<string, string>;
  data: Uint8Array;
}

interface Stream {
  id: number;
  block: Uint8Array;
  body: Uint8Array[];
  chunk: number;
  offset: number;
  /** Body bytes not sent yet. */
  remaining: number;
  sendWindow: number;
  recvWindow: number;
  recvUnacked: number;
  status: number;
  headers: Record<string, string> | undefined;
  trailers: Record<string, string>;
  data: Uint8Array[];
  dataBytes: number;
  startedAt: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  resolve: (r: H2Response) => void;
  reject: (e: H2Error) => void;
}

const EMPTY = new Uint8Array(0);

function frameHeader(length: number, type: number, flags: number, id: number, into = new Uint8Array(9)) {
  into[0] = length >>> 16;
  into[1] = length >>> 8;
  into[2] = length;
  into[3] = type;
  into[4] = flags;
  into[5] = id >>> 24;
  into[6] = id >>> 16;
  into[7] = id >>> 8;
  into[8] = id;
  return into;
}

/** A frame with its payload in one buffer (control frames are small). */
function frame(type: number, flags: number, id: number, payload: Uint8Array = EMPTY): Uint8Array {
  const f = new Uint8Array(9 + payload.length);
  frameHeader(payload.length, type, flags, id, f);
  f.set(payload, 9);
  return f;
}

function u32(...values: number[]): Uint8Array {
  const b = new Uint8Array(values.length * 4);
  const v = new DataView(b.buffer);
  values.forEach((x, i) => v.setUint32(i * 4, x));
  return b;
}

const readU32 = (b: Uint8Array, p: number) =>
  ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;

function concat(parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(total);
  let p = 0;
  for (const x of parts) {
    out.set(x, p);
    p += x.length;
  }
  return out;
}

/** A connection-level violation: the session ends with GOAWAY(code). */
class ConnectionError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

/**
 * One HTTP/2 connection. Connects at construction; requests wait for the server's SETTINGS, then run
 * concurrently up to its MAX_CONCURRENT_STREAMS (the rest queue). Once `usable` is false (GOAWAY, error,
 * close), make a new session: this one only finishes what it has.
 */
export class H2Session {
  private readonly socket: net.Socket;
  private readonly authority: string;
  private readonly scheme: string;
  private readonly maxHeaderList: number;
  private readonly maxResponse: number;
  /** connecting: until the server's first SETTINGS; closed: nothing more is sent or accepted. */
  private state: "connecting" | "open" | "closed" = "connecting";
  private goingAway = false;
  private goaway: H2Error | undefined;
  private readonly streams = new Map<number, Stream>();
  private readonly queue: Stream[] = [];
  private readonly sending = new Set<Stream>();
  private nextId = 1;
  private lastId = 0;
  private peerMaxFrame = 16384;
  private peerInitialWindow = 65535;
  private peerMaxStreams = Infinity;
  private sendWindow = 65535;
  private recvWindow = CONNECTION_WINDOW;
  private recvUnacked = 0;
  private readonly decoder = new HpackDecoder();
  private pending: Uint8Array = EMPTY;
  private continuation: { id: number; parts: Uint8Array[]; size: number; endStream: boolean } | undefined;
  private lastFrameAt = 0;
  private sawFrame = false;
  private pingTimer: ReturnType<typeof setTimeout> | undefined;
  private referenced = true;

  constructor(options: H2ConnectOptions) {
    this.authority = options.authority ??
      `${options.host.includes(":") ? `[${options.host}]` : options.host}:${options.port}`;
    this.scheme = options.tls ? "https" : "http";
    this.maxHeaderList = options.maxHeaderListSize ?? 64 << 10;
    this.maxResponse = options.maxResponseBytes ?? 4 << 20;
    const t = options.tls;
    this.socket = t
      ? tls.connect({
        host: options.host,
        port: options.port,
        ca: t.ca,
        key: t.key,
        cert: t.cert,
        ...(t.servername ? { servername: t.servername } : {}),
        ALPNProtocols: ["h2"],
      }, () => this.onConnect())
      : net.connect({ host: options.host, port: options.port }, () => this.onConnect());
    this.socket.on("data", (chunk: Buffer) => this.guard(() => this.onData(chunk)));
    this.socket.on("drain", () => this.guard(() => this.flush()));
    this.socket.on("error", (err: Error) => this.fail(new H2Error(err.message, "network", { cause: err })));
    this.socket.on("close", () => this.onClose());
    this.setReferenced(false);
  }

  /** False once no new request can start here (GOAWAY, error, close, stream ids used up). */
  get usable(): boolean {
    return this.state !== "closed" && !this.goingAway;
  }

  /**
   * One request: `headers` without `:scheme`/`:authority` (added), `body` sent as is (views, no copy).
   * Resolves with the complete response, or rejects with an H2Error.
   */
  request(
    headers: readonly [string, string][],
    body: readonly Uint8Array[],
    timeoutMs: number,
  ): Promise<H2Response> {
    return new Promise<H2Response>((resolve, reject) => {
      if (!this.usable) {
        reject(this.goaway ?? new H2Error("the HTTP/2 session is closed", "closed", { unprocessed: true }));
        return;
      }
      const pseudo = headers.filter(([n]) => n.startsWith(":"));
      const list: [string, string][] = [...pseudo];
      if (!pseudo.some(([n]) => n === ":scheme")) list.push([":scheme", this.scheme]);
      if (!pseudo.some(([n]) => n === ":authority")) list.push([":authority", this.authority]);
      for (const h of headers) if (!h[0].startsWith(":")) list.push(h);
      let remaining = 0;
      for (const c of body) remaining += c.length;
      const s: Stream = {
        id: 0,
        block: encodeHeaderBlock(list),
        body: body.slice(),
        chunk: 0,
        offset: 0,
        remaining,
        sendWindow: 0,
        recvWindow: STREAM_WINDOW,
        recvUnacked: 0,
        status: 0,
        headers: undefined,
        trailers: {},
        data: [],
        dataBytes: 0,
        startedAt: 0,
        timer: undefined,
        resolve,
        reject,
      };
      s.timer = setTimeout(() => this.guard(() => this.onTimeout(s, timeoutMs)), timeoutMs);
      this.queue.push(s);
      this.setReferenced(true);
      this.guard(() => this.startQueued());
    });
  }

  /** Graceful: queued requests fail, open ones finish, then GOAWAY and the socket closes. */
  close(): void {
    if (this.state === "closed") return;
    this.goingAway = true;
    for (const s of this.queue.splice(0)) {
      this.settle(s, new H2Error("the HTTP/2 session was closed", "closed", { unprocessed: true }));
    }
    if (this.streams.size === 0) this.shutdown();
  }

  /** Ends everything now: every request rejects with `err`. */
  destroy(err = new H2Error("the HTTP/2 session was closed", "closed")): void {
    this.fail(err);
  }

  // ------------------------------------------------------------------------------------------ connection

  private onConnect(): void {
    if (this.state === "closed") return;
    if (this.scheme === "https") {
      const alpn = (this.socket as tls.TLSSocket).alpnProtocol;
      if (alpn !== "h2") {
        this.fail(
          new H2Error(
            `${this.authority} did not agree to HTTP/2 over TLS (ALPN ${
              alpn ? `"${alpn}"` : "none"
            }): not a gRPC endpoint?`,
            "protocol",
          ),
        );
        return;
      }
    }
    this.socket.setNoDelay(true);
    this.socket.cork();
    this.socket.write(PREFACE);
    // ENABLE_PUSH = 0, INITIAL_WINDOW_SIZE, MAX_HEADER_LIST_SIZE; then open the connection window.
    const settings = new Uint8Array(18);
    const v = new DataView(settings.buffer);
    [[2, 0], [4, STREAM_WINDOW], [6, this.maxHeaderList]].forEach(([id, value], i) => {
      v.setUint16(i * 6, id);
      v.setUint32(i * 6 + 2, value);
    });
    this.socket.write(frame(SETTINGS, 0, 0, settings));
    this.socket.write(frame(WINDOW_UPDATE, 0, 0, u32(CONNECTION_WINDOW - 65535)));
    this.socket.uncork();
  }

  private onClose(): void {
    if (this.state === "closed") return;
    if (this.goaway) this.fail(new H2Error(this.goaway.message, "goaway", { h2Code: this.goaway.h2Code }));
    else if (this.state === "connecting") {
      // Closed before the server's SETTINGS: most likely a refused handshake (e.g. TLS without the client
      // certificate the server wants); reads like the reset it is.
      const cause = Object.assign(new Error("connection closed before the HTTP/2 handshake completed"), {
        code: "ECONNRESET",
      });
      this.fail(new H2Error(cause.message, "network", { cause }));
    } else this.fail(new H2Error("the connection closed without an answer", "closed"));
  }

  /** Event handlers must not throw: a bug or a violation ends the session instead of the process. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if (err instanceof ConnectionError) this.connectionError(err.code, err.message);
      else if (err instanceof HpackError) this.connectionError(COMPRESSION_ERROR, err.message);
      else this.fail(new H2Error(`HTTP/2 client error: ${(err as Error)?.message ?? err}`, "protocol"));
    }
  }

  private connectionError(code: number, message: string): void {
    if (this.state === "closed") return;
    if (this.state === "open") this.socket.write(frame(GOAWAY, 0, 0, u32(0, code)));
    this.fail(
      new H2Error(`HTTP/2 ${codeName(code)} from ${this.authority}: ${message}`, "protocol", {
        h2Code: code,
      }),
    );
  }

  private fail(err: H2Error): void {
    if (this.state === "closed") return;
    this.state = "closed";
    clearTimeout(this.pingTimer);
    for (const s of this.queue.splice(0)) this.settle(s, err);
    for (const s of [...this.streams.values()]) this.settle(s, err);
    this.socket.destroy();
  }

  /** Graceful end: GOAWAY(NO_ERROR), FIN, and a hard close if the server does not close its side soon. */
  private shutdown(): void {
    if (this.state === "closed") return;
    const open = this.state === "open";
    this.state = "closed";
    clearTimeout(this.pingTimer);
    if (open) {
      this.socket.end(frame(GOAWAY, 0, 0, u32(0, NO_ERROR)));
      setTimeout(() => this.socket.destroy(), 1_000).unref?.();
    } else this.socket.destroy();
  }

  private setReferenced(on: boolean): void {
    if (on === this.referenced) return;
    this.referenced = on;
    if (on) this.socket.ref();
    else this.socket.unref();
  }

  // --------------------------------------------------------------------------------------------- sending

  private startQueued(): void {
    if (this.state !== "open") return;
    this.socket.cork();
    try {
      while (this.queue.length && this.streams.size < this.peerMaxStreams && !this.goingAway) {
        if (this.nextId > MAX_STREAM_ID) {
          this.goingAway = true; // stream ids used up: the caller moves to a new session
          for (const s of this.queue.splice(0)) {
            this.settle(s, new H2Error("stream ids exhausted", "closed", { unprocessed: true }));
          }
          break;
        }
        const s = this.queue.shift()!;
        s.id = this.nextId;
        this.nextId += 2;
        this.lastId = s.id;
        s.sendWindow = this.peerInitialWindow;
        s.startedAt = performance.now();
        this.streams.set(s.id, s);
        this.writeHeaders(s);
        if (s.remaining > 0) this.sending.add(s);
      }
      this.flush();
    } finally {
      this.socket.uncork();
    }
  }

  /** HEADERS, then CONTINUATION if the block is larger than the server's frame size. */
  private writeHeaders(s: Stream): void {
    const block = s.block, max = this.peerMaxFrame;
    let off = 0;
    do {
      const n = Math.min(max, block.length - off);
      const flags = (off === 0 && s.remaining === 0 ? END_STREAM : 0) |
        (off + n === block.length ? END_HEADERS : 0);
      this.socket.write(frame(off === 0 ? HEADERS : CONTINUATION, flags, s.id, block.subarray(off, off + n)));
      off += n;
    } while (off < block.length);
  }

  /** Writes as much DATA as the windows allow, straight from the callers' buffers. */
  private flush(): void {
    if (this.state !== "open" || this.sending.size === 0) return;
    this.socket.cork();
    try {
      for (const s of this.sending) {
        while (s.remaining > 0 && s.sendWindow > 0 && this.sendWindow > 0) {
          if (this.socket.writableLength >= SOCKET_HIGH_WATER) return;
          const n = Math.min(s.remaining, this.peerMaxFrame, s.sendWindow, this.sendWindow);
          s.remaining -= n;
          s.sendWindow -= n;
          this.sendWindow -= n;
          this.socket.write(frameHeader(n, DATA, s.remaining === 0 ? END_STREAM : 0, s.id));
          for (let left = n; left > 0;) {
            const c = s.body[s.chunk];
            const take = Math.min(c.length - s.offset, left);
            if (take > 0) {
              this.socket.write(take === c.length ? c : c.subarray(s.offset, s.offset + take));
            }
            left -= take;
            s.offset += take;
            if (s.offset === c.length) {
              s.chunk++;
              s.offset = 0;
            }
          }
        }
        if (s.remaining === 0) {
          this.sending.delete(s);
          s.body = []; // sent: the caller's buffers are no longer needed here
        }
        if (this.sendWindow <= 0) return;
      }
    } finally {
      this.socket.uncork();
    }
  }

  // ------------------------------------------------------------------------------------------- receiving

  private onData(chunk: Uint8Array): void {
    if (this.state === "closed") return;
    let b = chunk;
    if (this.pending.length) {
      b = concat([this.pending, chunk], this.pending.length + chunk.length);
      this.pending = EMPTY;
    }
    if (!this.sawFrame && b.length >= 5 && b[3] !== SETTINGS) {
      const text = String.fromCharCode(...b.subarray(0, 5));
      throw new ConnectionError(
        PROTOCOL_ERROR,
        text === "HTTP/"
          ? "the server answered in HTTP/1 (not an HTTP/2 endpoint?)"
          : "the server did not start with SETTINGS (not an HTTP/2 endpoint?)",
      );
    }
    let p = 0;
    while (b.length - p >= 9) {
      const length = (b[p] << 16) | (b[p + 1] << 8) | b[p + 2];
      if (length > LOCAL_MAX_FRAME) throw new ConnectionError(FRAME_SIZE_ERROR, `a frame of ${length} bytes`);
      if (b.length - p < 9 + length) break;
      this.lastFrameAt = performance.now();
      this.sawFrame = true;
      this.onFrame(b[p + 3], b[p + 4], readU32(b, p + 5) & 0x7fffffff, b.subarray(p + 9, p + 9 + length));
      if ((this.state as string) === "closed") return;
      p += 9 + length;
    }
    // The tail is copied (`new Uint8Array`, not Buffer#slice, which is a view): a view would pin the chunk.
    if (p < b.length) this.pending = new Uint8Array(b.subarray(p));
  }

  private onFrame(type: number, flags: number, id: number, payload: Uint8Array): void {
    if (this.continuation && (type !== CONTINUATION || id !== this.continuation.id)) {
      throw new ConnectionError(PROTOCOL_ERROR, "a header block interrupted");
    }
    switch (type) {
      case DATA:
        return this.onDataFrame(flags, id, payload);
      case HEADERS:
        return this.onHeaders(flags, id, payload);
      case RST_STREAM: {
        if (id === 0) throw new ConnectionError(PROTOCOL_ERROR, "RST_STREAM on stream 0");
        if (payload.length !== 4) throw new ConnectionError(FRAME_SIZE_ERROR, "RST_STREAM size");
        const code = readU32(payload, 0);
        const s = this.streams.get(id);
        if (s) {
          this.settle(
            s,
            new H2Error(`stream reset by the server (RST_STREAM ${codeName(code)})`, "reset", {
              h2Code: code,
              unprocessed: code === 7, // REFUSED_STREAM
            }),
          );
        }
        return;
      }
      case SETTINGS:
        return this.onSettings(flags, id, payload);
      case PUSH_PROMISE:
        throw new ConnectionError(PROTOCOL_ERROR, "PUSH_PROMISE with push disabled");
      case PING:
        if (id !== 0) throw new ConnectionError(PROTOCOL_ERROR, "PING on a stream");
        if (payload.length !== 8) throw new ConnectionError(FRAME_SIZE_ERROR, "PING size");
        if (!(flags & ACK)) this.socket.write(frame(PING, ACK, 0, payload));
        else {
          clearTimeout(this.pingTimer);
          this.pingTimer = undefined;
        }
        return;
      case GOAWAY:
        return this.onGoaway(id, payload);
      case WINDOW_UPDATE: {
        if (payload.length !== 4) throw new ConnectionError(FRAME_SIZE_ERROR, "WINDOW_UPDATE size");
        const inc = readU32(payload, 0) & 0x7fffffff;
        if (id === 0) {
          if (inc === 0) throw new ConnectionError(PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
          this.sendWindow += inc;
          if (this.sendWindow > MAX_WINDOW) {
            throw new ConnectionError(FLOW_CONTROL_ERROR, "window above 2^31-1");
          }
        } else {
          const s = this.streams.get(id);
          if (!s) return;
          if (inc === 0) return this.reset(s, PROTOCOL_ERROR, "the server sent a WINDOW_UPDATE of 0");
          s.sendWindow += inc;
          if (s.sendWindow > MAX_WINDOW) {
            return this.reset(s, FLOW_CONTROL_ERROR, "the server's stream window went above 2^31-1");
          }
        }
        return this.flush();
      }
      case CONTINUATION: {
        const c = this.continuation;
        if (!c) throw new ConnectionError(PROTOCOL_ERROR, "CONTINUATION without HEADERS");
        c.parts.push(payload);
        c.size += payload.length;
        // The compressed block is bounded too; decoding it whole keeps HPACK in step, so past this the
        // connection ends.
        if (c.size > 4 * this.maxHeaderList) {
          throw new ConnectionError(ENHANCE_YOUR_CALM, "header block too large");
        }
        if (flags & END_HEADERS) {
          this.continuation = undefined;
          this.onHeaderBlock(c.id, concat(c.parts, c.size), c.endStream);
        }
        return;
      }
      default:
        return; // PRIORITY and unknown types are ignored (RFC 9113 §4.1, §5.3.2)
    }
  }

  private onSettings(flags: number, id: number, payload: Uint8Array): void {
    if (id !== 0) throw new ConnectionError(PROTOCOL_ERROR, "SETTINGS on a stream");
    if (flags & ACK) {
      if (payload.length) throw new ConnectionError(FRAME_SIZE_ERROR, "SETTINGS ACK with a payload");
      return;
    }
    if (payload.length % 6) throw new ConnectionError(FRAME_SIZE_ERROR, "SETTINGS size");
    for (let p = 0; p < payload.length; p += 6) {
      const key = (payload[p] << 8) | payload[p + 1], value = readU32(payload, p + 2);
      if (key === 2 && value > 1) throw new ConnectionError(PROTOCOL_ERROR, "ENABLE_PUSH above 1");
      else if (key === 3) this.peerMaxStreams = value;
      else if (key === 4) {
        if (value > MAX_WINDOW) {
          throw new ConnectionError(FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE above 2^31-1");
        }
        // A change applies to every open stream's window, which may go negative (RFC 9113 §6.9.2).
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const s of this.streams.values()) {
          s.sendWindow += delta;
          if (s.sendWindow > MAX_WINDOW) throw new ConnectionError(FLOW_CONTROL_ERROR, "window above 2^31-1");
        }
      } else if (key === 5) {
        if (value < 16384 || value > 16777215) throw new ConnectionError(PROTOCOL_ERROR, "MAX_FRAME_SIZE");
        this.peerMaxFrame = value;
      }
      // HEADER_TABLE_SIZE: our encoder never indexes; MAX_HEADER_LIST_SIZE: our headers are small.
    }
    this.socket.write(frame(SETTINGS, ACK, 0));
    if (this.state === "connecting") this.state = "open";
    this.startQueued();
  }

  private onGoaway(id: number, payload: Uint8Array): void {
    if (id !== 0) throw new ConnectionError(PROTOCOL_ERROR, "GOAWAY on a stream");
    if (payload.length < 8) throw new ConnectionError(FRAME_SIZE_ERROR, "GOAWAY size");
    const last = readU32(payload, 0) & 0x7fffffff, code = readU32(payload, 4);
    const debug = utf8.decode(payload.subarray(8, 8 + 200)).replace(/[^\x20-\x7e]/g, "");
    const message = `GOAWAY ${codeName(code)}${debug ? `: ${debug}` : ""}`;
    this.goingAway = true;
    this.goaway = new H2Error(message, "goaway", { h2Code: code, unprocessed: true });
    // Streams above `last` were never processed; the rest may still complete.
    for (const s of [...this.streams.values()]) if (s.id > last) this.settle(s, this.goaway);
    for (const s of this.queue.splice(0)) this.settle(s, this.goaway);
    if (this.streams.size === 0) this.shutdown();
  }

  private onDataFrame(flags: number, id: number, payload: Uint8Array): void {
    if (id === 0) throw new ConnectionError(PROTOCOL_ERROR, "DATA on stream 0");
    // Flow control counts the whole payload, padding included (RFC 9113 §6.9).
    const size = payload.length;
    this.recvWindow -= size;
    if (this.recvWindow < 0) throw new ConnectionError(FLOW_CONTROL_ERROR, "the server overran the window");
    this.recvUnacked += size;
    if (this.recvUnacked >= CONNECTION_WINDOW / 2) {
      this.socket.write(frame(WINDOW_UPDATE, 0, 0, u32(this.recvUnacked)));
      this.recvWindow += this.recvUnacked;
      this.recvUnacked = 0;
    }
    const data = this.unpad(flags, payload);
    const s = this.streams.get(id);
    if (!s) {
      if (id > this.lastId) throw new ConnectionError(PROTOCOL_ERROR, "DATA on an idle stream");
      return; // a stream we reset or finished
    }
    if (!s.headers) return this.reset(s, PROTOCOL_ERROR, "the server sent DATA before the response headers");
    s.recvWindow -= size;
    if (s.recvWindow < 0) return this.reset(s, FLOW_CONTROL_ERROR, "the server overran the stream window");
    s.dataBytes += data.length;
    if (s.dataBytes > this.maxResponse) {
      return this.reset(s, CANCEL, `response larger than ${this.maxResponse} bytes`, "limit");
    }
    if (data.length) s.data.push(data);
    if (flags & END_STREAM) return this.complete(s);
    s.recvUnacked += size;
    if (s.recvUnacked >= STREAM_WINDOW / 2) {
      this.socket.write(frame(WINDOW_UPDATE, 0, s.id, u32(s.recvUnacked)));
      s.recvWindow += s.recvUnacked;
      s.recvUnacked = 0;
    }
  }

  private unpad(flags: number, payload: Uint8Array): Uint8Array {
    if (!(flags & PADDED)) return payload;
    if (payload.length < 1 || payload[0] >= payload.length) {
      throw new ConnectionError(PROTOCOL_ERROR, "padding longer than the frame");
    }
    return payload.subarray(1, payload.length - payload[0]);
  }

  private onHeaders(flags: number, id: number, payload: Uint8Array): void {
    if (id === 0) throw new ConnectionError(PROTOCOL_ERROR, "HEADERS on stream 0");
    let fragment = this.unpad(flags, payload);
    if (flags & PRIORITY_FLAG) {
      if (fragment.length < 5) throw new ConnectionError(FRAME_SIZE_ERROR, "HEADERS priority");
      fragment = fragment.subarray(5);
    }
    const endStream = (flags & END_STREAM) !== 0;
    if (flags & END_HEADERS) this.onHeaderBlock(id, fragment, endStream);
    else this.continuation = { id, parts: [new Uint8Array(fragment)], size: fragment.length, endStream };
  }

  private onHeaderBlock(id: number, block: Uint8Array, endStream: boolean): void {
    // Decoded even for a stream we no longer track: the dynamic table must stay in step.
    const fields: Record<string, string> = {};
    let listSize = 0;
    this.decoder.decode(block, (name, value) => {
      listSize += name.length + value.length + 32;
      if (listSize > this.maxHeaderList) return;
      fields[name] = Object.hasOwn(fields, name) ? `${fields[name]}, ${value}` : value;
    });
    const s = this.streams.get(id);
    if (!s) {
      if (id > this.lastId || id % 2 === 0) {
        throw new ConnectionError(PROTOCOL_ERROR, "HEADERS on an idle stream");
      }
      return;
    }
    if (listSize > this.maxHeaderList) {
      return this.reset(s, CANCEL, `response headers larger than ${this.maxHeaderList} bytes`, "limit");
    }
    if (!s.headers) {
      const status = fields[":status"];
      if (!/^[1-9]\d\d$/.test(status ?? "")) {
        return this.reset(s, PROTOCOL_ERROR, "the server sent a response without a valid :status");
      }
      s.status = Number(status);
      if (s.status < 200) { // informational (1xx): the real response follows
        if (endStream) {
          return this.reset(s, PROTOCOL_ERROR, "the server ended the stream with a 1xx response");
        }
        return;
      }
      delete fields[":status"];
      s.headers = fields;
    } else {
      if (!endStream) return this.reset(s, PROTOCOL_ERROR, "the server sent trailers without END_STREAM");
      s.trailers = fields;
    }
    if (endStream) this.complete(s);
  }

  // ------------------------------------------------------------------------------------------- streams

  private complete(s: Stream): void {
    // A response before the whole request was sent: stop sending (RFC 9113 §8.1).
    if (s.remaining > 0) this.socket.write(frame(RST_STREAM, 0, s.id, u32(NO_ERROR)));
    const resolve = s.resolve;
    this.remove(s);
    resolve({
      status: s.status,
      headers: s.headers!,
      trailers: s.trailers,
      data: concat(s.data, s.dataBytes),
    });
  }

  /** Resets one stream (a stream-level error) and rejects its request. */
  private reset(s: Stream, code: number, message: string, kind: H2ErrorKind = "protocol"): void {
    if (this.state !== "closed") this.socket.write(frame(RST_STREAM, 0, s.id, u32(code)));
    this.settle(s, new H2Error(message, kind, { h2Code: code }));
  }

  private settle(s: Stream, err: H2Error): void {
    const queued = this.queue.indexOf(s);
    if (queued >= 0) this.queue.splice(queued, 1);
    const reject = s.reject;
    this.remove(s);
    reject(err);
  }

  private remove(s: Stream): void {
    clearTimeout(s.timer);
    s.resolve = s.reject = () => {};
    s.body = [];
    if (s.id && this.streams.get(s.id) === s) {
      this.streams.delete(s.id);
      this.sending.delete(s);
      if (this.state !== "closed") {
        if (this.goingAway && this.streams.size === 0) this.shutdown();
        else this.startQueued();
      }
    }
    if (this.streams.size === 0 && this.queue.length === 0) this.setReferenced(false);
  }

  private onTimeout(s: Stream, timeoutMs: number): void {
    const err = new H2Error(`no response within ${timeoutMs} ms`, "timeout");
    if (!s.id) {
      this.settle(s, err);
      // Never got as far as the server's SETTINGS: this connection is not going to work.
      if (this.state === "connecting") {
        const cause = Object.assign(new Error("connection timed out"), { code: "ETIMEDOUT" });
        this.fail(new H2Error(cause.message, "network", { cause }));
      }
      return;
    }
    if (this.state !== "closed") this.socket.write(frame(RST_STREAM, 0, s.id, u32(CANCEL)));
    // Nothing heard since this request started: check the connection is alive, or the next requests
    // would wait on a dead one until TCP gives up.
    if (this.state === "open" && this.lastFrameAt < s.startedAt && this.pingTimer === undefined) {
      this.socket.write(frame(PING, 0, 0, new Uint8Array(8)));
      const sentAt = performance.now();
      this.pingTimer = setTimeout(() => {
        this.pingTimer = undefined;
        if (this.lastFrameAt < sentAt) {
          this.fail(new H2Error(`${this.authority} stopped answering (no PING reply)`, "closed"));
        }
      }, PING_TIMEOUT_MS);
      this.pingTimer.unref?.();
    }
    this.settle(s, err);
  }
}
