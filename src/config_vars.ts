/**
 * Every variable and flag the collector reads, each declared once: its name, default, description and the
 * flag that overrides it. `--help`, the README's table (test/docs.test.ts), the `parseArgs` options and
 * the flag-to-variable mapping are all derived from {@link ENV_VARS} and {@link CLI_FLAGS}, so a new
 * setting cannot reach one of them and miss another. How each value is validated: config.ts.
 */
import { SUBCOMMANDS } from "./tools/subcommands.ts";

/** Keep in sync with package.json (a test checks it). */
export const PRODUCT_VERSION = "0.1.0";
export const PRODUCT_NAME = "netflow2traces";

/** Defaults, tuned for flow volume where the OpenTelemetry defaults would drop spans. */
export const DEFAULTS = {
  listenHost: "0.0.0.0",
  listenPort: 2055,
  httpListen: "127.0.0.1:9464",
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

/** One variable, and the flag that overrides it. */
export interface EnvVar {
  name: string;
  /** As shown to users; "" when unset means off or nothing. */
  default: string;
  description: string;
  /** The flag that overrides it (`--listen-port`), if any. */
  flag?: string;
  /** The flag's value in `--help` (`PORT`). */
  flagValue?: string;
  /** The flag's line in `--help`. */
  flagHelp?: string;
  /** The default as `--help` shows it, when shorter than {@link default}. */
  helpDefault?: string;
}

/** The prefix of the signal-specific OTLP variables (`OTEL_EXPORTER_OTLP_TRACES_X` beats `..._OTLP_X`). */
export const SIGNAL = "OTEL_EXPORTER_OTLP_TRACES_";

function v(name: string, dflt: string, description: string, more: Partial<EnvVar> = {}): EnvVar {
  return { name, default: dflt, description, ...more };
}

function flag(flag: string, flagValue: string, flagHelp: string): Partial<EnvVar> {
  return { flag, flagValue, flagHelp };
}

/** Every variable read, with its default and flag: the source of `--help` and of the README's table. */
// deno-fmt-ignore
export const ENV_VARS: readonly EnvVar[] = [
  v("NETFLOW_LISTEN_HOST", DEFAULTS.listenHost, "UDP listen address: IPv4, IPv6 (e.g. ::) or hostname",
    flag("--listen-host", "HOST", "UDP listen address (NETFLOW_LISTEN_HOST)")),
  v("NETFLOW_LISTEN_PORT", String(DEFAULTS.listenPort), "UDP listen port, 1-65535",
    flag("--listen-port", "PORT", "UDP listen port (NETFLOW_LISTEN_PORT)")),
  v("NETFLOW_LISTEN", "", "host:port,... several listen addresses (replaces _HOST/_PORT)"),
  v("OTEL_TRACES_EXPORTER", "otlp", "otlp, console (one line per span on stdout) or none"),
  v("OTEL_EXPORTER_OTLP_ENDPOINT", `${DEFAULTS.grpcEndpoint} (grpc), ${DEFAULTS.httpEndpoint} (http)`,
    "base URL; http adds /v1/traces", {
      ...flag("--endpoint", "URL", "OTLP base endpoint (as OTEL_EXPORTER_OTLP_ENDPOINT; wins over both variables)"),
      helpDefault: "http://localhost:4317 or :4318 (http)",
    }),
  v("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "", "full traces URL, used as is"),
  v("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "grpc or http/protobuf (http accepted)",
    flag("--protocol", "PROTO", "grpc or http/protobuf (OTEL_EXPORTER_OTLP_PROTOCOL)")),
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
  v("LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING (WARN), ERROR, CRITICAL (to stderr)",
    flag("--log-level", "LEVEL", "DEBUG, INFO, WARNING, ERROR or CRITICAL (LOG_LEVEL)")),
  v("LOG_FORMAT", "text", "text (key=value) or json (one object per line, same fields)"),
  v("NETFLOW_TEMPLATE_CACHE_FILE", "", "file where v9/IPFIX templates persist across restarts"),
  v("NETFLOW_FIELDS_FILE", "", "YAML/JSON: extra or renamed elements by pen and id, with a type"),
  v("NETFLOW_ENRICH_FILE", "", "YAML/JSON: exporter, interface, VRF names, sampling; SIGHUP re-reads"),
  v("NETFLOW_SPOOL_DIR", "", "directory where unsent export batches wait, across restarts"),
  v("NETFLOW_SPOOL_MAX_BYTES", String(DEFAULTS.spoolMaxBytes), "spool bound; when full, the oldest go"),
  v("NETFLOW_SPAN_TIME", "flow", "flow (span = the flow's times) or receive (ends at receipt)"),
  v("NETFLOW_UNKNOWN_FIELDS", "true", "emit unknown elements as netflow.field.* (true/false)"),
  v("NETFLOW_ALLOWED_EXPORTERS", "", "comma-separated CIDRs allowed to send (unset: all)"),
  v("NETFLOW_SAMPLING_RATE", "", "N for exporters that announce none, and/or CIDR=N overrides"),
  v("NETFLOW_HTTP_LISTEN", DEFAULTS.httpListen, "host:port of the page /, /metrics, /healthz; or off"),
  v("NETFLOW_HTTP_AUTH", "", "bearer:TOKEN or basic:USER:PASS on all HTTP but /healthz"),
  v("NETFLOW_STATS_INTERVAL", String(DEFAULTS.statsIntervalSeconds), "seconds between stats lines (0: off)"),
  v("NETFLOW_RATE_LIMIT", "", "flows/s per exporter kept as spans; above it, sampled 1-in-N"),
  v("NETFLOW_WORKERS", "CPU cores - 1, at least 1", "pipeline Workers; each exporter + domain goes to one",
    { helpDefault: "cores - 1" }),
  v("NETFLOW_REUSE_PORT", "false", "true: SO_REUSEPORT, processes share the UDP port (Bun only)"),
  v("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", String(DEFAULTS.attributeValueLengthLimit), "longer string attribute values are truncated (UTF-8 bytes)"),
  v("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "", "overrides OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"),
  v("OTEL_ATTRIBUTE_COUNT_LIMIT", String(DEFAULTS.attributeCountLimit), "attributes per span; beyond, dropped and counted"),
  v("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "", "overrides OTEL_ATTRIBUTE_COUNT_LIMIT"),
  v("NETFLOW_MAX_REQUEST_BYTES", String(DEFAULTS.maxRequestBytes), "bytes per OTLP request (the Collector takes 4 MiB)"),
  v("OTEL_METRICS_EXPORTER", "none", "otlp: self-metrics to the same endpoint over OTLP, or none"),
  v("OTEL_METRIC_EXPORT_INTERVAL", String(DEFAULTS.metricExportIntervalMs), "ms between OTLP metrics exports"),
];

/** A flag that stands for no variable. */
export interface CliFlag {
  name: string;
  type: "string" | "boolean";
  short?: string;
  /** The value in `--help`, for a string flag. */
  value?: string;
  help: string;
}

/** The flags besides those of {@link ENV_VARS}, in `--help` order after them. */
export const CLI_FLAGS: readonly CliFlag[] = [
  {
    name: "env-file",
    type: "string",
    value: "PATH",
    help: "read variables from PATH instead of ./.env (which may be absent)",
  },
  { name: "help", type: "boolean", short: "h", help: "show this help" },
  { name: "version", type: "boolean", short: "V", help: "show the version" },
];

/** Flag name without dashes (`listen-port`) → the variable it overrides. */
export const FLAG_TO_VAR: Readonly<Record<string, string>> = Object.fromEntries(
  ENV_VARS.filter((e) => e.flag).map((e) => [e.flag!.slice(2), e.name]),
);

/** The `parseArgs` options: every flag of {@link ENV_VARS} (a string) and of {@link CLI_FLAGS}. */
export const PARSE_ARGS_OPTIONS: Record<string, { type: "string" | "boolean"; short?: string }> = {
  ...Object.fromEntries(Object.keys(FLAG_TO_VAR).map((name) => [name, { type: "string" as const }])),
  ...Object.fromEntries(
    CLI_FLAGS.map((f) => [f.name, f.short ? { type: f.type, short: f.short } : { type: f.type }]),
  ),
};

/** The `--help` text (under 72 lines, at most 110 columns). */
export function helpText(): string {
  const flagLines: [string, string][] = [
    ...ENV_VARS.filter((e) => e.flag).map((e): [string, string] => [`${e.flag} ${e.flagValue}`, e.flagHelp!]),
    ...CLI_FLAGS.map((f): [string, string] => [
      `${f.short ? `-${f.short}, ` : ""}--${f.name}${f.value ? ` ${f.value}` : ""}`,
      f.help,
    ]),
  ];
  const lines = [
    `${PRODUCT_NAME} ${PRODUCT_VERSION}: NetFlow v1/v5/v9 and IPFIX over UDP -> OpenTelemetry traces over OTLP`,
    "",
    `Usage: ${PRODUCT_NAME} [options]`,
    ...Object.entries(SUBCOMMANDS).map(([name, { summary }]) =>
      `       ${PRODUCT_NAME} ${`${name} [args]`.padEnd(18)} ${summary}`
    ),
    "",
    "Options (flags override the environment, which overrides the .env file):",
    ...flagLines.map(([flag, text]) => `  ${flag.padEnd(19)} ${text}`),
    "",
    "Environment [default]; each OTEL_EXPORTER_OTLP_X also exists as OTEL_EXPORTER_OTLP_TRACES_X, which wins:",
  ];
  const names = new Set(ENV_VARS.map((e) => e.name));
  for (const e of ENV_VARS) {
    // OTEL_EXPORTER_OTLP_TRACES_X is shown with OTEL_EXPORTER_OTLP_X (the header explains it).
    if (e.name.startsWith(SIGNAL) && names.has(`OTEL_EXPORTER_OTLP_${e.name.slice(SIGNAL.length)}`)) {
      if (e.name !== `${SIGNAL}ENDPOINT`) continue;
    }
    const dflt = e.helpDefault ?? e.default;
    lines.push(`  ${e.name.padEnd(37)} ${e.description}${dflt ? ` [${dflt}]` : ""}`);
  }
  lines.push("", "Invalid values stop start-up with exit code 2. Documentation: README.md");
  return lines.join("\n");
}
