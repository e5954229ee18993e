/**
 * The demo stack without a Docker engine: every YAML and JSON file under demo/ parses; the compose file is
 * structurally sound (images or builds, ports, depends_on, bind mounts of files that exist, the traffic
 * sources' `send` flags, the collector's environment); the services point at each other consistently; and
 * every attribute the dashboard, the collector and Tempo's span metrics use is in the SPEC attribute table
 * and is emitted by the code, and every metric and label the dashboard's PromQL names exists; and the dashboard
 * keeps its promises: rates per second at any zoom, bits per second from bytes × 8, top-N panels of at most
 * ten (instant topk, sorted, limited), and a flow search sorted by bytes.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import process from "node:process";
import { parseDocument } from "yaml";
import { parseCli } from "../src/config.ts";
import { METRICS } from "../src/metrics.ts";
import { NetflowDecoder } from "../src/netflow/decoder.ts";
import { exportAttributes, flowAttributes } from "../src/traces/attributes.ts";
import { parseSendArgs } from "../src/tools/send.ts";
import { TrafficGenerator } from "../src/tools/traffic.ts";
import { dirname, fromFileUrl, join } from "./support/paths.ts";
import { specAttributePatterns } from "./support/spec_attributes.ts";

const ROOT = join(dirname(fromFileUrl(import.meta.url)), "..");
const DEMO = join(ROOT, "demo");

// deno-lint-ignore no-explicit-any
type Any = any;

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

const FILES = walk(DEMO);
const rel = (path: string) => path.slice(ROOT.length + 1);

function loadYaml(path: string): Any {
  const doc = parseDocument(readFileSync(path, "utf8"), { uniqueKeys: true, prettyErrors: true });
  assert.deepEqual(doc.errors.map(String), [], `${rel(path)}: YAML errors`);
  assert.deepEqual(doc.warnings.map(String), [], `${rel(path)}: YAML warnings`);
  return doc.toJS({ maxAliasCount: 100 });
}

const yamlFiles = FILES.filter((f) => /\.ya?ml$/.test(f));
const jsonFiles = FILES.filter((f) => f.endsWith(".json"));

Deno.test("demo: every YAML and JSON file parses (no duplicate keys)", () => {
  assert.ok(yamlFiles.length >= 6, yamlFiles.map(rel).join());
  assert.ok(jsonFiles.length >= 1);
  for (const f of yamlFiles) assert.equal(typeof loadYaml(f), "object", rel(f));
  for (const f of jsonFiles) {
    const text = readFileSync(f, "utf8");
    assert.doesNotThrow(() => JSON.parse(text), rel(f));
  }
});

const compose = loadYaml(join(DEMO, "docker-compose.yml"));
const services: Record<string, Any> = compose.services;
const collector = loadYaml(join(DEMO, "otel-collector.yaml"));
const tempo = loadYaml(join(DEMO, "tempo.yaml"));
const prometheus = loadYaml(join(DEMO, "prometheus.yml"));
const datasources = loadYaml(join(DEMO, "grafana/provisioning/datasources/datasources.yaml"));
const dashboard = JSON.parse(readFileSync(join(DEMO, "grafana/dashboards/netflow.json"), "utf8"));

/** Container-side port of a compose port mapping (`"2055:2055/udp"` → 2055/udp). */
function parsePort(spec: string): { host?: number; container: number; protocol: string } {
  const m = spec.match(/^(?:(?:[\d.]+|\[[0-9a-f:]+\]):)?(?:(\d+):)?(\d+)(?:\/(tcp|udp))?$/);
  assert.ok(m, `port mapping "${spec}"`);
  return { host: m[1] ? Number(m[1]) : undefined, container: Number(m[2]), protocol: m[3] ?? "tcp" };
}

