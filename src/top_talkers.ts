/**
 * Top talkers for the status page (`/api/top`): bytes (estimated when sampled) by source, destination,
 * conversation, service (protocol and port) and exporter interface, over the current minute and the 1, 5 or
 * 15 whole minutes before it.
 *
 * Bounded whatever the traffic: each dimension of each minute is a space-saving sketch (Metwally et al.,
 * 2005) that keeps at most {@link SKETCH_LIMIT} keys, pruned in batches to {@link SKETCH_KEEP} so an
 * insert costs one Map operation amortised. A key that enters after a prune starts at the sketch's floor
 * (the largest count ever pruned), which keeps the sketch's guarantee when pruning (no key outside it has
 * more); what is reported is what was counted since it entered, with that floor as `error`: it may have had
 * up to that much more. Every figure is exact while fewer than {@link SKETCH_LIMIT} keys arrive in a minute
 * (and nothing is sampled, below).
 *
 * Cheap whatever the rate: a sketch update costs about 1–2 µs (keys are strings), as much as a flow's whole
 * span, so above {@link UPDATES_PER_SECOND} flows a second the flows that update the sketches are chosen by
 * threshold sampling (Duffield, Lund and Thorup, "Charging from sampled network usage", IMW 2001): a flow of
 * `b` bytes is taken with probability min(1, b / z) and counted as max(b, z) bytes, which is unbiased and
 * keeps every flow of z bytes or more, so the top talkers stay right while small flows are thinned. z is set
 * each second from the second before; the window totals are always exact. Below the rate every flow counts.
 */
import type { ExportPacket, Flow } from "./netflow/types.ts";
import { estimatedCount } from "./traces/attributes.ts";
import { hasPorts, protocolName } from "./traces/protocols.ts";

/** The windows shown, in minutes. */
export const TOP_WINDOWS = [1, 5, 15] as const;
const SLOT_MS = 60_000;
/** 15 whole minutes and the current one. */
const SLOTS = 16;
/** Keys a sketch keeps after a prune, and the most it holds before one. */
export const SKETCH_KEEP = 100;
export const SKETCH_LIMIT = 2 * SKETCH_KEEP;
/** Sketch updates per second at most (about 1 % of a core); above it, threshold sampling. */
export const UPDATES_PER_SECOND = 2_000;
/** Rows per dimension the page shows, and a Worker hands over (more, so the merged top is right). */
export const TOP_ROWS = 10;
const WORKER_ROWS = 3 * TOP_ROWS;

export const DIMENSIONS = ["source", "destination", "conversation", "service", "interface"] as const;
export type Dimension = typeof DIMENSIONS[number];

/**
 * One key's figures, counted since it last entered the sketch: exact when `error` is 0, else the key may have
 * had up to `error` bytes more before (a lower bound; the page shows "≥").
 */
export interface TopRow {
  key: string;
  bytes: number;
  packets: number;
  flows: number;
  error: number;
  /** Interfaces: the bytes that came in on it and went out of it, and its name when known. */
  inBytes?: number;
  outBytes?: number;
  name?: string;
}

export interface TopWindow {
  minutes: number;
  /** The window covers [fromMs, toMs): the current minute and `minutes` whole minutes before it. */
  fromMs: number;
  toMs: number;
  /** Bytes and flows counted in the window (all keys, not only the top): exact. */
  bytes: number;
  flows: number;
  /** The rows' figures are estimates from threshold sampling (the rate was above {@link UPDATES_PER_SECOND}). */
  sampled: boolean;
  top: Record<Dimension, TopRow[]>;
}

interface Tally {
  bytes: number;
  packets: number;
  flows: number;
  error: number;
  inBytes: number;
  outBytes: number;
  name: string | undefined;
}

class Sketch {
  readonly tallies = new Map<string | number, Tally>();
  /** The largest count pruned so far: no key outside the sketch has more. */
  floor = 0;
  private readonly counts = new Float64Array(SKETCH_LIMIT);

  /** `weight`: the flows this one stands for (1, or more under threshold sampling). */
  add(key: string | number, bytes: number, packets: number, weight: number): Tally {
    let t = this.tallies.get(key);
    if (t === undefined) {
      if (this.tallies.size >= SKETCH_LIMIT) this.prune();
      const f = this.floor;
      t = { bytes: f, packets: 0, flows: 0, error: f, inBytes: 0, outBytes: 0, name: undefined };
      this.tallies.set(key, t);
    }
    t.bytes += bytes;
    t.packets += packets;
    t.flows += weight;
    return t;
  }

