/**
 * UDP datagrams out of a packet capture, for `netflow2traces replay`: classic pcap (either byte order,
 * micro- or nanosecond stamps) and pcapng (several sections and interfaces, any timestamp resolution), over
 * Ethernet (with 802.1Q/QinQ tags), Linux cooked (SLL, SLL2), raw IP and loopback link types, IPv4 and IPv6,
 * fragments reassembled. Pure: it reads through a callback, so a file of any size is never held whole.
 */
import { ipv4At, ipv6At } from "../netflow/addresses.ts";

/** One UDP datagram as it was captured. */
export interface CapturedDatagram {
  /** Capture time, epoch milliseconds. */
  timeMs: number;
  source: string;
  sourcePort: number;
  destinationPort: number;
  payload: Uint8Array;
}

/** What was passed over, by reason. */
export interface CaptureSkips {
  /** Frames that are not UDP over IPv4/IPv6 (ARP, TCP, ICMP, …). */
  notUdp: number;
  /** Frames cut by the capture's snap length: their datagram is incomplete. */
  snapped: number;
  /** Fragments whose datagram never completed. */
  fragments: number;
  /** Frames of a link type this reader does not know. */
  linkType: number;
}

/** The file is not a capture, or ends inside a record. */
export class CaptureError extends Error {}

/** Reads `length` bytes at `position`; fewer (or none) at the end of the file. */
export type ReadAt = (position: number, length: number) => Uint8Array;

const PCAP_MICRO = 0xa1b2c3d4, PCAP_NANO = 0xa1b23c4d;
const PCAPNG_SHB = 0x0a0d0d0a, PCAPNG_BYTE_ORDER = 0x1a2b3c4d;
/** Larger records are not frames: the file is damaged (libpcap's own limit is 256 KiB). */
const MAX_RECORD = 1 << 24;
/** Datagrams being reassembled at once; the oldest goes beyond this. */
const MAX_REASSEMBLIES = 1024;

const LINK = {
  null: 0,
  ethernet: 1,
  raw: 101,
  rawOpenBsd: 12,
  rawAlt: 14,
  loop: 108,
  sll: 113,
  ipv4: 228,
  ipv6: 229,
  sll2: 276,
};

/**
 * Every UDP datagram in the capture, in file order. Throws {@link CaptureError} for a file that is not a
 * capture, or (after the datagrams before it) for one that ends inside a record.
 */
export function* readCapture(read: ReadAt, skips: CaptureSkips = newSkips()): Generator<CapturedDatagram> {
  const head = read(0, 24);
  if (head.length < 24) throw new CaptureError("not a pcap or pcapng file: shorter than a file header");
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const frames = view.getUint32(0, false) === PCAPNG_SHB ? pcapngFrames(read) : pcapFrames(read, view);
  const ip = new IpReader(skips);
  for (const frame of frames) {
    if (frame.captured < frame.original) {
      skips.snapped++;
      continue;
    }
    const datagram = ip.frame(frame.linkType, frame.bytes, frame.timeMs);
    if (datagram) yield datagram;
  }
  skips.fragments += ip.pendingFragments();
}

export function newSkips(): CaptureSkips {
  return { notUdp: 0, snapped: 0, fragments: 0, linkType: 0 };
}

interface Frame {
  linkType: number;
  timeMs: number;
  bytes: Uint8Array;
  captured: number;
  original: number;
}

function* pcapFrames(read: ReadAt, head: DataView): Generator<Frame> {
  const magicLe = head.getUint32(0, true), magicBe = head.getUint32(0, false);
  const le = magicLe === PCAP_MICRO || magicLe === PCAP_NANO;
  if (!le && magicBe !== PCAP_MICRO && magicBe !== PCAP_NANO) {
    throw new CaptureError(`not a pcap or pcapng file: it starts with 0x${hex(head, 4)}`);
  }
  const nano = (le ? magicLe : magicBe) === PCAP_NANO;
  // The FCS-present bits live above the link type (pcap-linktype(7)).
  const linkType = head.getUint32(20, le) & 0x0fffffff;
  for (let at = 24;;) {
    const rec = read(at, 16);
    if (rec.length === 0) return;
    if (rec.length < 16) throw truncated(at);
    const r = new DataView(rec.buffer, rec.byteOffset, 16);
    const captured = r.getUint32(8, le), original = r.getUint32(12, le);
    if (captured > MAX_RECORD) {
      throw new CaptureError(`damaged capture: a record of ${captured} bytes at byte ${at}`);
    }
    const bytes = read(at + 16, captured);
    if (bytes.length < captured) throw truncated(at);
    const timeMs = r.getUint32(0, le) * 1000 + r.getUint32(4, le) / (nano ? 1e6 : 1e3);
    yield { linkType, timeMs, bytes, captured, original };
    at += 16 + captured;
  }
}

