/**
 * The enrichment file (NETFLOW_ENRICH_FILE, SPEC §5): per exporter address or CIDR (the most specific match
 * wins) a name, interface names and descriptions by ifIndex, VRF names and a sampling rate, for exporters
 * (v5 above all) that announce none of it. What the exporter announces in options data wins.
 *
 * {@link parseEnrichment} validates a file's text (YAML, so JSON too) into plain data that crosses into the
 * pipeline Workers; {@link Enrichment} applies it there.
 *
 * @example
 * ```ts
 * const table = parseEnrichment("exporters:\n  - { match: 192.0.2.0/24, name: edge-1, sampling_rate: 1000 }\n");
 * new Enrichment(table).samplingRate("192.0.2.7"); // 1000
 * ```
 */
import { isObject } from "./netflow/untrusted.ts";
import { parseSettings, readSettings, refuseUnknownKeys } from "./settings_file.ts";
import { CidrMap, formatCidr, parseCidr } from "./cidr.ts";
import type { ExportPacket } from "./netflow/types.ts";

/** One exporter's entry, validated. */
export interface EnrichmentEntry {
  /** Normalised CIDR (`192.0.2.1/32`). */
  match: string;
  name?: string;
  samplingRate?: number;
  /** ifIndex → name and description. */
  interfaces?: Record<number, { name?: string; description?: string }>;
  /** VRF id → name. */
  vrfs?: Record<number, string>;
}

export interface EnrichmentTable {
  exporters: EnrichmentEntry[];
}

/** A file that cannot be used: the message names where and why, in one line. */
export class EnrichmentError extends Error {}

const MAX_ID = 2 ** 32 - 1;
const MAX_TEXT = 256;

/** Reads and validates the file; throws {@link EnrichmentError} (unreadable files too). */
export function readEnrichment(path: string): EnrichmentTable {
  return enrichmentTable(readSettings(path, EnrichmentError));
}

/** Validates the file's text; throws {@link EnrichmentError}. */
export function parseEnrichment(text: string): EnrichmentTable {
  return enrichmentTable(parseSettings(text, EnrichmentError));
}

function enrichmentTable(doc: unknown): EnrichmentTable {
  if (doc === null) return { exporters: [] };
  if (!isObject(doc)) throw new EnrichmentError("must be a mapping with an `exporters` list");
  unknownKeys(doc, ["exporters"], "the file");
  const list = doc.exporters ?? [];
  if (!Array.isArray(list)) throw new EnrichmentError("`exporters` must be a list");
  return { exporters: list.map((e, i) => entry(e, `exporters[${i}]`)) };
}

function entry(e: unknown, at: string): EnrichmentEntry {
  if (!isObject(e)) throw new EnrichmentError(`${at}: must be a mapping with \`match\``);
  unknownKeys(e, ["match", "name", "sampling_rate", "interfaces", "vrfs"], at);
  if (typeof e.match !== "string") {
    throw new EnrichmentError(`${at}.match: must be an address or CIDR (e.g. 192.0.2.1 or 10.0.0.0/8)`);
  }
  let match: string;
  try {
    match = formatCidr(parseCidr(e.match));
  } catch {
    throw new EnrichmentError(`${at}.match: "${e.match}" is not an address or CIDR`);
  }
  const out: EnrichmentEntry = { match };
  if (e.name !== undefined) out.name = text(e.name, `${at}.name`);
  if (e.sampling_rate !== undefined) {
    const r = e.sampling_rate;
    if (typeof r !== "number" || !Number.isInteger(r) || r < 1 || r > MAX_ID) {
      throw new EnrichmentError(`${at}.sampling_rate: must be an integer from 1 to ${MAX_ID}`);
    }
    out.samplingRate = r;
  }
  if (e.interfaces !== undefined) {
    if (!isObject(e.interfaces)) throw new EnrichmentError(`${at}.interfaces: must map ifIndex to a name`);
    out.interfaces = {};
    for (const [k, v] of Object.entries(e.interfaces)) {
      const where = `${at}.interfaces.${k}`;
      const ifIndex = id(k, where);
      if (typeof v === "string") out.interfaces[ifIndex] = { name: text(v, where) };
      else if (isObject(v)) {
        unknownKeys(v, ["name", "description"], where);
        out.interfaces[ifIndex] = {
          ...(v.name !== undefined ? { name: text(v.name, `${where}.name`) } : {}),
          ...(v.description !== undefined
            ? { description: text(v.description, `${where}.description`) }
            : {}),
        };
      } else throw new EnrichmentError(`${where}: must be a name or { name, description }`);
    }
  }
  if (e.vrfs !== undefined) {
    if (!isObject(e.vrfs)) throw new EnrichmentError(`${at}.vrfs: must map VRF id to a name`);
    out.vrfs = {};
    for (const [k, v] of Object.entries(e.vrfs)) {
      out.vrfs[id(k, `${at}.vrfs.${k}`)] = text(v, `${at}.vrfs.${k}`);
    }
  }
  return out;
}

