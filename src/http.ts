/**
 * The HTTP endpoint (`NETFLOW_HTTP_LISTEN`): `/healthz` for probes, `/metrics` in the Prometheus text
 * format, and the status page `/` with its JSON under `/api/` (status_page.ts). GET and HEAD only. One
 * router for both runtimes; Deno serves it with Deno.serve (80 µs of CPU a request against 150 µs for
 * node:http on Deno, idle, in a quick check), Bun with node:http, which it implements natively.
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
import { isBun } from "./runtime.ts";
import { STATUS_PAGE, STATUS_PAGE_CSP } from "./status_page.ts";

export interface HttpHandlers {
  /** The body of `/metrics` (Prometheus text exposition format 0.0.4). */
  metrics: () => string;
  /** `/healthz` answers 200 "ok" when true, else 503 "unhealthy". */
  healthy: () => boolean;
  /** Lines that follow "ok" / "unhealthy" in `/healthz` (the export state). */
  healthDetail?: () => string;
  /**
   * The status page's data: the JSON value for an `/api/…` path and its query (or a promise of it), or
   * undefined (404).
   */
  api?: (path: string, query: URLSearchParams) => unknown;
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
  const route = router(handlers);
  return isBun ? listenNode(host, port, route) : listenDeno(host, port, route);
}

/** What one request gets. */
interface Reply {
  status: number;
  body: string;
  type: string;
  headers?: Record<string, string>;
}

type Route = (method: string, url: URL, authorization: string | undefined) => Promise<Reply>;

/** The endpoints, whatever serves them. */
function router(handlers: HttpHandlers): Route {
  const authorized = handlers.auth === undefined ? undefined : authorizationCheck(handlers.auth);
  const text = (
    status: number,
    body: string,
    type = "text/plain; charset=utf-8",
    headers?: Record<string, string>,
  ) => ({ status, body, type, headers });
  return async (method, url, authorization) => {
    const path = url.pathname;
    if (method !== "GET" && method !== "HEAD") return text(405, "method not allowed\n");
    try {
      if (path === "/healthz") {
        const detail = handlers.healthDetail?.() ?? "";
        return handlers.healthy() ? text(200, `ok\n${detail}`) : text(503, `unhealthy\n${detail}`);
      }
      if (authorized !== undefined && !authorized(authorization)) {
        const scheme = handlers.auth!.scheme === "basic" ? "Basic" : "Bearer";
        return text(401, "unauthorized: this collector needs NETFLOW_HTTP_AUTH credentials\n", undefined, {
          "www-authenticate": `${scheme} realm="netflow2traces"`,
        });
      }
      if (path === "/metrics") return text(200, handlers.metrics(), PROMETHEUS_CONTENT_TYPE);
      if (handlers.api !== undefined) {
        if (path === "/") {
          return text(200, STATUS_PAGE, "text/html; charset=utf-8", {
            "content-security-policy": STATUS_PAGE_CSP,
          });
        }
        if (path.startsWith("/api/")) {
          const value = await handlers.api(path, url.searchParams);
          if (value !== undefined) {
            return text(
              200,
              value instanceof JsonText ? value.text : JSON.stringify(value),
              "application/json",
            );
          }
        }
      }
      return text(404, "not found: try /, /metrics or /healthz\n");
    } catch (err) {
      return text(500, `error: ${(err as Error).message}\n`);
    }
  };
}

/**
 * One line for a failed bind, from either runtime: node:http's errors carry the errno `code`, and so do
 * Deno's (`AddrInUse` is `EADDRINUSE`); a Deno permission flag refusal is `NotCapable`, without one.
 */
function bindError(host: string, port: number, err: Error): BindError {
  const code = (err as { code?: string }).code;
  const why = code === "EADDRINUSE"
    ? "address already in use"
    : code === "EACCES" || err.name === "PermissionDenied" || err.name === "NotCapable"
    ? "permission denied"
    : code === "EADDRNOTAVAIL"
    ? "address not available on this host"
    : err.message;
  return new BindError(
    `cannot listen on http ${
      formatHostPort(host, port)
    }: ${why} (NETFLOW_HTTP_LISTEN: another host:port, or off)`,
  );
}

/** Deno: its own HTTP server (Deno.serve). */
function listenDeno(host: string, port: number, route: Route): Promise<HttpServer> {
  const controller = new AbortController();
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({ hostname: host, port, signal: controller.signal, onListen() {} }, async (req) => {
      const r = await route(req.method, new URL(req.url), req.headers.get("authorization") ?? undefined);
      return new Response(req.method === "HEAD" ? null : r.body, {
        status: r.status,
        headers: { "content-type": r.type, "cache-control": "no-store", ...r.headers },
      });
    });
  } catch (err) {
    return Promise.reject(bindError(host, port, err as Error));
  }
  let closing: Promise<void> | undefined;
  return Promise.resolve({
    port: server.addr.port,
    close() {
      closing ??= (controller.abort(), server.finished);
      return closing;
    },
  });
}

/** Bun: node:http (Bun implements it natively). */
function listenNode(host: string, port: number, route: Route): Promise<HttpServer> {
  const server = http.createServer(async (req, res) => {
    const method = req.method ?? "GET";
    const r = await route(method, new URL(req.url ?? "/", "http://localhost"), req.headers.authorization);
    res.writeHead(r.status, { "content-type": r.type, "cache-control": "no-store", ...r.headers });
    res.end(method === "HEAD" ? undefined : r.body);
  });
  return new Promise((resolve, reject) => {
    server.once("error", (err: Error) => reject(bindError(host, port, err)));
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
