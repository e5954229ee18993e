/**
 * v9/IPFIX templates compiled into decoding plans (run by records.ts).
 *
 * A template is compiled once, when it arrives: every field gets a handler code (which Flow field or
 * which attribute it fills: element_roles.ts, elements.ts), its length and its attribute key, so decoding
 * a record needs no table or map lookups.
 */
import { alsoAttribute, dataRole, Kind, NEVER_ATTRIBUTE, optionRole, v9ScopeRole } from "./element_roles.ts";
import { type CustomField, elementInfo, ElementType, REVERSE_PEN, vendorElementInfo } from "./elements.ts";
import { isInt } from "./values.ts";
import { VARIABLE_LENGTH } from "./variable_length.ts";

/** A template as it arrived: enough to recompile it (persistence) and to tell redefinitions apart. */
export interface TemplateSpec {
  /** 9 or 10. */
  version: number;
  templateId: number;
  /** True for options templates. */
  options: boolean;
  /** Number of leading scope fields (options templates; 0 otherwise). */
  scopeCount: number;
  /**
   * Two words per field: element id (enterprise bit cleared for IPFIX) << 16 | length, then the PEN (0 =
   * IANA / v9). One typed array: 8 bytes a field, held as long as the exporter keeps the template.
   */
  fields: Uint32Array;
}

/** Field `i` of a spec: element id, length, PEN. */
export const specId = (s: TemplateSpec, i: number): number => s.fields[2 * i] >>> 16;
export const specLength = (s: TemplateSpec, i: number): number => s.fields[2 * i] & 0xffff;
export const specPen = (s: TemplateSpec, i: number): number => s.fields[2 * i + 1];

/**
 * A compiled template. Fields are packed into one typed array (plus their keys) rather than held as one
 * object each: about 8× less heap per field, which is what a hostile wide template pins.
 * Fixed-length fields of length 0 carry nothing and are left out, so every decoded field consumes at
 * least one byte of the record (a variable-length field its length byte): decoding a set costs O(its
 * bytes), however many fields the template has.
 */
export interface Plan {
  spec: TemplateSpec;
  /** Per decoded field: handler ({@link Kind}) << 16 | octets (or {@link VARIABLE_LENGTH}, IPFIX). */
  code: Int32Array;
  /** Attribute key per decoded field, for `extra` (empty when the field fills a Flow field). */
  keys: string[];
  /** Smallest possible record: fixed lengths + 1 octet per variable-length field. Always ≥ 1. */
  minLength: number;
  /** True when some field has variable length. */
  variable: boolean;
  /** True when some field fills `RecordScratch.times` (records.ts). */
  hasTimes: boolean;
  /** True when records carry a sampler/selector id (48/302) to match options data against. */
  hasSamplerId: boolean;
  /** True when some field fills `RecordScratch.icmp` (records.ts). */
  hasIcmp: boolean;
  /** Bytes this template is charged against the template byte budgets ({@link templateCost}). */
  cost: number;
}

/**
 * What a cached template is charged against the byte budgets, fixed once at compile time: its wire size,
 * plus a constant per field and per template for the heap of the spec and the compiled plan. Measured
 * with `--expose-gc` (heap + external after GC, 2,000 templates of 20 fields and 200 of 500, all kinds of
 * elements; test/hardening_bytes.test.ts prints the figure): 20–23 bytes per field (8 spec, 4 plan, 8 key
 * pointer) and about 750 bytes per template (objects, typed-array headers, map and index entries). The
 * charge exceeds the measured heap by 15% (20 fields) to 35% (500 fields).
 */
export const TEMPLATE_FIELD_COST = 24;
export const TEMPLATE_BASE_COST = 768;

export function templateCost(spec: TemplateSpec): number {
  let wire = spec.options ? 6 : 4;
  const n = spec.fields.length / 2;
  for (let i = 0; i < n; i++) wire += specPen(spec, i) !== 0 ? 8 : 4;
  return TEMPLATE_BASE_COST + wire + n * TEMPLATE_FIELD_COST;
}

export interface CompileOptions {
  /** Emit unknown elements as `netflow.field.*` hex. */
  unknownFields: boolean;
  /** The fields file's elements by pen × 65536 + id: they win over the built-in names. */
  custom?: ReadonlyMap<number, CustomField>;
}

