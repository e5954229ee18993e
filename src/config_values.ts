/**
 * Reading and validating one configuration value: the layered {@link Source} (flag > environment > `.env`)
 * and a parser per kind of value (integer, choice, URL, file, CIDR list, ...). Each parser throws a
 * {@link ConfigError} whose message is one line naming the variable (or flag), the value and what is
 * allowed. Which variable becomes which field of the configuration: config.ts.
 */
import { accessSync, constants, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { CidrSet, formatCidr, parseCidr, parseIp } from "./cidr.ts";
import { SIGNAL } from "./config_vars.ts";
import { EnrichmentError, type EnrichmentTable, readEnrichment } from "./enrichment.ts";
import { FieldsFileError, readFields } from "./fields_file.ts";
import type { CustomField } from "./netflow/elements.ts";
import { splitHostPort } from "./netflow/addresses.ts";

/** An invalid configuration: `message` is the one line shown to the user (exit code 2). */
export class ConfigError extends Error {
  override name = "ConfigError";
}

export type Env = Record<string, string | undefined>;

export interface Value {
  text: string;
  /** How the value is named in messages: the flag, or the variable. */
  label: string;
  /** Appended to messages about values that came from the .env file. */
  origin: string;
}

/** Layers flags over the environment over the .env file and builds one-line errors. */
export class Source {
  constructor(
    private readonly flags: Record<string, { flag: string; text: string }>,
    private readonly env: Env,
    private readonly dotenv: Record<string, string>,
    private readonly dotenvPath: string,
  ) {}

  /** The value of the flag that stands for variable `name`, when given. */
  flag(name: string): Value | undefined {
    const flag = this.flags[name];
    return flag === undefined ? undefined : { text: flag.text.trim(), label: flag.flag, origin: "" };
  }

  /** The effective value of a variable (trimmed), or undefined when unset or empty. */
  get(name: string): Value | undefined {
    const flag = this.flag(name);
    if (flag) return flag;
    const fromEnv = this.env[name];
    if (fromEnv !== undefined) {
      return fromEnv.trim() === "" ? undefined : { text: fromEnv.trim(), label: name, origin: "" };
    }
    const fromFile = this.dotenv[name];
    if (fromFile === undefined || fromFile.trim() === "") return undefined;
    return { text: fromFile.trim(), label: name, origin: ` (from ${this.dotenvPath})` };
  }

  /** A flag for the generic variable, else the signal-specific variable when set, else the generic one. */
  getOtlp(suffix: string): Value | undefined {
    const generic = `OTEL_EXPORTER_OTLP_${suffix}`;
    return this.flag(generic) ?? this.get(SIGNAL + suffix) ?? this.get(generic);
  }
}

export function fail(v: Value, why: string, shown?: string): never {
  throw new ConfigError(`invalid ${v.label}=${shown ?? JSON.stringify(v.text)}${v.origin}: ${why}`);
}

export function oneOf<T extends string>(
  v: Value | undefined,
  allowed: readonly T[],
  dflt: T,
  aliases = {},
): T {
  if (!v) return dflt;
  const lower = v.text.toLowerCase();
  const hit = (aliases as Record<string, T>)[lower] ?? allowed.find((a) => a === lower);
  if (hit === undefined) fail(v, `must be one of ${allowed.join(", ")}`);
  return hit;
}

export function integer(v: Value | undefined, dflt: number, min: number, max: number, unit = ""): number {
  if (!v) return dflt;
  const n = /^[0-9]+$/.test(v.text) ? Number(v.text) : NaN;
  if (!(n >= min && n <= max)) fail(v, `must be an integer from ${min} to ${max}${unit}`);
  return n;
}

const TRUE = ["true", "1", "yes", "on"], FALSE = ["false", "0", "no", "off"];

export function boolean(v: Value | undefined): boolean | undefined {
  if (!v) return undefined;
  const lower = v.text.toLowerCase();
  if (TRUE.includes(lower)) return true;
  if (FALSE.includes(lower)) return false;
  fail(v, "must be true or false (also 1/0, yes/no, on/off)");
}

const HOSTNAME =
  /^(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** An address literal (brackets removed) or a hostname; undefined when it is neither. */
function hostOrUndefined(text: string): string | undefined {
  const bare = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  if (parseIp(bare)) return bare;
  // All-numeric names are malformed IPv4 addresses (10.0.0.256, 10.1), not hostnames.
  if (HOSTNAME.test(text) && !/^[0-9.]+$/.test(text)) return text;
  return undefined;
}

export function host(v: Value | undefined, dflt: string): string {
  if (!v) return dflt;
  return hostOrUndefined(v.text) ??
    fail(v, "must be an IPv4 or IPv6 address (e.g. 0.0.0.0, ::) or a hostname");
}

export const TIMER_MAX = 2_147_483_647; // setTimeout's limit

export function url(v: Value): string {
  let parsed: URL;
  try {
    parsed = new URL(v.text);
  } catch {
    fail(v, "must be an http:// or https:// URL (e.g. http://localhost:4318)");
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    fail(v, "must be an http:// or https:// URL (e.g. http://localhost:4318)");
  }
  return v.text;
}

/** `…/v1/traces` appended to a base endpoint's path, without a double slash. */
export function tracesUrl(base: string): string {
  const u = new URL(base);
  u.pathname = u.pathname.replace(/\/+$/, "") + "/v1/traces";
  return u.href;
}

/**
 * `k=v,k2=v2` (W3C baggage style): keys trimmed, values trimmed and percent-decoded. `what` shapes the
 * message; header values are never echoed (they are usually credentials).
 */
export function keyValues(v: Value | undefined, kind: "header" | "attribute"): Record<string, string> {
  const out: Record<string, string> = {};
  if (!v) return out;
  const redacted = kind === "header" ? "(value not shown)" : undefined;
  const entries = v.text.split(",");
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i].trim();
    if (entry === "") continue;
    const eq = entry.indexOf("=");
    const key = (eq === -1 ? entry : entry.slice(0, eq)).trim();
    const where = `entry ${i + 1} (${JSON.stringify(key)})`;
    if (eq === -1 || key === "") fail(v, `${where} must be key=value; the format is k=v,k2=v2`, redacted);
    if (kind === "header" && !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(key)) {
      fail(v, `${where}: not a valid HTTP header name`, redacted);
    }
    let value: string;
    try {
      value = decodeURIComponent(entry.slice(eq + 1).trim());
    } catch {
      fail(v, `${where}: invalid percent-encoding (write a literal % as %25)`, redacted);
    }
    if (kind === "header" && /[\r\n\0]/.test(value)) {
      fail(v, `${where}: control characters in the value`, redacted);
    }
    out[key] = value;
  }
  return out;
}

