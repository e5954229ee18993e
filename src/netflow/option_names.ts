/**
 * Names that exporters announce in options data (SPEC §3), kept per exporter + domain: the interface table
 * (scope ingress/egressInterface → interfaceName, interfaceDescription), the VRF table (scope
 * ingress/egressVRFID → VRFname; one id space per domain) and the application table (scope applicationId →
 * applicationName, applicationDescription). Data records of the same domain get the names of the ids they
 * carry. Bounded: at most {@link MAX_NAMES_PER_DOMAIN} entries per domain (the oldest go first), names cut
 * to {@link MAX_NAME_LENGTH} characters, and the decoder's `maxOptionNames` in all.
 */
import type { Flow } from "./types.ts";

/** Entries (interfaces + VRFs + applications) one exporter domain may name. */
export const MAX_NAMES_PER_DOMAIN = 4_096;
/** Characters kept of an announced name or description. */
export const MAX_NAME_LENGTH = 256;

export interface NameAndDescription {
  name?: string;
  description?: string;
}

/** One domain's tables (created at its first announced name). */
export interface DomainNames {
  interfaces: Map<number, NameAndDescription>;
  vrfs: Map<number, string>;
  /** By applicationId as the data records' attribute shows it (hex). */
  applications: Map<string, NameAndDescription>;
  /** Entries in all three maps. */
  count: number;
}

export function emptyNames(): DomainNames {
  return { interfaces: new Map(), vrfs: new Map(), applications: new Map(), count: 0 };
}

/** The flow attributes the tables fill (SPEC §3). */
const IF_IN_NAME = "netflow.interface.input.name", IF_IN_DESCRIPTION = "netflow.interface.input.description";
const IF_OUT_NAME = "netflow.interface.output.name";
const IF_OUT_DESCRIPTION = "netflow.interface.output.description";
const INGRESS_VRF_ID = "netflow.ingress_vrf_id", EGRESS_VRF_ID = "netflow.egress_vrf_id";
const INGRESS_VRF_NAME = "netflow.ingress_vrf_name", EGRESS_VRF_NAME = "netflow.egress_vrf_name";
const APPLICATION_ID = "netflow.application_id";
const APPLICATION_NAME = "netflow.application_name";
const APPLICATION_DESCRIPTION = "netflow.application_description";

/** The decoder-wide count and bound (decoder_stats.ts, decoder_options.ts). */
export interface NameBudget {
  stats: { optionNames: number; optionNamesRefused: number };
  max: number;
}

/**
 * Adds or replaces one entry. A new one needs room in the decoder-wide bound (else it is refused and
 * counted); a domain at {@link MAX_NAMES_PER_DOMAIN} makes room by dropping the oldest entry of that table.
 */
export function announce<K, V>(
  names: DomainNames,
  table: Map<K, V>,
  key: K,
  value: V,
  budget: NameBudget,
): void {
  if (table.has(key)) {
    table.set(key, value);
    return;
  }
  const stats = budget.stats;
  if (stats.optionNames >= budget.max) {
    stats.optionNamesRefused++;
    return;
  }
  if (names.count >= MAX_NAMES_PER_DOMAIN) {
    const oldest = table.keys().next();
    if (oldest.done) return; // the domain's room is taken by its other tables
    table.delete(oldest.value);
  } else {
    names.count++;
    stats.optionNames++;
  }
  table.set(key, value);
}

/** Announces each interface, VRF and application of a restored snapshot's domain entry (validated here). */
export function restoreNames(entry: Record<string, unknown>, names: DomainNames, budget: NameBudget): void {
  const text = (v: unknown) => (typeof v === "string" ? keptName(v) : undefined);
  const id = (v: unknown) => typeof v === "number" && Number.isInteger(v) && v >= 0 && v < 2 ** 32;
  const rows = (v: unknown) => (Array.isArray(v) ? v.slice(0, MAX_NAMES_PER_DOMAIN) : []);
  for (const r of rows(entry.interfaces)) {
    if (!Array.isArray(r) || !id(r[0])) continue;
    const name = text(r[1]), description = text(r[2]);
    if (name !== undefined || description !== undefined) {
      announce(names, names.interfaces, r[0] as number, { name, description }, budget);
    }
  }
  for (const r of rows(entry.vrfs)) {
    if (!Array.isArray(r) || !id(r[0])) continue;
    const name = text(r[1]);
    if (name !== undefined) announce(names, names.vrfs, r[0] as number, name, budget);
  }
  for (const r of rows(entry.applications)) {
    if (!Array.isArray(r) || typeof r[0] !== "string" || !/^[0-9a-f]{1,64}$/.test(r[0])) continue;
    const name = text(r[1]), description = text(r[2]);
    if (name !== undefined || description !== undefined) {
      announce(names, names.applications, r[0], { name, description }, budget);
    }
  }
}

/** A domain's tables as snapshot rows: `[[ifIndex, name, description]]`, `[[vrfId, name]]`, `[[appId, …]]`. */
export function snapshotNames(names: DomainNames): Record<string, unknown[]> {
  return {
    interfaces: [...names.interfaces].map(([k, v]) => [k, v.name ?? "", v.description ?? ""]),
    vrfs: [...names.vrfs],
    applications: [...names.applications].map(([k, v]) => [k, v.name ?? "", v.description ?? ""]),
  };
}

/** A name or description as kept: trailing NULs gone already (stringAt), cut to the bound, "" as absent. */
export function keptName(text: string | undefined): string | undefined {
  if (text === undefined || text === "") return undefined;
  return text.length > MAX_NAME_LENGTH ? text.slice(0, MAX_NAME_LENGTH) : text;
}

function put(flow: Flow, key: string, value: string): void {
  if (flow.extra === undefined) flow.extra = { [key]: value };
  else flow.extra[key] = value;
}

/** Puts the names of the ids `flow` carries into its attributes; names the record itself carries win. */
export function nameFlow(flow: Flow, names: DomainNames): void {
  if (names.interfaces.size > 0) {
    const input = flow.inputIf !== undefined ? names.interfaces.get(flow.inputIf) : undefined;
    if (input?.name !== undefined) put(flow, IF_IN_NAME, input.name);
    if (input?.description !== undefined) put(flow, IF_IN_DESCRIPTION, input.description);
    const output = flow.outputIf !== undefined ? names.interfaces.get(flow.outputIf) : undefined;
    if (output?.name !== undefined) put(flow, IF_OUT_NAME, output.name);
    if (output?.description !== undefined) put(flow, IF_OUT_DESCRIPTION, output.description);
  }
  const extra = flow.extra;
  if (extra === undefined) return; // VRF and application ids are further elements
  if (names.vrfs.size > 0) {
    const ingress = extra[INGRESS_VRF_ID], egress = extra[EGRESS_VRF_ID];
    const inName = typeof ingress === "number" ? names.vrfs.get(ingress) : undefined;
    if (inName !== undefined) extra[INGRESS_VRF_NAME] = inName;
    const outName = typeof egress === "number" ? names.vrfs.get(egress) : undefined;
    if (outName !== undefined) extra[EGRESS_VRF_NAME] = outName;
  }
  const app = extra[APPLICATION_ID];
  if (names.applications.size > 0 && typeof app === "string") {
    const known = names.applications.get(app);
    if (known?.name !== undefined && extra[APPLICATION_NAME] === undefined) {
      extra[APPLICATION_NAME] = known.name;
    }
    if (known?.description !== undefined && extra[APPLICATION_DESCRIPTION] === undefined) {
      extra[APPLICATION_DESCRIPTION] = known.description;
    }
  }
}
