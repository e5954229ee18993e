/**
 * `netflow2traces healthcheck [HOST:PORT | URL]`: asks a running collector's `/healthz` and exits 0 (healthy)
 * or 1. It is the Docker HEALTHCHECK of the scratch image, which has no shell and no curl.
 *
 * Without an argument it uses `NETFLOW_HTTP_LISTEN` (default 127.0.0.1:9464); a wildcard listen host
 * (`0.0.0.0`, `::`, empty) is asked on loopback.
 */
import http from "node:http";
import process from "node:process";
import { splitHostPort } from "../netflow/addresses.ts";
import { DEFAULTS } from "../config_vars.ts";

const TIMEOUT_MS = 3_000;

/** The `/healthz` URL for a `host:port`, `:port`, `port` or `http://…` target; undefined if unusable. */
export function healthzUrl(target: string): URL | undefined {
  const t = target.trim();
  if (/^https?:\/\//i.test(t)) {
    try {
      const url = new URL(t);
      if (url.pathname === "/" || url.pathname === "") url.pathname = "/healthz";
      return url;
    } catch {
      return undefined;
    }
  }
  const split = splitHostPort(t);
  if (!split || !(split.port >= 1 && split.port <= 65535)) return undefined;
  const port = split.port;
  let host = split.host.startsWith("[") ? split.host.slice(1, -1) : split.host;
  if (host === "" || host === "0.0.0.0") host = "127.0.0.1";
  else if (host === "::") host = "::1";
  return new URL(`http://${host.includes(":") ? `[${host}]` : host}:${port}/healthz`);
}

/** Runs the subcommand; resolves with the exit code. */
export async function runHealthcheck(
  args: string[],
  env: Record<string, string | undefined> = process.env,
): Promise<number> {
  if (args[0] === "-h" || args[0] === "--help") {
    process.stdout.write(
      "usage: netflow2traces healthcheck [HOST:PORT | URL]\n" +
        "GETs /healthz of a running collector (default: NETFLOW_HTTP_LISTEN, else 127.0.0.1:9464); exit 0 when healthy, else 1.\n",
    );
    return 0;
  }
  const target = args[0] ?? (env.NETFLOW_HTTP_LISTEN?.trim() || DEFAULTS.httpListen);
  if (target.toLowerCase() === "off") {
    process.stderr.write("healthcheck: NETFLOW_HTTP_LISTEN is off and no HOST:PORT was given\n");
    return 1;
  }
  const url = healthzUrl(target);
  if (!url) {
    process.stderr.write(`healthcheck: cannot use "${target}": expected HOST:PORT, :PORT or a URL\n`);
    return 1;
  }
  try {
    const { status, body } = await get(url);
    const line = `healthcheck: ${url.href} → ${status} ${body.trim().slice(0, 200)}\n`;
    if (status === 200) {
      process.stdout.write(line);
      return 0;
    }
    process.stderr.write(line);
    return 1;
  } catch (err) {
    process.stderr.write(`healthcheck: ${url.href}: ${(err as Error).message}\n`);
    return 1;
  }
}

function get(url: URL): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: TIMEOUT_MS }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    req.on("error", reject);
  });
}