/** A readable file, resolved against `cwd`. */
export function readableFile(v: Value | undefined, cwd: string): string | undefined {
  if (!v) return undefined;
  const path = resolve(cwd, v.text);
  try {
    if (!statSync(path).isFile()) fail(v, "not a regular file");
    accessSync(path, constants.R_OK);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    fail(v, `cannot read the file (${(err as { code?: string }).code ?? (err as Error).message})`);
  }
  return path;
}

/** NETFLOW_ENRICH_FILE: the path and its validated table (a bad file stops start-up with the reason). */
export function enrichmentFile(
  v: Value | undefined,
  cwd: string,
): { enrichFile?: string; enrichment?: EnrichmentTable } {
  const path = readableFile(v, cwd);
  if (!v || !path) return {};
  try {
    return { enrichFile: path, enrichment: readEnrichment(path) };
  } catch (err) {
    if (err instanceof EnrichmentError) fail(v, err.message);
    throw err;
  }
}

/** NETFLOW_FIELDS_FILE: the path and its validated elements (a bad file stops start-up with the reason). */
export function fieldsFile(
  v: Value | undefined,
  cwd: string,
): { fieldsFile?: string; customFields?: CustomField[] } {
  const path = readableFile(v, cwd);
  if (!v || !path) return {};
  try {
    return { fieldsFile: path, customFields: readFields(path) };
  } catch (err) {
    if (err instanceof FieldsFileError) fail(v, err.message);
    throw err;
  }
}

