/**
 * The spool (`NETFLOW_SPOOL_DIR`): export requests the backend has not accepted yet, one file each, so an
 * outage that spans a restart, a SIGKILL or a power cut loses nothing that was queued.
 *
 * A file is written whole before the request's first send (write to a temporary name, fsync, rename, fsync
 * the directory: a crash leaves either no file or a complete one), deleted once the backend accepts the
 * request, and read back oldest first after a restart. The body is the uncompressed protobuf request, so a
 * spool written over gRPC replays over HTTP too, byte for byte what the first attempt sent.
 *
 * File: a 32-byte header (`N2TSPOL1`, flags, spans, flows, body length, CRC-32 of the body, reserved), then
 * the body. Names are the batch's sequence number, so the directory lists in sending order.
 */
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmdirSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import * as zlib from "node:zlib";

export interface SpoolEntry {
  seq: number;
  path: string;
  /** File size, header included. */
  bytes: number;
  spans: number;
  flows: number;
  /** The first span continues a packet whose first spans are in the previous batch. */
  continued: boolean;
  /** The last span's packet goes on in the next batch. */
  endsInside: boolean;
}

/** Why a file in the directory was not taken (the caller logs it). */
export interface SpoolSkip {
  file: string;
  reason: string;
}

const MAGIC = "N2TSPOL1";
const HEADER_BYTES = 32;
const FLAG_CONTINUED = 1, FLAG_ENDS_INSIDE = 2;
const NAME = /^(\d{16})\.otlp$/;
const TEMP = /^\.\d{16}\.tmp$/;

export class Spool {
  /** Bytes of all batch files, and how many there are. */
  bytes = 0;
  batches = 0;
  private nextSeq = 1;

  constructor(readonly dir: string) {}

  /**
   * Creates the directory if needed and lists the batches a previous run left, oldest first. Half-written
   * temporary files (a crash during a write) are removed; anything else unreadable is skipped and reported.
   */
  open(): { entries: SpoolEntry[]; skipped: SpoolSkip[] } {
    mkdirSync(this.dir, { recursive: true });
    const entries: SpoolEntry[] = [], skipped: SpoolSkip[] = [];
    for (const file of readdirSync(this.dir).sort()) {
      const path = join(this.dir, file);
      if (TEMP.test(file)) {
        try {
          unlinkSync(path);
        } catch { /* gone already */ }
        continue;
      }
      const m = NAME.exec(file);
      if (!m) {
        skipped.push({ file, reason: "not a spool batch file" });
        continue;
      }
      const entry = this.readHeader(path, Number(m[1]));
      if (typeof entry === "string") {
        skipped.push({ file, reason: entry });
        continue;
      }
      entries.push(entry);
      this.bytes += entry.bytes;
      this.batches++;
      this.nextSeq = Math.max(this.nextSeq, entry.seq + 1);
    }
    return { entries, skipped };
  }

