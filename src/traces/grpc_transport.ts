/**
 * OTLP/gRPC as one unary call over node:http2: a 5-byte frame header, the protobuf request, `grpc-status`
 * in the trailers. Why not @grpc/grpc-js: under Deno its per-message work made export the bottleneck
 * (spans dropped at 100k flows/s, see docs/PERFORMANCE.md); the call itself needs nothing grpc-js adds.
 * One call per attempt: the delivery queue (delivery.ts) retries. INVALID_ARGUMENT is the one status that
 * rejects the request itself; RetryInfo in `grpc-status-details-bin` sets the next attempt's delay.
 */
import http2 from "node:http2";
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { gzipSync } from "node:zlib";
import {
  CREDENTIALS_HINT,
  describeNetworkError,
  GRPC_STATUS_NAMES,
  parseGrpcRetryInfo,
  readPartialSuccess,
  type SendOutcome,
  type Transport,
} from "./transport.ts";

export interface GrpcTransportOptions {
  /** `http://host:port` (plaintext, h2c) or `https://host:port` (TLS). */
  endpoint: string;
  headers: Record<string, string>;
  compression: "gzip" | "none";
  certificateFile?: string;
  clientKeyFile?: string;
  clientCertificateFile?: string;
  /** Plaintext even for an https:// endpoint (OTEL_EXPORTER_OTLP_INSECURE). */
  insecure?: boolean;
  /** The gRPC method, e.g. `/opentelemetry.proto.collector.trace.v1.TraceService/Export`. */
  path: string;
  userAgent: string;
}

const INVALID_ARGUMENT = 3, PERMISSION_DENIED = 7, UNAUTHENTICATED = 16;
/** How long a failed stream waits for its session's error, which names the cause better. */
const SESSION_ERROR_WAIT_MS = 20;

export class GrpcTransport implements Transport {
  private session: http2.ClientHttp2Session | undefined;
  private sessionError: Error | undefined;
  private readonly authority: string;
  private readonly host: string;
  private readonly tls: boolean;
  private readonly connectOptions: http2.SecureClientSessionOptions;
  private readonly baseHeaders: http2.OutgoingHttpHeaders;

  constructor(private readonly options: GrpcTransportOptions) {
    const url = new URL(options.endpoint);
    const tls = url.protocol === "https:" && !options.insecure;
    this.authority = `${tls ? "https" : "http"}://${url.host}`;
    this.host = url.host;
    this.tls = tls;
    const read = (path?: string) => (path ? readFileSync(path) : undefined);
    this.connectOptions = tls
      ? {
        ca: read(options.certificateFile),
        key: read(options.clientKeyFile),
        cert: read(options.clientCertificateFile),
        // SNI carries host names only (RFC 6066 §3), and Deno's node:tls refuses an IP there; the
        // certificate is still verified against the IP.
        ...(isIP(url.hostname.replace(/^\[|\]$/g, "")) ? {} : { servername: url.hostname }),
      }
      : {};
    this.baseHeaders = {
      ":method": "POST",
      ":path": options.path,
      "content-type": "application/grpc",
      "te": "trailers",
      "user-agent": options.userAgent,
      ...(options.compression === "gzip" ? { "grpc-encoding": "gzip" } : {}),
    };
    for (const [k, v] of Object.entries(options.headers)) this.baseHeaders[k.toLowerCase()] = v;
  }

  close(): void {
    this.session?.close();
    this.session = undefined;
  }

  private connect(): http2.ClientHttp2Session {
    if (this.session && !this.session.closed && !this.session.destroyed) return this.session;
    this.sessionError = undefined;
    const session = http2.connect(this.authority, this.connectOptions);
    // Surfaces as the failure of the requests in flight; kept to name the cause when a stream only closes.
    session.on("error", (err) => (this.sessionError = err));
    session.on("close", () => {
      if (this.session === session) this.session = undefined;
    });
    // An idle exporter must not keep the process alive.
    session.unref?.();
    this.session = session;
    return session;
  }