/** True when two specs describe the same template (a re-sent template needs no recompilation). */
export function sameSpec(a: TemplateSpec, b: TemplateSpec): boolean {
  const x = a.fields, y = b.fields, n = x.length;
  if (a.version !== b.version || a.options !== b.options || a.scopeCount !== b.scopeCount || n !== y.length) {
    return false;
  }
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** Compiles a template into a plan, or returns an error message (bad template). */
export function compilePlan(spec: TemplateSpec, options: CompileOptions): Plan | string {
  const n = spec.fields.length / 2;
  if (n === 0) return `template ${spec.templateId} has no fields`;
  const ipfix = spec.version === 10;
  const present = new Set<number>();
  let decoded = 0;
  for (let i = 0; i < n; i++) {
    if (specLength(spec, i) === 0) continue;
    decoded++;
    if (specPen(spec, i) === 0) present.add(specId(spec, i));
  }
  const code = new Int32Array(decoded);
  const keys: string[] = new Array(decoded);
  let minLength = 0, variable = false, hasTimes = false, hasSamplerId = false, hasIcmp = false;
  let j = 0;
  for (let i = 0; i < n; i++) {
    const id = specId(spec, i), len = specLength(spec, i), pen = specPen(spec, i);
    if (len === 0) continue; // e.g. empty structured data (IEs 291–293): nothing to read, no attribute
    const isVariable = ipfix && len === VARIABLE_LENGTH;
    if (isVariable) {
      variable = true;
      minLength += 1;
    } else {
      minLength += len;
    }
    let kind: Kind, key = "";
    if (spec.options) {
      // v9 scope fields are scope *types* (system, interface, …), not information elements.
      const scopeV9 = !ipfix && i < spec.scopeCount;
      kind = scopeV9 ? v9ScopeRole(id, len) : pen !== 0 ? Kind.Skip : optionRole(id, len);
    } else {
      kind = dataField(id, len, pen, present, options);
      key = compiledKey;
    }
    if (kind >= Kind.StartSec && kind <= Kind.EventMs) hasTimes = true;
    if (kind === Kind.SamplerId) hasSamplerId = true;
    if (kind >= Kind.IcmpTypeCodeV4 && kind <= Kind.IcmpCodeV6) hasIcmp = true;
    code[j] = (kind << 16) | len;
    keys[j] = key;
    j++;
  }
  if (minLength === 0) return `template ${spec.templateId} describes zero-length records`;
  return {
    spec,
    code,
    keys,
    minLength,
    variable,
    hasTimes,
    hasSamplerId,
    hasIcmp,
    cost: templateCost(spec),
  };
}

/** The attribute key of the field {@link dataField} compiled last ("" when it fills a Flow field). */
let compiledKey = "";

/**
 * Keys built per field (unknown and reverse elements) are interned, so a thousand templates naming the
 * same element share one string. Bounded: past the limit keys are built fresh (and charged per field).
 */
const KEY_CACHE = new Map<string, string>();
const KEY_CACHE_LIMIT = 16_384;

function internKey(key: string): string {
  const known = KEY_CACHE.get(key);
  if (known !== undefined) return known;
  if (KEY_CACHE.size < KEY_CACHE_LIMIT) KEY_CACHE.set(key, key);
  return key;
}

/** RFC 5103 reverse elements (PEN 29305) that are biflow counters: delta counts first, totals where no delta. */
const REVERSE_COUNTERS: Readonly<Record<number, Kind>> = {
  1: Kind.RevBytes,
  2: Kind.RevPackets,
  85: Kind.RevBytesFallback,
  86: Kind.RevPacketsFallback,
};

/** The handler of one data-template field; its attribute key is left in {@link compiledKey}. */
function dataField(
  id: number,
  len: number,
  pen: number,
  present: Set<number>,
  options: CompileOptions,
): Kind {
  compiledKey = "";
  const custom = options.custom?.get(pen * 65536 + id);
  if (custom !== undefined) {
    compiledKey = custom.key;
    return extraKind(custom.type, len);
  }
  if (pen !== 0) {
    const info = pen === REVERSE_PEN ? elementInfo(id) : undefined;
    // RFC 5103 §6.1: the reverse counters of a biflow fill `netflow.flow.reverse.*` (SPEC §3).
    if (info && isInt(len) && REVERSE_COUNTERS[id] !== undefined) return REVERSE_COUNTERS[id];
    if (info) {
      compiledKey = internKey("netflow.reverse." + info.snake);
      return extraKind(info.type, len);
    }
    const vendor = vendorElementInfo(pen, id);
    if (vendor) {
      compiledKey = vendor.key;
      return extraKind(vendor.type, len);
    }
    if (!options.unknownFields) return Kind.Skip;
    compiledKey = internKey(`netflow.field.${pen}.${id}`);
    return Kind.XHex;
  }
  const info = elementInfo(id);
  if (!info) {
    if (!options.unknownFields) return Kind.Skip;
    compiledKey = internKey(`netflow.field.${id}`);
    return Kind.XHex;
  }
  const role = dataRole(id, len, present); // variable-length fields never fill Flow fields
  if (role === NEVER_ATTRIBUTE) return Kind.Skip;
  if (role !== Kind.Skip && !alsoAttribute(role)) return role;
  compiledKey = info.key;
  return role !== Kind.Skip ? role : extraKind(info.type, len);
}

function extraKind(type: ElementType, len: number): Kind {
  switch (type) {
    case ElementType.Unsigned:
      return isInt(len) || len === VARIABLE_LENGTH ? Kind.XUint : Kind.XHex;
    case ElementType.Signed:
      return isInt(len) || len === VARIABLE_LENGTH ? Kind.XInt : Kind.XHex;
    case ElementType.Float:
      return Kind.XFloat;
    case ElementType.Boolean:
      return Kind.XBool;
    case ElementType.Mac:
      return Kind.XMac;
    case ElementType.String:
      return Kind.XString;
    case ElementType.Ipv4:
      return Kind.XV4;
    case ElementType.Ipv6:
      return Kind.XV6;
    case ElementType.DateSeconds:
      return Kind.XDateS;
    case ElementType.DateMillis:
      return Kind.XDateMs;
    case ElementType.DateNtp:
      return Kind.XDateNtp;
    default:
      return Kind.XHex;
  }
}
