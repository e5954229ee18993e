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
  /** The 60 s active timeout in the platform's syntax, searched in the section's code blocks and tables. */
  activeTimeout: RegExp[];
  /** Further things the snippet must contain. */
  also?: { what: string; re: RegExp }[];
  /** Things the section's text must say. */
  mentions?: RegExp[];
}

const PLATFORMS: Platform[] = [
  {
    name: "Cisco IOS-XE Flexible NetFlow",
    heading: /^Cisco IOS-XE \(Flexible NetFlow\)$/,
    vendor: /Cisco/,
    activeTimeout: [/^\s*cache timeout active 60$/m],
    also: [
      { what: "the sampler option table", re: /^\s*option sampler-table\b/m },
      { what: "FNF on the interface", re: /^\s*ip flow monitor \S+ sampler \S+ input$/m },
    ],
  },
  {
    name: "Cisco classic IOS",
    heading: /^Cisco classic IOS/,
    vendor: /Cisco/,
    // In minutes on classic IOS: 1 minute.
    activeTimeout: [/^ip flow-cache timeout active 1$/m],
    also: [
      { what: "ip flow-export", re: /^ip flow-export destination 192\.0\.2\.10 2055$/m },
      { what: "sampler options", re: /^ip flow-export template options sampler$/m },
    ],
  },
  {
    name: "Cisco NX-OS",
    heading: /^Cisco NX-OS$/,
    vendor: /Cisco/,
    activeTimeout: [/^flow timeout active 60$/m],
    also: [
      { what: "the sampler option table", re: /^\s*option sampler-table\b/m },
      { what: "a sampler", re: /^\s*mode 1 out-of \d+$/m },
    ],
  },
  {
    name: "Cisco IOS-XR",
    heading: /^Cisco IOS-XR$/,
    vendor: /Cisco/,
    activeTimeout: [/^\s*cache timeout active 60$/m],
    also: [
      { what: "the sampler option table", re: /^\s*options sampler-table\b/m },
      { what: "a sampler map", re: /^sampler-map \S+\n\s*random 1 out-of \d+$/m },
    ],
  },
  {
    name: "Junos MX inline-jflow",
    heading: /^Juniper Junos MX \(inline J-Flow\)$/,
    vendor: /Juniper/,
    activeTimeout: [/ flow-active-timeout 60$/m],
    also: [
      { what: "the line-card binding", re: /^set chassis fpc \d+ sampling-instance \S+$/m },
      { what: "sampling on an interface", re: /^set interfaces \S+ unit \d+ family inet sampling input$/m },
      { what: "inline-jflow", re: / output inline-jflow source-address \S+$/m },
    ],
  },
  {
    name: "Junos SRX",
    heading: /^Juniper Junos SRX$/,
    vendor: /Juniper/,
    activeTimeout: [/ flow-active-timeout 60$/m],
    also: [{
      what: "sampling on an interface",
      re: /^set interfaces \S+ unit \d+ family inet sampling input$/m,
    }],
  },
  {
    name: "Arista EOS",
    heading: /^Arista EOS \(IPFIX\)$/,
    vendor: /Arista/,
    // Milliseconds on EOS.
    activeTimeout: [/^\s*record export on interval 60000$/m],
    also: [{ what: "IPFIX", re: /^\s*format ipfix version 10$/m }],
  },
  {
    name: "MikroTik RouterOS",
    heading: /^MikroTik RouterOS/,
    vendor: /MikroTik/,
    activeTimeout: [/\bactive-flow-timeout=1m\b/],
  },
  {
    name: "pfSense (softflowd and pflow)",
    heading: /^pfSense$/,
    vendor: /Netgate/,
    activeTimeout: [/-t maxlife=60\b/],
    mentions: [/\*\*softflowd package\*\*/, /\*\*Native pflow\*\*/, /no active timeout/],
  },
  {
    name: "OPNsense",
    heading: /^OPNsense$/,
    vendor: /OPNsense/,
    activeTimeout: [/\bsettimeouts '\{ inactive=15 active=60 \}'/],
  },
  {
    name: "VyOS",
    heading: /^VyOS$/,
    vendor: /VyOS/,
    activeTimeout: [/^set system flow-accounting netflow timeout max-active-life 60$/m],
  },
  {
    name: "Linux softflowd",
    heading: /^Linux softflowd$/,
    vendor: /softflowd/,
    activeTimeout: [/-t maxlife=60\b/],
  },
  {
    name: "Linux ipt-netflow",
    heading: /^Linux ipt-netflow$/,
    vendor: /ipt-netflow/,
    activeTimeout: [/\bactive_timeout=60\b/],
  },
  {
    name: "Fortinet FortiGate",
    heading: /^Fortinet FortiGate/,
    vendor: /Fortinet/,
    // Seconds from FortiOS 7.2, minutes before: both forms are shown.
    activeTimeout: [/^\s*set active-flow-timeout 60$/m, /^\s*set active-flow-timeout 1$/m],
  },
];

