/**
 * The IANA IPFIX information-element table (https://www.iana.org/assignments/ipfix), as far as this
 * collector names elements: id → IANA name, abstract data type, and the attribute key it becomes.
 *
 * NetFlow v9 field types 1–127 share these numbers (RFC 3954 §8 was the seed of the registry), so v9 and
 * IPFIX use one table. Elements that fill a {@link Flow} field directly have a row in `element_roles.ts`;
 * every other known element becomes `netflow.<lower_snake_case IANA name>` (VLAN: `netflow.vlan.id`, SPEC §3).
 *
 * @example
 * ```ts
 * elementInfo(225)?.key; // "netflow.post_nat_source_ipv4_address"
 * ```
 */

/** Abstract data types (RFC 7012 §3.1), reduced to what decoding needs. */
export enum ElementType {
  Unsigned,
  Signed,
  Float,
  Boolean,
  Mac,
  String,
  Octets,
  Ipv4,
  Ipv6,
  /** dateTimeSeconds: unsigned32 seconds since the Unix epoch. */
  DateSeconds,
  /** dateTimeMilliseconds: unsigned64 milliseconds since the Unix epoch. */
  DateMillis,
  /** dateTimeMicroseconds / dateTimeNanoseconds: 64-bit NTP timestamp (seconds since 1900 + fraction). */
  DateNtp,
}

export interface ElementInfo {
  id: number;
  /** IANA name, e.g. `postNATSourceIPv4Address`. */
  name: string;
  type: ElementType;
  /** Attribute key, e.g. `netflow.post_nat_source_ipv4_address`. */
  key: string;
  /** Name without the `netflow.` prefix, e.g. `post_nat_source_ipv4_address` (reverse keys reuse it). */
  snake: string;
}

/** An element defined by the user (the fields file): its attribute key and how its value is read. */
export interface CustomField {
  /** 0 for IANA. */
  pen: number;
  id: number;
  /** `netflow.<name>`. */
  key: string;
  type: ElementType;
}

/** PEN of the reverse information elements (RFC 5103): same ids and types as the forward elements. */
export const REVERSE_PEN = 29305;

const U = ElementType.Unsigned, F = ElementType.Float, B = ElementType.Boolean;
const MAC = ElementType.Mac, STR = ElementType.String, OCT = ElementType.Octets;
const V4 = ElementType.Ipv4, V6 = ElementType.Ipv6;
const DS = ElementType.DateSeconds, DMS = ElementType.DateMillis, NTP = ElementType.DateNtp;