  private prune(): void {
    // The cut is the KEEP-th largest count (space-saving's order: with the floor), found by a numeric sort
    // of the counts alone; keys below it go, and the largest of them becomes the floor.
    const counts = this.counts;
    let i = 0;
    for (const t of this.tallies.values()) counts[i++] = t.bytes;
    counts.sort();
    const cut = counts[SKETCH_LIMIT - SKETCH_KEEP];
    let floor = this.floor;
    for (const [key, t] of this.tallies) {
      if (t.bytes < cut) {
        if (t.bytes > floor) floor = t.bytes;
        this.tallies.delete(key);
      }
    }
    // Ties at the cut: drop some of them too, so a prune always frees room.
    for (const [key, t] of this.tallies) {
      if (this.tallies.size <= SKETCH_KEEP) break;
      if (t.bytes === cut) {
        floor = Math.max(floor, cut);
        this.tallies.delete(key);
      }
    }
    this.floor = floor;
  }
}

interface Slot {
  startMs: number;
  bytes: number;
  flows: number;
  sampled: boolean;
  sketches: Sketch[];
}

function emptySlot(startMs: number): Slot {
  return { startMs, bytes: 0, flows: 0, sampled: false, sketches: DIMENSIONS.map(() => new Sketch()) };
}

export class TopTalkers {
  private readonly slots: Slot[] = Array.from({ length: SLOTS }, () => emptySlot(-1));
  /** Per window, its whole minutes merged (see {@link pastMinutes}); the newest minute recorded. */
  private readonly past: (PastMinutes | undefined)[] = [];
  private pastChanges = 0;
  private newest = -1;
  /** The sampling threshold z in bytes (0: every flow counts), and the second it is measured over. */
  private threshold = 0;
  private second = 0;
  private secondFlows = 0;
  private secondBytes = 0;

  record(packet: ExportPacket): void {
    const flows = packet.flows;
    if (flows.length === 0) return;
    const ms = packet.receivedAtMs;
    const slot = this.slotFor(ms);
    if (Math.floor(ms / 1_000) !== this.second) this.nextSecond(Math.floor(ms / 1_000));
    const z = this.threshold;
    if (z > 0) slot.sampled = true;
    const [source, destination, conversation, service, iface] = slot.sketches;
    const exporter = packet.exporterAddress;
    let packetBytes = 0;
    for (let i = 0; i < flows.length; i++) {
      const f = flows[i];
      const interval = f.samplingInterval !== undefined && f.samplingInterval > 1 ? f.samplingInterval : 1;
      let bytes = f.bytes === undefined ? 0 : interval === 1 ? f.bytes : estimatedCount(f.bytes, interval);
      let packets = f.packets === undefined
        ? 0
        : interval === 1
        ? f.packets
        : estimatedCount(f.packets, interval);
      packetBytes += bytes;
      let weight = 1;
      if (bytes < z) {
        if (Math.random() * z >= bytes) continue; // not taken (probability 1 − bytes / z)
        weight = z / bytes;
        bytes = z;
        packets *= weight;
      }
      const src = f.srcAddr, dst = f.dstAddr;
      if (src !== undefined) source.add(src, bytes, packets, weight);
      if (dst !== undefined) destination.add(dst, bytes, packets, weight);
      if (src !== undefined && dst !== undefined) {
        conversation.add(src < dst ? `${src} ↔ ${dst}` : `${dst} ↔ ${src}`, bytes, packets, weight);
      }
      if (f.protocol !== undefined) service.add(serviceKey(f), bytes, packets, weight);
      if (f.inputIf !== undefined) {
        const t = iface.add(`${exporter} ${f.inputIf}`, bytes, packets, weight);
        t.inBytes += bytes;
        nameFrom(t, f, "netflow.interface.input.name");
      }
      if (f.outputIf !== undefined) {
        const t = iface.add(`${exporter} ${f.outputIf}`, bytes, packets, weight);
        t.outBytes += bytes;
        nameFrom(t, f, "netflow.interface.output.name");
      }
    }
    slot.bytes += packetBytes;
    slot.flows += flows.length;
    this.secondBytes += packetBytes;
    this.secondFlows += flows.length;
  }

  /**
   * The threshold for the coming second from the one before: z = bytes / {@link UPDATES_PER_SECOND} takes
   * at most that many flows on average (Σ min(1, b / z) ≤ Σ b / z), and fewer the heavier the tail.
   */
  private nextSecond(second: number): void {
    const busy = second === this.second + 1 && this.secondFlows > UPDATES_PER_SECOND;
    this.threshold = busy ? this.secondBytes / UPDATES_PER_SECOND : 0;
    this.second = second;
    this.secondFlows = this.secondBytes = 0;
  }

