/** The export settings every trace exporter reads, and the OTLP resource they all send. */
import type { Config } from "../config.ts";

/** The OTLP resource of everything the collector sends (traces and self-metrics). */
export function resourceAttributes(options: TracingOptions): Record<string, string> {
  return {
    ...options.resourceAttributes,
    "service.name": options.serviceName,
    "service.version": options.serviceVersion,
  };
}

/** What the exporters need from the configuration (config.ts is the one place that reads it). */
export type TracingOptions = Pick<
  Config,
  | "tracesExporter"
  | "protocol"
  | "endpoint"
  | "headers"
  | "timeoutMs"
  | "compression"
  | "certificateFile"
  | "clientKeyFile"
  | "clientCertificateFile"
  | "insecure"
  | "serviceName"
  | "serviceVersion"
  | "resourceAttributes"
  | "bsp"
  | "spoolDir"
  | "spoolMaxBytes"
>;