/** [id, IANA name, type]. Keep sorted by id. */
const TABLE: ReadonlyArray<readonly [number, string, ElementType]> = [
  [1, "octetDeltaCount", U],
  [2, "packetDeltaCount", U],
  [3, "deltaFlowCount", U],
  [4, "protocolIdentifier", U],
  [5, "ipClassOfService", U],
  [6, "tcpControlBits", U],
  [7, "sourceTransportPort", U],
  [8, "sourceIPv4Address", V4],
  [9, "sourceIPv4PrefixLength", U],
  [10, "ingressInterface", U],
  [11, "destinationTransportPort", U],
  [12, "destinationIPv4Address", V4],
  [13, "destinationIPv4PrefixLength", U],
  [14, "egressInterface", U],
  [15, "ipNextHopIPv4Address", V4],
  [16, "bgpSourceAsNumber", U],
  [17, "bgpDestinationAsNumber", U],
  [18, "bgpNextHopIPv4Address", V4],
  [19, "postMCastPacketDeltaCount", U],
  [20, "postMCastOctetDeltaCount", U],
  [21, "flowEndSysUpTime", U],
  [22, "flowStartSysUpTime", U],
  [23, "postOctetDeltaCount", U],
  [24, "postPacketDeltaCount", U],
  [25, "minimumIpTotalLength", U],
  [26, "maximumIpTotalLength", U],
  [27, "sourceIPv6Address", V6],
  [28, "destinationIPv6Address", V6],
  [29, "sourceIPv6PrefixLength", U],
  [30, "destinationIPv6PrefixLength", U],
  [31, "flowLabelIPv6", U],
  [32, "icmpTypeCodeIPv4", U],
  [33, "igmpType", U],
  [34, "samplingInterval", U],
  [35, "samplingAlgorithm", U],
  [36, "flowActiveTimeout", U],
  [37, "flowIdleTimeout", U],
  [38, "engineType", U],
  [39, "engineId", U],
  [40, "exportedOctetTotalCount", U],
  [41, "exportedMessageTotalCount", U],
  [42, "exportedFlowRecordTotalCount", U],
  [44, "sourceIPv4Prefix", V4],
  [45, "destinationIPv4Prefix", V4],
  [46, "mplsTopLabelType", U],
  [47, "mplsTopLabelIPv4Address", V4],
  [48, "samplerId", U],
  [49, "samplerMode", U],
  [50, "samplerRandomInterval", U],
  [51, "classId", U],
  [52, "minimumTTL", U],
  [53, "maximumTTL", U],
  [54, "fragmentIdentification", U],
  [55, "postIpClassOfService", U],
  [56, "sourceMacAddress", MAC],
  [57, "postDestinationMacAddress", MAC],
  [58, "vlanId", U],
  [59, "postVlanId", U],
  [60, "ipVersion", U],
  [61, "flowDirection", U],
  [62, "ipNextHopIPv6Address", V6],
  [63, "bgpNextHopIPv6Address", V6],
  [64, "ipv6ExtensionHeaders", U],
  [70, "mplsTopLabelStackSection", OCT],
  [71, "mplsLabelStackSection2", OCT],
  [72, "mplsLabelStackSection3", OCT],
  [73, "mplsLabelStackSection4", OCT],
  [74, "mplsLabelStackSection5", OCT],
  [75, "mplsLabelStackSection6", OCT],
  [76, "mplsLabelStackSection7", OCT],
  [77, "mplsLabelStackSection8", OCT],
  [78, "mplsLabelStackSection9", OCT],
  [79, "mplsLabelStackSection10", OCT],
  [80, "destinationMacAddress", MAC],
  [81, "postSourceMacAddress", MAC],
  [82, "interfaceName", STR],
  [83, "interfaceDescription", STR],
  [84, "samplerName", STR],
  [85, "octetTotalCount", U],
  [86, "packetTotalCount", U],
  [87, "flagsAndSamplerId", U],
  [88, "fragmentOffset", U],
  [89, "forwardingStatus", U],
  [90, "mplsVpnRouteDistinguisher", OCT],
  [91, "mplsTopLabelPrefixLength", U],
  [92, "srcTrafficIndex", U],
  [93, "dstTrafficIndex", U],
  [94, "applicationDescription", STR],
  [95, "applicationId", OCT],
  [96, "applicationName", STR],
  [98, "postIpDiffServCodePoint", U],
  [99, "multicastReplicationFactor", U],
  [100, "className", STR],
  [101, "classificationEngineId", U],
  [102, "layer2packetSectionOffset", U],
  [103, "layer2packetSectionSize", U],
  [104, "layer2packetSectionData", OCT],
  [128, "bgpNextAdjacentAsNumber", U],
  [129, "bgpPrevAdjacentAsNumber", U],
  [130, "exporterIPv4Address", V4],
  [131, "exporterIPv6Address", V6],
  [132, "droppedOctetDeltaCount", U],
  [133, "droppedPacketDeltaCount", U],
  [134, "droppedOctetTotalCount", U],
  [135, "droppedPacketTotalCount", U],
  [136, "flowEndReason", U],
  [137, "commonPropertiesId", U],
  [138, "observationPointId", U],
  [139, "icmpTypeCodeIPv6", U],
  [140, "mplsTopLabelIPv6Address", V6],
  [141, "lineCardId", U],
  [142, "portId", U],
  [143, "meteringProcessId", U],
  [144, "exportingProcessId", U],
  [145, "templateId", U],
  [146, "wlanChannelId", U],
  [147, "wlanSSID", STR],
  [148, "flowId", U],
  [149, "observationDomainId", U],
  [150, "flowStartSeconds", DS],
  [151, "flowEndSeconds", DS],
  [152, "flowStartMilliseconds", DMS],
  [153, "flowEndMilliseconds", DMS],
  [154, "flowStartMicroseconds", NTP],
  [155, "flowEndMicroseconds", NTP],
  [156, "flowStartNanoseconds", NTP],
  [157, "flowEndNanoseconds", NTP],
  [158, "flowStartDeltaMicroseconds", U],
  [159, "flowEndDeltaMicroseconds", U],
  [160, "systemInitTimeMilliseconds", DMS],
  [161, "flowDurationMilliseconds", U],
  [162, "flowDurationMicroseconds", U],
  [163, "observedFlowTotalCount", U],
  [164, "ignoredPacketTotalCount", U],
  [165, "ignoredOctetTotalCount", U],
  [166, "notSentFlowTotalCount", U],
  [167, "notSentPacketTotalCount", U],
  [168, "notSentOctetTotalCount", U],
  [169, "destinationIPv6Prefix", V6],
  [170, "sourceIPv6Prefix", V6],
  [171, "postOctetTotalCount", U],
  [172, "postPacketTotalCount", U],
  [173, "flowKeyIndicator", U],
  [174, "postMCastPacketTotalCount", U],
  [175, "postMCastOctetTotalCount", U],
  [176, "icmpTypeIPv4", U],
  [177, "icmpCodeIPv4", U],
  [178, "icmpTypeIPv6", U],
  [179, "icmpCodeIPv6", U],
  [180, "udpSourcePort", U],
  [181, "udpDestinationPort", U],
  [182, "tcpSourcePort", U],
  [183, "tcpDestinationPort", U],
  [184, "tcpSequenceNumber", U],
  [185, "tcpAcknowledgementNumber", U],
  [186, "tcpWindowSize", U],
  [187, "tcpUrgentPointer", U],
  [188, "tcpHeaderLength", U],
  [189, "ipHeaderLength", U],
  [190, "totalLengthIPv4", U],
  [191, "payloadLengthIPv6", U],
  [192, "ipTTL", U],
  [193, "nextHeaderIPv6", U],
  [194, "mplsPayloadLength", U],
  [195, "ipDiffServCodePoint", U],
  [196, "ipPrecedence", U],
  [197, "fragmentFlags", U],
  [198, "octetDeltaSumOfSquares", U],
  [199, "octetTotalSumOfSquares", U],
  [200, "mplsTopLabelTTL", U],
  [201, "mplsLabelStackLength", U],
  [202, "mplsLabelStackDepth", U],
  [203, "mplsTopLabelExp", U],
  [204, "ipPayloadLength", U],
  [205, "udpMessageLength", U],
  [206, "isMulticast", U],
  [207, "ipv4IHL", U],
  [208, "ipv4Options", U],
  [209, "tcpOptions", U],
  [210, "paddingOctets", OCT],
  [211, "collectorIPv4Address", V4],
  [212, "collectorIPv6Address", V6],
  [213, "exportInterface", U],
  [214, "exportProtocolVersion", U],
  [215, "exportTransportProtocol", U],
  [216, "collectorTransportPort", U],
  [217, "exporterTransportPort", U],
  [218, "tcpSynTotalCount", U],
  [219, "tcpFinTotalCount", U],
  [220, "tcpRstTotalCount", U],
  [221, "tcpPshTotalCount", U],
  [222, "tcpAckTotalCount", U],
  [223, "tcpUrgTotalCount", U],
  [224, "ipTotalLength", U],
  [225, "postNATSourceIPv4Address", V4],
  [226, "postNATDestinationIPv4Address", V4],
  [227, "postNAPTSourceTransportPort", U],
  [228, "postNAPTDestinationTransportPort", U],
  [229, "natOriginatingAddressRealm", U],
  [230, "natEvent", U],
  [231, "initiatorOctets", U],
  [232, "responderOctets", U],
  [233, "firewallEvent", U],
  [234, "ingressVRFID", U],
  [235, "egressVRFID", U],
  [236, "VRFname", STR],
  [237, "postMplsTopLabelExp", U],
  [238, "tcpWindowScale", U],
  [239, "biflowDirection", U],
  [240, "ethernetHeaderLength", U],
  [241, "ethernetPayloadLength", U],
  [242, "ethernetTotalLength", U],
  [243, "dot1qVlanId", U],
  [244, "dot1qPriority", U],
  [245, "dot1qCustomerVlanId", U],
  [246, "dot1qCustomerPriority", U],
  [247, "metroEvcId", STR],
  [248, "metroEvcType", U],
  [249, "pseudoWireId", U],
  [250, "pseudoWireType", U],
  [251, "pseudoWireControlWord", U],
  [252, "ingressPhysicalInterface", U],
  [253, "egressPhysicalInterface", U],
  [254, "postDot1qVlanId", U],
  [255, "postDot1qCustomerVlanId", U],
  [256, "ethernetType", U],
  [257, "postIpPrecedence", U],
  [258, "collectionTimeMilliseconds", DMS],
  [259, "exportSctpStreamId", U],
  [260, "maxExportSeconds", DS],
  [261, "maxFlowEndSeconds", DS],
  [262, "messageMD5Checksum", OCT],
  [263, "messageScope", U],
  [264, "minExportSeconds", DS],
  [265, "minFlowStartSeconds", DS],
  [266, "opaqueOctets", OCT],
  [267, "sessionScope", U],
  [268, "maxFlowEndMicroseconds", NTP],
  [269, "maxFlowEndMilliseconds", DMS],
  [270, "maxFlowEndNanoseconds", NTP],
  [271, "minFlowStartMicroseconds", NTP],
  [272, "minFlowStartMilliseconds", DMS],
  [273, "minFlowStartNanoseconds", NTP],
  [274, "collectorCertificate", OCT],
  [275, "exporterCertificate", OCT],
  [276, "dataRecordsReliability", B],
  [277, "observationPointType", U],
  [278, "newConnectionDeltaCount", U],
  [279, "connectionSumDurationSeconds", U],
  [280, "connectionTransactionId", U],
  [281, "postNATSourceIPv6Address", V6],
  [282, "postNATDestinationIPv6Address", V6],
  [283, "natPoolId", U],
  [284, "natPoolName", STR],
  [285, "anonymizationFlags", U],
  [286, "anonymizationTechnique", U],
  [287, "informationElementIndex", U],
  [288, "p2pTechnology", STR],
  [289, "tunnelTechnology", STR],
  [290, "encryptedTechnology", STR],
  [291, "basicList", OCT],
  [292, "subTemplateList", OCT],
  [293, "subTemplateMultiList", OCT],
  [294, "bgpValidityState", U],
  [295, "IPSecSPI", U],
  [296, "greKey", U],
  [297, "natType", U],
  [298, "initiatorPackets", U],
  [299, "responderPackets", U],
  [300, "observationDomainName", STR],
  [301, "selectionSequenceId", U],
  [302, "selectorId", U],
  [303, "informationElementId", U],
  [304, "selectorAlgorithm", U],
  [305, "samplingPacketInterval", U],
  [306, "samplingPacketSpace", U],
  [307, "samplingTimeInterval", U],
  [308, "samplingTimeSpace", U],
  [309, "samplingSize", U],
  [310, "samplingPopulation", U],
  [311, "samplingProbability", F],
  [312, "dataLinkFrameSize", U],
  [313, "ipHeaderPacketSection", OCT],
  [314, "ipPayloadPacketSection", OCT],
  [315, "dataLinkFrameSection", OCT],
  [316, "mplsLabelStackSection", OCT],
  [317, "mplsPayloadPacketSection", OCT],
  [318, "selectorIdTotalPktsObserved", U],
  [319, "selectorIdTotalPktsSelected", U],
  [320, "absoluteError", F],
  [321, "relativeError", F],
  [322, "observationTimeSeconds", DS],
  [323, "observationTimeMilliseconds", DMS],
  [324, "observationTimeMicroseconds", NTP],
  [325, "observationTimeNanoseconds", NTP],
  [346, "privateEnterpriseNumber", U],
  [352, "layer2OctetDeltaCount", U],
  [353, "layer2OctetTotalCount", U],
  [361, "portRangeStart", U],
  [362, "portRangeEnd", U],
  [363, "portRangeStepSize", U],
  [364, "portRangeNumPorts", U],
];

