/**
 * Template and options template sets (RFC 3954 §5.2–5.3, RFC 7011 §3.4): record headers, field
 * specifiers, IPFIX withdrawals, handed to the template cache. The v9/IPFIX differences are one
 * {@link TemplateRecordFormat} each, so the set loop is written once.
 */
import type { TemplateDecoderStats } from "./decoder_stats.ts";
import type { DomainState, ExporterState } from "./exporter_state.ts";
import type { TemplateCache } from "./template_cache.ts";
import { allZero } from "./records.ts";
import type { TemplateSpec } from "./templates.ts";
import { type DecodeError, type ExportPacket, fail } from "./types.ts";

/** What a record header says: {@link TemplateRecordFormat.readHeader}'s result. */
export enum HeaderKind {
  /** A template definition: `fieldCount` specifiers at `fieldsAt`. */
  Definition,
  /** Padding: the set ends here, without an error. */
  Padding,
  /** Malformed: the packet's error says why; the set ends here. */
  Malformed,
  /** IPFIX withdrawal (zero fields): the next record is at `fieldsAt`. */
  Withdrawal,
}

/** The template record header just read (one per reader, reused). */
export class TemplateRecordHeader {
  templateId = 0;
  fieldCount = 0;
  scopeCount = 0;
  /** Offset of the first field specifier (or of the next record, after a withdrawal). */
  fieldsAt = 0;
}

/** How one version lays out template sets. */
export interface TemplateRecordFormat {
  readonly templateSetId: number;
  readonly optionsTemplateSetId: number;
  /** IPFIX: a field id with the top bit set is followed by a 4-octet PEN (RFC 7011 §3.2). */
  readonly enterpriseBit: boolean;
  /**
   * Reads the record header at `off` (at least 4 octets before `end`). `defined`: a template was defined
   * earlier in the set, so a zero field count is padding.
   */
  readonly readHeader: (
    view: DataView,
    off: number,
    end: number,
    options: boolean,
    defined: boolean,
    packet: ExportPacket,
    head: TemplateRecordHeader,
  ) => HeaderKind;
}

// Padding (RFC 7011 §3.3.1, RFC 3954 §5): zero octets, or a tail too short for a record header, ends the
// set. So does a zero field count after a definition in the same set: `01 00 00 00` there is padding, not
// a withdrawal of template 256. Exporters do not follow definitions with withdrawals in one set, and over
// UDP (RFC 7011 §8.4) they are not meant to send withdrawals at all; a set that starts with withdrawals
// is still honoured (SPEC §1).

/** Template id and field count, the header of every record but a v9 options template's. */
function readCountHeader(
  view: DataView,
  off: number,
  defined: boolean,
  head: TemplateRecordHeader,
): HeaderKind {
  head.templateId = view.getUint16(off);
  head.fieldCount = view.getUint16(off + 2);
  head.scopeCount = 0;
  head.fieldsAt = off + 4;
  return head.fieldCount === 0 && defined ? HeaderKind.Padding : HeaderKind.Definition;
}

/** v9: an options template gives its scope and option lengths in octets (4 per field). */
export const V9_TEMPLATE_RECORDS: TemplateRecordFormat = {
  templateSetId: 0,
  optionsTemplateSetId: 1,
  enterpriseBit: false,
  readHeader(view, off, end, options, defined, packet, head) {
    if (!options) return readCountHeader(view, off, defined, head);
    head.templateId = view.getUint16(off);
    if (end - off < 6) return HeaderKind.Padding; // too short for a v9 options template header
    const scopeLength = view.getUint16(off + 2), optionLength = view.getUint16(off + 4);
    if (scopeLength % 4 !== 0 || optionLength % 4 !== 0) {
      fail(
        packet,
        "bad_template",
        `options template ${head.templateId}: scope/option lengths ${scopeLength}/${optionLength}`,
      );
      return HeaderKind.Malformed;
    }
    head.scopeCount = scopeLength / 4;
    head.fieldCount = head.scopeCount + optionLength / 4;
    head.fieldsAt = off + 6;
    return head.fieldCount === 0 && defined ? HeaderKind.Padding : HeaderKind.Definition;
  },
};

