/**
 * The OTLP send path shared by traces (sink.ts) and self-metrics (metrics.ts): our pre-encoded protobuf
 * bodies go through the OpenTelemetry export delegate, over the SDK's HTTP transport (retries, backoff,
 * timeout, gzip, TLS) or our node:http2 gRPC call (grpc_transport.ts, with the same retry policy).
 */
import {
  createOtlpNetworkExportDelegate,
  ExporterMetrics,
  type IOtlpExportDelegate,
} from "@opentelemetry/otlp-exporter-base";
import {
  convertLegacyHttpOptions,
  createOtlpHttpExportDelegate,
} from "@opentelemetry/otlp-exporter-base/node-http";
import { GrpcTransport } from "./grpc_transport.ts";
import { httpExporterConfig, type TracingOptions } from "./tracer.ts";

/** A request body already encoded as protobuf, with the count of items (spans, data points) it holds. */
export interface EncodedRequest {
  body: Uint8Array;
  items: number;
}

const SIGNALS = {
  traces: {
    env: "TRACES",
    httpPath: "v1/traces",
    grpcPath: "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    item: "span",
  },
  metrics: {
    env: "METRICS",
    httpPath: "v1/metrics",
    grpcPath: "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    item: "metric_data_point",
  },
} as const;

/** Sent as the gRPC user-agent, like the SDK exporters. */
const USER_AGENT = "netflow2traces OTel-OTLP-Exporter-JavaScript";

/**
 * The delegate that sends one signal's requests to `options.endpoint` (for HTTP the full URL of that
 * signal, e.g. …/v1/metrics; for gRPC the base endpoint).
 */
export function createOtlpDelegate(
  options: TracingOptions,
  signal: keyof typeof SIGNALS,
): IOtlpExportDelegate<EncodedRequest> {
  const s = SIGNALS[signal];
  const serializer = {
    serializeRequest: (request: EncodedRequest) => request.body,
    // The response is an optional partial_success; what matters is the status, which the transport reads.
    deserializeResponse: () => ({}),
  };
  const metricsHelper = { name: s.item, countItems: (request: EncodedRequest) => request.items };
  const component = `otlp_${options.protocol === "http/protobuf" ? "http" : "grpc"}_${s.item}_exporter`;
  if (options.protocol === "http/protobuf") {
    return createOtlpHttpExportDelegate(
      convertLegacyHttpOptions(httpExporterConfig(options), s.env, s.httpPath, {
        "Content-Type": "application/x-protobuf",
      }),
      serializer,
      component,
      metricsHelper,
      undefined,
    );
  }
  return createOtlpNetworkExportDelegate(
    // The transport compresses and retries by itself; the delegate bounds concurrency and reports results.
    { timeoutMillis: options.timeoutMs, concurrencyLimit: 30, compression: "none" },
    serializer,
    new ExporterMetrics({
      componentType: component,
      metricsHelper,
      url: options.endpoint,
      meterProvider: undefined,
      responseAttributesFromError: () => ({}),
    }),
    new GrpcTransport({ ...options, path: s.grpcPath, userAgent: USER_AGENT }),
  );
}