  send(data: Uint8Array, timeoutMs: number): Promise<SendOutcome> {
    const compressed = this.options.compression === "gzip";
    const message = compressed ? gzipSync(data) : data;
    // The 5-byte gRPC message header goes out as its own write: the message is not copied.
    const prefix = new Uint8Array(5);
    prefix[0] = compressed ? 1 : 0;
    new DataView(prefix.buffer).setUint32(1, message.length);
    const networkFailure = (err: unknown): SendOutcome => {
      this.close();
      return { kind: "retry", problem: { message: describeNetworkError(err, this.host, this.tls) } };
    };
    return new Promise<SendOutcome>((resolve) => {
      let settled = false;
      const done = (r: SendOutcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(r);
      };
      let stream: http2.ClientHttp2Stream;
      try {
        stream = this.connect().request({ ...this.baseHeaders, "grpc-timeout": `${Math.ceil(timeoutMs)}m` });
      } catch (err) {
        done(networkFailure(err));
        return;
      }
      const timer = setTimeout(() => {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        done({ kind: "retry", problem: { message: `no answer from ${this.host} within ${timeoutMs} ms` } });
      }, timeoutMs);
      let httpStatus = 0;
      let status: number | undefined;
      let statusMessage = "";
      let details: Uint8Array | undefined;
      const readStatus = (h: http2.IncomingHttpHeaders) => {
        if (h["grpc-status"] === undefined) return;
        status = Number(h["grpc-status"]);
        try {
          statusMessage = decodeURIComponent(String(h["grpc-message"] ?? ""));
        } catch {
          statusMessage = String(h["grpc-message"]);
        }
        const bin = h["grpc-status-details-bin"];
        if (typeof bin === "string") details = Buffer.from(bin, "base64");
      };
      const chunks: Uint8Array[] = [];
      // A trailers-only response carries grpc-status in the headers.
      stream.on("response", (headers) => {
        httpStatus = Number(headers[":status"]);
        readStatus(headers);
      });
      stream.on("trailers", readStatus);
      stream.on("data", (chunk: Uint8Array) => chunks.push(chunk));
      let streamError: Error | undefined;
      stream.on("error", (err) => (streamError = err));
      stream.on("close", () => {
        if (status === 0) {
          const body = Buffer.concat(chunks);
          const partial = readPartialSuccess(body.length > 5 ? body.subarray(5) : undefined);
          done({ kind: "accepted", rejectedSpans: partial.rejected, message: partial.message });
          return;
        }
        if (status === undefined && httpStatus === 0) {
          // A TLS refusal reaches the stream as a reset and the session as the real cause a moment later:
          // wait that moment so the WARN line names the cause (only failures pay for it).
          setTimeout(() => {
            const cause = this.sessionError ?? streamError;
            done(
              cause ? networkFailure(cause) : {
                kind: "retry",
                problem: {
                  message: `gRPC export failed: the connection to ${this.host} closed without an answer`,
                },
              },
            );
          }, SESSION_ERROR_WAIT_MS);
          return;
        }
        if (status === undefined) {
          const why = httpStatus
            ? `HTTP ${httpStatus} without grpc-status (not a gRPC endpoint? try OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf)`
            : "the connection closed without an answer";
          done({ kind: "retry", problem: { message: `gRPC export failed: ${why}` } });
          return;
        }
        const name = GRPC_STATUS_NAMES[status] ?? `status ${status}`;
        const text = `gRPC ${name}${statusMessage ? `: ${statusMessage.slice(0, 200)}` : ""}`;
        if (status === INVALID_ARGUMENT) done({ kind: "rejected", problem: { message: text } });
        else if (status === UNAUTHENTICATED || status === PERMISSION_DENIED) {
          done({ kind: "retry", problem: { message: `${CREDENTIALS_HINT} (${text})`, credentials: true } });
        } else {
          done({
            kind: "retry",
            problem: { message: text },
            retryAfterMs: details ? parseGrpcRetryInfo(details) : undefined,
          });
        }
      });
      stream.write(prefix);
      stream.end(message);
    });
  }
}
