/**
 * `.env` files: parsed into a plain record, never written into `process.env`, so the caller decides the
 * precedence (ours: flags > environment > `.env`; Deno's `process.loadEnvFile` would let the file win).
 *
 * Format, one assignment per line:
 * ```
 * # comment
 * NETFLOW_LISTEN_PORT=2055            # inline comment after an unquoted value (needs a space before #)
 * export OTEL_SERVICE_NAME=edge-collector
 * OTEL_EXPORTER_OTLP_HEADERS="Authorization=Basic%20abc"
 * GREETING='literal $text, no escapes'
 * MULTI="first\nsecond"               # \n \r \t \" \\ are escapes inside double quotes
 * ```
 * Quoted values may span lines. There is no `${VAR}` expansion.
 */
import { readFileSync } from "node:fs";

/** A `.env` file that cannot be read or parsed; the message names the line. */
export class EnvFileError extends Error {
  override name = "EnvFileError";
}

const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
const ESCAPES: Record<string, string> = { n: "\n", r: "\r", t: "\t", '"': '"', "\\": "\\", $: "$" };

/** Parses `.env` text. Throws EnvFileError (with the line number) on a line that is not `KEY=VALUE`. */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const src = text.replace(/^\uFEFF/, "").replace(/\r\n?/g, "\n");
  const lineAt = (pos: number) => src.slice(0, pos).split("\n").length;
  let pos = 0;
  while (pos < src.length) {
    let eol = src.indexOf("\n", pos);
    if (eol === -1) eol = src.length;
    const line = src.slice(pos, eol);
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) {
      pos = eol + 1;
      continue;
    }
    const lineNo = lineAt(pos);
    const eq = line.indexOf("=");
    if (eq === -1) throw new EnvFileError(`line ${lineNo}: expected KEY=VALUE`);
    let key = line.slice(0, eq).trim();
    if (key.startsWith("export ") || key.startsWith("export\t")) key = key.slice(7).trim();
    if (!KEY.test(key)) throw new EnvFileError(`line ${lineNo}: invalid variable name "${key}"`);

    // Offset of the value's first non-blank character in `src`.
    let v = pos + eq + 1;
    while (v < eol && (src[v] === " " || src[v] === "\t")) v++;
    const quote = src[v];
    if (quote === '"' || quote === "'") {
      let value = "";
      let i = v + 1;
      for (; i < src.length && src[i] !== quote; i++) {
        if (quote === '"' && src[i] === "\\" && i + 1 < src.length) {
          const next = src[++i];
          value += ESCAPES[next] ?? "\\" + next;
        } else {
          value += src[i];
        }
      }
      if (i >= src.length) throw new EnvFileError(`line ${lineNo}: unterminated ${quote} quote`);
      let end = src.indexOf("\n", i);
      if (end === -1) end = src.length;
      const rest = src.slice(i + 1, end).trim();
      if (rest !== "" && !rest.startsWith("#")) {
        throw new EnvFileError(`line ${lineNo}: unexpected text after the closing quote`);
      }
      out[key] = value;
      pos = end + 1;
    } else {
      // From just after "=", so `KEY= # note` is empty while `KEY=#tag` keeps its "#".
      let value = src.slice(pos + eq + 1, eol);
      const comment = value.search(/[ \t]#/);
      if (comment !== -1) value = value.slice(0, comment);
      out[key] = value.trim();
      pos = eol + 1;
    }
  }
  return out;
}

/**
 * Reads and parses a `.env` file. A missing file gives `{}` unless `required`; any other read problem
 * (a directory, no permission) or a syntax error throws EnvFileError with the path in the message.
 */
export function loadEnvFile(path: string, options: { required?: boolean } = {}): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "ENOENT" && !options.required) return {};
    const why = code === "ENOENT"
      ? "no such file"
      : code === "EISDIR"
      ? "is a directory"
      : (err as Error).message;
    throw new EnvFileError(`cannot read env file "${path}": ${why}`);
  }
  try {
    return parseEnvFile(text);
  } catch (err) {
    throw new EnvFileError(`env file "${path}" ${(err as Error).message}`);
  }
}
