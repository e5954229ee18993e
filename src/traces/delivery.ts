/**
 * Delivery of encoded export requests: the unit that is sent, retried, spooled and replayed is one request's
 * bytes, so a retry is byte-identical and a trace stays whole however its packet was split (the IDs were
 * fixed when it was encoded).
 *
 * - A request waits and is retried with capped exponential backoff (or the backend's Retry-After /
 *   RetryInfo) until the backend takes it: an outage of any length loses nothing while there is room.
 *   Only a request the backend calls malformed (HTTP 400, gRPC INVALID_ARGUMENT) is dropped at once.
 * - While the backend fails, one request probes at a time; the first success restores full concurrency.
 * - With a spool, every request is on disk before its first send and deleted once accepted; when the spool
 *   is full, the oldest whole packets go (counted), strictly oldest first: a request in flight leaves the
 *   spool too, and counts as dropped unless its answer is a success. Without one, the sink refuses new packets when the
 *   queue is full (the newest are dropped, whole), so a trace is never cut by the bound.
 * - Trouble is logged at once and then at most once a minute; recovery once (see {@link ExportMonitor}).
 */
import type { Logger } from "../log.ts";
import {
  countDropped,
  countExportResult,
  countLost,
  countReleased,
  countRestored,
  countRetry,
  type ExportCounters,
} from "../counters.ts";
import { type ExportStatus, initialExportStatus } from "./export_status.ts";
import type { Spool, SpoolEntry } from "./spool.ts";
import type { ExportProblem, SendOutcome, Transport } from "./transport.ts";
import type { EncodedTraceRequest } from "./otlp_encoder.ts";

/** One export request: its bytes (in memory, or only in the spool), and what it holds. */
interface Batch {
  seq: number;
  body?: Uint8Array;
  spans: number;
  flows: number;
  /** Its first span continues a packet whose first spans are in the batch before it. */
  continued: boolean;
  /** Its last packet goes on in the batch after it. */
  endsInside: boolean;
  spool?: SpoolEntry;
  /** Called once when the request is done with (accepted, failed, evicted or lost). */
  done?: () => void;
  /** Evicted from the spool while in flight: dropped when its answer is not a success. */
  evicted?: boolean;
}

export interface DeliveryOptions {
  transport: Transport;
  /** Per attempt (OTEL_EXPORTER_OTLP_TIMEOUT). */
  timeoutMs: number;
  /** Requests in flight at once while the backend answers. */
  concurrency: number;
  /** Spans whose request bytes may stay in memory (OTEL_BSP_MAX_QUEUE_SIZE); the spool holds the rest. */
  memorySpans: number;
  spool?: { store: Spool; maxBytes: number };
  /** Shown in log lines. */
  endpoint: string;
  log: Logger;
  /** Called with a request's bytes once nothing refers to them any more (buffer recycling). */
  release?: (body: Uint8Array) => void;
  counters: ExportCounters;
  now?: () => number;
}

