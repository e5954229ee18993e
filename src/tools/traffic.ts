/**
 * Synthetic NetFlow v1/v5/v9 and IPFIX traffic: realistic flows and the export datagrams that carry them.
 * Pure and deterministic: the same seed and the same `nowMs` values give the same bytes. No I/O, so the
 * `send` subcommand, the benchmarks and the tests share it.
 *
 * ```ts
 * const gen = new TrafficGenerator({ version: 10, exporters: 2, ipv6: 0.25, sampling: 100, seed: 1 });
 * const d = gen.next(Date.now()); // d.payload: one datagram; d.flows: what it carries, in record order
 * ```
 *
 * The traffic: an office network (four client VLANs, a server VLAN) behind a router with two uplinks.
 * Clients talk HTTPS/QUIC/HTTP to the Internet, DNS to an internal resolver, SSH and databases to internal
 * servers; a few pings, NTP, SMTP, GRE and ESP. Each conversation gives one unidirectional flow (request or
 * response direction), with ephemeral client ports, plausible packet and byte counts, AS numbers, masks,
 * next hops and interfaces, and first/last switched times just before the export time, as a router with a
 * 15 s inactive and 60 s active timeout would report them.
 */
import {
  type EncodableFlow,
  encodeIpfix,
  encodeV1,
  encodeV5,
  encodeV9,
  flowRecord,
  IE,
  type SetSpec,
  standardTemplate,
  type Template,
} from "./encode.ts";

export type NetflowVersion = 1 | 5 | 9 | 10;

/** Flows per datagram by default: Cisco's v1/v5 maxima, and a v9/IPFIX packet below a 1500-byte MTU. */
export const DEFAULT_FLOWS_PER_PACKET: Record<NetflowVersion, number> = { 1: 24, 5: 30, 9: 20, 10: 20 };
/** Most flows a datagram may hold: v1/v5 by their formats; v9/IPFIX so that IPv6 datagrams stay < 64 KiB. */
export const MAX_FLOWS_PER_PACKET: Record<NetflowVersion, number> = { 1: 24, 5: 30, 9: 600, 10: 600 };

export interface TrafficOptions {
  version: NetflowVersion;
  /** Flow records per datagram (default {@link DEFAULT_FLOWS_PER_PACKET}). */
  flowsPerPacket?: number;
  /** Export streams: v9 source IDs / IPFIX observation domains 1…N, v5 engine IDs 0…N−1 (default 1). */
  exporters?: number;
  /** Share of IPv6 flows, 0…1 (v9/IPFIX only; default 0). */
  ipv6?: number;
  /** Templates (and options data) are re-sent when this much time has passed (default 60 s; 0: every datagram). */
  templateIntervalMs?: number;
  /** 1-in-N packet sampling: v5 header, v9/IPFIX options data (default: none). */
  sampling?: number;
  /** PRNG seed (default 1). */
  seed?: number;
}

/** One generated flow: what the encoder wrote, in the decoder's terms. */
export interface SyntheticFlow extends EncodableFlow {
  ipVersion: 4 | 6;
  srcAddr: string;
  dstAddr: string;
  protocol: number;
  packets: number;
  bytes: number;
  /** Short service label, e.g. `https`, `dns`. */
  service: string;
}

/** One export datagram and what is in it. */
export interface SyntheticDatagram {
  version: NetflowVersion;
  payload: Uint8Array;
  /** Export stream index (0-based). */
  exporter: number;
  /** v9 source ID, IPFIX observation domain ID, v5 engine ID; undefined for v1. */
  domainId?: number;
  sequence?: number;
  sysUptimeMs?: number;
  exportTimeMs: number;
  /** Flows in record order (IPv4 data set before IPv6 for v9/IPFIX). */
  flows: SyntheticFlow[];
  /** Template records carried (data and options templates). */
  templateRecords: number;
  /** Options data records carried (sampling). */
  optionsRecords: number;
}

/** Template ids used by the generator. */
export const TEMPLATE_IDS = { ipv4: 256, ipv6: 257, sampling: 258 } as const;

