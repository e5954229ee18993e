/**
 * The reference the OTLP encoder is proven against: a packet's plan (`planTrace()`) turned into spans through
 * the OpenTelemetry SDK Tracer, which the SDK's own serializer then writes (test/otlp_encoder.test.ts decodes
 * both and requires them equal). Tests and benchmarks only: the collector never builds SDK spans.
 */
import {
  context,
  type HrTime,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
} from "@opentelemetry/api";
import { wireTimeMs } from "../../src/netflow/time.ts";
import type { ExportPacket } from "../../src/netflow/types.ts";
import { exceptionEventAttributes, planTrace, type TracePlanOptions } from "../../src/traces/spans.ts";

/**
 * Epoch milliseconds (possibly fractional) → HrTime, to the microsecond: a double holding epoch
 * milliseconds resolves about 0.2 µs, so finer digits would be noise. Tuples, because the SDK reads
 * small plain numbers as relative times.
 */
export function hrTime(ms: number): HrTime {
  // Clamped as the direct encoder clamps (plans hold only such times; this keeps both writers equal).
  const micros = Math.round(wireTimeMs(ms) * 1000);
  const sec = Math.floor(micros / 1e6);
  return [sec, (micros - sec * 1e6) * 1000];
}

/** Writes a packet's trace through the OpenTelemetry SDK Tracer. */
export class SpanBuilder {
  constructor(private readonly tracer: Tracer, private readonly options: TracePlanOptions) {}

  /** Creates and ends all spans of one packet's trace; returns the number of spans created. */
  emit(packet: ExportPacket): number {
    const plan = planTrace(packet, this.options);
    const start = hrTime(plan.startMs), end = hrTime(plan.endMs);
    const root = this.tracer.startSpan("netflow.export", {
      kind: SpanKind.CONSUMER,
      startTime: start,
      attributes: plan.exportAttributes,
      root: true,
    });
    if (plan.error) {
      root.addEvent("exception", exceptionEventAttributes(plan.error), start);
      root.setStatus({ code: SpanStatusCode.ERROR, message: plan.error.message });
    }
    const rootContext = trace.setSpan(context.active(), root);
    const process = this.tracer.startSpan("netflow.process_flows", {
      startTime: start,
      attributes: { "netflow.flow.count": plan.flows.length },
    }, rootContext);
    const processContext = trace.setSpan(rootContext, process);
    for (const f of plan.flows) {
      const span = this.tracer.startSpan(
        "netflow.flow",
        { startTime: hrTime(f.startMs), attributes: f.attributes },
        processContext,
      );
      if (f.droppedAttributes > 0) addDroppedAttributes(span, f.droppedAttributes);
      span.end(hrTime(f.endMs));
    }
    process.end(end);
    root.end(end);
    return plan.flows.length + 2;
  }
}

/**
 * Counts attributes the plan left out in the SDK span's own dropped count, so both writers report the same.
 * The API has no setter; the SDK keeps the count in this field (checked, so a renamed field costs only the
 * count, never an error).
 */
function addDroppedAttributes(span: Span, n: number): void {
  const s = span as unknown as { _droppedAttributesCount?: unknown };
  if (typeof s._droppedAttributesCount === "number") s._droppedAttributesCount += n;
}
