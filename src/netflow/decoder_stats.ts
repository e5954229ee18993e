/**
 * The decoder's counters, a plain object updated in place, so the application can read (or copy) them
 * at any time, and show zeros before a decoder exists ({@link zeroDecoderStats}, e.g. on the socket
 * thread when decoding runs in a worker).
 */
import { SEQ_REORDER, SEQ_RESTART } from "./sequence.ts";
import type { ExportPacket } from "./types.ts";

/** Counters, updated in place; cheap to read at any time. */
export interface TemplateDecoderStats {
  /** Exporters with state now. */
  exporters: number;
  /** Templates and options templates cached now. */
  templates: number;
  /** Template and options template records received (including re-sent ones). */
  templatesReceived: number;
  /** Templates removed by IPFIX withdrawals. */
  templatesWithdrawn: number;
  /** Templates evicted by the per-exporter count bound (and with evicted domains). */
  templateEvictions: number;
  /** Bytes charged for the templates cached now (see `maxTemplateBytes`). */
  templateBytes: number;
  /** Templates evicted to keep an exporter within `maxTemplateBytesPerExporter` (or the total). */
  templateByteEvictions: number;
  /**
   * Template and options template records refused: more fields than `maxFieldsPerTemplate`, or bigger
   * than `maxTemplateBytesPerExporter` on their own.
   */
  templatesRefused: number;
  /** Exporters evicted (with their templates) by the exporter or total-template bounds. */
  exporterEvictions: number;
  /** Domains evicted by the per-exporter domain bound. */
  domainEvictions: number;
  /** Data sets held waiting for a template now, and their bytes. */
  pendingSets: number;
  pendingBytes: number;
  /** Held data sets decoded after their template arrived. */
  pendingReleased: number;
  /** Data sets whose template never arrived (expired, evicted, or the holding buffer was full). */
  pendingDropped: number;
  /**
   * Of `pendingDropped`: data sets not held because their exporter's share was full
   * (`maxPendingSetsPerExporter` or `maxPendingBytesPerExporter`) while the total had room.
   */
  pendingDroppedExporterFull: number;
  /** Datagrams (or released deferred copies) refused whole by `maxFlowsPerPacket`. */
  packetsOverFlowLimit: number;
  /** Integers (counters, attribute values) clamped to ±(2^53 − 1); their flows carry `clamped`. */
  valuesClamped: number;
  /** Options data records processed. */
  optionsRecords: number;
  /** Names from options data (interfaces, VRFs, applications) kept now. */
  optionNames: number;
  /** New ids not named because `maxOptionNames` was reached. */
  optionNamesRefused: number;
  /** Records (v5, IPFIX) or packets (v9) missing according to sequence numbers, in total. */
  sequenceLostTotal: number;
  /** Late packets (small backward sequence jumps). */
  sequenceReorders: number;
  /** Sequence re-synchronisations (exporter restarts, large jumps). */
  sequenceResets: number;
}

/** Every counter at zero. */
export function zeroDecoderStats(): TemplateDecoderStats {
  return {
    exporters: 0,
    templates: 0,
    templatesReceived: 0,
    templatesWithdrawn: 0,
    templateEvictions: 0,
    templateBytes: 0,
    templateByteEvictions: 0,
    templatesRefused: 0,
    exporterEvictions: 0,
    domainEvictions: 0,
    pendingSets: 0,
    pendingBytes: 0,
    pendingReleased: 0,
    pendingDropped: 0,
    pendingDroppedExporterFull: 0,
    packetsOverFlowLimit: 0,
    valuesClamped: 0,
    optionsRecords: 0,
    optionNames: 0,
    optionNamesRefused: 0,
    sequenceLostTotal: 0,
    sequenceReorders: 0,
    sequenceResets: 0,
  };
}

/** Counts an `observeSequence` (sequence.ts) result and shows a loss on the packet (`sequenceLost`). */
export function countSequence(stats: TemplateDecoderStats, packet: ExportPacket, result: number): void {
  if (result > 0) {
    packet.sequenceLost = result;
    stats.sequenceLostTotal += result;
  } else if (result === SEQ_REORDER) stats.sequenceReorders++;
  else if (result === SEQ_RESTART) stats.sequenceResets++;
}
