/**
 * Which information elements the record decoder turns into {@link Flow} fields (and options-data values),
 * as one table: a row names the element (IANA name, elements.ts), the handler that decodes it (its
 * {@link Kind}: how the octets are read and where the value goes) and the lengths it accepts. Adding a
 * decoded element is one row; an element without a row, or with a length its row does not accept,
 * becomes a `netflow.<name>` attribute by its abstract type.
 *
 * Looked up when a template is compiled, never per record.
 */
import { elementNamed } from "./elements.ts";
import { VARIABLE_LENGTH } from "./variable_length.ts";

/** Field handler codes. `Opt*` are used in options-template plans only. */
export enum Kind {
  Skip,
  Bytes,
  Packets,
  /** Biflow reverse counters: the preferred element (RFC 5103 reverse octet/packetDeltaCount) always sets… */
  RevBytes,
  RevPackets,
  /** …the others (reverse totals, NSEL responderOctets/Packets) only where nothing has. */
  RevBytesFallback,
  RevPacketsFallback,
  Protocol,
  Tos,
  TcpFlags,
  SrcPort,
  DstPort,
  SrcV4,
  DstV4,
  SrcV6,
  DstV6,
  SrcMask,
  DstMask,
  InIf,
  OutIf,
  NextHopV4,
  NextHopV6,
  SrcAs,
  DstAs,
  Direction,
  IpVersion,
  First,
  Last,
  SysInit,
  SamplerId,
  SamplingInterval,
  // ICMP elements 32, 139, 176, 177, 178, 179: in the order of the slots in icmp.ts (kind − IcmpTypeCodeV4).
  IcmpTypeCodeV4,
  IcmpTypeCodeV6,
  IcmpTypeV4,
  IcmpCodeV4,
  IcmpTypeV6,
  IcmpCodeV6,
  StartSec,
  EndSec,
  StartMs,
  EndMs,
  StartNtp,
  EndNtp,
  StartDelta,
  EndDelta,
  DurMs,
  DurUs,
  /** observationTimeMilliseconds (323): the instant of a NSEL event; see resolveTimes() in record_sets.ts. */
  EventMs,
  XUint,
  XInt,
  XFloat,
  XBool,
  XMac,
  XString,
  XHex,
  XV4,
  XV6,
  XDateS,
  XDateMs,
  XDateNtp,
  OptSamplerId,
  OptInterval,
  OptAlgorithm,
  OptMode,
  OptRandomInterval,
  OptPacketInterval,
  OptPacketSpace,
  OptSize,
  OptPopulation,
  OptProbability,
  OptSysInit,
  // Options data naming ids (option_names.ts): the scope's id, then the strings it is given.
  OptIfIndex,
  OptVrfId,
  OptAppId,
  OptIfName,
  OptIfDescription,
  OptVrfName,
  OptAppName,
  OptAppDescription,
}

/** Lengths a row accepts: an integer of 1–8 octets, or (> 0) exactly that many octets. */
const INT = -1;
/** Options data: an integer of 1–8 octets or a variable-length one. */
const INT_OR_VARIABLE = -2;
/** Options data: a float32/float64 or a variable-length field. */
const FLOAT_OR_VARIABLE = -3;
/** Any length (rows that only skip the element). */
const ANY = -4;

/**
 * The table. Counters (`Bytes`, `Packets`): only the first of a kind's rows present in the template fills
 * the field, so precedence is row order. Data rows of `Skip` read past the element and never make an
 * attribute. `Opt*` rows apply to options templates only, the others to data templates only.
 */
