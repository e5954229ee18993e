/**
 * Configuration: the one place that reads flags, the environment and the `.env` file, and validates them.
 *
 * Precedence: command-line flags > process environment > `.env` file (in the working directory, or the file
 * named by `--env-file`). An empty value counts as unset (as the OpenTelemetry specification asks), so
 * `VAR=` in the environment hides a value from `.env` and gives the default. Every invalid value throws a
 * ConfigError whose message is one line naming the variable (or flag), the value and what is allowed.
 *
 * @example
 * ```ts
 * const cli = parseCli(process.argv.slice(2), process.env, process.cwd());
 * if (cli.kind === "run") startCollector(cli.config, createLogger(cli.config.logLevel));
 * ```
 */
import { accessSync, constants, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { CidrMap, CidrSet, formatCidr, parseCidr, parseIp } from "./cidr.ts";
import { EnvFileError, loadEnvFile } from "./env_file.ts";
import { type LogLevel, parseLogLevel } from "./log.ts";

/** Keep in sync with package.json (a test checks it). */
export const PRODUCT_VERSION = "0.1.0";
const PRODUCT_NAME = "netflow2traces";

export interface Config {
  listenHost: string;
  listenPort: number;
  tracesExporter: "otlp" | "console" | "none";
  protocol: "grpc" | "http/protobuf";
  /** The final URL the exporter uses. */
  endpoint: string;
  headers: Record<string, string>;
  timeoutMs: number;
  compression: "gzip" | "none";
  /** Absolute paths (relative values are resolved against the working directory). */
  certificateFile?: string;
  clientKeyFile?: string;
  clientCertificateFile?: string;
  insecure?: boolean;
  serviceName: string;
  serviceVersion: string;
  resourceAttributes: Record<string, string>;
  bsp: { maxQueueSize: number; maxExportBatchSize: number; scheduleDelayMs: number; exportTimeoutMs: number };
  /** Absolute path of the spool directory (NETFLOW_SPOOL_DIR); absent: no spool. */
  spoolDir?: string;
  spoolMaxBytes: number;
  logLevel: LogLevel;
  /** Absolute path. */
  templateCacheFile?: string;
  spanTime: "flow" | "receive";
  unknownFields: boolean;
  allowedExporters?: CidrSet;
  samplingDefault?: number;
  /** Normalised CIDRs (`10.0.0.0/8`) in the order given. */
  samplingOverrides: { cidr: string; rate: number }[];
  /** The rate of the most specific override containing `address`, or undefined. */
  samplingOverride(address: string): number | undefined;
  httpListen?: { host: string; port: number };
  /** 0 turns the periodic stats line off. */
  statsIntervalMs: number;
  /** String attribute values longer than this many UTF-8 bytes are truncated (Tempo's default limit). */
  attributeValueLengthLimit: number;
  /** Attributes per span at most; the SPEC attributes come first, the rest are counted as dropped. */
  attributeCountLimit: number;
  /** Bytes per OTLP request at most (but for one oversized span). */
  maxRequestBytes: number;
  /** `otlp`: push the self-metrics to the traces endpoint's OTLP metrics service. */
  metricsExporter: "otlp" | "none";
  metricExportIntervalMs: number;
  /** Non-fatal findings worth one WARNING line at start-up (e.g. an unknown `NETFLOW_*` variable). */
  warnings: string[];
}

/** An invalid configuration: `message` is the one line shown to the user (exit code 2). */
export class ConfigError extends Error {
  override name = "ConfigError";
}

export type CliResult =
  | { kind: "run"; config: Config }
  | { kind: "help"; text: string }
  | { kind: "version"; text: string }
  | { kind: "subcommand"; name: string; args: string[] };

/** Subcommands of the binary; the word must come first, and its arguments are passed on untouched. */
export const SUBCOMMANDS: Record<string, string> = {
  send: "send test NetFlow v1/v5/v9/IPFIX packets",
  healthcheck: "query a running collector's /healthz (exit 0 when healthy)",
};

/** Defaults, tuned for flow volume where the OpenTelemetry defaults would drop spans. */
export const DEFAULTS = {
  listenHost: "0.0.0.0",
  listenPort: 2055,
  grpcEndpoint: "http://localhost:4317",
  httpEndpoint: "http://localhost:4318",
  timeoutMs: 10_000,
  serviceName: "netflow-to-traces",
  maxQueueSize: 65_536,
  maxExportBatchSize: 1_024,
  scheduleDelayMs: 1_000,
  exportTimeoutMs: 30_000,
  statsIntervalSeconds: 60,
  attributeValueLengthLimit: 2_048,
  attributeCountLimit: 1_024,
  maxRequestBytes: 4_194_304,
  metricExportIntervalMs: 60_000,
  spoolMaxBytes: 1_073_741_824,
} as const;

export interface EnvVar {
  name: string;
  /** As shown to users; "" when unset means off or nothing. */
  default: string;
  description: string;
  /** The flag that overrides it, if any. */
  flag?: string;
}

const SIGNAL = "OTEL_EXPORTER_OTLP_TRACES_";

function v(name: string, dflt: string, description: string, flag?: string): EnvVar {
  return flag ? { name, default: dflt, description, flag } : { name, default: dflt, description };
}

/** Every variable read, with its default: the source of `--help` and of the README's table. */
// deno-fmt-ignore
export const ENV_VARS: readonly EnvVar[] = [
  v("NETFLOW_LISTEN_HOST", DEFAULTS.listenHost, "UDP listen address: IPv4, IPv6 (e.g. ::) or hostname", "--listen-host"),
  v("NETFLOW_LISTEN_PORT", String(DEFAULTS.listenPort), "UDP listen port, 1-65535", "--listen-port"),
  v("OTEL_TRACES_EXPORTER", "otlp", "otlp, console (one line per span on stdout) or none"),
  v("OTEL_EXPORTER_OTLP_ENDPOINT", `${DEFAULTS.grpcEndpoint} (grpc), ${DEFAULTS.httpEndpoint} (http)`,
    "base URL; http adds /v1/traces", "--endpoint"),
  v("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "", "full traces URL, used as is"),
  v("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "grpc or http/protobuf (http accepted)", "--protocol"),
  v("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "", "overrides OTEL_EXPORTER_OTLP_PROTOCOL"),
  v("OTEL_EXPORTER_OTLP_HEADERS", "", "k=v,k2=v2, values percent-decoded"),
  v("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "", "merged over OTEL_EXPORTER_OTLP_HEADERS"),
  v("OTEL_EXPORTER_OTLP_TIMEOUT", String(DEFAULTS.timeoutMs), "export request timeout, ms"),
  v("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "", "overrides OTEL_EXPORTER_OTLP_TIMEOUT"),
  v("OTEL_EXPORTER_OTLP_COMPRESSION", "none", "gzip or none"),
  v("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "", "overrides OTEL_EXPORTER_OTLP_COMPRESSION"),
  v("OTEL_EXPORTER_OTLP_CERTIFICATE", "", "PEM file of CA certificates for https"),
  v("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "", "overrides OTEL_EXPORTER_OTLP_CERTIFICATE"),
  v("OTEL_EXPORTER_OTLP_CLIENT_KEY", "", "PEM client private key (mTLS)"),
  v("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "", "overrides OTEL_EXPORTER_OTLP_CLIENT_KEY"),
  v("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "", "PEM client certificate (mTLS)"),
  v("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", "", "overrides OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"),
  v("OTEL_EXPORTER_OTLP_INSECURE", "false", "true: gRPC without TLS even for https"),
  v("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "", "overrides OTEL_EXPORTER_OTLP_INSECURE"),
  v("OTEL_SERVICE_NAME", DEFAULTS.serviceName, "resource service.name"),
  v("OTEL_SERVICE_VERSION", PRODUCT_VERSION, "resource service.version"),
  v("OTEL_RESOURCE_ATTRIBUTES", "", "k=v,... added to the resource, values percent-decoded"),
  v("OTEL_BSP_MAX_QUEUE_SIZE", String(DEFAULTS.maxQueueSize), "spans held for export; beyond it spans are dropped"),
  v("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", String(DEFAULTS.maxExportBatchSize), "spans per export request (<= queue size)"),
  v("OTEL_BSP_SCHEDULE_DELAY", String(DEFAULTS.scheduleDelayMs), "ms between exports of a partial batch"),
  v("OTEL_BSP_EXPORT_TIMEOUT", String(DEFAULTS.exportTimeoutMs), "at shutdown: ms to deliver what is held"),
  v("LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING (WARN), ERROR, CRITICAL (to stderr)", "--log-level"),
  v("NETFLOW_TEMPLATE_CACHE_FILE", "", "file where v9/IPFIX templates persist across restarts"),
  v("NETFLOW_SPOOL_DIR", "", "directory where unsent export batches wait, across restarts"),
  v("NETFLOW_SPOOL_MAX_BYTES", String(DEFAULTS.spoolMaxBytes), "spool bound; when full, the oldest go"),
  v("NETFLOW_SPAN_TIME", "flow", "flow (span = the flow's times) or receive (ends at receipt)"),
  v("NETFLOW_UNKNOWN_FIELDS", "true", "emit unknown elements as netflow.field.* (true/false)"),
  v("NETFLOW_ALLOWED_EXPORTERS", "", "comma-separated CIDRs allowed to send (unset: all)"),
  v("NETFLOW_SAMPLING_RATE", "", "N for exporters that announce none, and/or CIDR=N overrides"),
  v("NETFLOW_HTTP_LISTEN", "", "host:port, [v6]:port or :port for /metrics and /healthz"),
  v("NETFLOW_STATS_INTERVAL", String(DEFAULTS.statsIntervalSeconds), "seconds between stats lines (0: off)"),
  v("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", String(DEFAULTS.attributeValueLengthLimit), "longer string attribute values are truncated (UTF-8 bytes)"),
  v("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "", "overrides OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"),
  v("OTEL_ATTRIBUTE_COUNT_LIMIT", String(DEFAULTS.attributeCountLimit), "attributes per span; beyond, dropped and counted"),
  v("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "", "overrides OTEL_ATTRIBUTE_COUNT_LIMIT"),
  v("NETFLOW_MAX_REQUEST_BYTES", String(DEFAULTS.maxRequestBytes), "bytes per OTLP request (the Collector takes 4 MiB)"),
  v("OTEL_METRICS_EXPORTER", "none", "otlp: self-metrics to the same endpoint over OTLP, or none"),
  v("OTEL_METRIC_EXPORT_INTERVAL", String(DEFAULTS.metricExportIntervalMs), "ms between OTLP metrics exports"),
];

// ---------------------------------------------------------------------------------------------------------
// Help
// ---------------------------------------------------------------------------------------------------------

const FLAGS: [string, string][] = [
  ["--listen-host HOST", "UDP listen address (NETFLOW_LISTEN_HOST)"],
  ["--listen-port PORT", "UDP listen port (NETFLOW_LISTEN_PORT)"],
  ["--endpoint URL", "OTLP base endpoint (as OTEL_EXPORTER_OTLP_ENDPOINT; wins over both variables)"],
  ["--protocol PROTO", "grpc or http/protobuf (OTEL_EXPORTER_OTLP_PROTOCOL)"],
  ["--log-level LEVEL", "DEBUG, INFO, WARNING, ERROR or CRITICAL (LOG_LEVEL)"],
  ["--env-file PATH", "read variables from PATH instead of ./.env (which may be absent)"],
  ["-h, --help", "show this help"],
  ["-V, --version", "show the version"],
];

/** The `--help` text (under 60 lines, at most 110 columns). */
export function helpText(): string {
  const lines = [
    `${PRODUCT_NAME} ${PRODUCT_VERSION}: NetFlow v1/v5/v9 and IPFIX over UDP -> OpenTelemetry traces over OTLP`,
    "",
    `Usage: ${PRODUCT_NAME} [options]`,
    ...Object.entries(SUBCOMMANDS).map(([name, text]) =>
      `       ${PRODUCT_NAME} ${`${name} [args]`.padEnd(18)} ${text}`
    ),
    "",
    "Options (flags override the environment, which overrides the .env file):",
    ...FLAGS.map(([flag, text]) => `  ${flag.padEnd(19)} ${text}`),
    "",
    "Environment [default]; each OTEL_EXPORTER_OTLP_X also exists as OTEL_EXPORTER_OTLP_TRACES_X, which wins:",
  ];
  const names = new Set(ENV_VARS.map((v) => v.name));
  for (const v of ENV_VARS) {
    // OTEL_EXPORTER_OTLP_TRACES_X is shown with OTEL_EXPORTER_OTLP_X (the header explains it).
    if (v.name.startsWith(SIGNAL) && names.has(`OTEL_EXPORTER_OTLP_${v.name.slice(SIGNAL.length)}`)) {
      if (v.name !== `${SIGNAL}ENDPOINT`) continue;
    }
    const dflt = v.name === "OTEL_EXPORTER_OTLP_ENDPOINT"
      ? "http://localhost:4317 or :4318 (http)"
      : v.default;
    lines.push(`  ${v.name.padEnd(37)} ${v.description}${dflt ? ` [${dflt}]` : ""}`);
  }
  lines.push("", "Invalid values stop start-up with exit code 2. Documentation: README.md");
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------------------------
// Reading values
// ---------------------------------------------------------------------------------------------------------

type Env = Record<string, string | undefined>;

interface Value {
  text: string;
  /** How the value is named in messages: the flag, or the variable. */
  label: string;
  /** Appended to messages about values that came from the .env file. */
  origin: string;
}

/** Layers flags over the environment over the .env file and builds one-line errors. */
class Source {
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

function fail(v: Value, why: string, shown?: string): never {
  throw new ConfigError(`invalid ${v.label}=${shown ?? JSON.stringify(v.text)}${v.origin}: ${why}`);
}

function oneOf<T extends string>(v: Value | undefined, allowed: readonly T[], dflt: T, aliases = {}): T {
  if (!v) return dflt;
  const lower = v.text.toLowerCase();
  const hit = (aliases as Record<string, T>)[lower] ?? allowed.find((a) => a === lower);
  if (hit === undefined) fail(v, `must be one of ${allowed.join(", ")}`);
  return hit;
}

function integer(v: Value | undefined, dflt: number, min: number, max: number, unit = ""): number {
  if (!v) return dflt;
  const n = /^[0-9]+$/.test(v.text) ? Number(v.text) : NaN;
  if (!(n >= min && n <= max)) fail(v, `must be an integer from ${min} to ${max}${unit}`);
  return n;
}

const TRUE = ["true", "1", "yes", "on"], FALSE = ["false", "0", "no", "off"];

function boolean(v: Value | undefined): boolean | undefined {
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

function host(v: Value | undefined, dflt: string): string {
  if (!v) return dflt;
  return hostOrUndefined(v.text) ??
    fail(v, "must be an IPv4 or IPv6 address (e.g. 0.0.0.0, ::) or a hostname");
}

const TIMER_MAX = 2_147_483_647; // setTimeout's limit

function url(v: Value): string {
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
function keyValues(v: Value | undefined, kind: "header" | "attribute"): Record<string, string> {
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
function readableFile(v: Value | undefined, cwd: string): string | undefined {
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

/** A directory we may write in: it exists, or its parent does (it is created at start). */
function writableDirectory(v: Value | undefined, cwd: string): string | undefined {
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
function writableLocation(v: Value | undefined, cwd: string): string | undefined {
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

function sampling(v: Value | undefined): { dflt?: number; overrides: { cidr: string; rate: number }[] } {
  const overrides: { cidr: string; rate: number }[] = [];
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

function httpListen(v: Value | undefined): { host: string; port: number } | undefined {
  if (!v) return undefined;
  const allowed = 'must be host:port, [ipv6]:port or :port (e.g. "0.0.0.0:9464", "[::]:9464", ":9464")';
  const m = /^(?:(\[[^\]]+\]|[^:]*):)?([0-9]+)$/.exec(v.text);
  if (!m) fail(v, allowed);
  const port = Number(m[2]);
  if (!(port >= 1 && port <= 65535)) fail(v, `port must be an integer from 1 to 65535; ${allowed}`);
  if (!m[1]) return { host: "0.0.0.0", port };
  const h = hostOrUndefined(m[1]);
  if (!h) fail(v, `host "${m[1]}" is not an address or hostname; ${allowed}`);
  return { host: h, port };
}

// ---------------------------------------------------------------------------------------------------------
// The whole configuration
// ---------------------------------------------------------------------------------------------------------

/** Builds and validates the configuration from the layered sources. */
function buildConfig(src: Source, cwd: string): Config {
  const warnings: string[] = [];
  const protocol = oneOf(
    src.getOtlp("PROTOCOL"),
    ["grpc", "http/protobuf"] as const,
    "grpc",
    { http: "http/protobuf" },
  );

  // --endpoint is a base endpoint like OTEL_EXPORTER_OTLP_ENDPOINT, and wins over both variables.
  const flagEndpoint = src.flag("OTEL_EXPORTER_OTLP_ENDPOINT");
  const tracesEndpoint = flagEndpoint ? undefined : src.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  let endpoint: string;
  if (tracesEndpoint) {
    endpoint = url(tracesEndpoint);
  } else {
    const base = flagEndpoint ?? src.get("OTEL_EXPORTER_OTLP_ENDPOINT");
    const baseUrl = base ? url(base) : protocol === "grpc" ? DEFAULTS.grpcEndpoint : DEFAULTS.httpEndpoint;
    endpoint = protocol === "http/protobuf" ? tracesUrl(baseUrl) : baseUrl;
  }

  const headers = {
    ...keyValues(src.get("OTEL_EXPORTER_OTLP_HEADERS"), "header"),
    ...keyValues(src.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS"), "header"),
  };

  const resourceAttributes = keyValues(src.get("OTEL_RESOURCE_ATTRIBUTES"), "attribute");
  // As in the OpenTelemetry SDKs: OTEL_SERVICE_NAME wins, then service.name from the resource attributes.
  const serviceName = src.get("OTEL_SERVICE_NAME")?.text ?? resourceAttributes["service.name"] ??
    DEFAULTS.serviceName;
  const serviceVersion = src.get("OTEL_SERVICE_VERSION")?.text ?? resourceAttributes["service.version"] ??
    PRODUCT_VERSION;

  const maxQueueSize = integer(src.get("OTEL_BSP_MAX_QUEUE_SIZE"), DEFAULTS.maxQueueSize, 1, 16_777_216);
  const batchValue = src.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE");
  // An explicit batch size above the queue is a mistake; the default batch size shrinks to a small queue.
  const maxExportBatchSize = batchValue
    ? integer(batchValue, 0, 1, maxQueueSize, ` (at most OTEL_BSP_MAX_QUEUE_SIZE=${maxQueueSize})`)
    : Math.min(DEFAULTS.maxExportBatchSize, maxQueueSize);

  const logValue = src.get("LOG_LEVEL");
  const logLevel = logValue
    ? parseLogLevel(logValue.text) ??
      fail(logValue, "must be one of DEBUG, INFO, WARNING (or WARN), ERROR, CRITICAL")
    : "INFO";

  const allowedValue = src.get("NETFLOW_ALLOWED_EXPORTERS");
  let allowedExporters: CidrSet | undefined;
  if (allowedValue) {
    const items = allowedValue.text.split(",").map((s) => s.trim()).filter((s) => s !== "");
    try {
      allowedExporters = new CidrSet(items);
    } catch (err) {
      fail(
        allowedValue,
        `${(err as Error).message}; must be comma-separated CIDRs such as 10.0.0.0/8,2001:db8::/32`,
      );
    }
    if (allowedExporters.size === 0) fail(allowedValue, "no CIDR given; unset it to allow every exporter");
  }

  const rates = sampling(src.get("NETFLOW_SAMPLING_RATE"));
  const overrideMap = new CidrMap(rates.overrides.map((o) => [o.cidr, o.rate] as [string, number]));

  const statsValue = src.get("NETFLOW_STATS_INTERVAL");
  let statsIntervalMs: number = DEFAULTS.statsIntervalSeconds * 1000;
  if (statsValue) {
    const seconds = /^[0-9]+(\.[0-9]+)?$/.test(statsValue.text) ? Number(statsValue.text) : NaN;
    if (!(seconds >= 0 && seconds * 1000 <= TIMER_MAX)) {
      fail(statsValue, "must be a number of seconds from 0 to 2147483 (0 turns the stats line off)");
    }
    statsIntervalMs = Math.round(seconds * 1000);
    if (seconds > 0 && statsIntervalMs === 0) statsIntervalMs = 1;
  }

  const insecure = boolean(src.getOtlp("INSECURE"));
  const config: Config = {
    listenHost: host(src.get("NETFLOW_LISTEN_HOST"), DEFAULTS.listenHost),
    listenPort: integer(src.get("NETFLOW_LISTEN_PORT"), DEFAULTS.listenPort, 1, 65535),
    tracesExporter: oneOf(src.get("OTEL_TRACES_EXPORTER"), ["otlp", "console", "none"] as const, "otlp"),
    protocol,
    endpoint,
    headers,
    timeoutMs: integer(src.getOtlp("TIMEOUT"), DEFAULTS.timeoutMs, 1, TIMER_MAX, " (milliseconds)"),
    compression: oneOf(src.getOtlp("COMPRESSION"), ["gzip", "none"] as const, "none"),
    certificateFile: readableFile(src.getOtlp("CERTIFICATE"), cwd),
    clientKeyFile: readableFile(src.getOtlp("CLIENT_KEY"), cwd),
    clientCertificateFile: readableFile(src.getOtlp("CLIENT_CERTIFICATE"), cwd),
    ...(insecure === undefined ? {} : { insecure }),
    serviceName,
    serviceVersion,
    resourceAttributes,
    bsp: {
      maxQueueSize,
      maxExportBatchSize,
      scheduleDelayMs: integer(
        src.get("OTEL_BSP_SCHEDULE_DELAY"),
        DEFAULTS.scheduleDelayMs,
        0,
        TIMER_MAX,
        " (ms)",
      ),
      exportTimeoutMs: integer(
        src.get("OTEL_BSP_EXPORT_TIMEOUT"),
        DEFAULTS.exportTimeoutMs,
        1,
        TIMER_MAX,
        " (ms)",
      ),
    },
    logLevel,
    templateCacheFile: writableLocation(src.get("NETFLOW_TEMPLATE_CACHE_FILE"), cwd),
    spoolDir: writableDirectory(src.get("NETFLOW_SPOOL_DIR"), cwd),
    spoolMaxBytes: integer(
      src.get("NETFLOW_SPOOL_MAX_BYTES"),
      DEFAULTS.spoolMaxBytes,
      1_048_576,
      Number.MAX_SAFE_INTEGER,
      " (bytes, at least 1 MiB)",
    ),
    spanTime: oneOf(src.get("NETFLOW_SPAN_TIME"), ["flow", "receive"] as const, "flow"),
    unknownFields: boolean(src.get("NETFLOW_UNKNOWN_FIELDS")) ?? true,
    allowedExporters,
    samplingDefault: rates.dflt,
    samplingOverrides: rates.overrides,
    samplingOverride: (address) => overrideMap.size ? overrideMap.get(address) : undefined,
    httpListen: httpListen(src.get("NETFLOW_HTTP_LISTEN")),
    statsIntervalMs,
    attributeValueLengthLimit: integer(
      src.get("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT") ?? src.get("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"),
      DEFAULTS.attributeValueLengthLimit,
      1,
      16_777_216,
    ),
    attributeCountLimit: integer(
      src.get("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT") ?? src.get("OTEL_ATTRIBUTE_COUNT_LIMIT"),
      DEFAULTS.attributeCountLimit,
      64,
      1_000_000,
      " (at least 64: the SPEC attributes always fit)",
    ),
    maxRequestBytes: integer(
      src.get("NETFLOW_MAX_REQUEST_BYTES"),
      DEFAULTS.maxRequestBytes,
      65_536,
      1_073_741_824,
      " (bytes)",
    ),
    metricsExporter: oneOf(src.get("OTEL_METRICS_EXPORTER"), ["otlp", "none"] as const, "none"),
    metricExportIntervalMs: integer(
      src.get("OTEL_METRIC_EXPORT_INTERVAL"),
      DEFAULTS.metricExportIntervalMs,
      100,
      TIMER_MAX,
    ),
    warnings,
  };
  // Optional fields stay absent rather than present-and-undefined (nicer to print and compare).
  for (const k of Object.keys(config) as (keyof Config)[]) if (config[k] === undefined) delete config[k];
  return config;
}

const KNOWN = new Set(ENV_VARS.map((v) => v.name));

/** Typos in our own prefix would otherwise be silently ignored. */
function unknownVariables(env: Env, dotenv: Record<string, string>): string[] {
  const names = new Set([...Object.keys(env), ...Object.keys(dotenv)]);
  return [...names].filter((n) => n.startsWith("NETFLOW_") && !KNOWN.has(n)).sort();
}

// ---------------------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------------------

const FLAG_TO_VAR: Record<string, string> = {
  "listen-host": "NETFLOW_LISTEN_HOST",
  "listen-port": "NETFLOW_LISTEN_PORT",
  "endpoint": "OTEL_EXPORTER_OTLP_ENDPOINT",
  "protocol": "OTEL_EXPORTER_OTLP_PROTOCOL",
  "log-level": "LOG_LEVEL",
};

function argsError(err: unknown): ConfigError {
  const e = err as { code?: string; message?: string };
  const message = String(e.message ?? err).split("\n")[0];
  const quoted = /'([^']*)'/.exec(message)?.[1] ?? "";
  const option = quoted.match(/--?[A-Za-z][\w-]*/g)?.pop() ?? quoted;
  switch (e.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return new ConfigError(`unknown option ${option} (see --help)`);
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return /does not take/.test(message)
        ? new ConfigError(`option ${option} does not take a value`)
        : new ConfigError(
          `option ${option} needs a value (write ${option}=VALUE for a value starting with -)`,
        );
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return new ConfigError(`unexpected argument "${quoted}" (see --help)`);
    default:
      return new ConfigError(message);
  }
}

/**
 * Reads the command line and the environment. `argv` excludes the program (process.argv.slice(2)); `cwd`
 * is where `.env` is looked for and relative paths are resolved (default: the process's). Throws
 * ConfigError.
 */
export function parseCli(argv: string[], env: Env, cwd?: string): CliResult {
  if (argv.length > 0 && Object.hasOwn(SUBCOMMANDS, argv[0])) {
    return { kind: "subcommand", name: argv[0], args: argv.slice(1) };
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: true,
      options: {
        "listen-host": { type: "string" },
        "listen-port": { type: "string" },
        "endpoint": { type: "string" },
        "protocol": { type: "string" },
        "log-level": { type: "string" },
        "env-file": { type: "string" },
        "help": { type: "boolean", short: "h" },
        "version": { type: "boolean", short: "V" },
      },
    });
  } catch (err) {
    throw argsError(err);
  }
  const { values, positionals } = parsed;
  if (values.help) return { kind: "help", text: helpText() };
  if (values.version) return { kind: "version", text: `${PRODUCT_NAME} ${PRODUCT_VERSION}` };
  if (positionals.length) {
    const word = positionals[0];
    throw new ConfigError(
      Object.hasOwn(SUBCOMMANDS, word)
        ? `the subcommand "${word}" must come first: ${PRODUCT_NAME} ${word} [args]`
        : `unexpected argument "${word}" (see --help)`,
    );
  }

  const dir = cwd ?? process.cwd();
  const explicit = values["env-file"];
  if (explicit === "") throw new ConfigError("option --env-file needs a path");
  const envPath = explicit !== undefined ? resolve(dir, explicit) : resolve(dir, ".env");
  let dotenv: Record<string, string>;
  try {
    dotenv = loadEnvFile(envPath, { required: explicit !== undefined });
  } catch (err) {
    if (err instanceof EnvFileError) throw new ConfigError(err.message);
    throw err;
  }

  const flags: Record<string, { flag: string; text: string }> = {};
  for (const [flag, name] of Object.entries(FLAG_TO_VAR)) {
    const text = values[flag as keyof typeof values];
    if (typeof text === "string") {
      // An explicit empty flag is an error, not "unset".
      if (text.trim() === "") throw new ConfigError(`invalid --${flag}="": a value is required`);
      flags[name] = { flag: `--${flag}`, text };
    }
  }
  const config = buildConfig(new Source(flags, env, dotenv, envPath), dir);
  for (const name of unknownVariables(env, dotenv)) {
    config.warnings.push(`ignoring unknown variable ${name} (see --help for the variables read)`);
  }
  return { kind: "run", config };
}