/**
 * Vendor (enterprise) elements, `[PEN, id, name, type]`: one row makes an element of that exporter an
 * attribute `netflow.<lower_snake_case name>` decoded by its type instead of `netflow.field.<pen>.<id>`
 * hex. (Reverse elements, PEN 29305, need no rows: they are the IANA table's.)
 */
const VENDOR_TABLE: ReadonlyArray<readonly [number, number, string, ElementType]> = [];

/** Names the generic camelCase → snake_case rule gets wrong. */
const SNAKE_OVERRIDES: Record<string, string> = {
  ingressVRFID: "ingress_vrf_id",
  egressVRFID: "egress_vrf_id",
  VRFname: "vrf_name",
  IPSecSPI: "ipsec_spi",
  postMCastPacketDeltaCount: "post_mcast_packet_delta_count",
  postMCastOctetDeltaCount: "post_mcast_octet_delta_count",
  postMCastPacketTotalCount: "post_mcast_packet_total_count",
  postMCastOctetTotalCount: "post_mcast_octet_total_count",
  layer2packetSectionOffset: "layer2_packet_section_offset",
  layer2packetSectionSize: "layer2_packet_section_size",
  layer2packetSectionData: "layer2_packet_section_data",
  messageMD5Checksum: "message_md5_checksum",
};

