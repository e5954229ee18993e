/**
 * `OTEL_TRACES_EXPORTER=console` and `none`.
 *
 * `console` prints the same {@link TracePlan}s the OTLP encoder writes (one plan per packet, `planTrace()`),
 * one JSON line per span, so what a user sees on stdout is what a backend would get, IDs included. It keeps
 * the books of the OTLP path (queue bound, queued, held, exported, dropped) with a small in-memory queue
 * written out every OTEL_BSP_SCHEDULE_DELAY. `none` builds nothing and counts nothing.
 */
import process from "node:process";
import type { ExportPacket } from "../netflow/types.ts";
import type { TracingOptions } from "./tracing_options.ts";
import { wireTimeMs } from "../netflow/time.ts";
import {
  countDropped,
  countExportResult,
  countQueued,
  countReleased,
  type ExportCounters,
  zeroExportCounters,
} from "../counters.ts";
import { type ExportStatus, initialExportStatus } from "./export_status.ts";
import type { TraceSink } from "./sink.ts";
import { planTrace, type TracePlan, type TracePlanOptions } from "./spans.ts";

/** `none`: packets are neither turned into spans nor counted. */
export class DiscardingSink implements TraceSink {
  readonly counters: ExportCounters = zeroExportCounters();
  emit(_packet: ExportPacket): void {}
  queueDepth(): number {
    return 0;
  }
  exportStatus(): ExportStatus {
    return initialExportStatus();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** One packet's lines, waiting to be written. */
interface PendingTrace {
  text: string;
  spans: number;
  flows: number;
}

/**
 * `console`: each packet's plan as JSON lines (`name`, `traceId`, `spanId`, `parentSpanId`, `startUs`,
 * `endUs`, `status`, `attributes`), parents first. A packet whose spans do not fit in OTEL_BSP_MAX_QUEUE_SIZE
 * is dropped whole and counted, as on the OTLP path.
 */
export class ConsoleSink implements TraceSink {
  readonly counters: ExportCounters = zeroExportCounters();
  private pending: PendingTrace[] = [];
  private pendingSpans = 0;
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(
    private readonly options: Pick<TracingOptions, "bsp"> & TracePlanOptions,
    private readonly write: (text: string) => void = (text) => void process.stdout.write(text),
  ) {
    this.timer = setInterval(() => this.flush(), options.bsp.scheduleDelayMs);
    (this.timer as { unref?: () => void }).unref?.();
  }

  emit(packet: ExportPacket): void {
    const flows = packet.flows.length, spans = flows + 2;
    const c = this.counters;
    if (this.pendingSpans + spans > this.options.bsp.maxQueueSize) {
      countDropped(c, spans, flows);
      return;
    }
    countQueued(c, spans, flows);
    this.pending.push({ text: traceLines(planTrace(packet, this.options)), spans, flows });
    this.pendingSpans += spans;
    if (this.pendingSpans >= this.options.bsp.maxExportBatchSize) this.flush();
  }

  queueDepth(): number {
    return this.pendingSpans;
  }

  exportStatus(): ExportStatus {
    return initialExportStatus();
  }

  shutdown(): Promise<void> {
    clearInterval(this.timer);
    this.flush();
    return Promise.resolve();
  }

  /** Writes every pending line in one call and books the spans as exported. */
  private flush(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.pendingSpans = 0;
    let text = "", spans = 0, flows = 0;
    for (const t of batch) {
      text += t.text;
      spans += t.spans;
      flows += t.flows;
    }
    this.write(text);
    countExportResult(this.counters, spans, flows, { accepted: true, rejectedSpans: 0 });
    countReleased(this.counters, spans, flows);
  }
}

/** A plan's spans as JSON lines, with fresh random trace and span IDs (lowercase hex, as OTLP JSON writes). */
export function traceLines(plan: TracePlan, random: (bytes: Uint8Array) => void = cryptoFill): string {
  const ids = new Uint8Array(16 + 8 * (plan.flows.length + 2));
  random(ids);
  const traceId = hex(ids, 0, 16), rootId = hex(ids, 16, 8), processId = hex(ids, 24, 8);
  const error = plan.error;
  let out = line(
    "netflow.export",
    traceId,
    rootId,
    undefined,
    plan.startMs,
    plan.endMs,
    error ? { code: "ERROR", message: error.message } : undefined,
    plan.exportAttributes,
  );
  out += line("netflow.process_flows", traceId, processId, rootId, plan.startMs, plan.endMs, undefined, {
    "netflow.flow.count": plan.flows.length,
  });
  for (let i = 0; i < plan.flows.length; i++) {
    const f = plan.flows[i];
    out += line(
      "netflow.flow",
      traceId,
      hex(ids, 32 + 8 * i, 8),
      processId,
      f.startMs,
      f.endMs,
      undefined,
      f.attributes,
    );
  }
  return out;
}

function line(
  name: string,
  traceId: string,
  spanId: string,
  parentSpanId: string | undefined,
  startMs: number,
  endMs: number,
  status: { code: "ERROR"; message: string } | undefined,
  attributes: TracePlan["exportAttributes"],
): string {
  const startUs = micros(startMs), endUs = micros(endMs);
  return JSON.stringify({ name, traceId, spanId, parentSpanId, startUs, endUs, status, attributes }) + "\n";
}

/** Epoch milliseconds → integer epoch microseconds, clamped and rounded as the OTLP encoder writes them. */
function micros(ms: number): number {
  return Math.round(wireTimeMs(ms) * 1000);
}

function hex(bytes: Uint8Array, from: number, n: number): string {
  let s = "";
  for (let i = from; i < from + n; i++) s += bytes[i].toString(16).padStart(2, "0");
  return s;
}

const cryptoFill = (bytes: Uint8Array): void => void crypto.getRandomValues(bytes);