const routerSections = sections(ROUTERS);

function platformSection(p: Platform): [string, string] {
  const found = [...routerSections].filter(([h]) => p.heading.test(h));
  assert.equal(found.length, 1, `docs/ROUTERS.md: one section for ${p.name} (${p.heading})`);
  return found[0];
}

Deno.test("docs/ROUTERS.md: a section for every platform, naming the platform and the documentation it follows", () => {
  for (const p of PLATFORMS) {
    const [heading, body] = platformSection(p);
    const follows = body.split("\n\n").map((para) => para.trim()).find((para) => para.startsWith("Follows:"));
    assert.ok(follows, `${heading}: a "Follows:" paragraph`);
    assert.match(follows, p.vendor, `${heading}: names ${p.vendor}'s documentation`);
    assert.match(follows, /<https:\/\/[^>\s]+>/, `${heading}: with the document's address`);
    assert.ok(codeBlocks(body).length >= 1 || /^\|/m.test(body), `${heading}: a snippet`);
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

Deno.test("docs/ROUTERS.md: every snippet sets a 60 s active timeout in its platform's syntax", () => {
  for (const p of PLATFORMS) {
    const [heading, body] = platformSection(p);
    // Code blocks, and the tables of GUI-configured platforms.
    const snippet = [...codeBlocks(body), ...body.split("\n").filter((l) => l.startsWith("|"))].join("\n");
    for (const re of p.activeTimeout) assert.match(snippet, re, `${heading}: active timeout 60 s (${re})`);
    for (const { what, re } of p.also ?? []) assert.match(snippet, re, `${heading}: ${what}`);
    assert.match(snippet, /192\.0\.2\.10/, `${heading}: exports to the example collector`);
  }
});

Deno.test("docs/ROUTERS.md: NX-OS sampler N is a power of two; Junos binds the instance it defines", () => {
  const [, nxos] = platformSection(PLATFORMS.find((p) => p.name === "Cisco NX-OS")!);
  for (const [, n] of codeBlocks(nxos).join("\n").matchAll(/^\s*mode 1 out-of (\d+)$/gm)) {
    const v = Number(n);
    assert.ok(v > 0 && (v & (v - 1)) === 0, `NX-OS: out-of ${n} is not a power of two`);
  }
  const [, mx] = platformSection(PLATFORMS.find((p) => p.name === "Junos MX inline-jflow")!);
  const code = codeBlocks(mx).join("\n");
  const instances = new Set([...code.matchAll(/sampling instance (\S+) /g)].map((m) => m[1]));
  const bound = [...code.matchAll(/^set chassis fpc \d+ sampling-instance (\S+)$/gm)].map((m) => m[1]);
  assert.ok(bound.length > 0 && bound.every((b) => instances.has(b)), "Junos MX: binds a defined instance");
  const templates = new Set(
    [...code.matchAll(/version-ipfix template (\S+) (?:ipv4|ipv6)-template$/gm)].map((m) => m[1]),
  );
  for (const [, t] of code.matchAll(/flow-server \S+ version-ipfix template (\S+)$/gm)) {
    assert.ok(templates.has(t), `Junos MX: template ${t} is defined`);
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
