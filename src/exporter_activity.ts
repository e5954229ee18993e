/**
 * What each exporter has sent, for the status page (`/api/exporters`): versions, domains, first and last
 * seen, datagrams, flows, sequence loss and errors by kind, and flows per 10 s over the last 10 minutes.
 * Kept in each pipeline Worker for the exporters it owns (bounded: the least recently seen go first) and
 * merged on the socket thread. Summaries, never flows, cross between them.
 */
import type { ExportPacket } from "./netflow/types.ts";
import type { KnownTables } from "./netflow/template_decoder.ts";
import { addCounts } from "./counters.ts";

/** Exporters one Worker keeps activity for. */
const MAX_EXPORTERS = 1_000;
/** The sparkline: this many buckets of this many ms (10 minutes). */
export const BUCKETS = 60;
export const BUCKET_MS = 10_000;

/** One exporter as the page shows it (plain data: it crosses from the Workers). */
export interface ExporterSummary {
  address: string;
  name?: string;
  versions: number[];
  domains: number[];
  firstSeenMs: number;
  lastSeenMs: number;
  datagrams: number;
  flows: number;
  sequenceLost: number;
  errors: Record<string, number>;
  templates: number;
  /** Entries of the options names tables the exporter announced (interfaces, VRFs, applications). */
  optionNames: { interfaces: number; vrfs: number; applications: number };
  samplingInterval?: number;
  /** Flows per {@link BUCKET_MS}, oldest first, the last bucket the current one. */
  flowsPerBucket: number[];
  /** Start (epoch ms) of the last bucket. */
  bucketAtMs: number;
}

interface Activity {
  summary: ExporterSummary;
  versions: Set<number>;
  domains: Set<number>;
}

export class ExporterActivity {
  readonly #byAddress = new Map<string, Activity>();

  /** Counts one packet (a datagram, or a released deferred part of one: not counted as a datagram again). */
  record(packet: ExportPacket): void {
    const map = this.#byAddress;
    const address = packet.exporterAddress;
    let a = map.get(address);
    if (a === undefined) {
      if (map.size >= MAX_EXPORTERS) map.delete(map.keys().next().value!);
      a = {
        summary: {
          address,
          versions: [],
          domains: [],
          firstSeenMs: packet.receivedAtMs,
          lastSeenMs: packet.receivedAtMs,
          datagrams: 0,
          flows: 0,
          sequenceLost: 0,
          errors: {},
          templates: 0,
          optionNames: { interfaces: 0, vrfs: 0, applications: 0 },
          flowsPerBucket: new Array(BUCKETS).fill(0),
          bucketAtMs: bucketStart(packet.receivedAtMs),
        },
        versions: new Set(),
        domains: new Set(),
      };
    } else map.delete(address); // most recently seen last
    map.set(address, a);
    const s = a.summary;
    if (!packet.deferred) s.datagrams++;
    s.lastSeenMs = Math.max(s.lastSeenMs, packet.receivedAtMs);
    const v = packet.version;
    if (v === 1 || v === 5 || v === 9 || v === 10) a.versions.add(v); // what is not NetFlow is an error kind
    const domain = packet.sourceId ?? packet.observationDomainId;
    if (domain !== undefined && a.domains.size < 64) a.domains.add(domain);
    if (packet.exporterName !== undefined) s.name = packet.exporterName;
    s.flows += packet.flows.length;
    if (packet.sequenceLost) s.sequenceLost += packet.sequenceLost;
    if (packet.error) s.errors[packet.error.kind] = (s.errors[packet.error.kind] ?? 0) + 1;
    const interval = packet.flows[0]?.samplingInterval;
    if (interval !== undefined) s.samplingInterval = interval;
    advance(s, packet.receivedAtMs);
    s.flowsPerBucket[BUCKETS - 1] += packet.flows.length;
  }

  /** Every exporter's summary, with the tables the decoder holds for it; buckets moved on to `nowMs`. */
  summaries(tables: Map<string, KnownTables>, nowMs: number): ExporterSummary[] {
    const out: ExporterSummary[] = [];
    for (const a of this.#byAddress.values()) {
      const s = a.summary;
      advance(s, nowMs);
      s.versions = [...a.versions].sort();
      s.domains = [...a.domains].sort((x, y) => x - y);
      const t = tables.get(s.address);
      s.templates = t?.templates ?? 0;
      s.optionNames = {
        interfaces: t?.interfaces ?? 0,
        vrfs: t?.vrfs ?? 0,
        applications: t?.applications ?? 0,
      };
      out.push(s);
    }
    return out;
  }
}

function bucketStart(ms: number): number {
  return Math.floor(ms / BUCKET_MS) * BUCKET_MS;
}

/** Shifts the buckets so the last one holds `atMs`. */
function advance(s: ExporterSummary, atMs: number): void {
  const shift = Math.min(BUCKETS, Math.floor((bucketStart(atMs) - s.bucketAtMs) / BUCKET_MS));
  if (shift <= 0) return;
  s.flowsPerBucket.splice(0, shift);
  for (let i = 0; i < shift; i++) s.flowsPerBucket.push(0);
  s.bucketAtMs = bucketStart(atMs);
}

/** The Workers' lists as one (an exporter whose domains live in several Workers is added up). */
export function mergeSummaries(lists: readonly (readonly ExporterSummary[])[]): ExporterSummary[] {
  const byAddress = new Map<string, ExporterSummary>();
  for (const list of lists) {
    for (const s of list) {
      const m = byAddress.get(s.address);
      if (m === undefined) {
        byAddress.set(s.address, structuredClone(s));
        continue;
      }
      m.versions = [...new Set([...m.versions, ...s.versions])].sort();
      m.domains = [...new Set([...m.domains, ...s.domains])].sort((x, y) => x - y);
      m.firstSeenMs = Math.min(m.firstSeenMs, s.firstSeenMs);
      m.lastSeenMs = Math.max(m.lastSeenMs, s.lastSeenMs);
      m.datagrams += s.datagrams;
      m.flows += s.flows;
      m.sequenceLost += s.sequenceLost;
      m.templates += s.templates;
      addCounts(m.optionNames, s.optionNames);
      for (const [k, v] of Object.entries(s.errors)) m.errors[k] = (m.errors[k] ?? 0) + v;
      m.name ??= s.name;
      m.samplingInterval ??= s.samplingInterval;
      if (s.bucketAtMs === m.bucketAtMs) {
        m.flowsPerBucket = m.flowsPerBucket.map((v, i) => v + s.flowsPerBucket[i]);
      }
    }
  }
  return [...byAddress.values()].sort((a, b) => b.flows - a.flows);
}