const ROLES: ReadonlyArray<readonly [element: string, kind: Kind, length: number]> = [
  ["octetDeltaCount", Kind.Bytes, INT],
  ["octetTotalCount", Kind.Bytes, INT],
  // Cisco ASA/FTD (NSEL) counts only these: initiator = the forward direction, responder = the reverse.
  ["initiatorOctets", Kind.Bytes, INT],
  ["postOctetDeltaCount", Kind.Bytes, INT],
  ["postOctetTotalCount", Kind.Bytes, INT],
  ["packetDeltaCount", Kind.Packets, INT],
  ["packetTotalCount", Kind.Packets, INT],
  ["initiatorPackets", Kind.Packets, INT],
  ["postPacketDeltaCount", Kind.Packets, INT],
  ["postPacketTotalCount", Kind.Packets, INT],
  ["protocolIdentifier", Kind.Protocol, INT],
  ["ipClassOfService", Kind.Tos, INT],
  ["tcpControlBits", Kind.TcpFlags, INT],
  ["sourceTransportPort", Kind.SrcPort, INT],
  ["destinationTransportPort", Kind.DstPort, INT],
  ["sourceIPv4Address", Kind.SrcV4, 4],
  ["destinationIPv4Address", Kind.DstV4, 4],
  ["sourceIPv6Address", Kind.SrcV6, 16],
  ["destinationIPv6Address", Kind.DstV6, 16],
  ["sourceIPv4PrefixLength", Kind.SrcMask, INT],
  ["sourceIPv6PrefixLength", Kind.SrcMask, INT],
  ["destinationIPv4PrefixLength", Kind.DstMask, INT],
  ["destinationIPv6PrefixLength", Kind.DstMask, INT],
  ["ingressInterface", Kind.InIf, INT],
  ["egressInterface", Kind.OutIf, INT],
  ["ipNextHopIPv4Address", Kind.NextHopV4, 4],
  ["ipNextHopIPv6Address", Kind.NextHopV6, 16],
  ["bgpSourceAsNumber", Kind.SrcAs, INT],
  ["bgpDestinationAsNumber", Kind.DstAs, INT],
  ["flowDirection", Kind.Direction, INT],
  ["ipVersion", Kind.IpVersion, INT],
  ["flowStartSysUpTime", Kind.First, INT],
  ["flowEndSysUpTime", Kind.Last, INT],
  ["systemInitTimeMilliseconds", Kind.SysInit, INT],
  ["samplerId", Kind.SamplerId, INT],
  ["selectorId", Kind.SamplerId, INT],
  ["samplingInterval", Kind.SamplingInterval, INT],
  ["icmpTypeCodeIPv4", Kind.IcmpTypeCodeV4, INT],
  ["icmpTypeCodeIPv6", Kind.IcmpTypeCodeV6, INT],
  ["icmpTypeIPv4", Kind.IcmpTypeV4, INT],
  ["icmpCodeIPv4", Kind.IcmpCodeV4, INT],
  ["icmpTypeIPv6", Kind.IcmpTypeV6, INT],
  ["icmpCodeIPv6", Kind.IcmpCodeV6, INT],
  ["flowStartSeconds", Kind.StartSec, INT],
  ["flowEndSeconds", Kind.EndSec, INT],
  ["flowStartMilliseconds", Kind.StartMs, INT],
  ["flowEndMilliseconds", Kind.EndMs, INT],
  ["flowStartMicroseconds", Kind.StartNtp, 8],
  ["flowStartNanoseconds", Kind.StartNtp, 8],
  ["flowEndMicroseconds", Kind.EndNtp, 8],
  ["flowEndNanoseconds", Kind.EndNtp, 8],
  ["flowStartDeltaMicroseconds", Kind.StartDelta, INT],
  ["flowEndDeltaMicroseconds", Kind.EndDelta, INT],
  ["flowDurationMilliseconds", Kind.DurMs, INT],
  ["flowDurationMicroseconds", Kind.DurUs, INT],
  ["observationTimeMilliseconds", Kind.EventMs, INT],
  ["responderOctets", Kind.RevBytesFallback, INT],
  ["responderPackets", Kind.RevPacketsFallback, INT],
  ["paddingOctets", Kind.Skip, ANY],
  // Options data: sampling (RFC 7014 §8 and Cisco's v9 sampler options) and the exporter's boot time.
  ["samplerId", Kind.OptSamplerId, INT_OR_VARIABLE],
  ["selectorId", Kind.OptSamplerId, INT_OR_VARIABLE],
  ["samplingInterval", Kind.OptInterval, INT_OR_VARIABLE],
  ["samplingAlgorithm", Kind.OptAlgorithm, INT_OR_VARIABLE],
  ["selectorAlgorithm", Kind.OptAlgorithm, INT_OR_VARIABLE],
  ["samplerMode", Kind.OptMode, INT_OR_VARIABLE],
  ["samplerRandomInterval", Kind.OptRandomInterval, INT_OR_VARIABLE],
  ["samplingPacketInterval", Kind.OptPacketInterval, INT_OR_VARIABLE],
  ["samplingPacketSpace", Kind.OptPacketSpace, INT_OR_VARIABLE],
  ["samplingSize", Kind.OptSize, INT_OR_VARIABLE],
  ["samplingPopulation", Kind.OptPopulation, INT_OR_VARIABLE],
  ["samplingProbability", Kind.OptProbability, FLOAT_OR_VARIABLE],
  ["systemInitTimeMilliseconds", Kind.OptSysInit, INT_OR_VARIABLE],
  ["ingressInterface", Kind.OptIfIndex, INT],
  ["egressInterface", Kind.OptIfIndex, INT],
  ["ingressVRFID", Kind.OptVrfId, INT],
  ["egressVRFID", Kind.OptVrfId, INT],
  ["applicationId", Kind.OptAppId, ANY],
  ["interfaceName", Kind.OptIfName, ANY],
  ["interfaceDescription", Kind.OptIfDescription, ANY],
  ["VRFname", Kind.OptVrfName, ANY],
  ["applicationName", Kind.OptAppName, ANY],
  ["applicationDescription", Kind.OptAppDescription, ANY],
];

