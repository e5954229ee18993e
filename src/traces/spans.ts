/**
 * One export packet → one trace: `netflow.export` → `netflow.process_flows` → `netflow.flow` × N (SPEC §2).
 *
 * {@link planTrace} decides every span's times and attributes once; everything that shows spans reads the
 * plan: the OTLP encoder (`otlp_encoder.ts`, which also writes the same bytes straight from a packet), the
 * console exporter (`console_sink.ts`), and, in tests, the OpenTelemetry SDK Tracer the encoder is proven against
 * (`test/support/sdk_spans.ts`).
 */
import { type FlowTimes, flowTimes, referenceTimeMs } from "../netflow/time.ts";
import type { DecodeError, ExportPacket } from "../netflow/types.ts";
import { type AttributeCountLimit, type Attributes, exportAttributes, flowAttributes } from "./attributes.ts";

/** The settings that shape every packet's trace (from the configuration; the same for every writer). */
export interface TracePlanOptions {
  /** `flow`: spans at the flows' own times; `receive`: flow spans end at the receive time. */
  spanTime: "flow" | "receive";
  collectorHost: string;
  collectorPort: number;
  /** String attribute values are cut to this many UTF-8 bytes (OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT). Default: none. */
  attributeValueLengthLimit?: number;
  /**
   * Attributes per flow span at most (OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT / OTEL_ATTRIBUTE_COUNT_LIMIT): the SPEC
   * attributes first, then the record's further elements while there is room. Default: none.
   */
  attributeCountLimit?: number;
}

/** Every span of one packet's trace: times in epoch milliseconds, attributes final. */
export interface TracePlan {
  /** `netflow.export` and `netflow.process_flows` share these times. */
  startMs: number;
  endMs: number;
  exportAttributes: Attributes;
  error?: DecodeError;
  flows: PlannedFlow[];
}

export interface PlannedFlow {
  startMs: number;
  endMs: number;
  attributes: Attributes;
  /** Attributes left out for the count limit (OTLP `Span.dropped_attributes_count`). */
  droppedAttributes: number;
}

/** Span length for a packet without flows: a short span at its export time. */
const EMPTY_PACKET_SPAN_MS = 1;

/** The span times of one packet's trace, in reusable arrays (epoch ms; index = flow index). */
export class SpanTimes {
  starts = new Float64Array(64);
  ends = new Float64Array(64);
  /** 1 where `netflow.flow.time_adjusted` is set. */
  adjusted = new Uint8Array(64);
  /** `netflow.export` and `netflow.process_flows`: they enclose every flow. */
  startMs = 0;
  endMs = 0;

  reserve(n: number): void {
    if (n <= this.starts.length) return;
    const size = Math.max(n, this.starts.length * 2);
    this.starts = new Float64Array(size);
    this.ends = new Float64Array(size);
    this.adjusted = new Uint8Array(size);
  }
}

const scratchTimes: FlowTimes = { startMs: 0, endMs: 0, adjusted: false };

/** Fills `out` with the times of every span of `packet`'s trace (SPEC §2). */
export function packetSpanTimes(packet: ExportPacket, receiveMode: boolean, out: SpanTimes): void {
  const flows = packet.flows, n = flows.length;
  out.reserve(n);
  const starts = out.starts, ends = out.ends, adjusted = out.adjusted;
  let earliest = Infinity, latest = -Infinity;
  for (let i = 0; i < n; i++) {
    const t = flowTimes(flows[i], packet, scratchTimes);
    let start = t.startMs, end = t.endMs;
    if (receiveMode) {
      start = packet.receivedAtMs - (end - start);
      end = packet.receivedAtMs;
    }
    starts[i] = start;
    ends[i] = end;
    adjusted[i] = t.adjusted ? 1 : 0;
    if (start < earliest) earliest = start;
    if (end > latest) latest = end;
  }
  // The export time only where the wire can carry it (an unset exporter clock sends 0); the min/max below
  // then make both parents enclose every flow, since flowTimes() keeps flow times within the same bounds.
  const reference = receiveMode ? packet.receivedAtMs : referenceTimeMs(packet);
  out.startMs = n === 0 ? reference : Math.min(earliest, reference);
  out.endMs = n === 0 ? reference + EMPTY_PACKET_SPAN_MS : Math.max(latest, reference);
}

const planTimes = new SpanTimes();

/** Times and attributes of every span of `packet`'s trace. */
export function planTrace(packet: ExportPacket, options: TracePlanOptions): TracePlan {
  const n = packet.flows.length;
  const flows: TracePlan["flows"] = new Array(n);
  const times = planTimes;
  packetSpanTimes(packet, options.spanTime === "receive", times);
  const maxCount = options.attributeCountLimit ?? Infinity;
  const limit: AttributeCountLimit = { maxCount, dropped: 0 };
  for (let i = 0; i < n; i++) {
    const adjusted = times.adjusted[i] === 1;
    // time_adjusted is set last but is a SPEC attribute: keep room for it.
    limit.maxCount = adjusted ? maxCount - 1 : maxCount;
    const attributes = flowAttributes(
      packet.flows[i],
      i,
      packet.version,
      options.attributeValueLengthLimit,
      limit,
    );
    if (adjusted) attributes["netflow.flow.time_adjusted"] = true;
    flows[i] = {
      startMs: times.starts[i],
      endMs: times.ends[i],
      attributes,
      droppedAttributes: limit.dropped,
    };
  }
  const attributes = exportAttributes(packet, options.collectorHost, options.collectorPort);
  if (packet.error) attributes["error.type"] = packet.error.kind;
  return {
    startMs: times.startMs,
    endMs: times.endMs,
    exportAttributes: attributes,
    error: packet.error,
    flows,
  };
}

/** The exception event of a packet that could not be decoded (same on both writers). */
export function exceptionEventAttributes(error: DecodeError): Attributes {
  return { "exception.type": `netflow.${error.kind}`, "exception.message": error.message };
}
