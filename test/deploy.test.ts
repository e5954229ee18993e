/**
 * deploy/ without a cluster: both Kubernetes variants render with `kubectl kustomize`, every object
 * validates against the Kubernetes schemas (kubernetes-models), and the manifests use what the product
 * really has (image, ports, variables that parse, probe paths, a writable state volume under a read-only
 * root, a non-root security context); the OpenTelemetry Collector gateway configs parse and wire up.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parseAllDocuments, parseDocument } from "yaml";
import { ENV_VARS, parseCli } from "../src/config.ts";
import { CI, which } from "./support/binary.ts";
import { dirname, fromFileUrl, join } from "./support/paths.ts";

const ROOT = join(dirname(fromFileUrl(import.meta.url)), "..");
const K8S = join(ROOT, "deploy", "kubernetes");
const VARIANTS = ["deployment", "daemonset"] as const;
const DOCKERFILE = readFileSync(join(ROOT, "Dockerfile"), "utf8");
const INSTALL = readFileSync(join(ROOT, "docs", "INSTALL.md"), "utf8");

// deno-lint-ignore no-explicit-any
type Obj = any;

const KUBECTL = which("kubectl");
/** Without kubectl the rendering tests are skipped locally; under CI=true they fail (install-apt.sh installs it). */
const NO_KUBECTL = KUBECTL === undefined && !CI;

async function render(variant: string): Promise<Obj[]> {
  const kubectl = KUBECTL;
  assert.ok(kubectl, "kubectl is not installed (.ci/install-apt.sh installs kubernetes-client)");
  const out = await new Deno.Command(kubectl, { args: ["kustomize", join(K8S, variant)] }).output();
  const err = new TextDecoder().decode(out.stderr);
  assert.ok(out.success, `kubectl kustomize ${variant}: ${err}`);
  return parseAllDocuments(new TextDecoder().decode(out.stdout)).map((d) => d.toJS());
}

/** The kubernetes-models class for an object's apiVersion and kind, e.g. `apps/v1` `Deployment`. */
async function model(o: Obj): Promise<new (data: Obj) => { validate(): void }> {
  const module = await import(`kubernetes-models/${o.apiVersion}/${o.kind}`);
  return module[o.kind];
}

function podSpec(objects: Obj[]): Obj {
  const workload = objects.find((o) => o.kind === "Deployment" || o.kind === "DaemonSet");
  assert.ok(workload, "a workload");
  return workload.spec.template;
}

