/**
 * Walking a v9 (RFC 3954 §5) or IPFIX (RFC 7011 §3) message: the header, then its sets. Template sets are
 * read as they come; data sets are only listed, since their templates (and options data) may come later
 * in the same message. The versions differ in small ways, each described once in a {@link MessageFormat}.
 */
import type { DomainState, ExporterState } from "./exporter_state.ts";
import { IPFIX_LIMITS, PACKET_LIMITS, type SequenceLimits } from "./sequence.ts";
import {
  IPFIX_TEMPLATE_RECORDS,
  type TemplateRecordFormat,
  type TemplateSetReader,
  V9_TEMPLATE_RECORDS,
} from "./template_sets.ts";
import { allZero } from "./records.ts";
import { type ExportPacket, fail } from "./types.ts";

/** A 64 KiB datagram holds at most this many 4-byte set headers. */
const MAX_SETS_PER_PACKET = 16_384;

/** How one version differs. */
export interface MessageFormat {
  readonly headerLength: number;
  /**
   * Reads the header after the version into `packet` (the datagram holds at least `headerLength`
   * octets). Returns where the message's sets end, or −1 when it has none to read (the error says why).
   */
  readonly readHeader: (bytes: Uint8Array, view: DataView, packet: ExportPacket) => number;
  /** The source id (v9) or observation domain (IPFIX) the header named. */
  readonly domainId: (packet: ExportPacket) => number;
  readonly templates: TemplateRecordFormat;
  /** Sequence numbers count data records (IPFIX) or packets (v9). */
  readonly sequenceCountsRecords: boolean;
  readonly sequenceLimits: SequenceLimits;
}

export const V9_FORMAT: MessageFormat = {
  headerLength: 20,
  readHeader(bytes, view, packet) {
    packet.sysUptimeMs = view.getUint32(4);
    packet.exportTimeMs = view.getUint32(8) * 1000;
    packet.sequence = view.getUint32(12);
    packet.sourceId = view.getUint32(16);
    return bytes.length;
  },
  domainId: (packet) => packet.sourceId!,
  templates: V9_TEMPLATE_RECORDS,
  sequenceCountsRecords: false,
  sequenceLimits: PACKET_LIMITS,
};

export const IPFIX_FORMAT: MessageFormat = {
  headerLength: 16,
  readHeader(bytes, view, packet) {
    const length = view.getUint16(2);
    packet.exportTimeMs = view.getUint32(4) * 1000;
    packet.sequence = view.getUint32(8);
    packet.observationDomainId = view.getUint32(12);
    if (length < 16) {
      fail(packet, "bad_length", `IPFIX message length ${length} is shorter than its header`);
      return -1;
    }
    if (length > bytes.length) {
      fail(packet, "truncated", `IPFIX message length ${length}, datagram has ${bytes.length} bytes`);
      return bytes.length;
    }
    return length;
  },
  domainId: (packet) => packet.observationDomainId!,
  templates: IPFIX_TEMPLATE_RECORDS,
  sequenceCountsRecords: true,
  sequenceLimits: IPFIX_LIMITS,
};

/** The message header: returns where the sets end, or −1 when there is nothing to read (error set). */
export function readMessageHeader(
  format: MessageFormat,
  bytes: Uint8Array,
  view: DataView,
  packet: ExportPacket,
): number {
  if (bytes.length < format.headerLength) {
    fail(
      packet,
      "truncated",
      `v${packet.version} header needs ${format.headerLength} bytes, datagram has ${bytes.length}`,
    );
    return -1;
  }
  return format.readHeader(bytes, view, packet);
}

/** The data sets of the current message: (set id, body start, set end) each, in message order. */
export class DataSetList {
  readonly #sets = new Int32Array(3 * MAX_SETS_PER_PACKET);
  count = 0;

  add(setId: number, start: number, end: number): void {
    if (this.count >= MAX_SETS_PER_PACKET) return;
    const at = 3 * this.count++;
    this.#sets[at] = setId;
    this.#sets[at + 1] = start;
    this.#sets[at + 2] = end;
  }

  setId(i: number): number {
    return this.#sets[3 * i];
  }

  start(i: number): number {
    return this.#sets[3 * i + 1];
  }

  end(i: number): number {
    return this.#sets[3 * i + 2];
  }
}

/**
 * Walks the sets from the header to `end`: template sets go to `templateSets` now, data sets into
 * `dataSets` (emptied first). Reserved set ids (RFC 3954 §5, RFC 7011 §3.3.2) are skipped. Returns true
 * when some template was (re)defined.
 */
export function walkSets(
  format: MessageFormat,
  bytes: Uint8Array,
  view: DataView,
  end: number,
  packet: ExportPacket,
  exporter: ExporterState,
  domain: DomainState,
  templateSets: TemplateSetReader,
  dataSets: DataSetList,
): boolean {
  const templates = format.templates;
  let templatesArrived = false;
  dataSets.count = 0;
  let off = format.headerLength;
  while (off < end) {
    if (end - off < 4) {
      if (!allZero(bytes, off, end)) fail(packet, "bad_set", `${end - off} stray bytes after the last set`);
      break;
    }
    const setId = view.getUint16(off);
    const setLength = view.getUint16(off + 2);
    if (setLength < 4) {
      fail(packet, "bad_set", `set ${setId} has length ${setLength}`);
      break;
    }
    let setEnd = off + setLength;
    if (setEnd > end) {
      fail(packet, "truncated", `set ${setId} of ${setLength} bytes runs ${setEnd - end} bytes past the end`);
      setEnd = end;
    }
    if (setId >= 256) dataSets.add(setId, off + 4, setEnd);
    else if (setId === templates.templateSetId || setId === templates.optionsTemplateSetId) {
      if (templateSets.read(templates, bytes, view, off + 4, setEnd, setId, packet, exporter, domain)) {
        templatesArrived = true;
      }
    }
    off = setEnd;
  }
  return templatesArrived;
}