interface PcapngInterface {
  linkType: number;
  /** Timestamp units per millisecond. */
  unitsPerMs: number;
}

function* pcapngFrames(read: ReadAt): Generator<Frame> {
  let le = true;
  let interfaces: PcapngInterface[] = [];
  for (let at = 0;;) {
    const head = read(at, 12);
    if (head.length === 0) return;
    if (head.length < 12) throw truncated(at);
    const h = new DataView(head.buffer, head.byteOffset, 12);
    if (h.getUint32(0, false) === PCAPNG_SHB) {
      // A section header fixes the byte order of everything up to the next one.
      if (h.getUint32(8, true) === PCAPNG_BYTE_ORDER) le = true;
      else if (h.getUint32(8, false) === PCAPNG_BYTE_ORDER) le = false;
      else throw new CaptureError(`damaged pcapng: no byte-order magic in the section header at byte ${at}`);
      interfaces = [];
    }
    const type = h.getUint32(0, le), length = h.getUint32(4, le);
    if (length < 12 || length % 4 !== 0 || length > MAX_RECORD) {
      throw new CaptureError(`damaged pcapng: a block of ${length} bytes at byte ${at}`);
    }
    const block = read(at, length);
    if (block.length < length) throw truncated(at);
    const b = new DataView(block.buffer, block.byteOffset, length);
    if (type === 1) {
      interfaces.push({ linkType: b.getUint16(8, le), unitsPerMs: interfaceResolution(block, b, le) });
    } else if (type === 6 || type === 2) {
      // Enhanced (6) and obsolete (2) packet blocks: interface, 64-bit timestamp, lengths, data.
      const iface = interfaces[type === 6 ? b.getUint32(8, le) : b.getUint16(8, le)];
      const captured = b.getUint32(20, le), original = b.getUint32(24, le);
      if (iface && 28 + captured <= length) {
        const units = b.getUint32(12, le) * 2 ** 32 + b.getUint32(16, le);
        const bytes = block.subarray(28, 28 + captured);
        yield { linkType: iface.linkType, timeMs: units / iface.unitsPerMs, bytes, captured, original };
      }
    } else if (type === 3 && interfaces[0]) {
      // Simple packet block: interface 0, no timestamp.
      const original = b.getUint32(8, le);
      const captured = Math.min(original, length - 16);
      yield {
        linkType: interfaces[0].linkType,
        timeMs: 0,
        bytes: block.subarray(12, 12 + captured),
        captured,
        original,
      };
    }
    at += length;
  }
}

/** if_tsresol (option 9): 10^-n or, with the top bit set, 2^-n seconds; microseconds when absent. */
function interfaceResolution(block: Uint8Array, b: DataView, le: boolean): number {
  for (let p = 16; p + 4 <= block.length - 4;) {
    const code = b.getUint16(p, le), len = b.getUint16(p + 2, le);
    if (code === 0) break;
    if (code === 9 && len >= 1) {
      const v = block[p + 4];
      const perSecond = v & 0x80 ? 2 ** (v & 0x7f) : 10 ** v;
      return perSecond / 1000;
    }
    p += 4 + Math.ceil(len / 4) * 4;
  }
  return 1000;
}

/** Link layer → IP → UDP, with fragments reassembled (bounded). */
class IpReader {
  private readonly fragments = new Map<string, Reassembly>();

  constructor(private readonly skips: CaptureSkips) {}

  frame(linkType: number, f: Uint8Array, timeMs: number): CapturedDatagram | undefined {
    let at: number, etherType: number;
    switch (linkType) {
      case LINK.ethernet: {
        at = 14;
        etherType = u16(f, 12);
        // 802.1Q, 802.1ad and the old QinQ tag: four bytes each, any depth.
        while ((etherType === 0x8100 || etherType === 0x88a8 || etherType === 0x9100) && at + 4 <= f.length) {
          etherType = u16(f, at + 2);
          at += 4;
        }
        break;
      }
      case LINK.sll:
        at = 16, etherType = u16(f, 14);
        break;
      case LINK.sll2:
        at = 20, etherType = u16(f, 0);
        break;
      case LINK.null:
      case LINK.loop: {
        // The address family, in the capturing host's byte order (null) or network order (loop).
        const family = f.length < 4
          ? 0
          : linkType === LINK.loop
          ? u32(f, 0)
          : Math.min(u32(f, 0), u32le(f, 0));
        at = 4, etherType = family === 2 ? 0x0800 : [10, 24, 28, 30].includes(family) ? 0x86dd : 0;
        break;
      }
      case LINK.raw:
      case LINK.rawOpenBsd:
      case LINK.rawAlt:
      case LINK.ipv4:
      case LINK.ipv6:
        at = 0, etherType = f[0] >> 4 === 6 ? 0x86dd : 0x0800;
        break;
      default:
        this.skips.linkType++;
        return undefined;
    }
    const datagram: Datagram | null | undefined =
      etherType === 0x0800 && f.length >= at + 20 && f[at] >> 4 === 4
        ? this.ipv4(f.subarray(at))
        : etherType === 0x86dd && f.length >= at + 40 && f[at] >> 4 === 6
        ? this.ipv6(f.subarray(at))
        : undefined;
    if (datagram === undefined) this.skips.notUdp++;
    return datagram ? { timeMs, ...datagram } : undefined;
  }

