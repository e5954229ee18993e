/** One export packet → one trace: `netflow.export` → `netflow.process_flows` → `netflow.flow` × N (SPEC §2). */
import { context, type HrTime, SpanKind, SpanStatusCode, trace, type Tracer } from "@opentelemetry/api";
import { flowTimes } from "../netflow/time.ts";
import type { ExportPacket } from "../netflow/types.ts";
import { exportAttributes, flowAttributes } from "./attributes.ts";

export interface SpanBuilderOptions {
  /** `flow`: spans at the flows' own times; `receive`: flow spans end at the receive time. */
  spanTime: "flow" | "receive";
  collectorHost: string;
  collectorPort: number;
}

/**
 * Epoch milliseconds (possibly fractional) → HrTime, to the microsecond: a double holding epoch
 * milliseconds resolves about 0.2 µs, so finer digits would be noise. Tuples, because the SDK reads
 * small plain numbers as relative times.
 */
export function hrTime(ms: number): HrTime {
  const micros = Math.round(ms * 1000);
  const sec = Math.floor(micros / 1e6);
  return [sec, (micros - sec * 1e6) * 1000];
}

/** Span length for a packet without flows: a short span at its export time. */
const EMPTY_PACKET_SPAN_MS = 1;

export class SpanBuilder {
  constructor(private readonly tracer: Tracer, private readonly options: SpanBuilderOptions) {}

  /** Creates and ends all spans of one packet's trace; returns the number of spans created. */
  emit(packet: ExportPacket): number {
    const n = packet.flows.length;
    const starts = new Array<number>(n), ends = new Array<number>(n), adjusted = new Array<boolean>(n);
    const receiveMode = this.options.spanTime === "receive";
    let earliest = Infinity, latest = -Infinity;
    for (let i = 0; i < n; i++) {
      const t = flowTimes(packet.flows[i], packet);
      let start = t.startMs, end = t.endMs;
      if (receiveMode) {
        start = packet.receivedAtMs - (end - start);
        end = packet.receivedAtMs;
      }
      starts[i] = start;
      ends[i] = end;
      adjusted[i] = t.adjusted;
      if (start < earliest) earliest = start;
      if (end > latest) latest = end;
    }
    const reference = receiveMode ? packet.receivedAtMs : (packet.exportTimeMs ?? packet.receivedAtMs);
    let parentStart: number, parentEnd: number;
    if (n === 0) {
      parentStart = reference;
      parentEnd = reference + EMPTY_PACKET_SPAN_MS;
    } else {
      parentStart = Math.min(earliest, reference);
      parentEnd = Math.max(latest, reference);
    }

    const attributes = exportAttributes(packet, this.options.collectorHost, this.options.collectorPort);
    const root = this.tracer.startSpan("netflow.export", {
      kind: SpanKind.CONSUMER,
      startTime: hrTime(parentStart),
      attributes,
      root: true,
    });
    if (packet.error) {
      root.setAttribute("error.type", packet.error.kind);
      root.addEvent("exception", {
        "exception.type": `netflow.${packet.error.kind}`,
        "exception.message": packet.error.message,
      }, hrTime(parentStart));
      root.setStatus({ code: SpanStatusCode.ERROR, message: packet.error.message });
    }
    const rootContext = trace.setSpan(context.active(), root);
    const process = this.tracer.startSpan("netflow.process_flows", {
      startTime: hrTime(parentStart),
      attributes: { "netflow.flow.count": n },
    }, rootContext);
    const processContext = trace.setSpan(rootContext, process);
    for (let i = 0; i < n; i++) {
      const attrs = flowAttributes(packet.flows[i], i, packet.version);
      if (adjusted[i]) attrs["netflow.flow.time_adjusted"] = true;
      this.tracer.startSpan(
        "netflow.flow",
        { startTime: hrTime(starts[i]), attributes: attrs },
        processContext,
      )
        .end(hrTime(ends[i]));
    }
    process.end(hrTime(parentEnd));
    root.end(hrTime(parentEnd));
    return n + 2;
  }
}