/** Backoff between attempts while the backend fails: doubles from the first, up to the cap. */
export const RETRY_INITIAL_MS = 250;
const RETRY_MAX_MS = 5_000;
/** A Retry-After longer than this is not waited for in full. */
const RETRY_AFTER_MAX_MS = 60_000;
/** How often shutdown looks whether everything was delivered. */
const DRAIN_POLL_MS = 20;
/** While failing: one WARN line at the first failure, then at most one per this interval. */
const FAILING_LOG_INTERVAL_MS = 60_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class Delivery {
  /** Waiting requests, in sending order (seq). */
  private readonly queue: Batch[] = [];
  /** Requests in flight and not evicted, in the order they were sent. */
  private readonly sending: Batch[] = [];
  private inFlight = 0;
  private seq = 0;
  private resumeAt = 0;
  private wakeTimer: ReturnType<typeof setTimeout> | undefined;
  /** Spans whose bytes are in memory (queued or in flight): what OTEL_BSP_MAX_QUEUE_SIZE bounds. */
  residentSpans = 0;
  private closed = false;
  readonly monitor: ExportMonitor;
  private readonly now: () => number;

  constructor(private readonly options: DeliveryOptions) {
    this.now = options.now ?? Date.now;
    this.monitor = new ExportMonitor(options.endpoint, options.log, this.now);
  }

  /** Queues what a previous run left in the spool, oldest first (before anything new). */
  restore(): void {
    const spool = this.options.spool?.store;
    if (!spool) return;
    const { entries, skipped } = spool.open();
    for (const s of skipped) {
      this.options.log.warn("spool: skipping a file that is not a readable batch", {
        dir: spool.dir,
        file: s.file,
        reason: s.reason,
      });
    }
    const c = this.options.counters;
    for (const entry of entries) {
      this.queue.push({
        seq: ++this.seq,
        spans: entry.spans,
        flows: entry.flows,
        continued: entry.continued,
        endsInside: entry.endsInside,
        spool: entry,
      });
      countRestored(c, entry.spans, entry.flows);
    }
    if (entries.length) {
      this.options.log.info("spool: replaying batches a previous run left", {
        dir: spool.dir,
        batches: entries.length,
        spans: entries.reduce((n, e) => n + e.spans, 0),
        bytes: spool.bytes,
      });
    }
    this.pump();
  }

  /** Takes one encoded request (its spans already counted as held by the caller). */
  add(request: EncodedTraceRequest, done?: () => void): void {
    const { body, spans, flows, continued, endsInside } = request;
    const batch: Batch = { seq: ++this.seq, body, spans, flows, continued, endsInside, done };
    const spool = this.options.spool;
    if (spool) {
      try {
        batch.spool = spool.store.add(body, spans, flows, continued, endsInside);
      } catch (err) {
        this.monitor.spoolError(spool.store.dir, err as Error);
      }
    }
    this.queue.push(batch);
    this.residentSpans += spans;
    // Spooled requests leave memory beyond half the queue, so the queue bound (which counts what is in
    // memory) never refuses packets while the spool can take them.
    if (batch.spool && this.residentSpans * 2 > this.options.memorySpans) this.spill(batch);
    if (spool) this.evict(spool.maxBytes);
    this.pump();
  }

  status(): ExportStatus {
    const spool = this.options.spool?.store;
    return {
      ...this.monitor.status(),
      spoolBytes: spool?.bytes ?? 0,
      spoolBatches: spool?.batches ?? 0,
    };
  }

  /** Requests waiting or in flight. */
  get pending(): number {
    return this.queue.length + this.inFlight;
  }

  /**
   * Delivers what is held until `deadlineMs` (epoch ms). What is still held then stays in the spool for the
   * next start, or, without a spool, is counted as failed. Closes the transport.
   */
  async drain(deadlineMs: number): Promise<void> {
    // With a spool and a failing backend, waiting helps no one: what is held is on disk for the next start.
    const spoolKeepsIt = () =>
      this.options.spool !== undefined && this.monitor.failing && this.inFlight === 0;
    while (this.pending > 0 && this.now() < deadlineMs && !spoolKeepsIt()) await sleep(DRAIN_POLL_MS);
    this.closed = true;
    clearTimeout(this.wakeTimer);
    const left = this.queue.splice(0);
    if (left.length || this.inFlight) {
      const spooled = left.filter((b) => b.spool);
      const lost = left.filter((b) => !b.spool);
      for (const b of lost) this.settleLost(b);
      this.options.log.warn("export: stopping with spans not delivered", {
        endpoint: this.options.endpoint,
        spans: left.reduce((n, b) => n + b.spans, 0),
        in_flight_requests: this.inFlight,
        kept_in_spool: spooled.reduce((n, b) => n + b.spans, 0),
        lost: lost.reduce((n, b) => n + b.spans, 0),
        last_error: this.monitor.status().lastError,
      });
    }
    this.options.transport.close();
  }

  private settleLost(b: Batch): void {
    countLost(this.options.counters, b.spans, b.flows);
    this.unhold(b);
  }

  private unhold(b: Batch): void {
    countReleased(this.options.counters, b.spans, b.flows);
    b.done?.();
    if (b.body) {
      this.residentSpans -= b.spans;
      this.options.release?.(b.body);
      b.body = undefined;
    }
  }

  /** Keeps a spooled request only on disk (memory stays within OTEL_BSP_MAX_QUEUE_SIZE spans). */
  private spill(b: Batch): void {
    if (!b.body || !b.spool) return;
    this.residentSpans -= b.spans;
    b.body = undefined;
  }

  /**
   * Spool over its bound: the oldest packets go, whole. A unit of eviction runs from a batch that begins a
   * packet to the first that ends on a packet boundary, with consecutive sequence numbers (none delivered),
   * so no trace loses part of its spans. Requests in flight are evicted like waiting ones, so what is kept
   * is always the newest: otherwise a probe retried through a long outage would outlive everything after it.
   */
  private evict(maxBytes: number): void {
    const store = this.options.spool!.store;
    let evicted = 0, batches = 0;
    while (store.bytes > maxBytes) {
      const run = this.oldestPacketRun();
      if (!run) break;
      for (const b of run) {
        if (b.spool) store.remove(b.spool);
        b.spool = undefined;
        evicted += b.spans;
        batches++;
        const waiting = this.queue.indexOf(b);
        if (waiting >= 0) {
          this.queue.splice(waiting, 1);
          this.drop(b);
        } else {
          this.sending.splice(this.sending.indexOf(b), 1);
          b.evicted = true;
        }
      }
    }
    if (batches) this.monitor.evicted(store.dir, batches, evicted, maxBytes);
  }

  /** The oldest whole-packet run of held requests (waiting or in flight), in sequence order. */
  private oldestPacketRun(): Batch[] | undefined {
    // Requests in flight are few (the concurrency), so merging them into the queue's order is cheap.
    const held = this.sending.length
      ? [...this.sending, ...this.queue].sort((a, b) => a.seq - b.seq)
      : this.queue;
    for (let i = 0; i < held.length; i++) {
      if (held[i].continued) continue;
      let j = i;
      while (held[j].endsInside && j + 1 < held.length && held[j + 1].seq === held[j].seq + 1) j++;
      if (!held[j].endsInside) return held.slice(i, j + 1);
      i = j;
    }
    return undefined;
  }

  private drop(b: Batch): void {
    countDropped(this.options.counters, b.spans, b.flows);
    this.unhold(b);
  }

  private pump(): void {
    if (this.closed) return;
    const limit = this.monitor.failing ? 1 : this.options.concurrency;
    const now = this.now();
    if (now < this.resumeAt) {
      if (this.queue.length && this.inFlight === 0) this.wakeAt(this.resumeAt);
    } else {
      while (this.inFlight < limit && this.queue.length > 0) this.attempt(this.queue.shift()!);
    }
  }

  private wakeAt(at: number): void {
    clearTimeout(this.wakeTimer);
    this.wakeTimer = setTimeout(() => this.pump(), Math.max(0, at - this.now()));
  }

  private attempt(b: Batch): void {
    let body = b.body;
    if (!body) {
      const read = this.options.spool!.store.read(b.spool!);
      if (typeof read === "string") {
        this.monitor.unreadable(b.spool!.path, read, b.spans);
        this.options.spool!.store.remove(b.spool!);
        this.settleLost(b);
        return;
      }
      body = read;
    }
    this.inFlight++;
    this.sending.push(b);
    this.options.transport.send(body, this.options.timeoutMs).then(
      (outcome) => this.settle(b, outcome),
      (err) => this.settle(b, { kind: "retry", problem: { message: String(err) } }),
    );
  }

  private settle(b: Batch, outcome: SendOutcome): void {
    this.inFlight--;
    if (!b.evicted) this.sending.splice(this.sending.indexOf(b), 1);
    const c = this.options.counters;
    if (outcome.kind === "retry" && b.evicted) {
      if (!this.closed) this.recordFailure(outcome);
      this.drop(b);
    } else if (outcome.kind === "retry") {
      if (this.closed) {
        // Answered after the shutdown deadline: a spooled request waits for the next start.
        if (!b.spool) this.settleLost(b);
        return;
      }
      this.recordFailure(outcome);
      // Back in sending order; the bytes stay in memory only if they were.
      let i = this.queue.length;
      while (i > 0 && this.queue[i - 1].seq > b.seq) i--;
      this.queue.splice(i, 0, b);
    } else {
      if (b.spool) this.options.spool!.store.remove(b.spool);
      if (outcome.kind === "accepted") {
        countExportResult(c, b.spans, b.flows, { accepted: true, rejectedSpans: outcome.rejectedSpans });
        this.monitor.succeeded(c.spansHeld - b.spans, c.spansDropped);
        const rejected = Math.min(outcome.rejectedSpans, b.spans);
        if (rejected) this.monitor.partial(rejected, outcome.message);
      } else {
        countExportResult(c, b.spans, b.flows, { accepted: false, error: outcome.problem.message });
        this.monitor.malformed(outcome.problem, b.spans);
      }
      this.unhold(b);
    }
    this.pump();
  }

  private recordFailure(outcome: Extract<SendOutcome, { kind: "retry" }>): void {
    const c = this.options.counters;
    countRetry(c, outcome.problem.message);
    const delay = this.monitor.failed(outcome.problem, c.spansHeld, c.spansDropped, outcome.retryAfterMs);
    this.resumeAt = Math.max(this.resumeAt, this.now() + delay);
  }
}

