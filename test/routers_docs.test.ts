/**
 * The router and backend documentation cannot drift: docs/ROUTERS.md has a section for every platform the
 * README promises, each naming the vendor document it follows and setting a 60 s active timeout in the
 * platform's own syntax (plus the platform-specific pieces that are easy to forget); every `NETFLOW_*` /
 * `OTEL_*` variable and every `netflow2traces <subcommand>` that README.md, docs/ROUTERS.md or
 * docs/BACKENDS.md mentions exists; and the links between these files point at headings that exist.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { ENV_VARS } from "../src/config.ts";
import { SUBCOMMANDS } from "../src/tools/subcommands.ts";
import { dirname, fromFileUrl, join } from "./support/paths.ts";

const ROOT = join(dirname(fromFileUrl(import.meta.url)), "..");
const read = (rel: string) => readFileSync(join(ROOT, rel), "utf8");
const DOCS = ["README.md", "docs/ROUTERS.md", "docs/BACKENDS.md"] as const;
const ROUTERS = read("docs/ROUTERS.md");

/** `## ` sections of a Markdown file by heading text (fenced code is not mistaken for headings). */
function sections(markdown: string, level = 2): Map<string, string> {
  const out = new Map<string, string>();
  let heading: string | undefined;
  let body: string[] = [];
  let fenced = false;
  const prefix = "#".repeat(level) + " ";
  for (const line of markdown.split("\n")) {
    if (line.startsWith("```")) fenced = !fenced;
    if (!fenced && /^#{1,6} /.test(line) && line.match(/^#+/)![0].length <= level) {
      if (heading !== undefined) out.set(heading, body.join("\n"));
      heading = line.startsWith(prefix) ? line.slice(prefix.length).trim() : undefined;
      body = [];
      continue;
    }
    body.push(line);
  }
  if (heading !== undefined) out.set(heading, body.join("\n"));
  return out;
}

/** The contents of the fenced code blocks of `markdown`. */
function codeBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```[^\n]*\n([\s\S]*?)^```/gm)].map((m) => m[1]);
}

/** GitHub's anchor for a heading. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, "").replace(/ /g, "-");
}

interface Platform {
  /** How the table and the issue name it. */
  name: string;
  /** Matches the section's heading. */
  heading: RegExp;
  /** Whose documentation the section follows (appears on its `Follows:` line). */
  vendor: RegExp;
  /** The document (title, and the version or release where it matters) the `Follows:` line must name. */
  follows: RegExp[];
  /**
   * The 60 s active timeout in the platform's syntax, searched in the section's code blocks and tables; every
   * pattern must match (one per release family where the syntax differs).
   */
  activeTimeout: RegExp[];
  /** Further things the snippet must contain. */
  also?: { what: string; re: RegExp }[];
  /** Things the snippet must not contain (known past mistakes). */
  never?: { what: string; re: RegExp }[];
  /** Things the section's text must say. */
  mentions?: RegExp[];
}