// ---------------------------------------------------------------------------------------------------------
// Randomness
// ---------------------------------------------------------------------------------------------------------

/** mulberry32: a small, fast, seedable PRNG with values in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Rng {
  readonly float: () => number;
  constructor(seed: number) {
    this.float = mulberry32(seed);
  }
  /** Integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.float() * (max - min + 1));
  }
  /** Integer in [min, max], skewed towards `min` (a few heavy hitters, a long tail). */
  skewed(min: number, max: number, power = 2.5): number {
    return min + Math.floor(Math.pow(this.float(), power) * (max - min + 1));
  }
  /** Log-uniform integer in [min, max] (packet counts span orders of magnitude). */
  logInt(min: number, max: number): number {
    return Math.min(max, Math.floor(min * Math.pow((max + 1) / min, this.float())));
  }
  chance(p: number): boolean {
    return this.float() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.float() * items.length)];
  }
  weighted<T extends { weight: number }>(items: readonly T[], total: number): T {
    let r = this.float() * total;
    for (const item of items) if ((r -= item.weight) < 0) return item;
    return items[items.length - 1];
  }
}

// ---------------------------------------------------------------------------------------------------------
// The network
// ---------------------------------------------------------------------------------------------------------

const TCP = 6, UDP = 17, ICMP = 1, ICMPV6 = 58, GRE = 47, ESP = 50;
/** TCP flag combinations. */
const FIN = 0x01, SYN = 0x02, RST = 0x04, PSH = 0x08, ACK = 0x10;

/** ifIndex of the client VLANs 1–4, the server VLAN and the two uplinks. */
const LAN_IF = [2, 3, 4, 5], SERVER_IF = 6, WAN_IF = [10, 11];
const LOCAL_AS = 64512;

interface Network {
  /** External networks: prefix builder and origin AS. */
  external: { as: number; v4: (h: number) => string; v6: (h: number) => string }[];
}

const NET: Network = {
  // Documentation prefixes stand in for the big content networks (the AS numbers are theirs).
  external: [
    { as: 15169, v4: (h) => `198.51.100.${h}`, v6: (h) => `2001:db8:f100::${h.toString(16)}` },
    { as: 13335, v4: (h) => `203.0.113.${h}`, v6: (h) => `2001:db8:f200::${h.toString(16)}` },
    { as: 16509, v4: (h) => `192.0.2.${h}`, v6: (h) => `2001:db8:f300::${h.toString(16)}` },
    {
      as: 8075,
      v4: (h) => `198.18.${h >> 4}.${(h * 7) & 0xff || 1}`,
      v6: (h) => `2001:db8:f400::${h.toString(16)}`,
    },
  ],
};

type Where = "internet" | "server" | "resolver";

interface Service {
  name: string;
  protocol: number;
  port: number;
  where: Where;
  weight: number;
  /** Packets: log-uniform range. */
  packets: [number, number];
  /** Mean packet size, request direction and response direction. */
  reqSize: [number, number];
  respSize: [number, number];
  /** Longest duration in ms (capped by the 60 s active timeout). */
  maxMs: number;
  tos?: number;
}