/**
 * Turns export outcomes into the few log lines a user needs (SPEC §6) and the state `/healthz` reports:
 * the first failure at once (endpoint, error, spans held), then at most one line a minute while it lasts,
 * and one INFO line at recovery with the outage's length and the backlog delivered after it.
 */
export class ExportMonitor {
  failing = false;
  private state: ExportStatus = initialExportStatus();
  private lastWarnAt = 0;
  private droppedAtStart = 0;
  private attempts = 0;
  private lastOtherWarn = new Map<string, number>();

  constructor(
    private readonly endpoint: string,
    private readonly log: Logger,
    private readonly now: () => number,
  ) {}

  status(): ExportStatus {
    return { ...this.state };
  }

  /** Records a failed attempt; returns the delay before the next one. */
  failed(problem: ExportProblem, heldSpans: number, droppedSpans: number, retryAfterMs?: number): number {
    const now = this.now();
    const s = this.state;
    s.consecutiveFailures++;
    s.lastError = problem.message;
    this.attempts++;
    const backoff = Math.min(RETRY_INITIAL_MS * 2 ** Math.min(s.consecutiveFailures - 1, 16), RETRY_MAX_MS);
    const delay = retryAfterMs !== undefined
      ? Math.min(retryAfterMs, RETRY_AFTER_MAX_MS)
      : backoff * (0.8 + Math.random() * 0.4);
    if (!this.failing) {
      this.failing = true;
      s.state = "failing";
      s.failingSinceMs = now;
      this.droppedAtStart = droppedSpans;
      this.lastWarnAt = now;
      this.log.warn(problem.credentials ? "export failing: credentials rejected" : "export failing", {
        endpoint: this.endpoint,
        error: problem.message,
        spans_held: heldSpans,
        retry_in_ms: Math.round(delay),
      });
    } else if (now - this.lastWarnAt >= FAILING_LOG_INTERVAL_MS) {
      this.lastWarnAt = now;
      this.log.warn("export still failing", {
        endpoint: this.endpoint,
        error: problem.message,
        for_s: Math.round((now - s.failingSinceMs!) / 1000),
        attempts: this.attempts,
        spans_held: heldSpans,
        spans_dropped: droppedSpans - this.droppedAtStart,
      });
    }
    return delay;
  }