Deno.test("demo: docker-compose.yml is structurally valid", () => {
  const topLevel = new Set(["name", "services", "volumes", "networks", "configs", "secrets"]);
  for (const key of Object.keys(compose)) {
    assert.ok(topLevel.has(key) || key.startsWith("x-"), `top-level ${key}`);
  }
  const names = Object.keys(services);
  for (
    const required of ["netflow2traces", "otel-collector", "tempo", "loki", "prometheus", "grafana"]
  ) assert.ok(names.includes(required), `service ${required}`);
  const published = new Set<string>();
  const serviceKeys = new Set([
    "build",
    "image",
    "command",
    "entrypoint",
    "environment",
    "ports",
    "volumes",
    "depends_on",
    "restart",
    "user",
    "logging",
    "healthcheck",
  ]);
  for (const [name, s] of Object.entries(services)) {
    assert.match(name, /^[a-z0-9][a-z0-9_-]*$/, `service name ${name}`);
    for (const key of Object.keys(s)) assert.ok(serviceKeys.has(key), `${name}: unexpected key ${key}`);
    assert.ok(typeof s.image === "string" || s.build, `${name}: image or build`);
    if (typeof s.image === "string") {
      assert.match(s.image, /^[a-z0-9./_-]+(:[\w.-]+)$/, `${name}: image with a pinned tag`);
      assert.ok(!s.image.endsWith(":latest"), `${name}: pinned image`);
    }
    if (s.build) {
      const context = join(DEMO, s.build.context);
      assert.ok(statSync(context).isDirectory(), `${name}: build context ${s.build.context}`);
      assert.ok(existsSync(join(context, s.build.dockerfile ?? "Dockerfile")), `${name}: Dockerfile`);
    }
    for (const spec of s.ports ?? []) {
      assert.equal(typeof spec, "string", `${name}: quote port mappings`);
      const p = parsePort(spec);
      if (p.host !== undefined) {
        const key = `${p.host}/${p.protocol}`;
        assert.ok(!published.has(key), `${name}: host port ${key} published twice`);
        published.add(key);
      }
    }
    const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
    for (const d of deps) {
      assert.ok(names.includes(d), `${name}: depends_on ${d} is not a service`);
      assert.notEqual(d, name);
    }
    for (const v of s.volumes ?? []) {
      const [source, target, mode] = String(v).split(":");
      assert.ok(target?.startsWith("/"), `${name}: volume target ${v}`);
      assert.ok(mode === undefined || mode === "ro" || mode === "rw", `${name}: volume mode ${v}`);
      if (source.startsWith(".")) {
        assert.ok(existsSync(join(DEMO, source)), `${name}: ${source} does not exist`);
      } else if (!source.startsWith("/")) {
        assert.ok(
          compose.volumes && source in compose.volumes,
          `${name}: named volume ${source} is not declared`,
        );
      }
    }
    for (const [k, value] of Object.entries(s.environment ?? {})) {
      assert.ok(typeof value === "string", `${name}: environment ${k} must be a string`);
    }
    if (s.command !== undefined) {
      assert.ok(Array.isArray(s.command) && s.command.every((c: unknown) => typeof c === "string"), name);
    }
    if (s.restart) assert.ok(["no", "always", "on-failure", "unless-stopped"].includes(s.restart), name);
  }
  // No dependency cycles.
  const visiting = new Set<string>(), done = new Set<string>();
  const visit = (n: string) => {
    assert.ok(!visiting.has(n), `depends_on cycle through ${n}`);
    if (done.has(n)) return;
    visiting.add(n);
    const s = services[n];
    for (const d of Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {})) visit(d);
    visiting.delete(n);
    done.add(n);
  };
  names.forEach(visit);
});

Deno.test("demo: netflow2traces and the traffic sources are configured with values the code accepts", () => {
  const nf = services.netflow2traces;
  const cli = parseCli([], nf.environment, Deno.makeTempDirSync());
  assert.equal(cli.kind, "run");
  const config = cli.kind === "run" ? cli.config : undefined!;
  assert.deepEqual(config.warnings, [], "no unknown variables");
  const udp = (nf.ports as string[]).map(parsePort).find((p) => p.protocol === "udp");
  assert.equal(udp?.container, config.listenPort, "the published UDP port is the listen port");
  // The collector's OTLP endpoint is the collector service.
  const endpoint = new URL(config.endpoint);
  assert.ok(endpoint.hostname in services, `endpoint host ${endpoint.hostname}`);
  assert.equal(config.protocol, "grpc");
  assert.equal(endpoint.port, collector.receivers.otlp.protocols.grpc.endpoint.split(":").pop());

  const traffic = Object.entries(services).filter(([, s]) => s.command?.[0] === "send");
  assert.ok(traffic.length >= 1, "a traffic source");
  const versions = new Set<number>();
  for (const [name, s] of traffic) {
    assert.equal(s.image, nf.image, `${name}: runs the netflow2traces image`);
    const o = parseSendArgs(s.command.slice(1));
    assert.ok(o, name);
    assert.equal(o.host, "netflow2traces", `${name}: sends to the collector service`);
    assert.equal(o.port, config.listenPort, `${name}: to its listen port`);
    assert.equal(o.count, 0, `${name}: sends forever`);
    assert.ok(o.rate > 0 && o.rate <= 100, `${name}: a modest rate`);
    versions.add(o.version);
  }
  assert.ok(versions.has(10) && versions.has(9), "IPFIX and v9 sources");
});