function id(key: string, at: string): number {
  const n = Number(key);
  if (!/^\d+$/.test(key) || n > MAX_ID) {
    throw new EnrichmentError(`${at}: the id must be an integer from 0 to ${MAX_ID}`);
  }
  return n;
}

function text(v: unknown, at: string): string {
  if (typeof v !== "string" && typeof v !== "number") throw new EnrichmentError(`${at}: must be text`);
  const s = String(v);
  if (s === "" || s.length > MAX_TEXT) {
    throw new EnrichmentError(`${at}: must be 1 to ${MAX_TEXT} characters`);
  }
  return s;
}

const unknownKeys = (o: Record<string, unknown>, allowed: string[], at: string) =>
  refuseUnknownKeys(o, allowed, at, EnrichmentError);

const IF_KEYS = {
  in: ["netflow.interface.input.name", "netflow.interface.input.description"],
  out: ["netflow.interface.output.name", "netflow.interface.output.description"],
} as const;

/** The table as a matcher, in a pipeline Worker. */
export class Enrichment {
  readonly #byAddress: CidrMap<EnrichmentEntry>;
  readonly empty: boolean;

  constructor(table: EnrichmentTable) {
    this.#byAddress = new CidrMap(table.exporters.map((e) => [e.match, e] as [string, EnrichmentEntry]));
    this.empty = table.exporters.length === 0;
  }

  /** The entry for an exporter address (most specific match), if any. */
  entryFor(address: string): EnrichmentEntry | undefined {
    return this.empty ? undefined : this.#byAddress.get(address);
  }

  /** The file's sampling rate for an exporter that announces none. */
  samplingRate(address: string): number | undefined {
    return this.entryFor(address)?.samplingRate;
  }

  /** Sets the exporter's name and the names of interfaces and VRFs that options data left unnamed. */
  apply(packet: ExportPacket): void {
    const e = this.entryFor(packet.exporterAddress);
    if (e === undefined) return;
    if (e.name !== undefined) packet.exporterName = e.name;
    const interfaces = e.interfaces, vrfs = e.vrfs;
    if (interfaces === undefined && vrfs === undefined) return;
    for (const flow of packet.flows) {
      if (interfaces !== undefined) {
        if (flow.inputIf !== undefined) nameInterface(flow, interfaces[flow.inputIf], IF_KEYS.in);
        if (flow.outputIf !== undefined) nameInterface(flow, interfaces[flow.outputIf], IF_KEYS.out);
      }
      if (vrfs !== undefined && flow.extra !== undefined) {
        const extra = flow.extra;
        const ingress = extra["netflow.ingress_vrf_id"], egress = extra["netflow.egress_vrf_id"];
        if (typeof ingress === "number" && vrfs[ingress] !== undefined) {
          extra["netflow.ingress_vrf_name"] ??= vrfs[ingress];
        }
        if (typeof egress === "number" && vrfs[egress] !== undefined) {
          extra["netflow.egress_vrf_name"] ??= vrfs[egress];
        }
      }
    }
  }
}

function nameInterface(
  flow: ExportPacket["flows"][number],
  known: { name?: string; description?: string } | undefined,
  [nameKey, descriptionKey]: readonly [string, string],
): void {
  if (known === undefined) return;
  const extra = flow.extra ??= {};
  if (extra[nameKey] !== undefined || extra[descriptionKey] !== undefined) return; // options data named it
  if (known.name !== undefined) extra[nameKey] = known.name;
  if (known.description !== undefined) extra[descriptionKey] = known.description;
}