const PLATFORMS: Platform[] = [
  {
    name: "Cisco IOS-XE Flexible NetFlow",
    heading: /^Cisco IOS-XE \(Flexible NetFlow\)$/,
    vendor: /Cisco/,
    follows: [/Flexible NetFlow Configuration Guide, Cisco IOS XE/, /IOS XE 16\.6/],
    activeTimeout: [/^\s*cache timeout active 60$/m],
    also: [
      { what: "the sampler option table", re: /^\s*option sampler-table\b/m },
      { what: "FNF on the interface", re: /^\s*ip flow monitor \S+ sampler \S+ input$/m },
    ],
    never: [{ what: "classic `ip flow ingress` (not on IOS-XE)", re: /^\s*ip flow (ingress|egress)\b/m }],
  },
  {
    name: "Cisco classic IOS",
    heading: /^Cisco classic IOS/,
    vendor: /Cisco/,
    follows: [/NetFlow Configuration Guide, Cisco IOS Release 15M&T/],
    // In minutes on classic IOS: 1 minute.
    activeTimeout: [/^ip flow-cache timeout active 1$/m],
    also: [
      { what: "ip flow-export", re: /^ip flow-export destination 192\.0\.2\.10 2055$/m },
      { what: "sampler options", re: /^ip flow-export template options sampler$/m },
      { what: "a sampler map on an interface", re: /^ flow-sampler \S+$/m },
    ],
    mentions: [/\*\*minutes\*\*/, /does not exist on IOS-XE|On IOS-XE use/],
  },
  {
    name: "Cisco NX-OS",
    heading: /^Cisco NX-OS$/,
    vendor: /Cisco/,
    follows: [/Nexus 7000/, /Nexus 5600/],
    activeTimeout: [/^flow timeout active 60$/m],
    also: [
      { what: "the sampler option table", re: /^\s*option sampler-table\b/m },
      { what: "a sampler", re: /^\s*mode 1 out-of \d+$/m },
      { what: "the sampler on an interface", re: /^\s*ip flow monitor \S+ input sampler \S+$/m },
      { what: "a source interface", re: /^\s*source \S+$/m },
    ],
  },
  {
    name: "Cisco IOS-XR",
    heading: /^Cisco IOS-XR$/,
    vendor: /Cisco/,
    follows: [/IOS XR Release 7\.4\.x/],
    activeTimeout: [/^\s*cache timeout active 60$/m],
    also: [
      { what: "the sampler option table", re: /^\s*options sampler-table\b/m },
      { what: "a sampler map", re: /^sampler-map \S+\n\s*random 1 out-of \d+$/m },
      { what: "a source interface", re: /^ source \S+$/m },
    ],
  },
  {
    name: "Junos MX inline-jflow",
    heading: /^Juniper Junos MX \(inline J-Flow\)$/,
    vendor: /Juniper/,
    follows: [/Flow Monitoring and Flow Collection Services User Guide/, /Associating Sampling Instances/],
    activeTimeout: [/ flow-active-timeout 60$/m],
    also: [
      { what: "the line-card binding", re: /^set chassis fpc \d+ sampling-instance \S+$/m },
      { what: "sampling on an interface", re: /^set interfaces \S+ unit \d+ family inet sampling input$/m },
      { what: "inline-jflow", re: / output inline-jflow source-address \S+$/m },
      { what: "the options (sampling rate) refresh", re: / option-refresh-rate seconds 60$/m },
    ],
  },
  {
    name: "Junos SRX",
    heading: /^Juniper Junos SRX$/,
    vendor: /Juniper/,
    follows: [/Flow Monitoring and Flow Collection Services User Guide/, /SRX Series Firewalls/],
    activeTimeout: [/ flow-active-timeout 60$/m],
    also: [
      { what: "sampling on an interface", re: /^set interfaces \S+ unit \d+ family inet sampling input$/m },
      { what: "inline-jflow", re: / output inline-jflow source-address \S+$/m },
    ],
    mentions: [/19\.4R1/, /20\.1R1/],
  },
  {
    name: "Arista EOS",
    heading: /^Arista EOS \(IPFIX\)$/,
    vendor: /Arista/,
    follows: [/EOS User Manual/, /Sampled Flow Tracking/],
    // Milliseconds on EOS.
    activeTimeout: [/^\s*record export on interval 60000$/m],
    also: [
      { what: "IPFIX", re: /^\s*format ipfix version 10$/m },
      { what: "a sampler", re: /^\s*sample \d+$/m },
      { what: "the tracker on an interface", re: /^\s*flow tracker sampled \S+$/m },
    ],
  },
  {
    name: "MikroTik RouterOS",
    heading: /^MikroTik RouterOS/,
    vendor: /MikroTik/,
    follows: [/RouterOS v7/, /Traffic Flow/],
    activeTimeout: [/\bactive-flow-timeout=1m\b/],
    // RouterOS spells the value as its documentation does.
    also: [{ what: "IPFIX as RouterOS spells it", re: /\bversion=IPFIX\b/ }],
    mentions: [/packet-sampling=yes/],
  },
  {
    name: "pfSense (softflowd and pflow)",
    heading: /^pfSense$/,
    vendor: /Netgate/,
    follows: [/Firewall Packet Flow Data/, /24\.03/, /pfSense-pkg-softflowd/],
    activeTimeout: [/^\| Timeout Values: Maximum Lifetime\s*\| `60`.*\| `-t maxlife=60`/m],
    mentions: [/\*\*softflowd package\*\*/, /\*\*Native pflow\*\*/, /no active timeout/],
  },
  {
    name: "OPNsense",
    heading: /^OPNsense$/,
    vendor: /OPNsense/,
    follows: [/Netflow Export & Analyses/, /netflow_capture\.xml/],
    // The GUI's Active Timeout field (seconds), handed to ng_netflow.
    activeTimeout: [/^\| Active Timeout\s*\| `60`\s*\|/m, /^\| Inactive Timeout\s*\| `15`\s*\|/m],
    mentions: [/advanced mode/],
  },
  {
    name: "VyOS",
    heading: /^VyOS$/,
    vendor: /VyOS/,
    follows: [/Flow Accounting/, /VyOS 1\.5/, /VyOS 1\.4/],
    // VyOS 1.5 (ipt-netflow) and 1.4 (pmacct) have different syntax: both snippets.
    activeTimeout: [
      /^set system flow-accounting netflow active-timeout 60$/m,
      /^set system flow-accounting netflow timeout max-active-life 60$/m,
    ],
    also: [
      { what: "1.5: the interface under netflow", re: /^set system flow-accounting netflow interface \S+$/m },
      { what: "1.4: the interface at the top", re: /^set system flow-accounting interface \S+$/m },
    ],
    mentions: [/\*\*VyOS 1\.5 and rolling:\*\*/, /\*\*VyOS 1\.4 and 1\.3:\*\*/],
  },
  {
    name: "Linux softflowd",
    heading: /^Linux softflowd$/,
    vendor: /softflowd/,
    follows: [/softflowd\(8\)/, /softflowd 1\.1\.0/],
    activeTimeout: [/-t maxlife=60\b/],
  },
  {
    name: "Linux ipt-netflow",
    heading: /^Linux ipt-netflow$/,
    vendor: /ipt-netflow/,
    follows: [/README/, /version 2\.6/],
    activeTimeout: [/\bactive_timeout=60\b/],
    mentions: [/\*\*flow\*\* sampling/],
  },
  {
    name: "Fortinet FortiGate",
    heading: /^Fortinet FortiGate/,
    vendor: /Fortinet/,
    follows: [/FortiOS CLI Reference/, /7\.4\.3/, /6\.4\.7/, /FortiOS Administration Guide/],
    // Seconds from FortiOS 7.2, minutes before: both forms are shown.
    activeTimeout: [/^\s*set active-flow-timeout 60$/m, /^\s*set active-flow-timeout 1$/m],
    also: [{ what: "export turned on per interface", re: /^\s*set netflow-sampler (rx|tx|both)$/m }],
  },
];