Deno.test("demo: the services point at each other (collector → Tempo, Tempo → Prometheus, Grafana → all)", () => {
  const hostPort = (url: string) => {
    const u = new URL(url.includes("://") ? url : `x://${url}`);
    return { host: u.hostname, port: u.port };
  };
  // Collector pipelines reference defined components.
  for (const [name, p] of Object.entries(collector.service.pipelines) as [string, Any][]) {
    for (const kind of ["receivers", "processors", "exporters"]) {
      for (const c of p[kind] ?? []) {
        assert.ok(c in collector[kind], `pipeline ${name}: ${kind} ${c} undefined`);
      }
    }
  }
  for (const e of collector.service.extensions ?? []) assert.ok(e in collector.extensions, `extension ${e}`);
  const toTempo = hostPort(collector.exporters["otlp/tempo"].endpoint);
  assert.equal(toTempo.host, "tempo");
  assert.equal(toTempo.port, tempo.distributor.receivers.otlp.protocols.grpc.endpoint.split(":").pop());
  assert.equal(hostPort(collector.exporters["otlphttp/loki"].endpoint).host, "loki");
  assert.deepEqual(collector.service.pipelines.traces.exporters, ["otlp/tempo"]);
  assert.ok(collector.service.pipelines.traces.processors.includes("batch"), "batch processor");

  // Tempo: metrics-generator with span-metrics and service-graphs, remote-writing to Prometheus.
  const gen = tempo.metrics_generator;
  const write = hostPort(gen.storage.remote_write[0].url);
  assert.equal(write.host, "prometheus");
  assert.ok(services.prometheus.command.includes("--web.enable-remote-write-receiver"));
  const processors = tempo.overrides.defaults.metrics_generator.processors;
  for (const p of ["span-metrics", "service-graphs", "local-blocks"]) assert.ok(processors.includes(p), p);
  assert.equal(gen.processor.local_blocks.filter_server_spans, false, "TraceQL metrics over INTERNAL spans");

  // Prometheus scrapes services that exist.
  for (const job of prometheus.scrape_configs) {
    for (const t of job.static_configs.flatMap((c: Any) => c.targets)) {
      const host = t.split(":")[0];
      assert.ok(host === "localhost" || host in services, `${job.job_name}: ${t}`);
    }
  }

  // Grafana data sources point at services; the dashboard uses only provisioned data sources.
  const uids = new Set<string>();
  for (const ds of datasources.datasources) {
    assert.ok(hostPort(ds.url).host in services, `${ds.name}: ${ds.url}`);
    uids.add(ds.uid);
  }
  assert.deepEqual([...uids].sort(), ["loki", "prometheus", "tempo"]);
  for (const p of dashboard.panels) {
    for (const t of p.targets ?? []) assert.ok(uids.has(t.datasource.uid), `${p.title}: ${t.datasource.uid}`);
  }
  const grafanaVolumes: string[] = services.grafana.volumes;
  assert.ok(grafanaVolumes.some((v) => v.startsWith("./grafana/dashboards/netflow.json:")));
});

/** Durations such as `30s`, `2m`, `1h` in seconds. */
function seconds(d: string): number {
  const m = String(d).match(/^(\d+)(s|m|h)$/);
  assert.ok(m, `duration ${d}`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600 }[m[2] as "s" | "m" | "h"];
}

Deno.test("demo: Tempo's ingestion slack is raised above its defaults and documented", () => {
  // metrics-generator default 30 s; WAL block time range default 2 min.
  assert.ok(seconds(tempo.metrics_generator.metrics_ingestion_time_range_slack) > 30);
  assert.ok(seconds(tempo.storage.trace.wal.ingestion_time_range_slack) > 120);
  const readme = readFileSync(join(DEMO, "README.md"), "utf8");
  for (
    const key of ["metrics_ingestion_time_range_slack", "ingestion_time_range_slack", "NETFLOW_SPAN_TIME"]
  ) {
    assert.ok(readme.includes(key), `demo/README.md explains ${key}`);
  }
});

// ---------------------------------------------------------------------------------------------------------
// Attribute names
// ---------------------------------------------------------------------------------------------------------