/** IPFIX: zero fields is a withdrawal; an options template adds a scope field count. */
export const IPFIX_TEMPLATE_RECORDS: TemplateRecordFormat = {
  templateSetId: 2,
  optionsTemplateSetId: 3,
  enterpriseBit: true,
  readHeader(view, off, end, options, defined, packet, head) {
    const kind = readCountHeader(view, off, defined, head);
    if (kind !== HeaderKind.Definition) return kind;
    if (head.fieldCount === 0) return HeaderKind.Withdrawal;
    if (!options) return HeaderKind.Definition;
    const p = head.fieldsAt;
    if (end - p < 2) {
      if (defined) return HeaderKind.Padding; // too short for an options template header
      fail(packet, "bad_template", `options template ${head.templateId}: truncated header`);
      return HeaderKind.Malformed;
    }
    const scopeCount = view.getUint16(p);
    head.fieldsAt = p + 2;
    if (scopeCount === 0 || scopeCount > head.fieldCount) {
      fail(
        packet,
        "bad_template",
        `options template ${head.templateId}: scope field count ${scopeCount} of ${head.fieldCount}`,
      );
      return HeaderKind.Malformed;
    }
    head.scopeCount = scopeCount;
    return HeaderKind.Definition;
  },
};

export class TemplateSetReader {
  readonly #cache: TemplateCache;
  readonly #stats: TemplateDecoderStats;
  readonly #maxFields: number;
  readonly #head = new TemplateRecordHeader();
  /** Whether the last {@link #definition} installed its template. */
  #installed = false;

  constructor(cache: TemplateCache, stats: TemplateDecoderStats, maxFieldsPerTemplate: number) {
    this.#cache = cache;
    this.#stats = stats;
    this.#maxFields = maxFieldsPerTemplate;
  }

