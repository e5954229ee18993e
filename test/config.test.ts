import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type CliResult,
  type Config,
  ConfigError,
  DEFAULTS,
  ENV_VARS,
  helpText,
  parseCli,
  PRODUCT_VERSION,
  tracesUrl,
} from "../src/config.ts";
import { EnvFileError, loadEnvFile, parseEnvFile } from "../src/env_file.ts";
import { exporterAllowList, samplingOverrideLookup } from "../src/exporter_rules.ts";

/** A fresh, empty working directory (so no stray .env is read). */
function tempDir(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "n2t-config-"));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

function run(env: Record<string, string | undefined> = {}, argv: string[] = [], cwd = tempDir()): Config {
  const r: CliResult = parseCli(argv, env, cwd);
  assert.equal(r.kind, "run");
  return (r as { config: Config }).config;
}

function rejects(env: Record<string, string>, argv: string[] = [], cwd = tempDir()): string {
  try {
    parseCli(argv, env, cwd);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`);
    assert.ok(!err.message.includes("\n"), "one line");
    return err.message;
  }
  assert.fail(`accepted ${JSON.stringify(env)} ${argv.join(" ")}`);
}

Deno.test("PRODUCT_VERSION equals package.json's version", () => {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
  assert.equal(PRODUCT_VERSION, pkg.version);
});

Deno.test("every default, with nothing set", () => {
  const c = run();
  assert.equal(c.listenHost, "0.0.0.0");
  assert.equal(c.listenPort, 2055);
  assert.equal(c.tracesExporter, "otlp");
  assert.equal(c.protocol, "grpc");
  assert.equal(c.endpoint, "http://localhost:4317");
  assert.deepEqual(c.headers, {});
  assert.equal(c.timeoutMs, 10000);
  assert.equal(c.compression, "none");
  assert.equal(c.certificateFile, undefined);
  assert.equal(c.clientKeyFile, undefined);
  assert.equal(c.clientCertificateFile, undefined);
  assert.equal(c.insecure, undefined);
  assert.equal(c.serviceName, "netflow-to-traces");
  assert.equal(c.serviceVersion, PRODUCT_VERSION);
  assert.deepEqual(c.resourceAttributes, {});
  assert.deepEqual(c.bsp, {
    maxQueueSize: 65536,
    maxExportBatchSize: 1024,
    scheduleDelayMs: 1000,
    exportTimeoutMs: 30000,
  });
  assert.equal(c.logLevel, "INFO");
  assert.equal(c.templateCacheFile, undefined);
  assert.equal(c.spanTime, "flow");
  assert.equal(c.unknownFields, true);
  assert.equal(c.allowedExporters, undefined);
  assert.equal(c.samplingDefault, undefined);
  assert.deepEqual(c.samplingOverrides, []);
  assert.equal(samplingOverrideLookup(c.samplingOverrides)?.("10.0.0.1"), undefined);
  assert.deepEqual(c.httpListen, { host: "127.0.0.1", port: 9464 });
  assert.equal(c.httpAuth, undefined);
  assert.equal(c.statsIntervalMs, 60_000);
  assert.deepEqual(c.warnings, []);
});

Deno.test("ENV_VARS: the table's defaults match what parseCli does, and --help lists every variable", () => {
  const c = run();
  const byName = Object.fromEntries(ENV_VARS.map((v) => [v.name, v.default]));
  assert.equal(byName.NETFLOW_LISTEN_HOST, c.listenHost);
  assert.equal(byName.NETFLOW_LISTEN_PORT, String(c.listenPort));
  assert.equal(byName.OTEL_TRACES_EXPORTER, c.tracesExporter);
  assert.equal(byName.OTEL_EXPORTER_OTLP_PROTOCOL, c.protocol);
  assert.equal(byName.OTEL_EXPORTER_OTLP_TIMEOUT, String(c.timeoutMs));
  assert.equal(byName.OTEL_EXPORTER_OTLP_COMPRESSION, c.compression);
  assert.equal(byName.OTEL_SERVICE_NAME, c.serviceName);
  assert.equal(byName.OTEL_SERVICE_VERSION, c.serviceVersion);
  assert.equal(byName.OTEL_BSP_MAX_QUEUE_SIZE, String(c.bsp.maxQueueSize));
  assert.equal(byName.OTEL_BSP_MAX_EXPORT_BATCH_SIZE, String(c.bsp.maxExportBatchSize));
  assert.equal(byName.OTEL_BSP_SCHEDULE_DELAY, String(c.bsp.scheduleDelayMs));
  assert.equal(byName.OTEL_BSP_EXPORT_TIMEOUT, String(c.bsp.exportTimeoutMs));
  assert.equal(byName.LOG_LEVEL, c.logLevel);
  assert.equal(byName.NETFLOW_SPAN_TIME, c.spanTime);
  assert.equal(byName.NETFLOW_UNKNOWN_FIELDS, String(c.unknownFields));
  assert.equal(byName.NETFLOW_STATS_INTERVAL, String(c.statsIntervalMs / 1000));
  assert.equal(byName.NETFLOW_SPOOL_MAX_BYTES, String(c.spoolMaxBytes));
  assert.equal(c.spoolDir, undefined);
  assert.ok(byName.OTEL_EXPORTER_OTLP_ENDPOINT.includes(DEFAULTS.grpcEndpoint));

  const help = helpText();
  for (const v of ENV_VARS) {
    const shown = v.name.replace("OTEL_EXPORTER_OTLP_TRACES_", "OTEL_EXPORTER_OTLP_");
    assert.ok(help.includes(shown), `--help misses ${v.name}`);
    if (v.flag) assert.ok(help.includes(v.flag), `--help misses ${v.flag}`);
  }
  for (
    const flag of ["--listen-host", "--listen-port", "--endpoint", "--protocol", "--log-level", "--env-file"]
  ) {
    assert.ok(help.includes(flag), flag);
  }
  const lines = help.split("\n");
  assert.ok(lines.length < 72, `${lines.length} lines`);
  for (const l of lines) assert.ok(l.length <= 110, `too wide: ${l}`);
});

/** One invalid value per variable; every variable that can be invalid is listed (checked below). */
const INVALID: [string, string][] = [
  ["NETFLOW_LISTEN_HOST", "not a host!"],
  ["NETFLOW_LISTEN_HOST", "10.0.0.256"],
  ["NETFLOW_LISTEN_PORT", "70000"],
  ["NETFLOW_LISTEN_PORT", "0"],
  ["NETFLOW_LISTEN_PORT", "20.5"],
  ["NETFLOW_LISTEN_PORT", "0x10"],
  ["OTEL_TRACES_EXPORTER", "zipkin"],
  ["OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317"],
  ["OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://collector"],
  ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "not a url"],
  ["OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"],
  ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "thrift"],
  ["OTEL_EXPORTER_OTLP_HEADERS", "novalue"],
  ["OTEL_EXPORTER_OTLP_TRACES_HEADERS", "bad key=1"],
  ["OTEL_EXPORTER_OTLP_HEADERS", "a=%zz"],
  ["OTEL_EXPORTER_OTLP_TIMEOUT", "-1"],
  ["OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "10s"],
  ["OTEL_EXPORTER_OTLP_COMPRESSION", "brotli"],
  ["OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "zstd"],
  ["OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem"],
  ["OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "/nonexistent/ca.pem"],
  ["OTEL_EXPORTER_OTLP_CLIENT_KEY", "/nonexistent/key.pem"],
  ["OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "/nonexistent/key.pem"],
  ["OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/nonexistent/cert.pem"],
  ["OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", "/nonexistent/cert.pem"],
  ["OTEL_EXPORTER_OTLP_INSECURE", "maybe"],
  ["OTEL_EXPORTER_OTLP_TRACES_INSECURE", "2"],
  ["OTEL_RESOURCE_ATTRIBUTES", "=x"],
  ["OTEL_RESOURCE_ATTRIBUTES", "k=%E0%A4%A"],
  ["OTEL_BSP_MAX_QUEUE_SIZE", "0"],
  ["OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "lots"],
  ["OTEL_BSP_SCHEDULE_DELAY", "1.5"],
  ["OTEL_BSP_EXPORT_TIMEOUT", "0"],
  ["LOG_LEVEL", "verbose"],
  ["NETFLOW_TEMPLATE_CACHE_FILE", "/nonexistent-dir/templates.json"],
  ["NETFLOW_SPOOL_DIR", "/nonexistent-dir/spool"],
  ["NETFLOW_SPOOL_DIR", "/etc/hostname"],
  ["NETFLOW_SPOOL_MAX_BYTES", "1000"],
  ["NETFLOW_SPAN_TIME", "export"],
  ["NETFLOW_UNKNOWN_FIELDS", "sometimes"],
  ["NETFLOW_ALLOWED_EXPORTERS", "10.0.0.0/8,10.0.0.999"],
  ["NETFLOW_ALLOWED_EXPORTERS", ","],
  ["NETFLOW_SAMPLING_RATE", "0"],
  ["NETFLOW_SAMPLING_RATE", "100,200"],
  ["NETFLOW_SAMPLING_RATE", "10.0.0.0/8=x"],
  ["NETFLOW_SAMPLING_RATE", "10.0.0.0/33=10"],
  ["NETFLOW_SAMPLING_RATE", "10.0.0.0/8=10,10.1.2.3/8=20"],
  ["NETFLOW_HTTP_LISTEN", "9464x"],
  ["NETFLOW_HTTP_LISTEN", "0.0.0.0:99999"],
  ["NETFLOW_HTTP_LISTEN", "::1:9464"],
  ["NETFLOW_HTTP_AUTH", "token"],
  ["NETFLOW_HTTP_AUTH", "bearer:"],
  ["NETFLOW_HTTP_AUTH", "bearer:a b"],
  ["NETFLOW_HTTP_AUTH", "basic:nopassword"],
  ["NETFLOW_HTTP_AUTH", "basic::pw"],
  ["NETFLOW_HTTP_AUTH", "digest:u:p"],
  ["NETFLOW_STATS_INTERVAL", "-5"],
  ["NETFLOW_STATS_INTERVAL", "1m"],
  ["NETFLOW_ENRICH_FILE", "/nonexistent/enrich.yaml"],
  ["NETFLOW_FIELDS_FILE", "/nonexistent/fields.yaml"],
  ["LOG_FORMAT", "yaml"],
  ["NETFLOW_LISTEN", "0.0.0.0"],
  ["NETFLOW_LISTEN", "0.0.0.0:2055,0.0.0.0:2055"],
  ["NETFLOW_LISTEN", "[::]:70000"],
  ["NETFLOW_RATE_LIMIT", "0"],
  ["NETFLOW_RATE_LIMIT", "fast"],
  ["NETFLOW_WORKERS", "0"],
  ["NETFLOW_WORKERS", "many"],
  ["NETFLOW_REUSE_PORT", "sometimes"],
  ["OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "0"],
  ["OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "2k"],
  ["OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "-1"],
  ["OTEL_ATTRIBUTE_COUNT_LIMIT", "10"],
  ["OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "many"],
  ["NETFLOW_MAX_REQUEST_BYTES", "4MiB"],
  ["OTEL_METRICS_EXPORTER", "prometheus"],
  ["OTEL_METRIC_EXPORT_INTERVAL", "5"],
];
/** Free text: any value is valid. */
const FREE = new Set(["OTEL_SERVICE_NAME", "OTEL_SERVICE_VERSION"]);

Deno.test("every invalid value is a one-line ConfigError naming the variable, the value and what is allowed", () => {
  for (const [name, value] of INVALID) {
    const message = rejects({ [name]: value });
    assert.ok(message.startsWith(`invalid ${name}=`), `${name}=${value}: ${message}`);
    // Headers and credentials are secrets: their messages do not repeat them.
    if (!name.includes("HEADERS") && !name.includes("AUTH")) {
      assert.ok(message.includes(JSON.stringify(value)), message);
    }
    assert.match(message, /: \S.{8,}/, "says what is allowed");
  }
  const covered = new Set(INVALID.map(([n]) => n));
  for (const v of ENV_VARS) {
    if (!FREE.has(v.name)) assert.ok(covered.has(v.name), `no invalid-value case for ${v.name}`);
  }
});

Deno.test("error messages: examples users see", () => {
  assert.equal(
    rejects({ NETFLOW_LISTEN_PORT: "70000" }),
    'invalid NETFLOW_LISTEN_PORT="70000": must be an integer from 1 to 65535',
  );
  assert.equal(
    rejects({ OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" }),
    'invalid OTEL_EXPORTER_OTLP_PROTOCOL="http/json": must be one of grpc, http/protobuf',
  );
  assert.match(
    rejects({ OTEL_BSP_MAX_QUEUE_SIZE: "100", OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "200" }),
    /at most OTEL_BSP_MAX_QUEUE_SIZE=100/,
  );
  // Header values are credentials: never echoed.
  const m = rejects({ OTEL_EXPORTER_OTLP_HEADERS: "Authorization=Basic%ZZsecret" });
  assert.ok(!m.includes("secret"), m);
  assert.match(m, /"Authorization".*percent-encoding/);
  // Flags are named as flags.
  assert.equal(
    rejects({}, ["--listen-port", "abc"]),
    'invalid --listen-port="abc": must be an integer from 1 to 65535',
  );
  assert.match(rejects({}, ["--log-level=loud"]), /^invalid --log-level="loud": must be one of DEBUG/);
  assert.match(rejects({}, ["--protocol", "udp"]), /^invalid --protocol="udp"/);
  assert.match(rejects({}, ["--endpoint", "nope"]), /^invalid --endpoint="nope": must be an http/);
  assert.match(rejects({}, ["--listen-host", "bad host"]), /^invalid --listen-host="bad host"/);
  assert.match(rejects({}, ["--listen-port="]), /--listen-port.*required/);
});

Deno.test("precedence: flags > environment > .env; an empty variable hides .env and means the default", () => {
  const cwd = tempDir({ ".env": "NETFLOW_LISTEN_PORT=1000\nLOG_LEVEL=debug\nOTEL_SERVICE_NAME=from-file\n" });
  assert.equal(run({}, [], cwd).listenPort, 1000);
  assert.equal(run({}, [], cwd).logLevel, "DEBUG");
  assert.equal(run({}, [], cwd).serviceName, "from-file");
  assert.equal(run({ NETFLOW_LISTEN_PORT: "2000" }, [], cwd).listenPort, 2000);
  assert.equal(run({ NETFLOW_LISTEN_PORT: "2000" }, ["--listen-port", "3000"], cwd).listenPort, 3000);
  assert.equal(run({ LOG_LEVEL: "error" }, [], cwd).logLevel, "ERROR");
  assert.equal(run({ LOG_LEVEL: "error" }, ["--log-level", "warn"], cwd).logLevel, "WARNING");
  assert.equal(run({ OTEL_SERVICE_NAME: "" }, [], cwd).serviceName, "netflow-to-traces");
  assert.equal(run({ OTEL_SERVICE_NAME: undefined }, [], cwd).serviceName, "from-file");
  // An invalid value in .env says where it came from.
  const bad = tempDir({ ".env": "NETFLOW_LISTEN_PORT=99999\n" });
  assert.equal(
    rejects({}, [], bad),
    `invalid NETFLOW_LISTEN_PORT="99999" (from ${join(bad, ".env")}): must be an integer from 1 to 65535`,
  );
  // …but a valid environment value overrides it before it is ever checked.
  assert.equal(run({ NETFLOW_LISTEN_PORT: "5000" }, [], bad).listenPort, 5000);
});

Deno.test("--env-file: relative to cwd, must exist; the default .env may be absent", () => {
  const cwd = tempDir({
    "prod.env": "export NETFLOW_LISTEN_HOST=::1 # loopback\n",
    ".env": "NETFLOW_LISTEN_HOST=10.0.0.1\n",
  });
  assert.equal(run({}, ["--env-file", "prod.env"], cwd).listenHost, "::1");
  assert.equal(run({}, [`--env-file=${join(cwd, "prod.env")}`], cwd).listenHost, "::1");
  assert.equal(run({}, [], cwd).listenHost, "10.0.0.1");
  assert.match(rejects({}, ["--env-file", "missing.env"], cwd), /missing\.env.*no such file/);
  assert.match(rejects({}, ["--env-file", "."], cwd), /is a directory/);
  assert.match(rejects({}, ["--env-file="], cwd), /--env-file needs a path/);
  assert.equal(run({}, [], tempDir()).listenHost, "0.0.0.0");
  assert.match(
    rejects({}, [], tempDir({ ".env": "this is not an assignment\n" })),
    /\.env.*line 1: expected KEY=VALUE/,
  );
});

Deno.test("headers: merged (traces wins), keys trimmed, values percent-decoded", () => {
  const c = run({
    OTEL_EXPORTER_OTLP_HEADERS:
      " Authorization = Basic%20YWxhZGRpbjpvcGVuc2VzYW1l , x-scope-orgid=tenant-1,,",
    OTEL_EXPORTER_OTLP_TRACES_HEADERS: "x-scope-orgid=tenant-2,x-plus=a+b%2Cc%3Dd",
  });
  assert.deepEqual(c.headers, {
    "Authorization": "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
    "x-scope-orgid": "tenant-2",
    "x-plus": "a+b,c=d",
  });
  // "=" inside a value (base64 padding) is kept.
  assert.deepEqual(run({ OTEL_EXPORTER_OTLP_HEADERS: "Authorization=Basic abc==" }).headers, {
    Authorization: "Basic abc==",
  });
});

Deno.test("resource attributes are percent-decoded; service name and version fall back to them", () => {
  const c = run({ OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=prod,site=Z%C3%BCrich%20DC1" });
  assert.deepEqual(c.resourceAttributes, { "deployment.environment": "prod", "site": "Zürich DC1" });
  assert.equal(c.serviceName, "netflow-to-traces");
  const named = run({ OTEL_RESOURCE_ATTRIBUTES: "service.name=edge,service.version=9" });
  assert.equal(named.serviceName, "edge");
  assert.equal(named.serviceVersion, "9");
  assert.equal(
    run({ OTEL_RESOURCE_ATTRIBUTES: "service.name=edge", OTEL_SERVICE_NAME: "core" }).serviceName,
    "core",
  );
});

Deno.test("endpoint derivation for grpc and http/protobuf", () => {
  const ep = (env: Record<string, string>, argv: string[] = []) => run(env, argv).endpoint;
  assert.equal(ep({}), "http://localhost:4317");
  assert.equal(ep({ OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf" }), "http://localhost:4318/v1/traces");
  assert.equal(ep({ OTEL_EXPORTER_OTLP_PROTOCOL: "http" }), "http://localhost:4318/v1/traces");
  assert.equal(run({ OTEL_EXPORTER_OTLP_PROTOCOL: "HTTP" }).protocol, "http/protobuf");
  const http = { OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf" };
  assert.equal(
    ep({ ...http, OTEL_EXPORTER_OTLP_ENDPOINT: "https://otlp.example.com" }),
    "https://otlp.example.com/v1/traces",
  );
  assert.equal(
    ep({ ...http, OTEL_EXPORTER_OTLP_ENDPOINT: "https://otlp.example.com/" }),
    "https://otlp.example.com/v1/traces",
  );
  assert.equal(
    ep({ ...http, OTEL_EXPORTER_OTLP_ENDPOINT: "https://gw.example.com/otlp/" }),
    "https://gw.example.com/otlp/v1/traces",
  );
  assert.equal(ep({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4317" }), "http://collector:4317"); // grpc: as is
  // The traces endpoint is used exactly as given, for both protocols.
  assert.equal(
    ep({
      ...http,
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://a:4318",
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://b:4318/custom",
    }),
    "http://b:4318/custom",
  );
  assert.equal(ep({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://b:443/" }), "https://b:443/");
  // --endpoint is a base endpoint and wins over both variables.
  assert.equal(
    ep({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://b:4318/x" }, [
      "--endpoint",
      "http://c:4318",
      "--protocol",
      "http",
    ]),
    "http://c:4318/v1/traces",
  );
  assert.equal(ep({}, ["--endpoint", "http://c:4317"]), "http://c:4317");
  // Signal-specific protocol wins over the generic one; --protocol wins over both.
  assert.equal(
    run({ OTEL_EXPORTER_OTLP_PROTOCOL: "grpc", OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/protobuf" })
      .protocol,
    "http/protobuf",
  );
  assert.equal(
    run({ OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/protobuf" }, ["--protocol", "grpc"]).protocol,
    "grpc",
  );
  assert.equal(tracesUrl("http://h:1//"), "http://h:1/v1/traces");
});

Deno.test("OTLP options: signal-specific wins; TLS files are resolved and checked", () => {
  const cwd = tempDir({ "ca.pem": "-----BEGIN CERTIFICATE-----\n" });
  const c = run(
    {
      OTEL_EXPORTER_OTLP_TIMEOUT: "5000",
      OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: "7000",
      OTEL_EXPORTER_OTLP_COMPRESSION: "GZIP",
      OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE: "ca.pem",
      OTEL_EXPORTER_OTLP_INSECURE: "true",
      OTEL_EXPORTER_OTLP_TRACES_INSECURE: "no",
    },
    [],
    cwd,
  );
  assert.equal(c.timeoutMs, 7000);
  assert.equal(c.compression, "gzip");
  assert.equal(c.certificateFile, join(cwd, "ca.pem"));
  assert.equal(c.insecure, false);
  assert.match(rejects({ OTEL_EXPORTER_OTLP_CERTIFICATE: "." }, [], cwd), /not a regular file/);
});

Deno.test("listen host: IPv4, IPv6 (::), bracketed IPv6, hostnames", () => {
  assert.equal(run({ NETFLOW_LISTEN_HOST: "::" }).listenHost, "::");
  assert.equal(run({}, ["--listen-host", "::"]).listenHost, "::");
  assert.equal(run({ NETFLOW_LISTEN_HOST: "[::1]" }).listenHost, "::1");
  assert.equal(run({ NETFLOW_LISTEN_HOST: "127.0.0.1" }).listenHost, "127.0.0.1");
  assert.equal(run({ NETFLOW_LISTEN_HOST: "localhost" }).listenHost, "localhost");
  assert.equal(run({ NETFLOW_LISTEN_HOST: "collector-1.example.com" }).listenHost, "collector-1.example.com");
  assert.equal(run({ NETFLOW_LISTEN_HOST: "fe80::1%eth0" }).listenHost, "fe80::1%eth0");
  for (const bad of ["1.2.3", "-bad.example", "a..b", "host name"]) rejects({ NETFLOW_LISTEN_HOST: bad });
});

Deno.test("booleans, enums and levels are case-insensitive", () => {
  for (
    const [text, value] of [
      ["true", true],
      ["FALSE", false],
      ["1", true],
      ["0", false],
      ["Yes", true],
      ["no", false],
      ["on", true],
      ["OFF", false],
    ] as const
  ) {
    assert.equal(run({ NETFLOW_UNKNOWN_FIELDS: text }).unknownFields, value, text);
  }
  assert.equal(run({ NETFLOW_SPAN_TIME: "Receive" }).spanTime, "receive");
  assert.equal(run({ OTEL_TRACES_EXPORTER: "CONSOLE" }).tracesExporter, "console");
  assert.equal(run({ OTEL_TRACES_EXPORTER: "none" }).tracesExporter, "none");
  for (
    const [text, level] of [["debug", "DEBUG"], ["Warn", "WARNING"], ["warning", "WARNING"], [
      "critical",
      "CRITICAL",
    ]]
  ) {
    assert.equal(run({ LOG_LEVEL: text }).logLevel, level);
  }
});

Deno.test("batch processor: batch size shrinks to a smaller queue unless set explicitly", () => {
  assert.deepEqual(run({ OTEL_BSP_MAX_QUEUE_SIZE: "512" }).bsp.maxExportBatchSize, 512);
  assert.deepEqual(
    run({ OTEL_BSP_MAX_QUEUE_SIZE: "512", OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "512" }).bsp.maxExportBatchSize,
    512,
  );
  assert.deepEqual(run({ OTEL_BSP_SCHEDULE_DELAY: "0", OTEL_BSP_EXPORT_TIMEOUT: "5000" }).bsp, {
    maxQueueSize: 65536,
    maxExportBatchSize: 1024,
    scheduleDelayMs: 0,
    exportTimeoutMs: 5000,
  });
});

Deno.test("sampling: a default rate and the most specific per-exporter override", () => {
  const c = run({
    NETFLOW_SAMPLING_RATE: " 100 , 10.0.0.0/8=1000, 10.1.0.0/16=10 ,2001:db8::/32=50, 192.0.2.9=3",
  });
  assert.equal(c.samplingDefault, 100);
  assert.deepEqual(c.samplingOverrides, [
    { cidr: "10.0.0.0/8", rate: 1000 },
    { cidr: "10.1.0.0/16", rate: 10 },
    { cidr: "2001:db8::/32", rate: 50 },
    { cidr: "192.0.2.9/32", rate: 3 },
  ]);
  const override = samplingOverrideLookup(c.samplingOverrides)!;
  assert.equal(override("10.1.2.3"), 10);
  assert.equal(override("10.2.2.3"), 1000);
  assert.equal(override("::ffff:10.1.0.1"), 10);
  assert.equal(override("2001:db8::1"), 50);
  assert.equal(override("192.0.2.9"), 3);
  assert.equal(override("192.0.2.10"), undefined);
  const onlyOverrides = run({ NETFLOW_SAMPLING_RATE: "10.0.0.0/8=1000" });
  assert.equal(onlyOverrides.samplingDefault, undefined);
  assert.equal(samplingOverrideLookup(onlyOverrides.samplingOverrides)?.("10.0.0.1"), 1000);
  assert.equal(run({ NETFLOW_SAMPLING_RATE: "1" }).samplingDefault, 1);
});

Deno.test("the configuration is plain data: it survives structuredClone (the pipeline Worker gets it so)", () => {
  const c = run({
    NETFLOW_ALLOWED_EXPORTERS: "10.0.0.0/8",
    NETFLOW_SAMPLING_RATE: "100,10.0.0.0/8=1000",
    NETFLOW_HTTP_LISTEN: ":9464",
    OTEL_EXPORTER_OTLP_HEADERS: "a=b",
  });
  assert.deepEqual(structuredClone(c), c);
  assert.deepEqual(c.allowedExporters, ["10.0.0.0/8"]);
});

Deno.test("allowed exporters: comma-separated IPv4/IPv6 CIDRs and bare addresses", () => {
  const c = run({ NETFLOW_ALLOWED_EXPORTERS: "10.0.0.0/8, 192.0.2.1 ,2001:db8::/32" });
  const set = exporterAllowList(c.allowedExporters)!;
  assert.ok(set.contains("10.9.9.9"));
  assert.ok(set.contains("192.0.2.1"));
  assert.ok(!set.contains("192.0.2.2"));
  assert.ok(set.contains("2001:db8::77"));
  assert.ok(set.contains("::ffff:10.0.0.1"));
  assert.ok(!set.contains("172.16.0.1"));
});

Deno.test("HTTP listen address: 127.0.0.1:9464 by default; host:port, [v6]:port, :port; off", () => {
  assert.deepEqual(run({}).httpListen, { host: "127.0.0.1", port: 9464 });
  assert.equal(run({ NETFLOW_HTTP_LISTEN: "off" }).httpListen, undefined);
  assert.equal(run({ NETFLOW_HTTP_LISTEN: "OFF" }).httpListen, undefined);
  assert.deepEqual(run({ NETFLOW_HTTP_LISTEN: "127.0.0.1:9464" }).httpListen, {
    host: "127.0.0.1",
    port: 9464,
  });
  assert.deepEqual(run({ NETFLOW_HTTP_LISTEN: "[::]:9464" }).httpListen, { host: "::", port: 9464 });
  assert.deepEqual(run({ NETFLOW_HTTP_LISTEN: ":9464" }).httpListen, { host: "0.0.0.0", port: 9464 });
  assert.deepEqual(run({ NETFLOW_HTTP_LISTEN: "9464" }).httpListen, { host: "0.0.0.0", port: 9464 });
  assert.deepEqual(run({ NETFLOW_HTTP_LISTEN: "localhost:8080" }).httpListen, {
    host: "localhost",
    port: 8080,
  });
});

Deno.test("HTTP auth: bearer:TOKEN or basic:USER:PASSWORD (the password may hold colons); errors hide the secret", () => {
  assert.deepEqual(run({ NETFLOW_HTTP_AUTH: "bearer:s3cr3t-token" }).httpAuth, {
    scheme: "bearer",
    token: "s3cr3t-token",
  });
  assert.deepEqual(run({ NETFLOW_HTTP_AUTH: "Basic:admin:pa:ss" }).httpAuth, {
    scheme: "basic",
    user: "admin",
    password: "pa:ss",
  });
  assert.equal(run({}).httpAuth, undefined);
  assert.throws(() => run({ NETFLOW_HTTP_AUTH: "bearer:a b" }), (e: Error) => !e.message.includes("a b"));
});

Deno.test("stats interval in seconds; 0 turns it off", () => {
  assert.equal(run({ NETFLOW_STATS_INTERVAL: "0" }).statsIntervalMs, 0);
  assert.equal(run({ NETFLOW_STATS_INTERVAL: "15" }).statsIntervalMs, 15_000);
  assert.equal(run({ NETFLOW_STATS_INTERVAL: "0.5" }).statsIntervalMs, 500);
});

Deno.test("template cache file: resolved against cwd; its directory must exist", () => {
  const cwd = tempDir();
  mkdirSync(join(cwd, "state"));
  assert.equal(
    run({ NETFLOW_TEMPLATE_CACHE_FILE: "state/t.json" }, [], cwd).templateCacheFile,
    join(cwd, "state", "t.json"),
  );
  assert.match(rejects({ NETFLOW_TEMPLATE_CACHE_FILE: "state" }, [], cwd), /is a directory/);
  assert.match(rejects({ NETFLOW_TEMPLATE_CACHE_FILE: "nope/t.json" }, [], cwd), /does not exist/);
});

Deno.test("unknown NETFLOW_* variables become warnings, other variables are ignored", () => {
  const c = run({ NETFLOW_LISTEN_PROT: "2056", PATH: "/usr/bin", OTEL_METRICS_EXPORTER: "none" });
  assert.deepEqual(c.warnings, [
    "ignoring unknown variable NETFLOW_LISTEN_PROT (see --help for the variables read)",
  ]);
});

Deno.test("command line: help, version, subcommands, unknown options", () => {
  const help = parseCli(["--help"], {}, tempDir());
  assert.equal(help.kind, "help");
  assert.equal(parseCli(["-h", "--listen-port", "99999"], {}, tempDir()).kind, "help");
  assert.deepEqual(parseCli(["--version"], {}, tempDir()), {
    kind: "version",
    text: `netflow2traces ${PRODUCT_VERSION}`,
  });
  assert.equal(parseCli(["-V"], {}, tempDir()).kind, "version");
  // A missing --env-file does not matter for --help.
  assert.equal(parseCli(["--help", "--env-file", "/nonexistent"], {}, tempDir()).kind, "help");

  assert.deepEqual(
    parseCli(["send", "--version", "9", "--to", "127.0.0.1:2055"], { NETFLOW_LISTEN_PORT: "bad" }),
    {
      kind: "subcommand",
      name: "send",
      args: ["--version", "9", "--to", "127.0.0.1:2055"],
    },
  );
  assert.deepEqual(parseCli(["healthcheck"], {}), { kind: "subcommand", name: "healthcheck", args: [] });

  assert.equal(rejects({}, ["--bogus"]), "unknown option --bogus (see --help)");
  assert.equal(rejects({}, ["-x"]), "unknown option -x (see --help)");
  assert.match(rejects({}, ["--listen-port"]), /^option --listen-port needs a value/);
  assert.match(rejects({}, ["--help=yes"]), /^option --help does not take a value/);
  assert.equal(rejects({}, ["extra"]), 'unexpected argument "extra" (see --help)');
  assert.match(rejects({}, ["--log-level", "debug", "send"]), /subcommand "send" must come first/);
});

Deno.test("env file parsing: export, comments, quotes, escapes, multi-line values", () => {
  const text = [
    "\uFEFF# a comment",
    "",
    "PLAIN=value",
    "  SPACED  =  padded value  ",
    "export EXPORTED=yes",
    "INLINE=abc # trailing comment",
    "HASH=abc#not-a-comment",
    "EMPTY=",
    "EMPTY_COMMENT= # only a comment",
    "SINGLE='literal \\n $X'",
    "SINGLE2='a # b'",
    'DOUBLE="line1\\nline2\\t\\"q\\" \\\\ # kept"  # dropped',
    "URLISH=http://h:4318/v1/traces?x=1",
    'MULTI="first',
    'second"',
    "EQUALS=a=b=c",
    "CRLF=dos\r",
    "LAST=no newline",
  ].join("\n");
  assert.deepEqual(parseEnvFile(text), {
    PLAIN: "value",
    SPACED: "padded value",
    EXPORTED: "yes",
    INLINE: "abc",
    HASH: "abc#not-a-comment",
    EMPTY: "",
    EMPTY_COMMENT: "",
    SINGLE: "literal \\n $X",
    SINGLE2: "a # b",
    DOUBLE: 'line1\nline2\t"q" \\ # kept',
    URLISH: "http://h:4318/v1/traces?x=1",
    MULTI: "first\nsecond",
    EQUALS: "a=b=c",
    CRLF: "dos",
    LAST: "no newline",
  });
});

Deno.test("env file errors carry line numbers; loadEnvFile handles missing files", () => {
  assert.throws(() => parseEnvFile("A=1\nnot an assignment"), /line 2: expected KEY=VALUE/);
  assert.throws(() => parseEnvFile("A=1\n1BAD=2"), /line 2: invalid variable name "1BAD"/);
  assert.throws(() => parseEnvFile('A="open\nB=2'), /line 1: unterminated " quote/);
  assert.throws(() => parseEnvFile("A='x' y"), /line 1: unexpected text after the closing quote/);
  assert.throws(() => parseEnvFile("A=1\r\nB"), EnvFileError);
  const dir = tempDir({ "x.env": "A=1\n" });
  assert.deepEqual(loadEnvFile(join(dir, "x.env"), { required: true }), { A: "1" });
  assert.deepEqual(loadEnvFile(join(dir, "missing.env")), {});
  assert.throws(
    () => loadEnvFile(join(dir, "missing.env"), { required: true }),
    /missing\.env.*no such file/,
  );
});

Deno.test("parseCli and the env file loader never touch process.env", () => {
  const cwd = tempDir({ ".env": "N2T_TEST_ONLY_VAR=1\n" });
  run({}, [], cwd);
  assert.equal(globalThis.process?.env?.N2T_TEST_ONLY_VAR, undefined);
});