/** Handlers whose kinds are counters: several elements, one field, first present wins. */
const PRECEDENCE_KINDS: ReadonlySet<Kind> = new Set([Kind.Bytes, Kind.Packets]);

interface Role {
  id: number;
  kind: Kind;
  length: number;
  /** Counters: the ids of the kind's rows in row order; undefined otherwise. */
  precedence: number[] | undefined;
}

/** Element id → its data-record row and its options-record row (ids < 512). */
const DATA_ROLES: Array<Role | undefined> = new Array(512);
const OPTION_ROLES: Array<Role | undefined> = new Array(512);
for (const [element, kind, length] of ROLES) {
  const info = elementNamed(element);
  if (info === undefined) throw new Error(`element_roles.ts: no element named ${element}`);
  const precedence = PRECEDENCE_KINDS.has(kind)
    ? ROLES.filter((r) => r[1] === kind).map((r) => elementNamed(r[0])!.id)
    : undefined;
  const byId = kind >= Kind.OptSamplerId ? OPTION_ROLES : DATA_ROLES;
  byId[info.id] = { id: info.id, kind, length, precedence };
}

function accepts(rule: number, len: number): boolean {
  switch (rule) {
    case INT:
      return len >= 1 && len <= 8;
    case INT_OR_VARIABLE:
      return (len >= 1 && len <= 8) || len === VARIABLE_LENGTH;
    case FLOAT_OR_VARIABLE:
      return len === 4 || len === 8 || len === VARIABLE_LENGTH;
    case ANY:
      return true;
    default:
      return len === rule;
  }
}

/** {@link dataRole}'s answer for elements that are read past and never become an attribute. */
export const NEVER_ATTRIBUTE = -1;

/**
 * The handler of IANA element `id` of `len` octets in a data template whose (non-enterprise) elements are
 * `present`: a Flow-field kind, `Kind.Skip` (no row, or a length the row refuses: an attribute by type),
 * or {@link NEVER_ATTRIBUTE}.
 */
export function dataRole(
  id: number,
  len: number,
  present: ReadonlySet<number>,
): Kind | typeof NEVER_ATTRIBUTE {
  const role = id < DATA_ROLES.length ? DATA_ROLES[id] : undefined;
  if (role === undefined) return Kind.Skip;
  if (role.kind === Kind.Skip) return NEVER_ATTRIBUTE;
  if (!accepts(role.length, len)) return Kind.Skip;
  if (role.precedence !== undefined && firstPresent(role.precedence, present) !== id) return Kind.Skip;
  return role.kind;
}

/**
 * A v9 options template's scope field (RFC 3954 §6.1: a scope *type*, not an element): type 2 (Interface)
 * is an ifIndex; exporters that write IPFIX elements there instead (10, 14, 234, 235, 95; all above the
 * five scope types) get those elements' roles.
 */
export function v9ScopeRole(type: number, len: number): Kind {
  if (type === 2) return len >= 1 && len <= 8 ? Kind.OptIfIndex : Kind.Skip;
  return type > 5 ? optionRole(type, len) : Kind.Skip;
}

/** The handler of IANA element `id` of `len` octets in an options template (`Kind.Skip`: not used). */
export function optionRole(id: number, len: number): Kind {
  const role = id < OPTION_ROLES.length ? OPTION_ROLES[id] : undefined;
  return role !== undefined && accepts(role.length, len) ? role.kind : Kind.Skip;
}

/** True when IANA element `id` fills a Flow field in data records (so it cannot be renamed). */
export function hasDataRole(id: number): boolean {
  const role = id < DATA_ROLES.length ? DATA_ROLES[id] : undefined;
  return role !== undefined && role.kind !== Kind.Skip && !alsoAttribute(role.kind);
}

/** Handlers that fill a Flow field or scratch value and also write the element's attribute. */
export function alsoAttribute(kind: Kind): boolean {
  return kind === Kind.SamplerId || (kind >= Kind.IcmpTypeCodeV4 && kind <= Kind.IcmpCodeV6);
}

function firstPresent(ids: number[], present: ReadonlySet<number>): number {
  for (const id of ids) if (present.has(id)) return id;
  return -1;
}
