/**
 * netflow2traces: NetFlow v1/v5/v9 and IPFIX over UDP → OpenTelemetry traces over OTLP.
 *
 * Exit codes: 0 after a clean shutdown, 1 when the socket cannot be opened, 2 for invalid configuration.
 */
import process from "node:process";
import { type Collector, startCollector } from "./src/app.ts";
import { ConfigError, parseCli } from "./src/config.ts";
import { createLogger } from "./src/log.ts";
import { BindError } from "./src/udp/source.ts";

/** A repeated signal within this window is the same signal delivered twice (see onSignal). */
const SIGNAL_ECHO_MS = 1_000;

async function main(argv: string[]): Promise<number> {
  let cli;
  try {
    cli = parseCli(argv, process.env, process.cwd());
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`netflow2traces: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  switch (cli.kind) {
    case "help":
    case "version":
      process.stdout.write(cli.text + "\n");
      return 0;
    case "subcommand": {
      const { runSubcommand } = await import("./src/tools/subcommands.ts");
      return await runSubcommand(cli.name, cli.args);
    }
  }
  const config = cli.config;
  const log = createLogger(config.logLevel, { format: config.logFormat });
  for (const warning of config.warnings) log.warn(warning);
  // Signal handlers go in before the socket opens: a SIGTERM right after "listening" must flush, not kill.
  const { promise: stopped, resolve } = Promise.withResolvers<void>();
  const ready = Promise.withResolvers<Collector>();
  let firstSignalAt: number | undefined;
  const onSignal = (signal: string) => {
    if (firstSignalAt !== undefined) {
      // Ctrl-C reaches the whole process group, and task runners (deno task, npx) forward it once more:
      // a copy within a second is that echo, not a person asking to quit at once.
      if (performance.now() - firstSignalAt < SIGNAL_ECHO_MS) return;
      log.warn(`second ${signal}: exiting without flushing`);
      process.exit(130);
    }
    firstSignalAt = performance.now();
    log.info(`${signal} received: draining and flushing`);
    ready.promise
      .then((collector) => collector.stop())
      .then(resolve, (err) => {
        log.error("shutdown failed", { error: String(err) });
        process.exit(1);
      });
  };
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  // SIGHUP re-reads NETFLOW_ENRICH_FILE (where the platform has the signal).
  if (process.platform !== "win32") process.on("SIGHUP", () => ready.promise.then((c) => c.reload()));
  try {
    ready.resolve(await startCollector(config, log));
  } catch (err) {
    if (err instanceof BindError) {
      log.error(err.message);
      return 1;
    }
    throw err;
  }
  await stopped;
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
// Timers and sockets of the exporters may linger after shutdown; the work is done.
process.exit(process.exitCode);