/** SPEC §3 names that do not follow the generic rule. */
const KEY_OVERRIDES: Record<number, string> = { 58: "netflow.vlan.id" };

/** `postNATSourceIPv4Address` → `post_nat_source_ipv4_address`. */
function snakeCase(name: string): string {
  const override = SNAKE_OVERRIDES[name];
  if (override !== undefined) return override;
  return name
    .replace(/IPv([46])/g, "Ipv$1")
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1_$2")
    .toLowerCase();
}

/** Dense lookup by id (ids < 512; the table stops well below). */
const BY_ID: Array<ElementInfo | undefined> = new Array(512);
for (const [id, name, type] of TABLE) {
  const snake = snakeCase(name);
  BY_ID[id] = { id, name, type, snake, key: KEY_OVERRIDES[id] ?? "netflow." + snake };
}

const BY_NAME = new Map<string, ElementInfo>();
for (const info of BY_ID) if (info !== undefined) BY_NAME.set(info.name, info);

/** PEN × 65536 + id → vendor element. */
const BY_VENDOR_ID = new Map<number, ElementInfo>();
for (const [pen, id, name, type] of VENDOR_TABLE) {
  const snake = snakeCase(name);
  BY_VENDOR_ID.set(pen * 65536 + id, { id, name, type, snake, key: "netflow." + snake });
}

/** The IANA element named `name` (e.g. `octetDeltaCount`), or `undefined`. */
export function elementNamed(name: string): ElementInfo | undefined {
  return BY_NAME.get(name);
}

/** The vendor element `id` of enterprise `pen` from {@link VENDOR_TABLE}, or `undefined`. */
export function vendorElementInfo(pen: number, id: number): ElementInfo | undefined {
  return BY_VENDOR_ID.get(pen * 65536 + id);
}

/** The IANA element `id` (enterprise bit clear), or `undefined` when the table does not know it. */
export function elementInfo(id: number): ElementInfo | undefined {
  return id >= 0 && id < BY_ID.length ? BY_ID[id] : undefined;
}

/** Every known element, for documentation and tests. */
export function knownElements(): ElementInfo[] {
  return BY_ID.filter((e): e is ElementInfo => e !== undefined);
}
