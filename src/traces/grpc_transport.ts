/**
 * OTLP/gRPC as one unary call over our own HTTP/2 client (h2_session.ts): a 5-byte frame header, the
 * protobuf request, `grpc-status` in the trailers. Why not @grpc/grpc-js: under Deno its per-message work
 * made export the bottleneck (spans dropped at 100k flows/s, see docs/PERFORMANCE.md); nor node:http2: it
 * cost ≈1.5 µs CPU per span and much memory under Deno. The call itself needs nothing either adds.
 * One call per attempt: the delivery queue (delivery.ts) retries. INVALID_ARGUMENT is the one status that
 * rejects the request itself; RetryInfo in `grpc-status-details-bin` sets the next attempt's delay.
 */
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { type H2ConnectOptions, H2Error, type H2Response, H2Session } from "./h2_session.ts";
import {
  CREDENTIALS_HINT,
  describeNetworkError,
  GRPC_STATUS_NAMES,
  gzipRequest,
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

export class GrpcTransport implements Transport {
  private session: H2Session | undefined;
  private readonly host: string;
  private readonly tls: boolean;
  private readonly connectOptions: H2ConnectOptions;
  private readonly baseHeaders: [string, string][];

  constructor(private readonly options: GrpcTransportOptions) {
    const url = new URL(options.endpoint);
    const tls = url.protocol === "https:" && !options.insecure;
    const hostname = url.hostname.replace(/^\[|\]$/g, "");
    this.host = url.host;
    this.tls = tls;
    const read = (path?: string) => (path ? readFileSync(path) : undefined);
    this.connectOptions = {
      host: hostname,
      port: Number(url.port) || (url.protocol === "https:" ? 443 : 80),
      authority: url.host,
      tls: tls
        ? {
          ca: read(options.certificateFile),
          key: read(options.clientKeyFile),
          cert: read(options.clientCertificateFile),
          // SNI carries host names only (RFC 6066 §3), and Deno's node:tls refuses an IP there; the
          // certificate is still verified against the IP.
          ...(isIP(hostname) ? {} : { servername: hostname }),
        }
        : undefined,
    };
    const headers: Record<string, string> = {
      ":method": "POST",
      ":path": options.path,
      "content-type": "application/grpc",
      "te": "trailers",
      "user-agent": options.userAgent,
      ...(options.compression === "gzip" ? { "grpc-encoding": "gzip" } : {}),
    };
    for (const [k, v] of Object.entries(options.headers)) headers[k.toLowerCase()] = v;
    this.baseHeaders = Object.entries(headers);
  }

  close(): void {
    this.session?.close();
    this.session = undefined;
  }

  private connect(): H2Session {
    if (!this.session?.usable) this.session = new H2Session(this.connectOptions);
    return this.session;
  }

  async send(data: Uint8Array, timeoutMs: number): Promise<SendOutcome> {
    const compressed = this.options.compression === "gzip";
    const message = compressed ? gzipRequest(data) : data;
    // The 5-byte gRPC message header is its own buffer: the message is sent from where it is, not copied.
    const prefix = new Uint8Array(5);
    prefix[0] = compressed ? 1 : 0;
    new DataView(prefix.buffer).setUint32(1, message.length);
    const headers: [string, string][] = [...this.baseHeaders, ["grpc-timeout", `${Math.ceil(timeoutMs)}m`]];
    const deadline = performance.now() + timeoutMs;
    let response: H2Response;
    try {
      try {
        response = await this.connect().request(headers, [prefix, message], timeoutMs);
      } catch (err) {
        // Certainly not processed (GOAWAY, REFUSED_STREAM): safe to send once more (connect() moves to a new
        // connection if this one is going away).
        const left = deadline - performance.now();
        if (!(err instanceof H2Error && err.unprocessed) || left < 1) throw err;
        response = await this.connect().request(headers, [prefix, message], left);
      }
    } catch (err) {
      return { kind: "retry", problem: { message: this.describeFailure(err, timeoutMs) } };
    }
    return this.outcome(response);
  }

  private describeFailure(err: unknown, timeoutMs: number): string {
    if (!(err instanceof H2Error)) return describeNetworkError(err, this.host, this.tls);
    switch (err.kind) {
      case "network":
        return describeNetworkError(err.cause ?? err, this.host, this.tls);
      case "timeout":
        return `no answer from ${this.host} within ${timeoutMs} ms`;
      case "closed":
        return `gRPC export failed: the connection to ${this.host} closed without an answer`;
      case "goaway":
        return `connection to ${this.host} closed by the server (${err.message})`;
      case "reset":
        return err.h2Code === 7 // REFUSED_STREAM
          ? `${this.host} refused the request (the server is shutting down?)`
          : `gRPC export failed: ${this.host} ${err.message}`;
      default:
        return `gRPC export failed: ${err.message}`;
    }
  }

  private outcome(response: H2Response): SendOutcome {
    let status: number | undefined;
    let statusMessage = "";
    let details: Uint8Array | undefined;
    const readStatus = (h: Record<string, string>) => {
      if (h["grpc-status"] === undefined) return;
      status = Number(h["grpc-status"]);
      try {
        statusMessage = decodeURIComponent(h["grpc-message"] ?? "");
      } catch {
        statusMessage = h["grpc-message"];
      }
      const bin = h["grpc-status-details-bin"];
      if (typeof bin === "string") details = Buffer.from(bin, "base64");
    };
    // A trailers-only response carries grpc-status in the headers.
    readStatus(response.headers);
    readStatus(response.trailers);
    if (status === 0) {
      const body = response.data;
      const partial = readPartialSuccess(body.length > 5 ? body.subarray(5) : undefined);
      return { kind: "accepted", rejectedSpans: partial.rejected, message: partial.message };
    }
    if (status === undefined) {
      const why =
        `HTTP ${response.status} without grpc-status (not a gRPC endpoint? try OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf)`;
      return { kind: "retry", problem: { message: `gRPC export failed: ${why}` } };
    }
    const name = GRPC_STATUS_NAMES[status] ?? `status ${status}`;
    const text = `gRPC ${name}${statusMessage ? `: ${statusMessage.slice(0, 200)}` : ""}`;
    if (status === INVALID_ARGUMENT) return { kind: "rejected", problem: { message: text } };
    if (status === UNAUTHENTICATED || status === PERMISSION_DENIED) {
      return { kind: "retry", problem: { message: `${CREDENTIALS_HINT} (${text})`, credentials: true } };
    }
    return {
      kind: "retry",
      problem: { message: text },
      retryAfterMs: details ? parseGrpcRetryInfo(details) : undefined,
    };
  }
}