for (const variant of VARIANTS) {
  Deno.test({
    name: `kubernetes ${variant}: renders, and every object validates against the Kubernetes schemas`,
    ignore: NO_KUBECTL,
  }, async () => {
    const objects = await render(variant);
    const kinds = objects.map((o) => o.kind).sort();
    const expected = variant === "deployment"
      ? ["ConfigMap", "Deployment", "PersistentVolumeClaim", "Service"]
      : ["ConfigMap", "DaemonSet", "Service"];
    assert.deepEqual(kinds, expected);
    for (const o of objects) {
      const Model = await model(o);
      assert.doesNotThrow(() => new Model(o).validate(), `${o.kind} ${o.metadata?.name}`);
    }
    // The check can fail: a wrong type is refused.
    const broken = structuredClone(objects.find((o) => o.kind === "Service"));
    broken.spec.ports[0].port = "2055";
    const Service = await model(broken);
    assert.throws(() => new Service(broken).validate());
  });

  Deno.test({
    name:
      `kubernetes ${variant}: the image, ports, variables and probes are the product's, and the pod runs locked down`,
    ignore: NO_KUBECTL,
  }, async () => {
    const objects = await render(variant);
    const template = podSpec(objects);
    const spec = template.spec;
    const [container] = spec.containers;
    assert.equal(spec.containers.length, 1);
    assert.equal(spec.initContainers, undefined, "no init container (it would need root)");

    // The image the docs name, the ports the Dockerfile exposes.
    const repo = container.image.split(":")[0];
    assert.ok(INSTALL.includes(repo), `image ${repo} is the one docs/INSTALL.md names`);
    const exposed = /^EXPOSE (.+)$/m.exec(DOCKERFILE)![1].split(/\s+/);
    const ports = container.ports.map((p: Obj) => `${p.containerPort}/${p.protocol.toLowerCase()}`);
    assert.deepEqual(ports.sort(), exposed.sort());

    // Every variable is one the product reads, and together they pass its own validation.
    const configMap = objects.find((o) => o.kind === "ConfigMap");
    const known = new Set(ENV_VARS.map((v) => v.name));
    for (const key of Object.keys(configMap.data)) assert.ok(known.has(key), `${key} is not a variable`);
    assert.deepEqual(container.envFrom, [{ configMapRef: { name: configMap.metadata.name } }]);
    const state = Deno.makeTempDirSync();
    const env = Object.fromEntries(
      Object.entries(configMap.data as Record<string, string>).map(([k, v]) => [
        k,
        v.replace("/var/lib/netflow2traces", state),
      ]),
    );
    const cli = parseCli([], env, state);
    assert.ok(cli.kind === "run", JSON.stringify(cli));
    const config = cli.config;
    assert.equal(`${config.listenPort}/udp`, ports.find((p: string) => p.endsWith("/udp")));
    assert.equal(`${config.httpListen!.port}/tcp`, ports.find((p: string) => p.endsWith("/tcp")));
    assert.equal(config.workers, 1, "NETFLOW_WORKERS set explicitly (the default counts the node's cores)");

    // Probes on paths the product serves, on the HTTP port; scrape annotations for /metrics.
    const httpPort = container.ports.find((p: Obj) => p.protocol === "TCP");
    for (const probe of ["startupProbe", "livenessProbe", "readinessProbe"]) {
      const get = container[probe]?.httpGet;
      assert.ok(get, probe);
      assert.ok(["/healthz", "/metrics"].includes(get.path), `${probe} ${get.path}`);
      assert.equal(get.port, httpPort.name);
    }
    assert.equal(container.livenessProbe.httpGet.path, "/healthz");
    assert.equal(template.metadata.annotations["prometheus.io/scrape"], "true");
    assert.equal(Number(template.metadata.annotations["prometheus.io/port"]), httpPort.containerPort);
    assert.equal(template.metadata.annotations["prometheus.io/path"], "/metrics");

    // Non-root, read-only root, no privilege: and the state the product writes is on a volume.
    assert.equal(spec.securityContext.runAsNonRoot, true);
    assert.ok(spec.securityContext.runAsUser > 0);
    assert.equal(spec.securityContext.seccompProfile.type, "RuntimeDefault");
    assert.equal(container.securityContext.readOnlyRootFilesystem, true);
    assert.equal(container.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(container.securityContext.capabilities.drop, ["ALL"]);
    assert.match(DOCKERFILE, new RegExp(`^USER ${spec.securityContext.runAsUser}:`, "m"));
    const mounts: Obj[] = container.volumeMounts;
    for (const path of [configMap.data.NETFLOW_TEMPLATE_CACHE_FILE, configMap.data.NETFLOW_SPOOL_DIR]) {
      assert.ok(mounts.some((m) => path.startsWith(`${m.mountPath}/`)), `${path} is on a volume`);
    }
    for (const m of mounts) assert.ok(spec.volumes.some((v: Obj) => v.name === m.name), m.name);
    assert.ok(container.resources.requests.cpu && container.resources.requests.memory);
    assert.ok(container.resources.limits.memory);

    // The Service keeps routers' addresses and each router on one pod, and reaches this pod's UDP port.
    const service = objects.find((o) => o.kind === "Service");
    assert.equal(service.spec.type, "LoadBalancer");
    assert.equal(service.spec.externalTrafficPolicy, "Local");
    assert.equal(service.spec.sessionAffinity, "ClientIP");
    for (const [k, v] of Object.entries(service.spec.selector)) assert.equal(template.metadata.labels[k], v);
    const [port] = service.spec.ports;
    assert.equal(port.protocol, "UDP");
    assert.ok(container.ports.some((p: Obj) => p.name === port.targetPort && p.protocol === "UDP"));
  });
}

Deno.test("OpenTelemetry Collector gateway: both tiers parse, route by trace ID, and every pipeline names defined components", () => {
  const load = (name: string) => {
    const doc = parseDocument(readFileSync(join(ROOT, "deploy", "otel-gateway", name), "utf8"), {
      uniqueKeys: true,
      prettyErrors: true,
    });
    assert.deepEqual(doc.errors, [], name);
    return doc.toJS();
  };
  const gateway = load("gateway.yaml"), tail = load("tail-sampling.yaml");
  assert.equal(gateway.exporters.loadbalancing.routing_key, "traceID");
  const tailService = gateway.exporters.loadbalancing.resolver.k8s.service as string;
  assert.match(tailService, /^otel-tail-sampling\./);
  assert.equal(tail.receivers.otlp.protocols.grpc.endpoint.split(":")[1], "4317");
  assert.deepEqual(gateway.exporters.loadbalancing.resolver.k8s.ports, [4317]);
  // A request of NETFLOW_MAX_REQUEST_BYTES (4 MiB) must fit the gRPC receivers' message limit.
  for (const c of [gateway, tail]) assert.ok(c.receivers.otlp.protocols.grpc.max_recv_msg_size_mib > 4);
  for (const [name, c] of [["gateway", gateway], ["tail", tail]] as const) {
    for (const [pipeline, p] of Object.entries(c.service.pipelines as Record<string, Obj>)) {
      for (const section of ["receivers", "processors", "exporters"]) {
        for (const id of p[section] ?? []) {
          assert.ok(c[section]?.[id] !== undefined, `${name} ${pipeline}: ${id}`);
        }
      }
    }
  }
  assert.ok(tail.processors.tail_sampling.policies.length >= 2);
});