/** A directory we may write in: it exists, or its parent does (it is created at start). */
export function writableDirectory(v: Value | undefined, cwd: string): string | undefined {
  if (!v) return undefined;
  const path = resolve(cwd, v.text);
  let target = path;
  try {
    if (!statSync(path).isDirectory()) fail(v, "is not a directory");
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    target = dirname(path);
    let parentOk = false;
    try {
      parentOk = statSync(target).isDirectory();
    } catch { /* reported below */ }
    if (!parentOk) fail(v, `neither it nor its parent directory ${target} exists`);
  }
  try {
    accessSync(target, constants.W_OK);
  } catch (err) {
    fail(v, `cannot write in ${target} (${(err as { code?: string }).code ?? (err as Error).message})`);
  }
  return path;
}

/** A file that may not exist yet but whose directory must. */
export function writableLocation(v: Value | undefined, cwd: string): string | undefined {
  if (!v) return undefined;
  const path = resolve(cwd, v.text);
  let dirOk = false;
  try {
    dirOk = statSync(dirname(path)).isDirectory();
  } catch { /* reported below */ }
  if (!dirOk) fail(v, `the directory ${dirname(path)} does not exist`);
  try {
    if (statSync(path).isDirectory()) fail(v, "is a directory; name a file");
  } catch (err) {
    if (err instanceof ConfigError) throw err;
  }
  return path;
}

const SAMPLING_FORMAT =
  "must be N and/or CIDR=N, comma-separated (e.g. 100,10.0.0.0/8=1000), N an integer >= 1";
const MAX_RATE = 4_294_967_295; // 32-bit sampling interval

/** A per-exporter sampling rate: `cidr` normalised (`10.0.0.0/8`). */
export interface SamplingOverride {
  cidr: string;
  rate: number;
}

export function sampling(v: Value | undefined): { dflt?: number; overrides: SamplingOverride[] } {
  const overrides: SamplingOverride[] = [];
  let dflt: number | undefined;
  if (!v) return { overrides };
  const rate = (text: string) => {
    const n = /^[0-9]+$/.test(text) ? Number(text) : NaN;
    if (!(n >= 1 && n <= MAX_RATE)) {
      fail(v, `rate "${text}" ${SAMPLING_FORMAT.replace("must be", "is not valid:")}`);
    }
    return n;
  };
  const seen = new Set<string>();
  for (const raw of v.text.split(",")) {
    const item = raw.trim();
    if (item === "") continue;
    const eq = item.indexOf("=");
    if (eq === -1) {
      if (!/^[0-9]+$/.test(item)) fail(v, `"${item}": ${SAMPLING_FORMAT}`);
      if (dflt !== undefined) fail(v, "more than one default rate (bare N)");
      dflt = rate(item);
      continue;
    }
    let cidr: string;
    try {
      cidr = formatCidr(parseCidr(item.slice(0, eq)));
    } catch (err) {
      fail(v, `${(err as Error).message}; ${SAMPLING_FORMAT}`);
    }
    if (seen.has(cidr)) fail(v, `${cidr} is given twice`);
    seen.add(cidr);
    overrides.push({ cidr, rate: rate(item.slice(eq + 1).trim()) });
  }
  return { dflt, overrides };
}

/** NETFLOW_HTTP_LISTEN: `host:port`, or `off` (undefined). */
export function httpListen(v: Value | undefined, dflt: string): { host: string; port: number } | undefined {
  if (v?.text.toLowerCase() === "off") return undefined;
  const allowed = 'must be host:port, [ipv6]:port, :port or off (e.g. "0.0.0.0:9464", "[::]:9464", ":9464")';
  const split = splitHostPort(v?.text ?? dflt);
  if (!v) return split!;
  if (!split) fail(v, allowed);
  const { port } = split;
  if (!(port >= 1 && port <= 65535)) fail(v, `port must be an integer from 1 to 65535; ${allowed}`);
  if (split.host === "") return { host: "0.0.0.0", port };
  const h = hostOrUndefined(split.host);
  if (!h) fail(v, `host "${split.host}" is not an address or hostname; ${allowed}`);
  return { host: h, port };
}

/** NETFLOW_HTTP_AUTH: what a request must carry in its Authorization header. */
export type HttpAuth = { scheme: "bearer"; token: string } | {
  scheme: "basic";
  user: string;
  password: string;
};