  succeeded(backlogSpans: number, droppedSpans: number): void {
    const now = this.now();
    const s = this.state;
    s.lastSuccessMs = now;
    s.consecutiveFailures = 0;
    if (!this.failing) return;
    this.log.info("export recovered", {
      endpoint: this.endpoint,
      outage_s: Number(((now - s.failingSinceMs!) / 1000).toFixed(1)),
      failed_attempts: this.attempts,
      backlog_spans: backlogSpans,
      spans_dropped: droppedSpans - this.droppedAtStart,
    });
    this.failing = false;
    this.attempts = 0;
    s.state = "ok";
    s.failingSinceMs = undefined;
  }

  malformed(problem: ExportProblem, spans: number): void {
    this.rateLimitedWarn("malformed", "export: the backend rejected a request as malformed; dropped", {
      endpoint: this.endpoint,
      error: problem.message,
      spans,
    });
  }

  partial(rejected: number, message?: string): void {
    this.rateLimitedWarn("partial", "export: the backend accepted a request but rejected some spans", {
      endpoint: this.endpoint,
      rejected_spans: rejected,
      error: message,
    });
  }

  spoolError(dir: string, err: Error): void {
    this.rateLimitedWarn("spool-write", "spool: cannot write a batch; it is held in memory only", {
      dir,
      error: err.message,
    });
  }

  unreadable(path: string, reason: string, spans: number): void {
    this.log.warn("spool: a batch file cannot be read back; its spans are lost", {
      file: path,
      reason,
      spans,
    });
  }

  evicted(dir: string, batches: number, spans: number, maxBytes: number): void {
    this.rateLimitedWarn("spool-full", "spool full: dropped the oldest batches", {
      dir,
      max_bytes: maxBytes,
      batches,
      spans,
    });
  }

  private rateLimitedWarn(key: string, message: string, fields: Record<string, unknown>): void {
    const now = this.now();
    if (now - (this.lastOtherWarn.get(key) ?? -Infinity) < FAILING_LOG_INTERVAL_MS) return;
    this.lastOtherWarn.set(key, now);
    this.log.warn(message, fields);
  }
}