const SPEC_PATH = join(ROOT, "..", "shared", "SPEC.md");
const CI = process.env.CI === "true";
const HAVE_SPEC = existsSync(SPEC_PATH);
if (!HAVE_SPEC && !CI) console.warn(`demo.test.ts: ${SPEC_PATH} not found; checking against README only`);

/** What the code emits: flow and export attribute keys over generated traffic of every version. */
function emittedKeys(): { flow: Set<string>; export: Set<string> } {
  const flow = new Set<string>(), exp = new Set<string>();
  for (const version of [5, 9, 10] as const) {
    const gen = new TrafficGenerator({ version, ipv6: version === 5 ? 0 : 0.3, sampling: 10, seed: 3 });
    const decoder = new NetflowDecoder();
    for (let i = 0; i < 20; i++) {
      const d = gen.next(1_750_000_000_000 + i * 1000);
      for (const p of decoder.decode(d.payload, "10.0.0.1", 9, d.exportTimeMs + 1500)) {
        p.sequenceLost = 1; // present on some packets: make sure the key is seen
        Object.keys(exportAttributes(p, "0.0.0.0", 2055)).forEach((k) => exp.add(k));
        p.flows.forEach((f, j) => Object.keys(flowAttributes(f, j, p.version)).forEach((k) => flow.add(k)));
      }
    }
  }
  return { flow, export: exp };
}

Deno.test({
  name: "demo: every attribute in the dashboard, the collector and span metrics is in the SPEC and emitted",
  fn() {
    if (!HAVE_SPEC && CI) throw new Error(`${SPEC_PATH} is missing, and CI=true requires the SPEC check`);
    const sources = [readFileSync(join(ROOT, "README.md"), "utf8")];
    if (HAVE_SPEC) sources.push(readFileSync(SPEC_PATH, "utf8"));
    const documented = sources.map(specAttributePatterns);
    const isDocumented = (attr: string) =>
      documented.every((patterns) => patterns.some((re) => re.test(attr)));
    const emitted = emittedKeys();
    const resourceAttrs = new Set(["service.name", "service.version"]);
    for (
      const pair of String(services.netflow2traces.environment.OTEL_RESOURCE_ATTRIBUTES ?? "").split(",")
    ) {
      if (pair) resourceAttrs.add(pair.split("=")[0]);
    }

    // TraceQL: span.* attributes by span name, resource.* attributes, and span names.
    const SPAN_NAMES = ["netflow.export", "netflow.process_flows", "netflow.flow"];
    let checked = 0;
    for (const p of dashboard.panels) {
      for (const t of p.targets ?? []) {
        if (t.datasource.type !== "tempo") continue;
        const q: string = t.query;
        const names = [...q.matchAll(/\bname\s*=\s*"([^"]+)"/g)].map((m) => m[1]);
        assert.ok(names.length > 0, `${p.title}: the query selects a span name`);
        for (const n of names) assert.ok(SPAN_NAMES.includes(n), `${p.title}: span name ${n}`);
        for (const [, scope, attr] of q.matchAll(/\b(span|resource)\.([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)*)/g)) {
          checked++;
          if (scope === "resource") {
            assert.ok(resourceAttrs.has(attr), `${p.title}: resource.${attr}`);
            continue;
          }
          assert.ok(
            isDocumented(attr),
            `${p.title}: span.${attr} is not in the SPEC/README attribute tables`,
          );
          const keys = names.includes("netflow.flow") ? emitted.flow : emitted.export;
          assert.ok(keys.has(attr), `${p.title}: span.${attr} is not emitted on ${names.join()}`);
        }
      }
    }
    assert.ok(checked >= 20, `checked ${checked} attribute references`);

    // The collector: attributes read by the processors of the traces pipeline.
    for (const name of collector.service.pipelines.traces.processors) {
      const text = JSON.stringify(collector.processors[name] ?? {});
      for (const [, attr] of text.matchAll(/attributes\[\\"([^"\\]+)\\"\]/g)) {
        assert.ok(isDocumented(attr), `collector ${name}: ${attr}`);
        assert.ok(emitted.flow.has(attr) || emitted.export.has(attr), `collector ${name}: ${attr} emitted`);
        checked++;
      }
    }
    // Tempo span-metrics dimensions, and the Prometheus metrics and labels the dashboard uses: span metrics
    // (labels derived from those dimensions) and the collector's own /metrics.
    const dims: string[] = tempo.metrics_generator.processor.span_metrics.dimensions;
    for (const d of dims) assert.ok(isDocumented(d) && emitted.flow.has(d), `span_metrics dimension ${d}`);
    const known = prometheusSeries();
    let promChecked = 0;
    for (const p of dashboard.panels) {
      for (const t of p.targets ?? []) {
        if (t.datasource.type !== "prometheus") continue;
        const expr = String(t.expr);
        const names = metricNames(expr);
        assert.ok(names.length > 0, `${p.title}: ${expr} names a metric`);
        const labels = new Set<string>();
        for (const n of names) {
          assert.ok(
            known.has(n),
            `${p.title}: ${n} is neither a span metric nor one of the collector's metrics`,
          );
          known.get(n)!.forEach((l) => labels.add(l));
          promChecked++;
        }
        for (const l of labelNames(expr, t.legendFormat)) assert.ok(labels.has(l), `${p.title}: label ${l}`);
        for (const [, n] of expr.matchAll(/\bspan_name\s*=~?\s*"([^"]+)"/g)) {
          assert.ok(SPAN_NAMES.includes(n), `${p.title}: span_name ${n}`);
        }
      }
    }
    assert.ok(promChecked >= 5, `checked ${promChecked} Prometheus metric references`);
  },
});

