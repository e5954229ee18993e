/**
 * Configuration: the one place that reads flags, the environment and the `.env` file, and validates them.
 *
 * Precedence: command-line flags > process environment > `.env` file (in the working directory, or the file
 * named by `--env-file`). An empty value counts as unset (as the OpenTelemetry specification asks), so
 * `VAR=` in the environment hides a value from `.env` and gives the default. Every invalid value throws a
 * ConfigError whose message is one line naming the variable (or flag), the value and what is allowed.
 *
 * The variables and flags themselves are declared in config_vars.ts, the value parsers in config_values.ts;
 * this file turns them into a {@link Config}: plain data (no methods, no class instances), so it can be
 * cloned into the pipeline Worker as it is.
 *
 * @example
 * ```ts
 * import process from "node:process";
 * import { startCollector } from "./app.ts";
 * import { createLogger } from "./log.ts";
 * const cli = parseCli(process.argv.slice(2), process.env, process.cwd());
 * if (cli.kind === "run") startCollector(cli.config, createLogger(cli.config.logLevel));
 * ```
 */
import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import {
  DEFAULTS,
  ENV_VARS,
  FLAG_TO_VAR,
  helpText,
  PARSE_ARGS_OPTIONS,
  PRODUCT_NAME,
  PRODUCT_VERSION,
} from "./config_vars.ts";
import {
  boolean,
  cidrList,
  ConfigError,
  enrichmentFile,
  type Env,
  fail,
  fieldsFile,
  host,
  type HttpAuth,
  httpAuth,
  httpListen,
  integer,
  keyValues,
  listenAddresses,
  oneOf,
  readableFile,
  sampling,
  type SamplingOverride,
  Source,
  statsInterval,
  TIMER_MAX,
  tracesUrl,
  url,
  writableDirectory,
  writableLocation,
} from "./config_values.ts";
import { EnvFileError, loadEnvFile } from "./env_file.ts";
import type { EnrichmentTable } from "./enrichment.ts";
import type { CustomField } from "./netflow/elements.ts";
import { type LogFormat, type LogLevel, parseLogLevel } from "./log.ts";
import { SUBCOMMANDS } from "./tools/subcommands.ts";

export { DEFAULTS, ENV_VARS, type EnvVar, helpText, PRODUCT_NAME, PRODUCT_VERSION } from "./config_vars.ts";
export { ConfigError, type SamplingOverride, tracesUrl } from "./config_values.ts";

export interface Config {
  /** The first (or only) listen address; `listen` has them all. */
  listenHost: string;
  listenPort: number;
  /** NETFLOW_LISTEN, or NETFLOW_LISTEN_HOST/PORT as its one entry. */
  listen: { host: string; port: number }[];
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
  logFormat: LogFormat;
  /** Absolute path. */
  templateCacheFile?: string;
  /** NETFLOW_ENRICH_FILE: its absolute path and, validated at start, its table (re-read on SIGHUP). */
  enrichFile?: string;
  enrichment?: EnrichmentTable;
  /** NETFLOW_FIELDS_FILE: its absolute path and, validated at start, its elements. */
  fieldsFile?: string;
  customFields?: CustomField[];
  spanTime: "flow" | "receive";
  unknownFields: boolean;
  /** Normalised CIDRs (`10.0.0.0/8`) allowed to send, in the order given; absent: every exporter. */
  allowedExporters?: string[];
  samplingDefault?: number;
  /** Normalised CIDRs (`10.0.0.0/8`) in the order given; the most specific containing an exporter wins. */
  samplingOverrides: SamplingOverride[];
  httpListen?: { host: string; port: number };
  /** NETFLOW_HTTP_AUTH: required on every HTTP path but /healthz. */
  httpAuth?: HttpAuth;
  /** 0 turns the periodic stats line off. */
  statsIntervalMs: number;
  /** NETFLOW_RATE_LIMIT: flows per second per exporter kept as spans; absent: no limit. */
  rateLimit?: number;
  /** Pipeline Workers (NETFLOW_WORKERS); datagrams are spread over them by exporter and domain. */
  workers: number;
  /** Open the UDP socket with SO_REUSEPORT (NETFLOW_REUSE_PORT). */
  reusePort: boolean;
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

export type CliResult =
  | { kind: "run"; config: Config }
  | { kind: "help"; text: string }
  | { kind: "version"; text: string }
  | { kind: "subcommand"; name: string; args: string[] };

// ---------------------------------------------------------------------------------------------------------
// The whole configuration
// ---------------------------------------------------------------------------------------------------------

/** Builds and validates the configuration from the layered sources. */
/** More Workers than this buy nothing: each is a V8 isolate of its own (about 30 MB). */
const MAX_WORKERS = 64;

/**
 * One Worker per core but one, which the socket thread, the kernel and the sender of the flows need;
 * at least one. `availableParallelism()` follows the process's CPU affinity (taskset, cpusets).
 */
function defaultWorkers(): number {
  return Math.min(MAX_WORKERS, Math.max(1, availableParallelism() - 1));
}

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

  const allowedExporters = cidrList(src.get("NETFLOW_ALLOWED_EXPORTERS"));
  const rates = sampling(src.get("NETFLOW_SAMPLING_RATE"));
  const statsIntervalMs = statsInterval(
    src.get("NETFLOW_STATS_INTERVAL"),
    DEFAULTS.statsIntervalSeconds * 1000,
  );
  const insecure = boolean(src.getOtlp("INSECURE"));
  const config: Config = {
    ...listenAddresses(
      src.get("NETFLOW_LISTEN"),
      host(src.get("NETFLOW_LISTEN_HOST"), DEFAULTS.listenHost),
      integer(src.get("NETFLOW_LISTEN_PORT"), DEFAULTS.listenPort, 1, 65535),
    ),
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
    logFormat: oneOf(src.get("LOG_FORMAT"), ["text", "json"] as const, "text"),
    templateCacheFile: writableLocation(src.get("NETFLOW_TEMPLATE_CACHE_FILE"), cwd),
    ...enrichmentFile(src.get("NETFLOW_ENRICH_FILE"), cwd),
    ...fieldsFile(src.get("NETFLOW_FIELDS_FILE"), cwd),
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
    httpListen: httpListen(src.get("NETFLOW_HTTP_LISTEN"), DEFAULTS.httpListen),
    httpAuth: httpAuth(src.get("NETFLOW_HTTP_AUTH")),
    statsIntervalMs,
    ...(src.get("NETFLOW_RATE_LIMIT")
      ? {
        rateLimit: integer(
          src.get("NETFLOW_RATE_LIMIT"),
          0,
          1,
          1_000_000_000,
          " (flows per second per exporter)",
        ),
      }
      : {}),
    workers: integer(src.get("NETFLOW_WORKERS"), defaultWorkers(), 1, MAX_WORKERS),
    reusePort: boolean(src.get("NETFLOW_REUSE_PORT")) ?? false,
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
      options: PARSE_ARGS_OPTIONS,
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
  const explicit = values["env-file"] as string | undefined;
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