  /** Writes one batch durably. Throws on I/O errors (disk full, permissions). */
  add(body: Uint8Array, spans: number, flows: number, continued: boolean, endsInside: boolean): SpoolEntry {
    const seq = this.nextSeq++;
    const name = String(seq).padStart(16, "0");
    const path = join(this.dir, `${name}.otlp`);
    const temp = join(this.dir, `.${name}.tmp`);
    const header = new Uint8Array(HEADER_BYTES);
    const view = new DataView(header.buffer);
    for (let i = 0; i < MAGIC.length; i++) header[i] = MAGIC.charCodeAt(i);
    view.setUint32(8, (continued ? FLAG_CONTINUED : 0) | (endsInside ? FLAG_ENDS_INSIDE : 0), true);
    view.setUint32(12, spans, true);
    view.setUint32(16, flows, true);
    view.setUint32(20, body.length, true);
    view.setUint32(24, crc32(body), true);
    const fd = openSync(temp, "w");
    try {
      writeAll(fd, header);
      writeAll(fd, body);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
    syncDirectory(this.dir);
    const entry = { seq, path, bytes: HEADER_BYTES + body.length, spans, flows, continued, endsInside };
    this.bytes += entry.bytes;
    this.batches++;
    return entry;
  }

  /** The body of a batch, or a reason why it cannot be read (missing, truncated, CRC mismatch). */
  read(entry: SpoolEntry): Uint8Array | string {
    let data: Uint8Array;
    try {
      data = readFileSync(entry.path);
    } catch (err) {
      return (err as Error).message;
    }
    if (data.length !== entry.bytes) return `size changed (${data.length} bytes, expected ${entry.bytes})`;
    const body = data.subarray(HEADER_BYTES);
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    if (crc32(body) !== view.getUint32(24, true)) return "checksum mismatch";
    return body;
  }

  /** Deletes a batch file (delivered, rejected or evicted). */
  remove(entry: SpoolEntry): void {
    try {
      unlinkSync(entry.path);
    } catch { /* already gone: nothing to free */ }
    this.bytes -= entry.bytes;
    this.batches--;
  }

  private readHeader(path: string, seq: number): SpoolEntry | string {
    let size: number;
    const header = new Uint8Array(HEADER_BYTES);
    try {
      size = statSync(path).size;
      const fd = openSync(path, "r");
      try {
        if (readSync(fd, header, 0, HEADER_BYTES, 0) !== HEADER_BYTES) return "shorter than a header";
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      return (err as Error).message;
    }
    for (let i = 0; i < MAGIC.length; i++) {
      if (header[i] !== MAGIC.charCodeAt(i)) return "not a spool batch file (bad magic)";
    }
    const view = new DataView(header.buffer);
    const length = view.getUint32(20, true);
    if (size !== HEADER_BYTES + length) {
      return `truncated (${size} bytes, header says ${HEADER_BYTES + length})`;
    }
    return {
      seq,
      path,
      bytes: size,
      continued: (view.getUint32(8, true) & FLAG_CONTINUED) !== 0,
      endsInside: (view.getUint32(8, true) & FLAG_ENDS_INSIDE) !== 0,
      spans: view.getUint32(12, true),
      flows: view.getUint32(16, true),
    };
  }
}

const WORKER_DIR = /^worker-(\d+)$/;

/** Where Worker `index` of `count` keeps its spool: the directory itself for one, `worker-N` inside for several. */
export function workerSpoolDir(base: string, index: number, count: number): string {
  return count === 1 ? base : join(base, `worker-${index}`);
}

/**
 * Run before the Workers open their spools: batches that a run with another NETFLOW_WORKERS left where no
 * Worker of this run looks (the directory itself when there are several Workers now, `worker-N` directories
 * beyond the new count, or all of them when there is one) are handed on, so a change of Worker count loses
 * nothing. Each chain of batches (a packet's spans may straddle batches) goes whole, in order, to the Worker
 * holding the fewest bytes then, so no Worker receives more than its share of NETFLOW_SPOOL_MAX_BYTES
 * evicts at once. Moved batches are renumbered after those already there. Returns how many moved.
 */
export function adoptSpools(base: string, count: number): number {
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return 0; // no spool yet
  }
  const orphans: string[] = [];
  if (count > 1 && names.some((n) => NAME.test(n))) orphans.push(base);
  for (const name of names.sort()) {
    const m = WORKER_DIR.exec(name);
    if (m && (count === 1 || Number(m[1]) >= count)) orphans.push(join(base, name));
  }
  if (orphans.length === 0) return 0;
  const targets = Array.from({ length: count }, (_, i) => {
    const dir = workerSpoolDir(base, i, count);
    mkdirSync(dir, { recursive: true });
    let bytes = 0, next = 1;
    for (const name of readdirSync(dir)) {
      const m = NAME.exec(name);
      if (!m) continue;
      next = Math.max(next, Number(m[1]) + 1);
      try {
        bytes += statSync(join(dir, name)).size;
      } catch { /* gone */ }
    }
    return { dir, bytes, next, moved: false };
  });
  let moved = 0;
  for (const dir of orphans) {
    // open() lists the readable batches oldest first (and removes half-written temporary files).
    const entries = new Spool(dir).open().entries;
    let chain: SpoolEntry[] = [];
    const place = () => {
      if (chain.length === 0) return;
      const t = targets.reduce((a, b) => (b.bytes < a.bytes ? b : a));
      for (const e of chain) {
        renameSync(e.path, join(t.dir, `${String(t.next++).padStart(16, "0")}.otlp`));
        t.bytes += e.bytes;
        moved++;
      }
      t.moved = true;
      chain = [];
    };
    for (const e of entries) {
      // A batch that does not continue the previous one (or follows one that ended a packet) starts a chain.
      const previous = chain.at(-1);
      if (previous !== undefined && !(e.continued && previous.endsInside && e.seq === previous.seq + 1)) {
        place();
      }
      chain.push(e);
    }
    place();
    if (dir !== base) {
      try {
        rmdirSync(dir);
      } catch { /* something else lives there: leave it */ }
    }
  }
  for (const t of targets) if (t.moved) syncDirectory(t.dir);
  return moved;
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off, bytes.length - off);
}

/** Makes the rename itself durable (POSIX); a platform that cannot open a directory skips it. */
function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    /* not supported here (e.g. Windows) */
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

let crcTable: Uint32Array | undefined;

/** zlib's native CRC-32 where the runtime has it (Deno, Node ≥ 22); the table loop below elsewhere. */
const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;

/** CRC-32 (IEEE 802.3, as zlib), to tell a damaged batch file from a good one. */
function crc32(bytes: Uint8Array): number {
  if (nativeCrc32) return nativeCrc32(bytes) >>> 0;
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = crcTable[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
