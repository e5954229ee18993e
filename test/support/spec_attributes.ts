/**
 * Attribute names from the documentation (SPEC.md §3, README "What you see in the backend"), for tests that
 * hold dashboards, collector configs and the code to the documented contract.
 *
 * ```ts
 * import { readFileSync } from "node:fs";
 * const patterns = specAttributePatterns(readFileSync("README.md", "utf8"));
 * patterns.some((re) => re.test("destination.port")); // true
 * ```
 */
import { knownElements } from "../../src/netflow/elements.ts";

/** Span names: backticked in the same sections, but not attributes. */
const SPAN_NAMES = new Set(["netflow.export", "netflow.process_flows", "netflow.flow"]);
const NAME = /^[a-z][a-z0-9_]*(\.[a-z0-9_<>]+(?: [a-z0-9_]+)*>?)+$/i;

/** The text of the attribute section: SPEC "## 3. Attributes", README "## What you see in the backend". */
export function attributeSection(markdown: string): string {
  const start = markdown.search(/^## .*(Attributes|What you see in the backend)/m);
  if (start < 0) throw new Error("no attribute section (## …Attributes / ## What you see in the backend)");
  const rest = markdown.slice(start + 3);
  const end = rest.search(/^## /m);
  return end < 0 ? rest : rest.slice(0, end);
}

/** Backticked attribute names in `text` (placeholders such as `netflow.field.<id>` kept as they are). */
export function backtickedNames(text: string): string[] {
  const out: string[] = [];
  for (const [, token] of text.matchAll(/`([^`\n]+)`/g)) {
    const name = token.split(/\s*=\s*/)[0].trim();
    if (NAME.test(name) && !SPAN_NAMES.has(name)) out.push(name);
  }
  return [...new Set(out)];
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A documented name as a pattern: placeholders match what the code can put there. */
export function namePattern(name: string): RegExp {
  if (/^netflow\.<[^>]*IANA[^>]*>$/i.test(name)) {
    const keys = knownElements().map((e) => escape(e.key)).join("|");
    return new RegExp(`^(?:${keys})$`);
  }
  const source = name.split(/(<[^>]+>)/).map((part) => (part.startsWith("<") ? "[0-9]+" : escape(part))).join(
    "",
  );
  return new RegExp(`^${source}$`);
}

/** Patterns of every attribute name in the document's attribute section. */
export function specAttributePatterns(markdown: string): RegExp[] {
  return backtickedNames(attributeSection(markdown)).map(namePattern);
}

/**
 * First-column names of the `netflow.flow` attribute table (SPEC "### `netflow.flow`", README
 * "### `netflow.flow` attributes"), and any further backticked names in that column.
 */
export function flowTableNames(markdown: string): string[] {
  const start = markdown.search(/^### `netflow\.flow`/m);
  if (start < 0) throw new Error("no ### `netflow.flow` section");
  const rest = markdown.slice(start + 4);
  const section = rest.slice(0, rest.search(/^#{2,3} /m));
  const names: string[] = [];
  for (const line of section.split("\n")) {
    const cells = line.split("|").map((c) => c.trim());
    if (!line.startsWith("|") || cells.length < 3 || /^-+$/.test(cells[1]) || cells[1] === "attribute") {
      continue;
    }
    const first = backtickedNames(cells[1]);
    names.push(...first);
    // "`netflow.tcp_flags` as a number; `netflow.tcp_flags.names` as …" (SPEC): a name in the second column
    // that extends a first-column name of its row belongs to the table too.
    for (const n of backtickedNames(cells[2])) if (first.some((f) => n.startsWith(f + "."))) names.push(n);
  }
  return [...new Set(names)];
}
