/** IANA "Assigned Internet Protocol Numbers": number → lowercase keyword, for `network.transport`. */
const KEYWORDS: Record<number, string> = {
  0: "hopopt",
  1: "icmp",
  2: "igmp",
  3: "ggp",
  4: "ipv4",
  5: "st",
  6: "tcp",
  8: "egp",
  9: "igp",
  17: "udp",
  27: "rdp",
  29: "iso-tp4",
  33: "dccp",
  41: "ipv6",
  43: "ipv6-route",
  44: "ipv6-frag",
  46: "rsvp",
  47: "gre",
  50: "esp",
  51: "ah",
  58: "ipv6-icmp",
  59: "ipv6-nonxt",
  60: "ipv6-opts",
  88: "eigrp",
  89: "ospfigp",
  94: "ipip",
  97: "etherip",
  98: "encap",
  103: "pim",
  108: "ipcomp",
  112: "vrrp",
  115: "l2tp",
  124: "isis",
  132: "sctp",
  135: "mobility-header",
  136: "udplite",
  137: "mpls-in-ip",
  139: "hip",
  140: "shim6",
  141: "wesp",
  142: "rohc",
  143: "ethernet",
};

/** The IANA keyword for `protocol`, or its decimal number when it has none we know. */
export function protocolName(protocol: number): string {
  return KEYWORDS[protocol] ?? String(protocol);
}

/** Protocols whose flow keys carry real source and destination ports. */
export function hasPorts(protocol: number | undefined): boolean {
  return protocol === undefined || protocol === 6 || protocol === 17 || protocol === 132 ||
    protocol === 136 || protocol === 33;
}

/** ICMP for IPv4 or IPv6: no ports; type and code instead (src/netflow/icmp.ts). */
export function isIcmp(protocol: number | undefined): boolean {
  return protocol === 1 || protocol === 58;
}