// ---------------------------------------------------------------------------------------------------------
// The dashboard's queries: rates, bits per second, top-N, the flow search
// ---------------------------------------------------------------------------------------------------------

/** Tempo 2.x metrics-generator span-metrics series (the span-metrics processor's default names). */
const SPAN_METRICS = [
  "traces_spanmetrics_calls_total",
  "traces_spanmetrics_latency_bucket",
  "traces_spanmetrics_latency_sum",
  "traces_spanmetrics_latency_count",
  "traces_spanmetrics_size_total",
];

/** Every Prometheus series the demo has for the dashboard, with the labels each one carries. */
function prometheusSeries(): Map<string, Set<string>> {
  const gen = tempo.metrics_generator;
  const dims: string[] = gen.processor.span_metrics.dimensions;
  const spanLabels = [
    ...dims.map((d) => d.replaceAll(".", "_")),
    ...["service", "span_name", "span_kind", "status_code"], // the processor's intrinsic dimensions
    ...Object.keys(gen.registry?.external_labels ?? {}),
  ];
  const out = new Map<string, Set<string>>();
  for (const n of SPAN_METRICS) {
    out.set(n, new Set(n.endsWith("_bucket") ? [...spanLabels, "le"] : spanLabels));
  }
  // The collector's /metrics, scraped by the job pointing at the netflow2traces service.
  const job = prometheus.scrape_configs.find((j: Any) =>
    j.static_configs.some((c: Any) => c.targets.some((t: string) => t.startsWith("netflow2traces:")))
  );
  assert.ok(job, "Prometheus scrapes netflow2traces");
  for (const def of METRICS) {
    out.set(`netflow2traces_${def.name}`, new Set(["job", "instance", ...(def.label ? [def.label] : [])]));
  }
  return out;
}

const PROMQL_WORDS = new Set([
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "bool",
  "offset",
]);

/** Metric names in a PromQL expression: identifiers that are not functions, keywords or label names. */
function metricNames(expr: string): string[] {
  const bare = expr.replace(/\{[^}]*\}/g, "{}").replace(/\b(by|without)\s*\([^)]*\)/g, "").replace(
    /"[^"]*"/g,
    "",
  );
  const names = new Set<string>();
  for (const m of bare.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?/g)) {
    if (m[2] || PROMQL_WORDS.has(m[1]) || /^\d/.test(m[1])) continue; // a function call, a keyword
    if (m.index > 0 && bare[m.index - 1] === "$") continue; // $__rate_interval, $__range
    if (/^(\d+[smhdwy])+$/.test(m[1])) continue;
    names.add(m[1]);
  }
  return [...names];
}

/** Label names in a PromQL expression's matchers and by/without lists, and in its legend format. */
function labelNames(expr: string, legendFormat?: string): string[] {
  const out = new Set<string>();
  for (const [, list] of expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)) {
    list.split(",").map((l) => l.trim()).filter(Boolean).forEach((l) => out.add(l));
  }
  for (const [, matchers] of expr.matchAll(/\{([^}]*)\}/g)) {
    for (const [, l] of matchers.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) out.add(l);
  }
  for (const [, l] of String(legendFormat ?? "").matchAll(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g)) {
    out.add(l);
  }
  return [...out];
}