const SERVICES: Service[] = [
  {
    name: "https",
    protocol: TCP,
    port: 443,
    where: "internet",
    weight: 30,
    packets: [3, 4000],
    reqSize: [52, 400],
    respSize: [600, 1460],
    maxMs: 60_000,
  },
  {
    name: "quic",
    protocol: UDP,
    port: 443,
    where: "internet",
    weight: 8,
    packets: [4, 3000],
    reqSize: [60, 300],
    respSize: [900, 1350],
    maxMs: 60_000,
  },
  {
    name: "http",
    protocol: TCP,
    port: 80,
    where: "internet",
    weight: 4,
    packets: [3, 400],
    reqSize: [52, 500],
    respSize: [400, 1460],
    maxMs: 20_000,
  },
  {
    name: "dns",
    protocol: UDP,
    port: 53,
    where: "resolver",
    weight: 14,
    packets: [1, 2],
    reqSize: [60, 90],
    respSize: [80, 480],
    maxMs: 40,
  },
  {
    name: "ssh",
    protocol: TCP,
    port: 22,
    where: "server",
    weight: 3,
    packets: [12, 8000],
    reqSize: [52, 200],
    respSize: [52, 1400],
    maxMs: 60_000,
    tos: 0x10,
  },
  {
    name: "postgresql",
    protocol: TCP,
    port: 5432,
    where: "server",
    weight: 5,
    packets: [4, 2000],
    reqSize: [60, 600],
    respSize: [100, 1400],
    maxMs: 60_000,
  },
  {
    name: "mysql",
    protocol: TCP,
    port: 3306,
    where: "server",
    weight: 2,
    packets: [4, 1000],
    reqSize: [60, 500],
    respSize: [100, 1400],
    maxMs: 30_000,
  },
  {
    name: "redis",
    protocol: TCP,
    port: 6379,
    where: "server",
    weight: 2,
    packets: [4, 3000],
    reqSize: [60, 200],
    respSize: [60, 900],
    maxMs: 60_000,
  },
  {
    name: "elasticsearch",
    protocol: TCP,
    port: 9200,
    where: "server",
    weight: 1,
    packets: [4, 600],
    reqSize: [100, 900],
    respSize: [200, 1400],
    maxMs: 10_000,
  },
  {
    name: "https-alt",
    protocol: TCP,
    port: 8443,
    where: "internet",
    weight: 1,
    packets: [3, 300],
    reqSize: [52, 400],
    respSize: [400, 1400],
    maxMs: 10_000,
  },
  {
    name: "ntp",
    protocol: UDP,
    port: 123,
    where: "internet",
    weight: 1,
    packets: [1, 1],
    reqSize: [76, 76],
    respSize: [76, 76],
    maxMs: 0,
  },
  {
    name: "smtp",
    protocol: TCP,
    port: 25,
    where: "internet",
    weight: 1,
    packets: [8, 80],
    reqSize: [60, 1400],
    respSize: [60, 200],
    maxMs: 5_000,
  },
  {
    name: "imaps",
    protocol: TCP,
    port: 993,
    where: "internet",
    weight: 1,
    packets: [6, 300],
    reqSize: [60, 300],
    respSize: [100, 1400],
    maxMs: 60_000,
  },
  {
    name: "ping",
    protocol: ICMP,
    port: 0,
    where: "internet",
    weight: 3,
    packets: [1, 10],
    reqSize: [84, 84],
    respSize: [84, 84],
    maxMs: 10_000,
  },
  {
    name: "gre",
    protocol: GRE,
    port: 0,
    where: "internet",
    weight: 0.5,
    packets: [10, 5000],
    reqSize: [100, 1400],
    respSize: [100, 1400],
    maxMs: 60_000,
  },
  {
    name: "ipsec",
    protocol: ESP,
    port: 0,
    where: "internet",
    weight: 0.5,
    packets: [10, 5000],
    reqSize: [100, 1400],
    respSize: [100, 1400],
    maxMs: 60_000,
    tos: 0x28,
  },
];
const SERVICE_WEIGHT = SERVICES.reduce((n, s) => n + s.weight, 0);

interface Endpoint {
  addr: string;
  ifIndex: number;
  mask: number;
  as: number;
  /** Next hop towards this endpoint. */
  nextHop: string;
}

function clientEndpoint(rng: Rng, v6: boolean): Endpoint {
  const vlan = rng.skewed(0, 3, 1.5);
  const host = 10 + rng.skewed(0, 239, 3); // a few busy hosts, many quiet ones
  return {
    addr: v6 ? `2001:db8:1:${vlan + 1}::${host.toString(16)}` : `10.1.${vlan + 1}.${host}`,
    ifIndex: LAN_IF[vlan],
    mask: v6 ? 64 : 24,
    as: LOCAL_AS,
    nextHop: v6 ? "::" : "0.0.0.0", // directly connected
  };
}