const routerSections = sections(ROUTERS);

function platformSection(p: Platform): [string, string] {
  const found = [...routerSections].filter(([h]) => p.heading.test(h));
  assert.equal(found.length, 1, `docs/ROUTERS.md: one section for ${p.name} (${p.heading})`);
  return found[0];
}

/** A section's code blocks and table rows (the snippet), and its prose without code blocks. */
function snippetOf(body: string): string {
  return [...codeBlocks(body), ...body.split("\n").filter((l) => l.startsWith("|"))].join("\n");
}
const proseOf = (body: string) => body.replace(/^```[^\n]*\n[\s\S]*?^```/gm, "");

/** The section's "Follows:" paragraph (up to the first blank line). */
function followsOf(body: string): string | undefined {
  return body.split("\n\n").map((para) => para.trim()).find((para) => para.startsWith("Follows:"));
}

Deno.test("docs/ROUTERS.md: a section for every platform, naming the platform and the documentation it follows", () => {
  for (const p of PLATFORMS) {
    const [heading, body] = platformSection(p);
    const follows = followsOf(body);
    assert.ok(follows, `${heading}: a "Follows:" paragraph`);
    assert.match(follows, p.vendor, `${heading}: names ${p.vendor}'s documentation`);
    assert.match(follows, /<https:\/\/[^>\s]+>/, `${heading}: with the document's address`);
    // Line breaks from the formatter do not matter.
    const oneLine = follows.replace(/\s+/g, " ");
    for (const re of p.follows) assert.match(oneLine, re, `${heading}: "Follows:" names ${re}`);
    assert.ok(codeBlocks(body).length >= 1 || /^\|/m.test(body), `${heading}: a snippet`);
    // A platform note: at least one bullet outside the code blocks.
    assert.match(proseOf(body), /^- \S/m, `${heading}: a platform note (bullet list)`);
    for (const re of p.mentions ?? []) assert.match(body, re, `${heading}: says ${re}`);
  }
  // No section without a platform entry (a new platform needs its timeout check here).
  for (const heading of routerSections.keys()) {
    assert.ok(
      PLATFORMS.some((p) => p.heading.test(heading)),
      `docs/ROUTERS.md: section "${heading}" unchecked`,
    );
  }
});

