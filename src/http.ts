/**
 * The optional HTTP endpoint (`NETFLOW_HTTP_LISTEN`): `/healthz` for probes, `/metrics` in the Prometheus
 * text format, and the status page `/` with its JSON under `/api/` (status_page.ts). GET and HEAD only.
 * node:http, so it is the same code on Deno and Bun.
 *
 * ```ts
 * const server = await startHttpServer("127.0.0.1", 9464, { metrics: () => "up 1\n", healthy: () => true });
 * // GET http://127.0.0.1:9464/healthz → 200 "ok"
 * await server.close();
 * ```
 */
import { createHash, timingSafeEqual } from "node:crypto";
import http from "node:http";
import { Buffer } from "node:buffer";
import type { AddressInfo } from "node:net";
import { formatHostPort } from "./netflow/addresses.ts";
import { BindError } from "./udp/source.ts";
import type { HttpAuth } from "./config_values.ts";
import { STATUS_PAGE, STATUS_PAGE_CSP } from "./status_page.ts";

export interface HttpHandlers {
  /** The body of `/metrics` (Prometheus text exposition format 0.0.4). */
  metrics: () => string;
  /** `/healthz` answers 200 "ok" when true, else 503 "unhealthy". */
  healthy: () => boolean;
  /** Lines that follow "ok" / "unhealthy" in `/healthz` (the export state). */
  healthDetail?: () => string;
  /** The status page's data: the JSON value for an `/api/…` path (or a promise of it), or undefined (404). */
  api?: (path: string) => unknown;
  /** NETFLOW_HTTP_AUTH: what every path but `/healthz` requires. */
  auth?: HttpAuth;
}

/** An `/api/` answer that is JSON text already (sent as it is). */
export class JsonText {
  constructor(readonly text: string) {}
}

export interface HttpServer {
  /** The bound port (resolved when 0 was asked for). */
  port: number;
  close(): Promise<void>;
}

const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/**
 * Listens on `host:port`. Rejects with a {@link BindError} (one line for the user) when the port is in use or
 * not allowed.
 */
export function startHttpServer(host: string, port: number, handlers: HttpHandlers): Promise<HttpServer> {
  const authorized = handlers.auth === undefined ? undefined : authorizationCheck(handlers.auth);
  const server = http.createServer(async (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const reply = (status: number, body: string, type = "text/plain; charset=utf-8") => {
      res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
      res.end(req.method === "HEAD" ? undefined : body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return reply(405, "method not allowed\n");
    try {
      if (path === "/healthz") {
        const detail = handlers.healthDetail?.() ?? "";
        return handlers.healthy() ? reply(200, `ok\n${detail}`) : reply(503, `unhealthy\n${detail}`);
      }
      if (authorized !== undefined && !authorized(req.headers.authorization)) {
        const scheme = handlers.auth!.scheme === "basic" ? "Basic" : "Bearer";
        res.setHeader("www-authenticate", `${scheme} realm="netflow2traces"`);
        return reply(401, "unauthorized: this collector needs NETFLOW_HTTP_AUTH credentials\n");
      }
      if (path === "/metrics") return reply(200, handlers.metrics(), PROMETHEUS_CONTENT_TYPE);
      if (handlers.api !== undefined) {
        if (path === "/") {
          res.setHeader("content-security-policy", STATUS_PAGE_CSP);
          return reply(200, STATUS_PAGE, "text/html; charset=utf-8");
        }
        if (path.startsWith("/api/")) {
          const value = await handlers.api(path);
          if (value !== undefined) {
            const body = value instanceof JsonText ? value.text : JSON.stringify(value);
            return reply(200, body, "application/json");
          }
        }
      }
      return reply(404, "not found: try /, /metrics or /healthz\n");
    } catch (err) {
      return reply(500, `error: ${(err as Error).message}\n`);
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      const why = err.code === "EADDRINUSE"
        ? "address already in use"
        : err.code === "EACCES"
        ? "permission denied"
        : err.code === "EADDRNOTAVAIL"
        ? "address not available on this host"
        : err.message;
      reject(
        new BindError(
          `cannot listen on http ${
            formatHostPort(host, port)
          }: ${why} (NETFLOW_HTTP_LISTEN: another host:port, or off)`,
        ),
      );
    });
    server.listen(port, host, () => {
      let closing: Promise<void> | undefined;
      resolve({
        port: (server.address() as AddressInfo).port,
        close() {
          closing ??= new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          });
          return closing;
        },
      });
    });
  });
}

/**
 * A check of the Authorization header against NETFLOW_HTTP_AUTH. Digests are compared in constant time,
 * so neither the secret nor its length shows in how long a refusal takes.
 */
function authorizationCheck(auth: HttpAuth): (header: string | undefined) => boolean {
  const credentials = auth.scheme === "bearer"
    ? auth.token
    : Buffer.from(`${auth.user}:${auth.password}`, "utf8").toString("base64");
  const scheme = auth.scheme === "bearer" ? "bearer " : "basic ";
  const expected = digest(credentials);
  return (header) => {
    if (header === undefined || header.slice(0, scheme.length).toLowerCase() !== scheme) return false;
    return timingSafeEqual(digest(header.slice(scheme.length).trim()), expected);
  };
}

function digest(s: string): Uint8Array {
  return createHash("sha256").update(s).digest();
}