  /**
   * Each window's top keys per dimension (more than the page shows: see {@link mergeTopWindows}); `only`:
   * just the window of that many minutes (what the page shows: a third of the work).
   */
  windows(nowMs: number, only?: number): TopWindow[] {
    const current = slotStart(nowMs);
    const now = this.slots.find((s) => s.startMs === current);
    const windows = TOP_WINDOWS.filter((m) => only === undefined || m === only);
    return windows.map((minutes) => {
      const w = TOP_WINDOWS.indexOf(minutes);
      const fromMs = current - minutes * SLOT_MS;
      const past = this.pastMinutes(w, fromMs, current);
      const top = {} as Record<Dimension, TopRow[]>;
      DIMENSIONS.forEach((d, i) => (top[d] = topRows(withCurrent(past.merged[i], now?.sketches[i]), d)));
      return {
        minutes,
        fromMs,
        toMs: current + SLOT_MS,
        bytes: past.bytes + (now?.bytes ?? 0),
        flows: past.flows + (now?.flows ?? 0),
        sampled: past.sampled || (now?.sampled ?? false),
        top,
      };
    });
  }

  /**
   * The whole minutes of window `w` merged, kept until the minute turns (or a late datagram changes one), so
   * a poll merges only the current minute into them: a few hundred keys instead of up to 16 × 200.
   */
  private pastMinutes(w: number, fromMs: number, current: number): PastMinutes {
    const cached = this.past[w];
    if (cached !== undefined && cached.current === current && cached.changes === this.pastChanges) {
      return cached;
    }
    const slots = this.slots.filter((s) => s.startMs >= fromMs && s.startMs < current);
    const merged: PastMinutes = {
      current,
      changes: this.pastChanges,
      merged: DIMENSIONS.map((_, i) => mergeSketches(slots.map((s) => s.sketches[i]))),
      bytes: slots.reduce((n, s) => n + s.bytes, 0),
      flows: slots.reduce((n, s) => n + s.flows, 0),
      sampled: slots.some((s) => s.sampled),
    };
    this.past[w] = merged;
    return merged;
  }

  /** Keys held over all minutes and dimensions (the memory bound: at most 16 × 5 × {@link SKETCH_LIMIT}). */
  size(): number {
    let n = 0;
    for (const s of this.slots) for (const k of s.sketches) n += k.tallies.size;
    return n;
  }

  private slotFor(ms: number): Slot {
    const start = slotStart(ms);
    const index = Math.floor(start / SLOT_MS) % SLOTS;
    let slot = this.slots[index];
    if (slot.startMs !== start) {
      // A datagram older than the slot's minute (clock step back) counts in the newer minute.
      if (slot.startMs > start) return slot;
      slot = this.slots[index] = emptySlot(start);
    }
    if (start < this.newest) this.pastChanges++; // a late datagram: the merged past minutes are stale
    else this.newest = start;
    return slot;
  }
}

function slotStart(ms: number): number {
  return Math.floor(ms / SLOT_MS) * SLOT_MS;
}

function serviceKey(f: Flow): number {
  const protocol = f.protocol!;
  // The service of a flow with ports is the lower of the two (the well-known side, mostly).
  if (!hasPorts(protocol) || f.srcPort === undefined || f.dstPort === undefined) return protocol * 65_536;
  return protocol * 65_536 + Math.min(f.srcPort, f.dstPort);
}

function serviceName(key: number): string {
  const protocol = Math.floor(key / 65_536), port = key % 65_536;
  return hasPorts(protocol) ? `${protocolName(protocol)}/${port}` : protocolName(protocol);
}

function nameFrom(t: Tally, f: Flow, key: string): void {
  const name = f.extra?.[key];
  if (typeof name === "string") t.name = name;
}

/** Several minutes' sketches as one: bytes as counted (without the floors keys entered with), with errors. */
interface Merged {
  tallies: Map<string | number, Tally>;
  /** The sum of the minutes' floors: what a key absent from all of them may have had. */
  floors: number;
  /** The largest keys first, {@link WORKER_ROWS} of them. */
  top: [string | number, Tally][];
}

interface PastMinutes {
  current: number;
  changes: number;
  merged: Merged[];
  bytes: number;
  flows: number;
  sampled: boolean;
}

/** The minutes' sketches as one: figures added; a key missing from a minute may have had up to its floor. */
function mergeSketches(sketches: Sketch[]): Merged {
  const out = new Map<string | number, Tally>();
  let floors = 0;
  for (const s of sketches) floors += s.floor;
  for (const s of sketches) {
    for (const [key, t] of s.tallies) {
      let m = out.get(key);
      if (m === undefined) {
        m = { bytes: 0, packets: 0, flows: 0, error: floors, inBytes: 0, outBytes: 0, name: undefined };
        out.set(key, m);
      }
      // Counted: the floor a key entered with is its error, not its bytes; and this minute's own error
      // replaces the floor counted for it above.
      add(m, t, t.bytes - t.error, t.error - s.floor);
    }
  }
  return { tallies: out, floors, top: largest(out) };
}