  /** The datagram; null while it waits for more fragments; undefined when the packet is no UDP datagram. */
  private ipv4(p: Uint8Array): Datagram | null | undefined {
    const headerLength = (p[0] & 0x0f) * 4;
    const end = Math.min(p.length, u16(p, 2));
    if (p[9] !== 17) return undefined;
    const source = ipv4At(p, 12);
    const flags = u16(p, 6), offset = (flags & 0x1fff) * 8, more = (flags & 0x2000) !== 0;
    const body = p.subarray(headerLength, end);
    if (!more && offset === 0) return udp(source, body);
    const key = `4/${source}/${ipv4At(p, 16)}/${u16(p, 4)}`;
    const whole = this.reassemble(key, offset, more, body);
    return whole ? udp(source, whole) : null;
  }

  private ipv6(p: Uint8Array): Datagram | null | undefined {
    const source = ipv6At(p, 8);
    const end = Math.min(p.length, 40 + u16(p, 4));
    let next = p[6], at = 40;
    let fragment: { offset: number; more: boolean; id: number } | undefined;
    // Hop-by-hop, routing and destination options are skipped; a fragment header is remembered.
    while (at + 8 <= end) {
      if (next === 0 || next === 43 || next === 60) {
        [next, at] = [p[at], at + (p[at + 1] + 1) * 8];
      } else if (next === 44) {
        const field = u16(p, at + 2);
        fragment = { offset: field & 0xfff8, more: (field & 1) === 1, id: u32(p, at + 4) };
        [next, at] = [p[at], at + 8];
      } else break;
    }
    if (next !== 17) return undefined;
    const body = p.subarray(at, end);
    if (!fragment) return udp(source, body);
    const key = `6/${source}/${ipv6At(p, 24)}/${fragment.id}`;
    const whole = this.reassemble(key, fragment.offset, fragment.more, body);
    return whole ? udp(source, whole) : null;
  }

  private reassemble(key: string, offset: number, more: boolean, body: Uint8Array): Uint8Array | undefined {
    let r = this.fragments.get(key);
    if (!r) {
      if (this.fragments.size >= MAX_REASSEMBLIES) {
        this.fragments.delete(this.fragments.keys().next().value!);
        this.skips.fragments++;
      }
      this.fragments.set(key, r = { pieces: [], total: -1 });
    }
    r.pieces.push({ offset, bytes: body.slice() });
    if (!more) r.total = offset + body.length;
    if (r.total < 0) return undefined;
    r.pieces.sort((a, b) => a.offset - b.offset);
    let covered = 0;
    for (const piece of r.pieces) {
      if (piece.offset > covered) return undefined;
      covered = Math.max(covered, piece.offset + piece.bytes.length);
    }
    if (covered < r.total) return undefined;
    this.fragments.delete(key);
    const whole = new Uint8Array(r.total);
    for (const piece of r.pieces) whole.set(piece.bytes.subarray(0, r.total - piece.offset), piece.offset);
    return whole;
  }

  pendingFragments(): number {
    return this.fragments.size;
  }
}

interface Reassembly {
  pieces: { offset: number; bytes: Uint8Array }[];
  /** The datagram's length, once its last fragment is in. */
  total: number;
}

type Datagram = Omit<CapturedDatagram, "timeMs">;

function udp(source: string, u: Uint8Array): Datagram | undefined {
  if (u.length < 8) return undefined;
  const length = Math.min(u.length, Math.max(8, u16(u, 4)));
  return { source, sourcePort: u16(u, 0), destinationPort: u16(u, 2), payload: u.subarray(8, length) };
}

const u16 = (b: Uint8Array, at: number) => (b[at] << 8) | b[at + 1];
const u32 = (b: Uint8Array, at: number) =>
  ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
const u32le = (b: Uint8Array, at: number) => u32(Uint8Array.of(b[at + 3], b[at + 2], b[at + 1], b[at]), 0);

function hex(view: DataView, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += view.getUint8(i).toString(16).padStart(2, "0");
  return s;
}

function truncated(at: number): CaptureError {
  return new CaptureError(`the capture ends inside a record at byte ${at} (a cut-off file?)`);
}