export function httpAuth(v: Value | undefined): HttpAuth | undefined {
  if (!v) return undefined;
  const colon = v.text.indexOf(":");
  const scheme = v.text.slice(0, colon).toLowerCase(), rest = v.text.slice(colon + 1);
  // The value is a secret: errors show only its scheme.
  const bad = (why: string) => fail(v, why, JSON.stringify(colon < 0 ? "…" : `${scheme}:…`));
  const allowed = "must be bearer:TOKEN or basic:USER:PASSWORD";
  if (colon < 0 || rest === "") bad(allowed);
  if (scheme === "bearer") {
    if (!/^[A-Za-z0-9\-._~+/]+=*$/.test(rest)) {
      bad("the token may hold letters, digits and -._~+/ (RFC 6750)");
    }
    return { scheme, token: rest };
  }
  if (scheme === "basic") {
    const sep = rest.indexOf(":");
    if (sep <= 0) bad(`${allowed} (the user may not be empty)`);
    return { scheme, user: rest.slice(0, sep), password: rest.slice(sep + 1) };
  }
  return bad(allowed);
}

/** Listen addresses a process may have at most (NETFLOW_LISTEN). */
const MAX_LISTEN = 16;

/**
 * NETFLOW_LISTEN (`0.0.0.0:2055,0.0.0.0:4739,[::]:9995`) replaces NETFLOW_LISTEN_HOST/PORT when set; the first
 * entry is also `listenHost`/`listenPort`.
 */
export function listenAddresses(
  v: Value | undefined,
  dfltHost: string,
  dfltPort: number,
): { listenHost: string; listenPort: number; listen: { host: string; port: number }[] } {
  if (!v) return { listenHost: dfltHost, listenPort: dfltPort, listen: [{ host: dfltHost, port: dfltPort }] };
  const allowed = 'must be host:port entries, comma-separated (e.g. "0.0.0.0:2055,0.0.0.0:4739,[::]:9995")';
  const listen: { host: string; port: number }[] = [];
  for (const part of v.text.split(",").map((p) => p.trim()).filter((p) => p !== "")) {
    const split = splitHostPort(part);
    if (!split || split.host === "") fail(v, `"${part}" is not host:port; ${allowed}`);
    if (!(split.port >= 1 && split.port <= 65535)) fail(v, `"${part}": the port must be 1-65535`);
    const h = hostOrUndefined(split.host);
    if (!h) fail(v, `"${part}": "${split.host}" is not an address or hostname; ${allowed}`);
    if (listen.some((l) => l.host === h && l.port === split.port)) fail(v, `"${part}" is listed twice`);
    listen.push({ host: h, port: split.port });
  }
  if (listen.length === 0) fail(v, allowed);
  if (listen.length > MAX_LISTEN) fail(v, `at most ${MAX_LISTEN} addresses`);
  return { listenHost: listen[0].host, listenPort: listen[0].port, listen };
}

/** Comma-separated CIDRs (or bare addresses), normalised (`10.0.0.0/8`); at least one. */
export function cidrList(v: Value | undefined): string[] | undefined {
  if (!v) return undefined;
  const items = v.text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  let cidrs: readonly string[];
  try {
    cidrs = new CidrSet(items).cidrs;
  } catch (err) {
    fail(v, `${(err as Error).message}; must be comma-separated CIDRs such as 10.0.0.0/8,2001:db8::/32`);
  }
  if (cidrs.length === 0) fail(v, "no CIDR given; unset it to allow every exporter");
  return [...cidrs];
}

/** The stats interval: seconds (fractions allowed) as ms; 0 turns it off, and a positive value stays positive. */
export function statsInterval(v: Value | undefined, dflt: number): number {
  if (!v) return dflt;
  const seconds = /^[0-9]+(\.[0-9]+)?$/.test(v.text) ? Number(v.text) : NaN;
  if (!(seconds >= 0 && seconds * 1000 <= TIMER_MAX)) {
    fail(v, "must be a number of seconds from 0 to 2147483 (0 turns the stats line off)");
  }
  const ms = Math.round(seconds * 1000);
  return seconds > 0 && ms === 0 ? 1 : ms;
}