const TRACEQL_METRICS =
  /\|\s*(rate|count_over_time|sum_over_time|avg_over_time|min_over_time|max_over_time|quantile_over_time|histogram_over_time)\s*\(\s*([^),]*)/;
const PER_SECOND_UNIT = /^(bps|Bps|pps|binbps|binBps|reqps|ops|cps)$|\/s$/;
const PER_MINUTE_UNIT = /\/min$/;
const COUNTER = /_(total|count|sum|bucket)$/;

const unitOf = (p: Any): string => p.fieldConfig?.defaults?.unit ?? "";
const queryPanels = () => dashboard.panels.filter((p: Any) => p.type !== "row");

/**
 * The factor a panel's "Add field from calculation" transformations apply to every number field (binary
 * operations × or ÷ a fixed number, on all number fields, replacing them).
 */
function scaleOf(p: Any): number {
  let factor = 1;
  for (const tr of p.transformations ?? []) {
    if (tr.id !== "calculateField") continue;
    const o = tr.options, b = o.binary;
    assert.equal(o.mode, "binary", `${p.title}: calculateField is a binary operation`);
    assert.deepEqual(
      b.left,
      { matcher: { id: "byType", options: "number" } },
      `${p.title}: on all number fields`,
    );
    assert.equal(o.replaceFields, true, `${p.title}: replacing them (the legend keeps the series names)`);
    const n = Number(b.right?.fixed);
    assert.ok(Number.isFinite(n) && n > 0, `${p.title}: by a fixed number`);
    if (b.operator === "*") factor *= n;
    else if (b.operator === "/") factor /= n;
    else assert.fail(`${p.title}: operator ${b.operator}`);
  }
  return factor;
}

