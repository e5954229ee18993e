/**
 * Reading the YAML (or JSON) files the configuration names (NETFLOW_ENRICH_FILE, NETFLOW_FIELDS_FILE), with
 * the one-line errors both give: each file's module validates what it reads and names its own error class.
 */
import { readFileSync } from "node:fs";
import { parse } from "yaml";

type ErrorClass = new (message: string) => Error;

/** The file's parsed document (null for an empty file); unreadable or not YAML/JSON throws `Err`. */
export function readSettings(path: string, Err: ErrorClass): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new Err(`cannot read the file (${(err as { code?: string }).code ?? (err as Error).message})`);
  }
  return parseSettings(text, Err);
}

/** A text's parsed document (duplicate keys refused); not YAML/JSON throws `Err` with the first line why. */
export function parseSettings(text: string, Err: ErrorClass): unknown {
  try {
    return parse(text, { uniqueKeys: true }) ?? null;
  } catch (err) {
    throw new Err(`not YAML or JSON: ${(err as Error).message.split("\n")[0]}`);
  }
}

/** Throws `Err` naming the first key of `o` that is not in `allowed`. */
export function refuseUnknownKeys(
  o: Record<string, unknown>,
  allowed: readonly string[],
  at: string,
  Err: ErrorClass,
): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new Err(`${at}: unknown key "${k}" (allowed: ${allowed.join(", ")})`);
  }
}