  /** Reads one template or options template set body. Returns true when some template was (re)defined. */
  read(
    format: TemplateRecordFormat,
    bytes: Uint8Array,
    view: DataView,
    off: number,
    end: number,
    setId: number,
    packet: ExportPacket,
    exporter: ExporterState,
    domain: DomainState,
  ): boolean {
    const options = setId === format.optionsTemplateSetId;
    const head = this.#head;
    let defined = false;
    while (end - off >= 4) {
      if (allZero(bytes, off, end)) break; // O(1) per record: a record starts with a non-zero id or count
      const kind = format.readHeader(view, off, end, options, defined, packet, head);
      if (kind === HeaderKind.Padding || kind === HeaderKind.Malformed) break;
      if (kind === HeaderKind.Withdrawal) {
        if (!this.#withdrawal(setId, options, packet, exporter, domain)) break;
        off = head.fieldsAt;
        continue;
      }
      const next = this.#definition(format, view, end, options, packet, exporter, domain);
      if (next < 0) break;
      if (this.#installed) defined = true;
      off = next;
    }
    return defined;
  }

  /** An IPFIX withdrawal (RFC 7011 §8.1): template id = set id withdraws all of that kind. */
  #withdrawal(
    setId: number,
    options: boolean,
    packet: ExportPacket,
    exporter: ExporterState,
    domain: DomainState,
  ): boolean {
    const templateId = this.#head.templateId;
    packet.templateCount!++;
    this.#stats.templatesReceived++;
    if (templateId === setId) this.#cache.withdrawAll(exporter, domain, options);
    else if (templateId >= 256) this.#cache.withdraw(exporter, domain, templateId);
    else {
      fail(packet, "bad_template", `withdrawal of reserved template id ${templateId}`);
      return false;
    }
    return true;
  }

  /**
   * The definition whose header was just read. Returns the offset after it (a refused template too: the
   * set goes on), or −1 when the set ends here (error). Leaves in {@link #installed} whether it was.
   */
  #definition(
    format: TemplateRecordFormat,
    view: DataView,
    end: number,
    options: boolean,
    packet: ExportPacket,
    exporter: ExporterState,
    domain: DomainState,
  ): number {
    const { templateId, fieldCount, scopeCount } = this.#head;
    let p = this.#head.fieldsAt;
    this.#installed = false;
    if (fieldCount === 0) {
      fail(packet, "bad_template", `template ${templateId} has zero fields`);
      return -1;
    }
    if (templateId < 256) {
      fail(packet, "bad_template", `template id ${templateId} is reserved`);
      return -1;
    }
    if (fieldCount * 4 > end - p) return overflow(packet, templateId, fieldCount);
    if (fieldCount > this.#maxFields) {
      // Refused before anything is kept; the record is skipped so the rest of the set still counts.
      p = skipFieldSpecs(view, p, end, fieldCount, format.enterpriseBit);
      if (p < 0) return overflow(packet, templateId, fieldCount);
      packet.templateCount!++;
      this.#stats.templatesReceived++;
      const message = `template ${templateId} has ${fieldCount} fields (limit ${this.#maxFields})`;
      refused(packet, this.#cache.refuse(exporter, domain, templateId, message));
      return p;
    }
    const fields = new Uint32Array(2 * fieldCount);
    p = readFieldSpecs(view, p, end, fieldCount, format.enterpriseBit, fields);
    if (p < 0) return overflow(packet, templateId, fieldCount);
    packet.templateCount!++;
    this.#stats.templatesReceived++;
    const spec: TemplateSpec = { version: packet.version, templateId, options, scopeCount, fields };
    const error = this.#cache.install(exporter, domain, spec);
    if (error === undefined) {
      this.#installed = true;
      return p;
    }
    if (error.kind !== "template_refused") {
      fail(packet, error.kind, error.message);
      return -1;
    }
    refused(packet, error);
    return p;
  }
}

/** A definition whose field specifiers run past its set: the set ends here (−1). */
function overflow(packet: ExportPacket, templateId: number, fieldCount: number): number {
  fail(packet, "bad_template", `template ${templateId}: ${fieldCount} fields overflow the set`);
  return -1;
}

/** A refused template, as the packet shows it: counted, and a `template_refused` error saying why. */
function refused(packet: ExportPacket, error: DecodeError): void {
  packet.templatesRefused = (packet.templatesRefused ?? 0) + 1;
  fail(packet, error.kind, error.message);
}

/**
 * Reads `count` field specifiers from `p` into `fields` (two words each, see `TemplateSpec`). Returns the
 * offset after them, or −1 when they run past `end`.
 */
function readFieldSpecs(
  view: DataView,
  p: number,
  end: number,
  count: number,
  enterpriseBit: boolean,
  fields: Uint32Array,
): number {
  const idMask = enterpriseBit ? 0x7fff : 0xffff;
  for (let i = 0; i < count; i++) {
    if (end - p < 4) return -1;
    const id = view.getUint16(p);
    fields[2 * i] = ((id & idMask) << 16 | view.getUint16(p + 2)) >>> 0;
    p += 4;
    if (enterpriseBit && (id & 0x8000) !== 0) {
      if (end - p < 4) return -1;
      fields[2 * i + 1] = view.getUint32(p);
      p += 4;
    }
  }
  return p;
}

/**
 * The offset after `count` field specifiers from `p` (8 octets when the enterprise bit is set), or −1
 * when they run past `end`. Lets a refused template be stepped over without keeping anything.
 */
function skipFieldSpecs(
  view: DataView,
  p: number,
  end: number,
  count: number,
  enterpriseBit: boolean,
): number {
  for (let i = 0; i < count; i++) {
    if (end - p < 4) return -1;
    const enterprise = enterpriseBit && (view.getUint8(p) & 0x80) !== 0;
    p += enterprise ? 8 : 4;
    if (p > end) return -1;
  }
  return p;
}
