/**
 * The decoder's output: plain data, no I/O, no OpenTelemetry (and {@link fail}, the rule for `error`).
 *
 * One UDP datagram becomes one {@link ExportPacket}; each flow record in it becomes one {@link Flow}.
 */

/** Attribute values the decoder can produce for further elements (`netflow.<name>`). */
export type FieldValue = string | number | boolean;

/** One flow record, normalised across NetFlow v1/v5/v9 and IPFIX. Absent fields stay `undefined`. */
export interface Flow {
  /** Canonical address strings (dotted IPv4, RFC 5952 IPv6). */
  srcAddr?: string;
  dstAddr?: string;
  nextHop?: string;
  srcPort?: number;
  dstPort?: number;
  /** IANA protocol number. */
  protocol?: number;
  /**
   * ICMP (1) / ICMPv6 (58) flows: type and code, from the ICMP elements or the destination port, already
   * corrected for exporters that swap the bytes (icmp.ts). Absent when the record gives none.
   */
  icmpType?: number;
  icmpCode?: number;
  /**
   * Octet and packet counters as exported. 64-bit values are clamped to 2^53 − 1 (Number.MAX_SAFE_INTEGER,
   * see templates.ts): exact below, never negative, and `clamped` is set when a value reached the clamp.
   */
  bytes?: number;
  packets?: number;
  /** Biflows: the reverse direction's counters (RFC 5103 reverse elements, NSEL responderOctets/Packets). */
  reverseBytes?: number;
  reversePackets?: number;
  /** True when a 7- or 8-octet integer of the record (counter or further element) was clamped to ±(2^53 − 1). */
  clamped?: boolean;
  inputIf?: number;
  outputIf?: number;
  tos?: number;
  tcpFlags?: number;
  srcAs?: number;
  dstAs?: number;
  srcMask?: number;
  dstMask?: number;
  /** 4 for IPv4 flows, 6 for IPv6 flows (from the address elements or ipVersion). */
  ipVersion?: 4 | 6;
  /** Uptime-relative milliseconds (v1/v5/v9; IPFIX flowStart/EndSysUpTime 22/21). */
  firstSwitched?: number;
  lastSwitched?: number;
  /**
   * Absolute times in Unix epoch milliseconds (fractional for sub-ms precision), when the record
   * carries them directly (IPFIX 150–157) or relative to the export time (158/159, already resolved).
   */
  startMs?: number;
  endMs?: number;
  /** IPFIX systemInitTimeMilliseconds (160) known for this record's stream: epoch ms of uptime 0. */
  systemInitMs?: number;
  /** 0 = ingress, 1 = egress (IE 61). */
  direction?: number;
  /** 1-in-N sampling interval known for this flow (v5 header, options data, or configuration). */
  samplingInterval?: number;
  /** Further elements, already named: attribute key (e.g. `netflow.vlan.id`) → value. */
  extra?: Record<string, FieldValue>;
}

/** What went wrong with a datagram (or part of it). */
export interface DecodeError {
  /**
   * Short machine-friendly kind, used for counters: `truncated`, `bad_length`, `unknown_version`,
   * `bad_set`, `bad_template`, `template_missing`, `template_refused` (a template over a limit),
   * `too_many_flows` (more records than `maxFlowsPerPacket`: the packet has no flows), `internal`.
   */
  kind: string;
  /** Short human message for logs and span status. */
  message: string;
}

/** One decoded export datagram. */
export interface ExportPacket {
  /** 1, 5, 9 or 10; the raw first two bytes when unknown (0 when not even two bytes arrived). */
  version: number;
  exporterAddress: string;
  exporterPort: number;
  /**
   * The listen address the datagram came in on, when the collector has several (NETFLOW_LISTEN); the span
   * layer otherwise names the one it was given.
   */
  collectorHost?: string;
  collectorPort?: number;
  /** The exporter's name from the enrichment file (NETFLOW_ENRICH_FILE), set by the pipeline. */
  exporterName?: string;
  /** Size of the datagram in bytes. */
  sizeBytes: number;
  /** Epoch milliseconds at which the collector received the datagram. */
  receivedAtMs: number;
  /** Header fields, when present. */
  sysUptimeMs?: number;
  /** Export time as epoch milliseconds (v5: unix_secs + unix_nsecs; v9/IPFIX: seconds). */
  exportTimeMs?: number;
  sequence?: number;
  sourceId?: number;
  observationDomainId?: number;
  engineType?: number;
  engineId?: number;
  /** Sampling interval from the v5 header (when > 0). */
  samplingInterval?: number;
  /** Count of template records (data and options) carried by this packet (v9/IPFIX). */
  templateCount?: number;
  /** Records or packets missing since the previous packet of this stream, when a gap was seen. */
  sequenceLost?: number;
  /** True when this packet's flows were held waiting for a template and released later. */
  deferred?: boolean;
  /**
   * Data sets of this packet held back because their template is not known yet (v9/IPFIX): they come
   * back later as a `deferred` copy of this packet, or as a `template_missing` error from `expire()`.
   */
  awaitingTemplateSets?: number;
  /**
   * Template records of this packet that were refused (more fields than `maxFieldsPerTemplate`, or more
   * bytes than the exporter's template budget). The packet also carries a `template_refused` error.
   */
  templatesRefused?: number;
  /** Options data records in this packet (v9/IPFIX): they update sampling state and make no flows. */
  optionsRecordCount?: number;
  flows: Flow[];
  /** Set when the datagram (or a part of it) could not be decoded. Flows decoded before the error are kept. */
  error?: DecodeError;
}

/** Sets the packet's error unless an earlier one is already there (the first problem is the cause). */
export function fail(packet: ExportPacket, kind: string, message: string): void {
  if (packet.error === undefined) packet.error = { kind, message };
}
