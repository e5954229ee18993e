/**
 * The fields file (NETFLOW_FIELDS_FILE, SPEC §5): extra or renamed information elements by PEN and ID with
 * a type, for v9 and IPFIX, emitted as `netflow.<name>` (like Telegraf's PEN files or goflow2's mapping).
 * Validated at start, into plain data the pipeline Workers hand to their decoders (`customFields`).
 *
 * @example
 * ```ts
 * parseFields("fields:\n  - { pen: 9, id: 12235, name: cisco_http_url, type: string }\n");
 * ```
 */
import { isObject, isUint } from "./netflow/untrusted.ts";
import { parseSettings, readSettings, refuseUnknownKeys } from "./settings_file.ts";
import { hasDataRole } from "./netflow/element_roles.ts";
import { type CustomField, ElementType } from "./netflow/elements.ts";
import { isSpecFlowKey } from "./traces/attributes.ts";

/** The file's `type` words (IPFIX abstract data types, RFC 7012 §3.1) and how values are read. */
const TYPES: Readonly<Record<string, ElementType>> = {
  unsigned: ElementType.Unsigned,
  signed: ElementType.Signed,
  float: ElementType.Float,
  boolean: ElementType.Boolean,
  string: ElementType.String,
  hex: ElementType.Octets,
  mac: ElementType.Mac,
  ipv4: ElementType.Ipv4,
  ipv6: ElementType.Ipv6,
  dateTimeSeconds: ElementType.DateSeconds,
  dateTimeMilliseconds: ElementType.DateMillis,
  dateTimeMicroseconds: ElementType.DateNtp,
  dateTimeNanoseconds: ElementType.DateNtp,
};

/** A file that cannot be used: the message names where and why, in one line. */
export class FieldsFileError extends Error {}

export function readFields(path: string): CustomField[] {
  return fieldList(readSettings(path, FieldsFileError));
}

/** Validates the file's text; throws {@link FieldsFileError}. */
export function parseFields(text: string): CustomField[] {
  return fieldList(parseSettings(text, FieldsFileError));
}

function fieldList(doc: unknown): CustomField[] {
  if (doc === null) return [];
  if (!isObject(doc) || Object.keys(doc).some((k) => k !== "fields")) {
    throw new FieldsFileError("must be a mapping with a `fields` list");
  }
  const list = doc.fields ?? [];
  if (!Array.isArray(list)) throw new FieldsFileError("`fields` must be a list");
  const byElement = new Map<number, number>(), byName = new Map<string, number>();
  return list.map((f, i): CustomField => {
    const at = `fields[${i}]`;
    if (!isObject(f)) throw new FieldsFileError(`${at}: must be a mapping with id, name and type`);
    refuseUnknownKeys(f, ["pen", "id", "name", "type"], at, FieldsFileError);
    const pen = f.pen ?? 0;
    if (!isUint(pen, 2 ** 32 - 1)) {
      throw new FieldsFileError(`${at}.pen: must be an integer from 0 to 4294967295`);
    }
    // IPFIX element ids are 15 bits (the 16th is the enterprise bit); v9 field types use all 16.
    const maxId = pen === 0 ? 65535 : 32767;
    if (!isUint(f.id, maxId)) throw new FieldsFileError(`${at}.id: must be an integer from 0 to ${maxId}`);
    if (
      typeof f.name !== "string" || !/^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$/.test(f.name) || f.name.length > 128
    ) {
      throw new FieldsFileError(
        `${at}.name: must be lower_snake_case words, dot-separated (e.g. cisco_http_url), at most 128 characters`,
      );
    }
    const type = typeof f.type === "string" ? TYPES[f.type] : undefined;
    if (type === undefined) {
      throw new FieldsFileError(
        `${at}.type: ${JSON.stringify(f.type)} is not one of ${Object.keys(TYPES).join(", ")}`,
      );
    }
    const key = `netflow.${f.name}`;
    if (isSpecFlowKey(key)) throw new FieldsFileError(`${at}.name: ${key} is a SPEC attribute`);
    if (pen === 0 && hasDataRole(f.id)) {
      throw new FieldsFileError(`${at}: IANA element ${f.id} fills a SPEC attribute and cannot be renamed`);
    }
    const element = pen * 65536 + f.id;
    const sameElement = byElement.get(element), sameName = byName.get(key);
    if (sameElement !== undefined) {
      throw new FieldsFileError(`${at}: pen ${pen} id ${f.id} is already defined by fields[${sameElement}]`);
    }
    if (sameName !== undefined) {
      throw new FieldsFileError(`${at}.name: ${f.name} is already used by fields[${sameName}]`);
    }
    byElement.set(element, i);
    byName.set(key, i);
    return { pen, id: f.id, key, type };
  });
}
