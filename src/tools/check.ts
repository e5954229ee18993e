/**
 * `netflow2traces check`: with the collector's own configuration, sends one test trace (one v5 flow from
 * 192.0.2.1, the documentation address block) to the OTLP endpoint, once, and says in one line whether the
 * backend took it or why not. Troubleshooting starts here: it needs no router and no running collector.
 */
import process from "node:process";
import { type Config, ConfigError, parseCli, PRODUCT_VERSION } from "../config.ts";
import { NetflowDecoder } from "../netflow/decoder.ts";
import { pipelineSettings } from "../pipeline_protocol.ts";
import { createTransport } from "../traces/otlp_export.ts";
import { OtlpTraceEncoder } from "../traces/otlp_encoder.ts";
import { resourceAttributes } from "../traces/tracing_options.ts";
import { TrafficGenerator } from "./traffic.ts";

export const CHECK_HELP = `Usage: netflow2traces check
Sends one test trace (3 spans: one flow of exporter 192.0.2.1) to the configured OTLP endpoint
(OTEL_EXPORTER_OTLP_*, the environment and .env, as the collector reads them) and says whether it was taken.
Exit status: 0 accepted, 1 not accepted (unreachable, refused, TLS, timeout, HTTP/gRPC error), 2 a bad
configuration, 3 credentials rejected (401/403, UNAUTHENTICATED, PERMISSION_DENIED).
`;

/** The test trace's exporter: TEST-NET-1 (RFC 5737), so nobody takes it for a router of theirs. */
const TEST_EXPORTER = "192.0.2.1";

export async function runCheck(
  args: string[],
  env: Record<string, string | undefined> = process.env,
): Promise<number> {
  if (args[0] === "-h" || args[0] === "--help") {
    process.stdout.write(CHECK_HELP);
    return 0;
  }
  let config: Config;
  try {
    const cli = parseCli(args, env as Record<string, string>);
    if (cli.kind !== "run") {
      process.stdout.write(CHECK_HELP);
      return cli.kind === "help" ? 0 : 2;
    }
    config = cli.config;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`check: ${err.message}\n`);
    return 2;
  }
  const settings = pipelineSettings(config, config.listenPort, {
    name: "netflow2traces",
    version: PRODUCT_VERSION,
  });
  const target = `${settings.endpoint} (${settings.protocol})`;
  if (settings.tracesExporter !== "otlp") {
    process.stderr.write(
      `check: OTEL_TRACES_EXPORTER=${settings.tracesExporter}: no OTLP endpoint to check\n`,
    );
    return 2;
  }
  const gen = new TrafficGenerator({ version: 5, flowsPerPacket: 1, seed: 1 });
  const now = Date.now();
  const [packet] = new NetflowDecoder().decode(gen.next(now).payload, TEST_EXPORTER, 2055, now);
  const encoder = new OtlpTraceEncoder({
    resource: resourceAttributes(settings),
    scopeName: "netflow2traces",
    scopeVersion: PRODUCT_VERSION,
  });
  encoder.writePacket(packet, settings);
  const request = encoder.takeRequest()!;
  const transport = createTransport(settings, "traces");
  const started = performance.now();
  const outcome = await transport.send(request.body, settings.timeoutMs);
  const ms = Math.round(performance.now() - started);
  transport.close();
  if (outcome.kind === "accepted" && outcome.rejectedSpans === 0) {
    process.stdout.write(
      `check: ok: ${target} accepted a test trace (${request.spans} spans, exporter ${TEST_EXPORTER}) in ${ms} ms\n`,
    );
    return 0;
  }
  const why = outcome.kind === "accepted"
    ? `accepted the request but rejected ${outcome.rejectedSpans} of its ${request.spans} spans` +
      (outcome.message ? `: ${outcome.message}` : "")
    : outcome.problem.message +
      wrongProtocolHint(settings.protocol, settings.endpoint, outcome.problem.message);
  process.stdout.write(`check: FAILED: ${target}: ${why}\n`);
  return outcome.kind !== "accepted" && outcome.problem.credentials ? 3 : 1;
}

/** The OTLP ports by convention: 4317 speaks gRPC, 4318 HTTP. A mix-up is the classic first mistake. */
function wrongProtocolHint(protocol: string, endpoint: string, message: string): string {
  // Nothing answered at all: the protocol is not (yet) the question.
  if (/refused|resolve|unreachable/.test(message)) return "";
  let port = "";
  try {
    port = new URL(endpoint).port;
  } catch {
    return "";
  }
  if (protocol === "grpc" && port === "4318") {
    return " (port 4318 is OTLP/HTTP by convention: set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf, or use 4317)";
  }
  if (protocol !== "grpc" && port === "4317") {
    return " (port 4317 is OTLP/gRPC by convention: set OTEL_EXPORTER_OTLP_PROTOCOL=grpc, or use 4318)";
  }
  return "";
}