Deno.test("docs/ROUTERS.md: the platform table links every section", () => {
  const intro = ROUTERS.slice(0, ROUTERS.search(/^## /m));
  const linked = new Set([...intro.matchAll(/^\|.*\]\(#([^)]+)\)\s*\|$/gm)].map((m) => m[1]));
  for (const heading of routerSections.keys()) {
    assert.ok(linked.has(slug(heading)), `docs/ROUTERS.md: the table at the top lacks "${heading}"`);
  }
  assert.equal(linked.size, routerSections.size, "one table row per section");
});

Deno.test("docs/ROUTERS.md: every snippet sets a 60 s active timeout in its platform's syntax", () => {
  for (const p of PLATFORMS) {
    const [heading, body] = platformSection(p);
    const snippet = snippetOf(body);
    for (const re of p.activeTimeout) assert.match(snippet, re, `${heading}: active timeout 60 s (${re})`);
    for (const { what, re } of p.also ?? []) assert.match(snippet, re, `${heading}: ${what}`);
    for (const { what, re } of p.never ?? []) assert.doesNotMatch(snippet, re, `${heading}: no ${what}`);
    assert.match(snippet, /192\.0\.2\.10/, `${heading}: exports to the example collector`);
  }
});

const codeOf = (name: string) =>
  codeBlocks(platformSection(PLATFORMS.find((p) => p.name === name)!)[1]).join("\n");

Deno.test("docs/ROUTERS.md: sampler values are ones the platforms accept", () => {
  // NX-OS: N a power of two (Nexus 5600/6000) and at most 8,192 (Nexus 7000); M 1–64.
  const nxos = [...codeOf("Cisco NX-OS").matchAll(/^\s*mode (\d+) out-of (\d+)$/gm)];
  assert.ok(nxos.length > 0, "NX-OS: a sampler");
  for (const [, m, n] of nxos) {
    const v = Number(n);
    assert.ok(v > 0 && (v & (v - 1)) === 0, `NX-OS: out-of ${n} is not a power of two`);
    assert.ok(v <= 8192, `NX-OS: out-of ${n} is above the Nexus 7000's 8,192`);
    assert.ok(Number(m) >= 1 && Number(m) <= 64, `NX-OS: mode ${m} out of 1–64`);
  }
  // IOS-XE: Catalyst 3650/9000 hardware samplers take 1 out of 2–1,024.
  for (
    const [, n] of codeOf("Cisco IOS-XE Flexible NetFlow").matchAll(
      /^\s*mode (?:random|deterministic) 1 out-of (\d+)$/gm,
    )
  ) {
    assert.ok(Number(n) >= 2 && Number(n) <= 1024, `IOS-XE: out-of ${n} outside 2–1,024`);
  }
  // Classic IOS: one-out-of 1–65,535.
  for (const [, n] of codeOf("Cisco classic IOS").matchAll(/^\s*mode random one-out-of (\d+)$/gm)) {
    assert.ok(Number(n) >= 1 && Number(n) <= 65535, `classic IOS: one-out-of ${n} outside 1–65,535`);
  }
  // EOS: milliseconds within the ranges Arista's schema gives.
  const eos = codeOf("Arista EOS");
  const ms = (re: RegExp) => Number(eos.match(re)?.[1]);
  assert.ok(ms(/record export on interval (\d+)$/m) >= 1000, "EOS: export interval ≥ 1,000 ms");
  const inactive = ms(/record export on inactive timeout (\d+)$/m);
  assert.ok(inactive >= 3000 && inactive <= 900000, "EOS: inactive timeout 3,000–900,000 ms");
  const template = ms(/template interval (\d+)$/m);
  assert.ok(template >= 5000 && template <= 3600000, "EOS: template interval 5,000–3,600,000 ms");
});

Deno.test("docs/ROUTERS.md: Junos binds the instance it defines, and every template and family is complete", () => {
  for (const name of ["Junos MX inline-jflow", "Junos SRX"]) {
    const code = codeOf(name);
    const instances = new Set([...code.matchAll(/sampling instance (\S+) /g)].map((m) => m[1]));
    const bound = [...code.matchAll(/^set chassis fpc \d+ sampling-instance (\S+)$/gm)].map((m) => m[1]);
    if (name === "Junos MX inline-jflow") {
      assert.ok(
        bound.length > 0 && bound.every((b) => instances.has(b)),
        `${name}: binds a defined instance`,
      );
    }
    const templates = [...code.matchAll(/version-ipfix template (\S+) (?:ipv4|ipv6)-template$/gm)].map((m) =>
      m[1]
    );
    assert.ok(templates.length > 0, `${name}: a template`);
    for (const t of templates) {
      for (
        const setting of [
          "flow-active-timeout 60",
          "template-refresh-rate seconds 60",
          "option-refresh-rate seconds 60",
        ]
      ) {
        assert.ok(code.includes(`template ${t} ${setting}\n`), `${name}: template ${t} sets ${setting}`);
      }
    }
    for (const [, t] of code.matchAll(/flow-server \S+ version-ipfix template (\S+)$/gm)) {
      assert.ok(templates.includes(t), `${name}: template ${t} is defined`);
    }
    // Every exported family has a collector port, inline-jflow and an interface sampling it.
    const families = new Set([...code.matchAll(/ family (inet6?) output flow-server /g)].map((m) => m[1]));
    for (const f of families) {
      assert.match(
        code,
        new RegExp(` family ${f} output flow-server \\S+ port \\d+$`, "m"),
        `${name}: ${f} port`,
      );
      assert.match(
        code,
        new RegExp(` family ${f} output inline-jflow source-address \\S+$`, "m"),
        `${name}: ${f} inline`,
      );
      assert.match(
        code,
        new RegExp(`^set interfaces \\S+ unit \\d+ family ${f} sampling input$`, "m"),
        `${name}: ${f} sampled`,
      );
    }
  }
});

// ---------------------------------------------------------------------------------------------------------
// Variables and subcommands
// ---------------------------------------------------------------------------------------------------------

const VARIABLES = new Set(ENV_VARS.map((v) => v.name));

Deno.test("every NETFLOW_* / OTEL_* variable in README.md, docs/ROUTERS.md and docs/BACKENDS.md exists", () => {
  let seen = 0;
  for (const doc of DOCS) {
    const text = read(doc);
    for (const [name] of text.matchAll(/\b(?:NETFLOW|OTEL)_[A-Z0-9_]*/g)) {
      seen++;
      if (name.endsWith("_")) {
        // A family such as `OTEL_EXPORTER_OTLP_*`.
        assert.ok([...VARIABLES].some((v) => v.startsWith(name)), `${doc}: no variable starts with ${name}`);
      } else {
        assert.ok(VARIABLES.has(name), `${doc}: ${name} is not a variable the code reads (src/config.ts)`);
      }
    }
  }
  assert.ok(seen > 50, `${seen} mentions`);
});

/** `netflow2traces <word>` where it is a command: an inline code span, or a line of a code block. */
function subcommandMentions(markdown: string): string[] {
  const names: string[] = [];
  const command = /^(?:\$ )?(?:[A-Z_][A-Z0-9_]*=\S*\s+)*netflow2traces\s+([a-z][a-z0-9-]*)/;
  for (const block of codeBlocks(markdown)) {
    for (const line of block.split("\n")) {
      const m = line.trim().match(command);
      if (m) names.push(m[1]);
    }
  }
  const prose = markdown.replace(/^```[^\n]*\n[\s\S]*?^```/gm, "");
  for (const [, span] of prose.matchAll(/`([^`\n]+)`/g)) {
    const m = span.trim().match(command);
    if (m) names.push(m[1]);
  }
  return names;
}

Deno.test("every `netflow2traces <subcommand>` in README.md, docs/ROUTERS.md and docs/BACKENDS.md exists", () => {
  const known = new Set<string>(Object.keys(SUBCOMMANDS));
  const mentioned = new Set<string>();
  for (const doc of DOCS) {
    for (const name of subcommandMentions(read(doc))) {
      mentioned.add(name);
      assert.ok(
        known.has(name),
        `${doc}: netflow2traces ${name} is not a subcommand (src/tools/subcommands.ts)`,
      );
    }
  }
  assert.ok(mentioned.has("send") && mentioned.has("healthcheck"), [...mentioned].join());
  // The extractor itself: prose is not a command, a code line is.
  assert.deepEqual(subcommandMentions("netflow2traces listens\n`netflow2traces send --count 1`\n"), ["send"]);
  assert.deepEqual(subcommandMentions("```sh\nX=1 netflow2traces check\n# netflow2traces is\n```\n"), [
    "check",
  ]);
});

Deno.test("links between README.md, docs/ROUTERS.md, docs/BACKENDS.md and demo/README.md point at existing headings", () => {
  const files = [...DOCS, "demo/README.md"];
  const anchors = new Map<string, Set<string>>();
  for (const f of files) {
    const headings = [...read(f).replace(/^```[^\n]*\n[\s\S]*?^```/gm, "").matchAll(/^#{1,6} (.+)$/gm)];
    anchors.set(f, new Set(headings.map((m) => slug(m[1]))));
  }
  let checked = 0;
  for (const f of files) {
    for (const [, target] of read(f).matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target)) continue; // https:, mailto:
      const [path, anchor] = target.split("#");
      const resolved = path === "" ? f : join(dirname(f), path).replace(/^\.\//, "");
      assert.ok(existsSync(join(ROOT, resolved)), `${f}: link to ${target}: ${resolved} does not exist`);
      if (anchor !== undefined && anchors.has(resolved)) {
        assert.ok(
          anchors.get(resolved)!.has(anchor),
          `${f}: link to ${target}: no such heading in ${resolved}`,
        );
        checked++;
      }
    }
  }
  assert.ok(checked >= 20, `${checked} anchors checked`);
});