function serverEndpoint(rng: Rng, service: Service, v6: boolean): Endpoint {
  if (service.where === "internet") {
    const net = NET.external[rng.skewed(0, NET.external.length - 1, 1.5)];
    const host = 1 + rng.skewed(0, 253, 2);
    return {
      addr: v6 ? net.v6(host) : net.v4(host),
      ifIndex: WAN_IF[net.as % 2],
      mask: v6 ? 48 : 24,
      as: net.as,
      nextHop: v6 ? "2001:db8:ffff::1" : "10.255.0.1",
    };
  }
  const host = service.where === "resolver" ? 53 : 5 + (service.port % 20) + rng.int(0, 3);
  return {
    addr: v6 ? `2001:db8:20::${host.toString(16)}` : `10.20.0.${host}`,
    ifIndex: SERVER_IF,
    mask: v6 ? 64 : 24,
    as: LOCAL_AS,
    nextHop: v6 ? "::" : "0.0.0.0",
  };
}

function tcpFlags(rng: Rng, packets: number, long: boolean, request: boolean): number {
  if (packets === 1) return request ? SYN : rng.chance(0.5) ? RST | ACK : SYN | ACK;
  if (long) return PSH | ACK; // cut by the active timeout: neither SYN nor FIN in this slice
  if (rng.chance(0.05)) return SYN | ACK | RST;
  return SYN | ACK | PSH | FIN;
}

/**
 * One flow ending at most 15 s before `uptimeMs` (inactive timeout), lasting up to 60 s (active timeout).
 * Uptime-relative times are 32-bit and wrap; absolute times (`startMs`/`endMs`) go with them.
 */
function makeFlow(rng: Rng, v6: boolean, exportTimeMs: number, uptimeMs: number): SyntheticFlow {
  const service = rng.weighted(SERVICES, SERVICE_WEIGHT);
  const client = clientEndpoint(rng, v6);
  const server = serverEndpoint(rng, service, v6);
  const request = rng.chance(0.5);
  const [src, dst] = request ? [client, server] : [server, client];

  const packets = rng.logInt(service.packets[0], service.packets[1]);
  const [lo, hi] = request ? service.reqSize : service.respSize;
  const bytes = packets * rng.int(lo, hi);
  const long = service.maxMs >= 60_000 && packets > 500 && rng.chance(0.6);
  const durationMs = packets === 1 ? 0 : long ? 60_000 : rng.logInt(1, Math.max(1, service.maxMs));
  const endAgoMs = long ? rng.int(0, 1_000) : rng.int(0, 15_000);
  const last = (uptimeMs - endAgoMs) >>> 0;
  const first = (last - durationMs) >>> 0;

  let protocol = service.protocol;
  let srcPort = 0, dstPort = 0;
  if (protocol === ICMP) {
    if (v6) protocol = ICMPV6;
    // NetFlow carries ICMP type and code in the destination port: echo request / echo reply.
    const [reqType, replyType] = v6 ? [128, 129] : [8, 0];
    dstPort = (request ? reqType : replyType) << 8;
  } else if (protocol === TCP || protocol === UDP) {
    const ephemeral = rng.int(32768, 60999);
    [srcPort, dstPort] = request ? [ephemeral, service.port] : [service.port, ephemeral];
  }
  const flow: SyntheticFlow = {
    ipVersion: v6 ? 6 : 4,
    service: service.name,
    srcAddr: src.addr,
    dstAddr: dst.addr,
    nextHop: dst.nextHop,
    inputIf: src.ifIndex,
    outputIf: dst.ifIndex,
    packets,
    bytes,
    firstSwitched: first,
    lastSwitched: last,
    startMs: exportTimeMs - endAgoMs - durationMs,
    endMs: exportTimeMs - endAgoMs,
    srcPort,
    dstPort,
    protocol,
    tcpFlags: protocol === TCP ? tcpFlags(rng, packets, long, request) : 0,
    tos: service.tos ?? (rng.chance(0.03) ? 0x28 : 0),
    srcAs: src.as,
    dstAs: dst.as,
    srcMask: src.mask,
    dstMask: dst.mask,
    direction: 0, // ingress: the router meters on input
  };
  return flow;
}

