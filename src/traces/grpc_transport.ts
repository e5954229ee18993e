/**
 * OTLP/gRPC as one unary call over node:http2: a 5-byte frame header, the protobuf request, `grpc-status`
 * in the trailers. Why not @grpc/grpc-js: under Deno its per-message work made export the bottleneck
 * (spans dropped at 100k flows/s, see docs/PERFORMANCE.md); the call itself needs nothing grpc-js adds.
 * It plugs into the OpenTelemetry export delegate as its transport, retries included.
 */
import http2 from "node:http2";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { gzipSync } from "node:zlib";
import type { ExportResponse, IExporterTransport } from "@opentelemetry/otlp-exporter-base";

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

/** gRPC status codes worth retrying (OTLP spec: transient failures). */
const RETRYABLE = new Set([
  1, /* CANCELLED */
  4, /* DEADLINE_EXCEEDED */
  8,
  10,
  11,
  14, /* UNAVAILABLE */
  15,
]);

/** Retries: exponential backoff with jitter, within the export's own timeout. */
const MAX_ATTEMPTS = 5;
const INITIAL_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 5_000;

export class GrpcTransport implements IExporterTransport {
  private session: http2.ClientHttp2Session | undefined;
  private readonly authority: string;
  private readonly connectOptions: http2.SecureClientSessionOptions;
  private readonly baseHeaders: http2.OutgoingHttpHeaders;

  constructor(private readonly options: GrpcTransportOptions) {
    const url = new URL(options.endpoint);
    const tls = url.protocol === "https:" && !options.insecure;
    this.authority = `${tls ? "https" : "http"}://${url.host}`;
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

  async send(data: Uint8Array, timeoutMillis: number): Promise<ExportResponse> {
    const deadline = Date.now() + timeoutMillis;
    let backoff = INITIAL_BACKOFF_MS;
    for (let attempt = 1;; attempt++) {
      const response = await this.call(data, Math.max(1, deadline - Date.now()));
      if (response.status !== "retryable" || attempt >= MAX_ATTEMPTS) return response;
      const wait = Math.min(backoff * (0.8 + Math.random() * 0.4), MAX_BACKOFF_MS);
      if (Date.now() + wait >= deadline) return response;
      await new Promise((r) => setTimeout(r, wait));
      backoff = Math.min(backoff * 1.5, MAX_BACKOFF_MS);
    }
  }

  shutdown(): void {
    this.session?.close();
    this.session = undefined;
  }

  private connect(): http2.ClientHttp2Session {
    if (this.session && !this.session.closed && !this.session.destroyed) return this.session;
    const session = http2.connect(this.authority, this.connectOptions);
    session.on("error", () => {}); // surfaces as the failure of the request in flight
    session.on("close", () => {
      if (this.session === session) this.session = undefined;
    });
    // An idle exporter must not keep the process alive.
    session.unref?.();
    this.session = session;
    return session;
  }

  private call(data: Uint8Array, timeoutMillis: number): Promise<ExportResponse> {
    const compressed = this.options.compression === "gzip";
    const message = compressed ? gzipSync(data) : data;
    const frame = new Uint8Array(5 + message.length);
    frame[0] = compressed ? 1 : 0;
    new DataView(frame.buffer).setUint32(1, message.length);
    frame.set(message, 5);
    return new Promise<ExportResponse>((resolve) => {
      let settled = false;
      const done = (r: ExportResponse) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(r);
      };
      let stream: http2.ClientHttp2Stream;
      try {
        stream = this.connect().request({
          ...this.baseHeaders,
          "grpc-timeout": `${Math.ceil(timeoutMillis)}m`,
        });
      } catch (err) {
        this.shutdown();
        done({ status: "retryable", error: err as Error });
        return;
      }
      const timer = setTimeout(() => {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        done({ status: "retryable", error: new Error(`gRPC export timed out after ${timeoutMillis} ms`) });
      }, timeoutMillis);
      let httpStatus = 0;
      let status: string | undefined;
      let statusMessage = "";
      const chunks: Uint8Array[] = [];
      stream.on("response", (headers) => {
        httpStatus = Number(headers[":status"]);
        // A trailers-only response carries grpc-status in the headers.
        if (headers["grpc-status"] !== undefined) {
          status = String(headers["grpc-status"]);
          statusMessage = decodeURIComponent(String(headers["grpc-message"] ?? ""));
        }
      });
      stream.on("trailers", (trailers) => {
        status = String(trailers["grpc-status"]);
        statusMessage = decodeURIComponent(String(trailers["grpc-message"] ?? ""));
      });
      stream.on("data", (chunk: Uint8Array) => chunks.push(chunk));
      stream.on("error", (err) => {
        this.shutdown();
        done({ status: "retryable", error: err });
      });
      stream.on("close", () => {
        if (status === "0") {
          const body = Buffer.concat(chunks);
          done({ status: "success", data: body.length > 5 ? body.subarray(5) : undefined });
          return;
        }
        const code = status === undefined ? undefined : Number(status);
        const error = new Error(
          code === undefined
            ? `gRPC export failed: HTTP ${httpStatus || "no response"}, no grpc-status`
            : `gRPC export failed: status ${code}${statusMessage ? ` (${statusMessage})` : ""}`,
        );
        if (code === undefined || RETRYABLE.has(code)) done({ status: "retryable", error });
        else done({ status: "failure", error });
      });
      stream.end(frame);
    });
  }
}
