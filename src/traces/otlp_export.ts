/**
 * The OTLP transport for a signal (traces from sink.ts, self-metrics from metrics.ts): http/protobuf to the
 * signal's URL, or gRPC to the base endpoint's service method.
 */
import type { TracingOptions } from "./tracing_options.ts";
import { GrpcTransport } from "./grpc_transport.ts";
import { HttpTransport } from "./http_transport.ts";
import type { Transport } from "./transport.ts";

const GRPC_PATHS = {
  traces: "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
  metrics: "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
} as const;

/** Sent as the user-agent, like the SDK exporters. */
const USER_AGENT = "netflow2traces OTel-OTLP-Exporter-JavaScript";

/**
 * The transport that sends one signal's requests to `options.endpoint` (for HTTP the full URL of that
 * signal, e.g. …/v1/metrics; for gRPC the base endpoint).
 */
export function createTransport(options: TracingOptions, signal: keyof typeof GRPC_PATHS): Transport {
  if (options.protocol === "http/protobuf") {
    return new HttpTransport({ ...options, url: options.endpoint, userAgent: USER_AGENT });
  }
  return new GrpcTransport({ ...options, path: GRPC_PATHS[signal], userAgent: USER_AGENT });
}