// ---------------------------------------------------------------------------------------------------------
// Exporters and datagrams
// ---------------------------------------------------------------------------------------------------------

interface ExporterState {
  index: number;
  /** Epoch ms at which this exporter booted (uptime 0). */
  bootMs: number;
  sequence: number;
  /** Export time of the last template refresh, or −Infinity. */
  templatesAtMs: number;
}

/** Generates export datagrams for one or more exporters, round-robin. */
export class TrafficGenerator {
  readonly version: NetflowVersion;
  readonly flowsPerPacket: number;
  readonly exporters: number;
  readonly ipv6: number;
  readonly templateIntervalMs: number;
  readonly sampling: number;
  readonly templates: { ipv4: Template; ipv6: Template; sampling: Template };
  #rng: Rng;
  #state: ExporterState[] = [];
  #turn = 0;

  constructor(options: TrafficOptions) {
    const v = options.version;
    if (![1, 5, 9, 10].includes(v)) throw new RangeError(`version must be 1, 5, 9 or 10, not ${v}`);
    this.version = v;
    this.flowsPerPacket = options.flowsPerPacket ?? DEFAULT_FLOWS_PER_PACKET[v];
    this.exporters = options.exporters ?? 1;
    this.ipv6 = options.ipv6 ?? 0;
    this.templateIntervalMs = options.templateIntervalMs ?? 60_000;
    this.sampling = options.sampling ?? 0;
    const max = MAX_FLOWS_PER_PACKET[v];
    if (!Number.isInteger(this.flowsPerPacket) || this.flowsPerPacket < 1 || this.flowsPerPacket > max) {
      throw new RangeError(`flows per packet must be 1–${max} for v${v}`);
    }
    if (!Number.isInteger(this.exporters) || this.exporters < 1 || this.exporters > 255) {
      throw new RangeError("exporters must be 1–255");
    }
    if (!(this.ipv6 >= 0 && this.ipv6 <= 1)) throw new RangeError("the IPv6 share must be 0–1");
    if (this.ipv6 > 0 && v < 9) throw new RangeError(`v${v} carries only IPv4 flows; IPv6 needs v9 or IPFIX`);
    if (!(this.templateIntervalMs >= 0)) throw new RangeError("the template interval must be ≥ 0");
    const maxSampling = v === 5 ? 0x3fff : 0xffffffff;
    if (!Number.isInteger(this.sampling) || this.sampling < 0 || this.sampling > maxSampling) {
      throw new RangeError(`sampling must be 0–${maxSampling} for v${v}`);
    }
    if (this.sampling > 0 && v === 1) throw new RangeError("v1 has no sampling field; use v5, v9 or IPFIX");

    const times = v === 10 ? "milliseconds" : "uptime";
    const extra = [{ id: IE.flowDirection, length: 1 }];
    this.templates = {
      ipv4: standardTemplate(4, { id: TEMPLATE_IDS.ipv4, times, extra }),
      ipv6: standardTemplate(6, { id: TEMPLATE_IDS.ipv6, times, extra }),
      sampling: v === 10
        ? {
          // Scope: the observation domain; systematic count-based sampling, 1 packet in every N.
          id: TEMPLATE_IDS.sampling,
          scopeFields: [{ id: 149, length: 4 }],
          fields: [{ id: 304, length: 2 }, { id: 305, length: 4 }, { id: 306, length: 4 }],
        }
        : {
          // Scope: the system (v9 scope type 1); samplingInterval (34), samplingAlgorithm (35).
          id: TEMPLATE_IDS.sampling,
          scopeFields: [{ id: 1, length: 4 }],
          fields: [{ id: 34, length: 4 }, { id: 35, length: 1 }],
        },
    };
    this.#rng = new Rng(options.seed ?? 1);
  }

