/**
 * OTLP/HTTP (http/protobuf): one POST per attempt over node:http(s) with a keep-alive agent, so it is the
 * same code on Deno and Bun. The status decides the outcome (OTLP spec, "Failures"): 2xx accepted (a partial
 * success is read from the body), 400 rejected as malformed, everything else retried later; `Retry-After`
 * is honoured.
 */
import http from "node:http";
import https from "node:https";
import { readFileSync } from "node:fs";
import { Buffer } from "node:buffer";
import {
  CREDENTIALS_HINT,
  describeNetworkError,
  gzipRequest,
  parseRetryAfter,
  readPartialSuccess,
  type SendOutcome,
  type Transport,
} from "./transport.ts";

export interface HttpTransportOptions {
  /** The full URL, e.g. `http://localhost:4318/v1/traces`. */
  url: string;
  headers: Record<string, string>;
  compression: "gzip" | "none";
  certificateFile?: string;
  clientKeyFile?: string;
  clientCertificateFile?: string;
  userAgent: string;
}

/** Requests in flight at once on the keep-alive agent (the delivery queue sends at most this many). */
const MAX_SOCKETS = 16;

export class HttpTransport implements Transport {
  private readonly url: URL;
  private readonly agent: http.Agent;
  private readonly headers: Record<string, string>;
  private readonly client: typeof http | typeof https;

  constructor(private readonly options: HttpTransportOptions) {
    this.url = new URL(options.url);
    const tls = this.url.protocol === "https:";
    const read = (path?: string) => (path ? readFileSync(path) : undefined);
    this.client = tls ? https : http;
    this.agent = tls
      ? new https.Agent({
        keepAlive: true,
        maxSockets: MAX_SOCKETS,
        ca: read(options.certificateFile),
        cert: read(options.clientCertificateFile),
        key: read(options.clientKeyFile),
      })
      : new http.Agent({ keepAlive: true, maxSockets: MAX_SOCKETS });
    this.headers = {
      "content-type": "application/x-protobuf",
      "user-agent": options.userAgent,
      ...(options.compression === "gzip" ? { "content-encoding": "gzip" } : {}),
    };
    for (const [k, v] of Object.entries(options.headers)) this.headers[k.toLowerCase()] = v;
  }

  send(data: Uint8Array, timeoutMs: number): Promise<SendOutcome> {
    const body = this.options.compression === "gzip" ? gzipRequest(data) : data;
    const host = this.url.host;
    return new Promise<SendOutcome>((resolve) => {
      let settled = false;
      const done = (outcome: SendOutcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(outcome);
      };
      const req = this.client.request(this.url, {
        method: "POST",
        agent: this.agent,
        headers: { ...this.headers, "content-length": String(body.length) },
      }, (res) => {
        const chunks: Uint8Array[] = [];
        res.on("data", (c: Uint8Array) => chunks.push(c));
        res.on(
          "error",
          (err) =>
            done({
              kind: "retry",
              problem: { message: describeNetworkError(err, host, this.client === https) },
            }),
        );
        res.on("end", () => {
          const status = res.statusCode ?? 0;
          const text = () => new TextDecoder().decode(Buffer.concat(chunks)).replace(/\s+/g, " ").trim();
          if (status >= 200 && status < 300) {
            const partial = readPartialSuccess(Buffer.concat(chunks));
            done({ kind: "accepted", rejectedSpans: partial.rejected, message: partial.message });
            return;
          }
          const reason = `HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ""}`;
          const said = text().slice(0, 200);
          const message = `${reason}${said ? `: ${said}` : ""}`;
          if (status === 400) {
            done({ kind: "rejected", problem: { message } });
          } else if (status === 401 || status === 403) {
            done({
              kind: "retry",
              problem: { message: `${CREDENTIALS_HINT} (${message})`, credentials: true },
            });
          } else {
            const hint = status === 404 ? ` (is ${this.url.pathname} the right path?)` : "";
            done({
              kind: "retry",
              problem: { message: message + hint },
              retryAfterMs: parseRetryAfter(res.headers["retry-after"]),
            });
          }
        });
      });
      const timer = setTimeout(() => {
        // Destroying the request tells the backend we gave up, so it should not keep the spans. Deno's
        // node:http re-sends a destroyed request on its own when it went out on a reused keep-alive socket
        // (denoland/deno#36786), which would deliver the spans twice: mark it as not reused first.
        (req as { reusedSocket: boolean }).reusedSocket = false;
        req.destroy();
        done({ kind: "retry", problem: { message: `no answer from ${host} within ${timeoutMs} ms` } });
      }, timeoutMs);
      req.on(
        "error",
        (err) =>
          done({
            kind: "retry",
            problem: { message: describeNetworkError(err, host, this.client === https) },
          }),
      );
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