/** Adds the figures of `t` to `m`: `bytes` of them counted, and `m`'s error grows by `error`. */
function add(m: Tally, t: Tally, bytes: number, error: number): void {
  m.bytes += bytes;
  m.packets += t.packets;
  m.flows += t.flows;
  m.error += error;
  m.inBytes += t.inBytes;
  m.outBytes += t.outBytes;
  m.name = t.name ?? m.name;
}

/**
 * The past minutes with the current one. Exact, merging only a few hundred keys: a key can be in the
 * top only if it is in the past minutes' top or in the current minute (its past figure is then looked up).
 */
function withCurrent(past: Merged, now: Sketch | undefined): [string | number, Tally][] {
  if (now === undefined || now.tallies.size === 0) return past.top;
  const out = new Map<string | number, Tally>();
  const start = (key: string | number): Tally => {
    let m = out.get(key);
    if (m === undefined) {
      const p = past.tallies.get(key);
      m = {
        bytes: 0,
        packets: 0,
        flows: 0,
        error: p === undefined ? past.floors : 0,
        inBytes: 0,
        outBytes: 0,
        name: undefined,
      };
      if (p !== undefined) add(m, p, p.bytes, p.error);
      m.error += now.floor; // replaced by the current minute's own error if the key is in it
      out.set(key, m);
    }
    return m;
  };
  for (const [key] of past.top) start(key);
  for (const [key, t] of now.tallies) add(start(key), t, t.bytes - t.error, t.error - now.floor);
  return largest(out);
}

function largest(tallies: Map<string | number, Tally>): [string | number, Tally][] {
  return [...tallies].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, WORKER_ROWS);
}

function topRows(sorted: [string | number, Tally][], dimension: Dimension): TopRow[] {
  return sorted.map(([key, t]) => {
    const row: TopRow = {
      key: typeof key === "number" ? serviceName(key) : key,
      bytes: Math.round(t.bytes),
      packets: Math.round(t.packets),
      flows: Math.round(t.flows),
      error: Math.round(t.error),
    };
    if (dimension === "interface") {
      row.inBytes = Math.round(t.inBytes);
      row.outBytes = Math.round(t.outBytes);
      if (t.name !== undefined) row.name = t.name;
    }
    return row;
  });
}

/**
 * The Workers' windows as one (sharding is by exporter, so a host's bytes may be in several): rows of the
 * same key added, the top {@link TOP_ROWS} kept. Each Worker hands over three times as many rows, and a key
 * outside one Worker's rows adds nothing from it, so only a key spread thinly over many Workers is under.
 */
export function mergeTopWindows(lists: readonly (readonly TopWindow[])[]): TopWindow[] {
  const minutesPresent = TOP_WINDOWS.filter((m) => lists.some((l) => l.some((w) => w.minutes === m)));
  return minutesPresent.map((minutes) => {
    const parts = lists.map((l) => l.find((w) => w.minutes === minutes)).filter((p) => p !== undefined);
    const top = {} as Record<Dimension, TopRow[]>;
    for (const d of DIMENSIONS) {
      const byKey = new Map<string, TopRow>();
      for (const p of parts) {
        for (const r of p.top[d]) {
          const m = byKey.get(r.key);
          if (m === undefined) byKey.set(r.key, { ...r });
          else {
            m.bytes += r.bytes;
            m.packets += r.packets;
            m.flows += r.flows;
            m.error += r.error;
            if (r.inBytes !== undefined) m.inBytes = (m.inBytes ?? 0) + r.inBytes;
            if (r.outBytes !== undefined) m.outBytes = (m.outBytes ?? 0) + r.outBytes;
            m.name ??= r.name;
          }
        }
      }
      // Ties in key order: the Workers answer in any order, and the page's rows should not swap places
      // between refreshes when nothing changed.
      top[d] = [...byKey.values()].sort((a, b) =>
        b.bytes - a.bytes || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
      )
        .slice(0, TOP_ROWS);
    }
    return {
      minutes,
      fromMs: Math.min(...parts.map((p) => p.fromMs)),
      toMs: Math.max(...parts.map((p) => p.toMs)),
      bytes: parts.reduce((n, p) => n + p.bytes, 0),
      flows: parts.reduce((n, p) => n + p.flows, 0),
      sampled: parts.some((p) => p.sampled),
      top,
    };
  });
}