  /** The next datagram, exported at `nowMs` (epoch ms) by the next exporter in turn. */
  next(nowMs: number): SyntheticDatagram {
    const rng = this.#rng;
    const index = this.#turn;
    this.#turn = (this.#turn + 1) % this.exporters;
    // Each exporter has been up for 1 hour to 20 days (well inside the 49.7-day 32-bit wrap).
    const st = this.#state[index] ??= {
      index,
      bootMs: nowMs - rng.int(3_600_000, 20 * 86_400_000),
      sequence: rng.int(0, 1_000_000),
      templatesAtMs: -Infinity,
    };
    const uptimeMs = Math.max(0, nowMs - st.bootMs) % 2 ** 32;
    // v9/IPFIX export time has whole seconds; v1/v5 carry milliseconds.
    const exportTimeMs = this.version >= 9 ? Math.floor(nowMs / 1000) * 1000 : nowMs;

    const flows: SyntheticFlow[] = [];
    for (let i = 0; i < this.flowsPerPacket; i++) {
      flows.push(makeFlow(rng, this.ipv6 > 0 && rng.chance(this.ipv6), exportTimeMs, uptimeMs));
    }
    const out: SyntheticDatagram = {
      version: this.version,
      payload: new Uint8Array(0),
      exporter: index,
      exportTimeMs,
      flows,
      templateRecords: 0,
      optionsRecords: 0,
    };

    if (this.version === 1) {
      out.sysUptimeMs = uptimeMs;
      out.payload = encodeV1({ sysUptimeMs: uptimeMs, exportTimeMs }, flows);
      return out;
    }
    if (this.version === 5) {
      out.sysUptimeMs = uptimeMs;
      out.domainId = index;
      out.sequence = st.sequence;
      out.payload = encodeV5({
        sysUptimeMs: uptimeMs,
        exportTimeMs,
        sequence: st.sequence,
        engineType: 0,
        engineId: index,
        samplingInterval: this.sampling || undefined,
      }, flows);
      st.sequence = (st.sequence + flows.length) >>> 0; // v5 counts flows
      return out;
    }

    const ipfix = this.version === 10;
    const domainId = index + 1;
    const sets: SetSpec[] = [];
    const padding = ipfix ? undefined : "align" as const; // v9 flowsets end on a 4-byte boundary
    if (exportTimeMs - st.templatesAtMs >= this.templateIntervalMs) {
      st.templatesAtMs = exportTimeMs;
      const data = this.ipv6 < 1 ? [this.templates.ipv4] : [];
      if (this.ipv6 > 0) data.push(this.templates.ipv6);
      sets.push({ type: "templates", templates: data, padding });
      out.templateRecords += data.length;
      if (this.sampling > 0) {
        const t = this.templates.sampling;
        const record = ipfix ? [domainId, 1, 1, this.sampling - 1] : [domainId, this.sampling, 1];
        sets.push({ type: "options", templates: [t], padding });
        sets.push({ type: "data", template: t, records: [record], padding });
        out.templateRecords += 1;
        out.optionsRecords += 1;
      }
    }
    const v4 = flows.filter((f) => f.ipVersion === 4), v6 = flows.filter((f) => f.ipVersion === 6);
    for (const [group, t] of [[v4, this.templates.ipv4], [v6, this.templates.ipv6]] as const) {
      if (group.length === 0) continue;
      sets.push({ type: "data", template: t, records: group.map((f) => flowRecord(f, t)), padding });
    }
    out.flows = [...v4, ...v6];
    out.domainId = domainId;
    out.sequence = st.sequence;
    if (ipfix) {
      out.payload = encodeIpfix({ exportTimeMs, sequence: st.sequence, observationDomainId: domainId }, sets);
      st.sequence = (st.sequence + flows.length + out.optionsRecords) >>> 0; // IPFIX counts data records
    } else {
      out.sysUptimeMs = uptimeMs;
      out.payload = encodeV9({
        sysUptimeMs: uptimeMs,
        exportTimeMs,
        sequence: st.sequence,
        sourceId: domainId,
      }, sets);
      st.sequence = (st.sequence + 1) >>> 0; // v9 counts packets
    }
    return out;
  }
}
