/**
 * The demo stack without a Docker engine: every YAML and JSON file under demo/ parses; the compose file is
 * structurally sound (images or builds, ports, depends_on, bind mounts of files that exist, the traffic
 * sources' `send` flags, the collector's environment); the services point at each other consistently; and
 * every attribute the dashboard, the collector and Tempo's span metrics use is in the SPEC attribute table
 * and is emitted by the code.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import process from "node:process";
import { parseDocument } from "yaml";
import { parseCli } from "../src/config.ts";
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
    // Tempo span-metrics dimensions, and the Prometheus labels the dashboard derives from them.
    const dims: string[] = tempo.metrics_generator.processor.span_metrics.dimensions;
    for (const d of dims) assert.ok(isDocumented(d) && emitted.flow.has(d), `span_metrics dimension ${d}`);
    const labels = new Set([...dims.map((d) => d.replaceAll(".", "_")), "span_name", "service", "span_kind"]);
    for (const p of dashboard.panels) {
      for (const t of p.targets ?? []) {
        if (t.datasource.type !== "prometheus") continue;
        for (const [, list] of String(t.expr).matchAll(/\bby\s*\(([^)]*)\)/g)) {
          for (const l of list.split(",").map((s) => s.trim())) {
            assert.ok(labels.has(l), `${p.title}: label ${l}`);
          }
        }
      }
    }
  },
});