Deno.test("demo: dashboard rates are per second at any zoom (rate() in PromQL; a fixed step, divided, in TraceQL)", () => {
  const seen = { promRate: 0, tempoRate: 0, tempoScaled: 0 };
  for (const p of queryPanels()) {
    const unit = unitOf(p);
    const perSecond = PER_SECOND_UNIT.test(unit), perMinute = PER_MINUTE_UNIT.test(unit);
    if (/per second|\/s\b/.test(p.title)) {
      assert.ok(perSecond, `${p.title}: a per-second unit, not "${unit}"`);
    }
    if (perSecond) assert.match(p.title, /per second|\/s\b/, `${p.title}: the title says per second`);
    if (perMinute) assert.match(p.title, /per minute/, `${p.title}: the title says per minute`);
    for (const t of p.targets ?? []) {
      if (t.datasource.type === "prometheus") {
        const expr = String(t.expr);
        assert.doesNotMatch(expr, /_over_time\s*\(/, `${p.title}: no *_over_time of counts per step`);
        for (const name of metricNames(expr).filter((n) => COUNTER.test(n))) {
          const uses = expr.split(name).length - 1;
          const re = new RegExp(
            `\\b(rate|irate|increase)\\(\\s*${name}\\s*(?:\\{[^}]*\\})?\\s*\\[([^\\]]+)\\]\\s*\\)`,
            "g",
          );
          const wrapped = [...expr.matchAll(re)];
          assert.equal(wrapped.length, uses, `${p.title}: counter ${name} only inside rate()/increase()`);
          for (const [, fn, window] of wrapped) {
            if (fn === "increase") {
              assert.equal(window, "$__range", `${p.title}: increase() over the whole range`);
              assert.ok(
                t.instant === true && t.range !== true,
                `${p.title}: increase([$__range]) as an instant query`,
              );
              assert.ok(!perSecond, `${p.title}: an increase is a count, not per second`);
            } else {
              assert.equal(window, "$__rate_interval", `${p.title}: rate() over $__rate_interval`);
              seen.promRate++;
            }
          }
        }
        if (perSecond) assert.match(expr, /\brate\(/, `${p.title}: a per-second panel uses rate()`);
        continue;
      }
      if (t.datasource.type !== "tempo") continue;
      const m = String(t.query).match(TRACEQL_METRICS);
      if (!m) continue; // a search
      const [, fn] = m;
      const scale = scaleOf(p);
      if (t.metricsQueryType === "instant") {
        // One value over the whole range: rate() is the range's average per second, a sum is a total.
        assert.ok(!perSecond || fn === "rate", `${p.title}: an instant ${fn} is a total, not per second`);
        assert.equal(scale, 1, `${p.title}: no scaling of an instant query`);
        continue;
      }
      assert.equal(t.metricsQueryType, "range", `${p.title}: metricsQueryType`);
      if (fn === "sum_over_time" || fn === "count_over_time") {
        // Per step: without a fixed step the value changes with the zoom.
        assert.ok(t.step, `${p.title}: ${fn} per step needs a fixed step`);
        const step = seconds(t.step);
        const expected = perSecond ? (unit === "bps" ? 8 : 1) / step : perMinute ? 60 / step : NaN;
        assert.ok(!Number.isNaN(expected), `${p.title}: ${fn} shown as a per-step sum ("${unit}")`);
        assert.ok(Math.abs(scale - expected) < 1e-12, `${p.title}: scaled by ${scale}, want ${expected}`);
        seen.tempoScaled++;
      } else if (fn === "rate") {
        assert.ok(perSecond && unit !== "bps", `${p.title}: rate() is spans per second, not "${unit}"`);
        assert.equal(scale, 1, `${p.title}: rate() is already per second`);
        seen.tempoRate++;
      } else {
        assert.equal(scale, 1, `${p.title}: ${fn} is not scaled`);
      }
    }
  }
  assert.ok(seen.promRate >= 3 && seen.tempoRate >= 2 && seen.tempoScaled >= 3, JSON.stringify(seen));
});

Deno.test("demo: bits-per-second panels (unit bps) from bytes × 8 per second", () => {
  const bps = queryPanels().filter((p: Any) => unitOf(p) === "bps");
  assert.ok(bps.length >= 3, `${bps.length} bits-per-second panels`);
  for (const p of queryPanels()) {
    if (/bits\/s/.test(p.title)) assert.equal(unitOf(p), "bps", `${p.title}: unit bps`);
  }
  let tempo = 0, prom = 0;
  for (const p of bps) {
    assert.match(p.title, /bits\/s/, `${p.title}: the title says bits/s`);
    for (const t of p.targets) {
      if (t.datasource.type === "prometheus") {
        const expr = String(t.expr);
        assert.match(expr, /(^|[^\w.])8\s*\*|\*\s*8(?![\w.])/, `${p.title}: bytes × 8`);
        for (const n of metricNames(expr)) assert.match(n, /_bytes_total$/, `${p.title}: ${n} counts bytes`);
        prom++;
      } else {
        const m = String(t.query).match(TRACEQL_METRICS);
        assert.ok(m && m[1] === "sum_over_time", `${p.title}: sum_over_time`);
        assert.match(m[2], /^span\.netflow\.flow\.bytes(\.estimated)?$/, `${p.title}: sums flow bytes`);
        assert.ok(Math.abs(scaleOf(p) - 8 / seconds(t.step)) < 1e-12, `${p.title}: × 8 ÷ step`);
        tempo++;
      }
    }
  }
  assert.ok(tempo >= 2 && prom >= 1, `TraceQL ${tempo}, PromQL ${prom}`);
});

Deno.test("demo: top-N panels are bounded (an instant topk ≤ 10 or a limit) and sorted largest first", () => {
  for (const p of queryPanels()) {
    for (const t of p.targets ?? []) {
      const q = String(t.query ?? t.expr);
      for (const [, k] of q.matchAll(/\btopk\s*\(\s*(\d+)/g)) {
        assert.ok(Number(k) >= 1 && Number(k) <= 10, `${p.title}: topk(${k})`);
        // Per step, topk picks k series at every step: a range query shows more than k.
        if (t.datasource.type === "tempo") {
          assert.equal(t.metricsQueryType, "instant", `${p.title}: instant topk`);
        } else assert.ok(t.instant === true && t.range !== true, `${p.title}: instant topk`);
      }
    }
  }
  const top = queryPanels().filter((p: Any) => /^Top \d+/.test(p.title));
  assert.ok(top.length >= 5, `${top.length} top-N panels`);
  for (const p of top) {
    const n = Number(p.title.match(/^Top (\d+)/)[1]);
    assert.ok(n <= 10, p.title);
    const trs: Any[] = p.transformations ?? [];
    const limit = trs.find((tr) => tr.id === "limit");
    const topk = p.targets.flatMap((
      t: Any,
    ) => [...String(t.query ?? t.expr).matchAll(/\btopk\s*\(\s*(\d+)/g)]);
    assert.ok(
      (limit && limit.options.limitField <= n) ||
        (topk.length > 0 && topk.every((m: Any) => Number(m[1]) <= n)),
      `${p.title}: at most ${n} (topk or a limit transformation)`,
    );
    // The result's order is not the size order: reduce each series to a row, sort the rows descending.
    const reduce = trs.findIndex((tr) => tr.id === "reduce");
    const sort = trs.findIndex((tr) => tr.id === "sortBy");
    assert.ok(reduce >= 0 && sort > reduce, `${p.title}: reduce, then sortBy`);
    assert.deepEqual(
      trs[sort].options.sort[0],
      { field: "Last *", desc: true },
      `${p.title}: sorted largest first`,
    );
    assert.ok(limit && trs.indexOf(limit) > sort, `${p.title}: limited after sorting`);
    if (p.type === "bargauge") {
      assert.equal(p.options.reduceOptions.values, true, `${p.title}: one bar per row`);
    }
  }
});

Deno.test("demo: the flow search is a TraceQL span table sorted by bytes, largest first, and limited", () => {
  const searches = queryPanels().filter((p: Any) =>
    (p.targets ?? []).some((t: Any) =>
      t.datasource.type === "tempo" && !TRACEQL_METRICS.test(t.query) &&
      /name\s*=\s*"netflow\.flow"/.test(t.query)
    )
  );
  assert.equal(searches.length, 1, "one flow search");
  const [p] = searches;
  assert.equal(p.type, "table");
  const [t] = p.targets;
  assert.equal(t.tableType, "spans", "one row per flow span");
  assert.ok(t.limit > 0 && t.spss > 0, "search limits");
  const select = String(t.query).match(/\|\s*select\(([^)]*)\)/)?.[1].split(",").map((s) => s.trim()) ?? [];
  for (
    const a of [
      "source.address",
      "source.port",
      "destination.address",
      "destination.port",
      "network.transport",
      "netflow.flow.bytes",
      "netflow.flow.packets",
    ]
  ) assert.ok(select.includes(`span.${a}`), `selects span.${a}`);
  const trs: Any[] = p.transformations ?? [];
  // Tempo's attribute values reach the table as text: convert before sorting, or "9" sorts above "100000".
  const convert = trs.findIndex((tr) =>
    tr.id === "convertFieldType" &&
    tr.options.conversions.some((c: Any) =>
      c.targetField === "netflow.flow.bytes" && c.destinationType === "number"
    )
  );
  const sort = trs.findIndex((tr) => tr.id === "sortBy");
  const limit = trs.findIndex((tr) => tr.id === "limit");
  assert.ok(convert >= 0, "netflow.flow.bytes converted to a number");
  assert.ok(sort > convert, "then sorted");
  assert.deepEqual(
    trs[sort].options.sort[0],
    { field: "netflow.flow.bytes", desc: true },
    "by bytes, largest first",
  );
  assert.ok(
    limit > sort && trs[limit].options.limitField > 0 && trs[limit].options.limitField <= 1000,
    "limited",
  );
  assert.match(p.title, /largest first/);
});

Deno.test("demo: dashboard layout, variables and transformations are well-formed", () => {
  const ids = dashboard.panels.map((p: Any) => p.id);
  assert.equal(new Set(ids).size, ids.length, "unique panel ids");
  assert.equal(dashboard.uid, "netflow2traces");
  assert.equal(typeof dashboard.schemaVersion, "number");
  const cells = new Map<string, string>();
  for (const p of dashboard.panels) {
    const { x, y, w, h } = p.gridPos;
    assert.ok(x >= 0 && w > 0 && x + w <= 24 && y >= 0 && h > 0, `${p.title}: gridPos`);
    for (let i = x; i < x + w; i++) {
      for (let j = y; j < y + h; j++) {
        const other = cells.get(`${i},${j}`);
        assert.ok(!other, `${p.title} overlaps ${other}`);
        cells.set(`${i},${j}`, p.title);
      }
    }
  }
  const variables = new Set(dashboard.templating.list.map((v: Any) => v.name));
  const TRANSFORMS = new Set(["calculateField", "reduce", "sortBy", "limit", "convertFieldType", "organize"]);
  for (const p of queryPanels()) {
    for (const t of p.targets ?? []) {
      for (const [, v] of String(t.query ?? t.expr).matchAll(/\$\{?(\w+)/g)) {
        assert.ok(variables.has(v) || ["__range", "__rate_interval"].includes(v), `${p.title}: $${v}`);
      }
      if (t.step !== undefined) seconds(t.step);
    }
    for (const tr of p.transformations ?? []) {
      assert.ok(TRANSFORMS.has(tr.id), `${p.title}: transformation ${tr.id}`);
    }
  }
});
