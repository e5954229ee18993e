/**
 * The documentation cannot drift from the code: README's configuration table against `ENV_VARS` in
 * src/config.ts; README's and SPEC's attribute tables against the attributes the span layer emits; and
 * docs/ARCHITECTURE.md against the files and functions it names.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import process from "node:process";
import { DENO_V8_FLAGS } from "../scripts/build.ts";
import { ENV_VARS, PRODUCT_VERSION } from "../src/config.ts";
import type { ExportPacket, Flow } from "../src/netflow/types.ts";
import { planTrace } from "../src/traces/spans.ts";
import { dirname, fromFileUrl, join } from "./support/paths.ts";
import { backtickedNames, flowTableNames, namePattern } from "./support/spec_attributes.ts";

const ROOT = join(dirname(fromFileUrl(import.meta.url)), "..");
const README = readFileSync(join(ROOT, "README.md"), "utf8");
const SPEC_PATH = join(ROOT, "..", "shared", "SPEC.md");
const CI = process.env.CI === "true";
const SPEC = existsSync(SPEC_PATH) ? readFileSync(SPEC_PATH, "utf8") : undefined;
if (SPEC === undefined && !CI) console.warn(`docs.test.ts: ${SPEC_PATH} not found; SPEC checks skipped`);

/** The text of the section that starts with `heading` (up to the next heading of the same or higher level). */
function section(markdown: string, heading: RegExp): string {
  const start = markdown.search(heading);
  assert.ok(start >= 0, `section ${heading}`);
  const level = markdown.slice(start).match(/^#+/)![0].length;
  const rest = markdown.slice(start + level);
  const end = rest.search(new RegExp(`^#{1,${level}} `, "m"));
  return end < 0 ? rest : rest.slice(0, end);
}

// ---------------------------------------------------------------------------------------------------------
// Configuration table
// ---------------------------------------------------------------------------------------------------------

interface ConfigRow {
  flag: string;
  /** Variables named in the row, `…_X` expanded to `OTEL_EXPORTER_OTLP_X`. */
  names: string[];
  default: string;
}

function configRows(): ConfigRow[] {
  const rows: ConfigRow[] = [];
  for (const line of section(README, /^## Configuration/m).split("\n")) {
    if (!line.startsWith("|")) continue;
    const cells = line.split("|").slice(1, -1).map((c) => c.trim());
    if (cells[0] === "flag" || /^-+$/.test(cells[0])) continue;
    const names = [...cells[1].matchAll(/`([^`]+)`/g)].map(([, n]) =>
      n.startsWith("…_") ? `OTEL_EXPORTER_OTLP_${n.slice(2)}` : n
    );
    rows.push({ flag: cells[0].replaceAll("`", ""), names, default: cells[2].replaceAll("`", "") });
  }
  return rows;
}

/** How the README writes a default the code keeps as "" (unset) or as the product version. */
function sameDefault(readme: string, code: string): boolean {
  if (code === "") return ["", "off", "all", "unset"].includes(readme);
  if (code === PRODUCT_VERSION) return readme === code || readme === "the product version";
  return readme === code;
}

Deno.test("README's configuration table lists exactly the variables of ENV_VARS, with their defaults and flags", () => {
  const rows = configRows();
  assert.ok(rows.length >= 20, `${rows.length} rows`);
  const documented = new Map<string, ConfigRow>();
  for (const row of rows) for (const n of row.names) documented.set(n, row);
  const code = new Map(ENV_VARS.map((v) => [v.name, v]));

  for (const name of documented.keys()) {
    assert.ok(code.has(name), `README documents ${name}, which the code does not read`);
  }
  for (const v of ENV_VARS) {
    // A signal-specific override (`OTEL_EXPORTER_OTLP_TRACES_X`, no default of its own) is documented by the
    // row of its base variable when the README does not name it.
    const base = v.name.replace("OTEL_EXPORTER_OTLP_TRACES_", "OTEL_EXPORTER_OTLP_");
    const row = documented.get(v.name) ?? (v.default === "" ? documented.get(base) : undefined);
    assert.ok(row, `README's configuration table lacks ${v.name}`);
    // The default and the flag in a row belong to the row's first variable.
    if (row.names[0] === v.name) {
      assert.ok(
        sameDefault(row.default, v.default),
        `${v.name}: README default "${row.default}", code default "${v.default}"`,
      );
      assert.equal(row.flag, v.flag ?? "", `${v.name}: flag`);
    }
  }
  // Every flag the code maps to a variable is in the table.
  for (const v of ENV_VARS) if (v.flag) assert.ok(rows.some((r) => r.flag === v.flag), `flag ${v.flag}`);
});

// ---------------------------------------------------------------------------------------------------------
// Attribute tables
// ---------------------------------------------------------------------------------------------------------

/** A flow with every field the decoder can fill, and times that must be adjusted. */
const FULL_FLOW: Flow = {
  srcAddr: "10.0.0.1",
  dstAddr: "192.0.2.7",
  nextHop: "10.0.0.254",
  srcPort: 51000,
  dstPort: 443,
  protocol: 6,
  bytes: 1500,
  packets: 3,
  reverseBytes: 9000,
  reversePackets: 8,
  inputIf: 4,
  outputIf: 9,
  tos: 0x28,
  tcpFlags: 0x1b,
  srcAs: 64500,
  dstAs: 15169,
  srcMask: 24,
  dstMask: 22,
  ipVersion: 4,
  firstSwitched: 990_000,
  lastSwitched: 9_995_500, // after the export time: impossible, so the span is adjusted
  direction: 0,
  samplingInterval: 10,
  // Further elements, and the names options tables give (test/vendors.test.ts decodes them from bytes).
  extra: {
    "netflow.vlan.id": 100,
    "netflow.interface.input.name": "Gi0/0/1",
    "netflow.interface.input.description": "uplink",
    "netflow.interface.output.name": "Gi0/0/2",
    "netflow.interface.output.description": "customer",
    "netflow.ingress_vrf_name": "CUST-A",
    "netflow.egress_vrf_name": "CUST-A",
    "netflow.application_name": "http",
    "netflow.application_description": "World Wide Web",
    "netflow.flow.rate_limited": true,
  },
};

function packet(version: 9 | 10, extra: Partial<ExportPacket> = {}): ExportPacket {
  return {
    version,
    exporterAddress: "10.0.0.1",
    exporterPort: 40000,
    sizeBytes: 120,
    receivedAtMs: 1_700_000_000_300,
    sysUptimeMs: 1_000_000,
    exportTimeMs: 1_700_000_000_000,
    sequence: 7,
    templateCount: 1,
    sequenceLost: 2,
    flows: [FULL_FLOW],
    ...(version === 9 ? { sourceId: 3 } : { observationDomainId: 3 }),
    ...extra,
  };
}

const OPTIONS = { spanTime: "flow" as const, collectorHost: "0.0.0.0", collectorPort: 2055 };
const v9 = planTrace(packet(9, { error: { kind: "truncated", message: "x" } }), OPTIONS);
const ipfix = planTrace(packet(10, { exporterName: "edge-1" }), OPTIONS);
/** The same flow as ICMP: type and code instead of ports. */
const ICMP_FLOW: Flow = {
  ...FULL_FLOW,
  protocol: 1,
  srcPort: undefined,
  dstPort: 0x0303,
  icmpType: 3,
  icmpCode: 3,
};
const icmp = planTrace(packet(9, { flows: [ICMP_FLOW] }), OPTIONS);
/** Keys of fully populated `netflow.flow` spans (TCP and ICMP). */
const FLOW_KEYS = new Set([...Object.keys(v9.flows[0].attributes), ...Object.keys(icmp.flows[0].attributes)]);
/** Keys of `netflow.export` spans (v9 with an error, IPFIX). */
const EXPORT_KEYS = new Set([...Object.keys(v9.exportAttributes), ...Object.keys(ipfix.exportAttributes)]);

const isPlaceholder = (name: string) => name.includes("<");

/**
 * SPEC attributes whose feature is still an open issue: the SPEC documents them, no span carries them yet.
 * Each must stay unemitted while listed, so the list shrinks as the features land (empty now).
 */
const PENDING_IN_SPEC: string[] = [];

/** Checks a documented list of names against emitted keys, both ways. */

function agree(
  label: string,
  documented: string[],
  emitted: Set<string>,
  alsoAllowed: string[] = [],
  pending: string[] = [],
) {
  const patterns = [...documented, ...alsoAllowed].map(namePattern);
  for (const name of pending) assert.ok(!emitted.has(name), `${label}: ${name} is emitted now: unlist it`);
  for (const key of emitted) {
    assert.ok(
      patterns.some((re) => re.test(key)),
      `${label}: the code emits ${key}, which is not documented`,
    );
  }
  for (const name of documented.filter((n) => !isPlaceholder(n) && !pending.includes(n))) {
    assert.ok(emitted.has(name), `${label}: documents ${name}, which a fully populated span does not carry`);
  }
}

Deno.test("README's netflow.flow table matches the attributes flowAttributes()/planTrace() emit", () => {
  assert.ok(FLOW_KEYS.has("netflow.flow.time_adjusted") && FLOW_KEYS.has("netflow.flow.bytes.estimated"));
  const readme = flowTableNames(README);
  assert.ok(readme.length >= 30, readme.join());
  agree("README netflow.flow table", readme, FLOW_KEYS);
  // The placeholder rows are real: an IANA element becomes netflow.<snake>, unknown ones netflow.field.*.
  assert.ok(readme.includes("netflow.<lower_snake_case IANA name>"));
  assert.ok(readme.includes("netflow.field.<id>") && readme.includes("netflow.field.<pen>.<id>"));
});

Deno.test("README's netflow.export attributes match what exportAttributes()/planTrace() emit", () => {
  const text =
    section(README, /^### `netflow\.export` attributes/m).split("`netflow.process_flows` carries")[0];
  agree("README netflow.export", backtickedNames(text), EXPORT_KEYS);
});

Deno.test({
  name: "SPEC's netflow.flow and netflow.export tables match the code (and so README)",
  ignore: SPEC === undefined && !CI,
  fn() {
    if (SPEC === undefined) throw new Error(`${SPEC_PATH} is missing, and CI=true requires the SPEC check`);
    // Names the SPEC defines outside its tables (netflow.flow.time_adjusted: §2 Span times).
    const elsewhere = backtickedNames(SPEC);
    const spec = flowTableNames(SPEC);
    agree("SPEC netflow.flow table", spec, FLOW_KEYS, elsewhere, PENDING_IN_SPEC);
    const readme = flowTableNames(README).filter((n) => !isPlaceholder(n));
    for (const n of spec.filter((s) => !isPlaceholder(s) && !PENDING_IN_SPEC.includes(s))) {
      assert.ok(readme.includes(n) || n === "netflow.vlan.id", n);
    }
    const exportText = section(SPEC, /^### `netflow\.export`/m);
    // error.type: README documents it with the ERROR status; SPEC §3 "Status" describes the status only.
    // `a.b.c.d` is the SPEC's notation for a v4-mapped exporter address, not an attribute.
    const exportNames = backtickedNames(exportText).filter((n) => n !== "a.b.c.d");
    agree("SPEC netflow.export", exportNames, EXPORT_KEYS, ["error.type"], PENDING_IN_SPEC);
  },
});

// ---------------------------------------------------------------------------------------------------------
// docs/ARCHITECTURE.md
// ---------------------------------------------------------------------------------------------------------

Deno.test("docs/ARCHITECTURE.md names only files and functions that exist", () => {
  const text = readFileSync(join(ROOT, "docs", "ARCHITECTURE.md"), "utf8");
  const paths = new Set(
    [...text.matchAll(/`((?:src|test|demo|docs)\/[\w./-]*|main\.ts)`/g)].map((m) => m[1]),
  );
  assert.ok(paths.size >= 20, [...paths].join());
  for (const p of paths) {
    assert.ok(existsSync(join(ROOT, p)), `ARCHITECTURE.md names ${p}, which does not exist`);
  }
  // `name()` mentions: each is defined in one of the named source files.
  const sources = [...paths].filter((p) => p.endsWith(".ts")).map((p) => readFileSync(join(ROOT, p), "utf8"))
    .join("\n");
  for (const [, fn] of text.matchAll(/`(?:\w+\.)?(\w+)\(\)`/g)) {
    assert.match(sources, new RegExp(`\\b(function|async function)\\s+${fn}\\b|\\b${fn}\\s*\\(`), `${fn}()`);
  }
});

Deno.test("README's TraceQL examples use span names and attributes the code emits", () => {
  const text = section(README, /^## TraceQL examples/m) + section(README, /^## Troubleshooting/m);
  const queries = [...text.matchAll(/\{[^{}`]*\}/g)].map((m) => m[0]).filter((q) => q.includes("name ="));
  assert.ok(queries.length >= 10, `${queries.length} queries`);
  for (const q of queries) {
    const [, name] = q.match(/name = "([^"]+)"/)!;
    assert.ok(name === "netflow.flow" || name === "netflow.export", q);
    const keys = name === "netflow.flow" ? FLOW_KEYS : EXPORT_KEYS;
    for (const [, attr] of q.matchAll(/\bspan\.([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)*)/g)) {
      assert.ok(keys.has(attr), `${q}: ${name} spans do not carry ${attr}`);
    }
  }
  // The metrics examples' `by (...)` attributes, against the span selected just before them.
  for (const [, name, by] of text.matchAll(/name = "([^"]+)" \} \|[^\n]*? by \(span\.([a-z0-9_.]+)\)/g)) {
    assert.ok((name === "netflow.flow" ? FLOW_KEYS : EXPORT_KEYS).has(by), `${name} by ${by}`);
  }
});

Deno.test("`deno task start` runs with the V8 flags the Deno binaries are compiled with", () => {
  const tasks = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8")).tasks as Record<string, string>;
  assert.ok(tasks.start.split(" ").includes(DENO_V8_FLAGS), tasks.start);
});
