/**
 * Subcommands of the binary besides the collector itself: `send` (synthetic NetFlow/IPFIX), `healthcheck`,
 * `check` (one test trace to the OTLP endpoint) and `replay` (a capture file exported as traces). Each is
 * imported when it is used, so the collector's start-up loads none of them, and a subcommand that fails to
 * load fails alone.
 */
import process from "node:process";

type Runner = (args: string[]) => Promise<number>;

/**
 * Every subcommand: its line in `--help` and how to load it. The word must come first on the command
 * line; its arguments are passed on untouched.
 */
export const SUBCOMMANDS: Readonly<Record<string, { summary: string; load: () => Promise<Runner> }>> = {
  send: {
    summary: "send test NetFlow v1/v5/v9/IPFIX packets",
    load: async () => (await import("./send.ts")).runSend,
  },
  healthcheck: {
    summary: "query a running collector's /healthz (exit 0 when healthy)",
    load: async () => (await import("./healthcheck.ts")).runHealthcheck,
  },
  check: {
    summary: "send one test trace to the OTLP endpoint and say whether it was taken",
    load: async () => (await import("./check.ts")).runCheck,
  },
  replay: {
    summary: "export the NetFlow/IPFIX datagrams of a pcap/pcapng file as traces",
    load: async () => (await import("./replay.ts")).runReplay,
  },
};

/** Names of the subcommands, for help texts. */
const SUBCOMMAND_NAMES: readonly string[] = Object.keys(SUBCOMMANDS);

/** Runs subcommand `name` with `args`; returns its exit code (2 for an unknown subcommand). */
export async function runSubcommand(name: string, args: string[]): Promise<number> {
  const load = Object.hasOwn(SUBCOMMANDS, name) ? SUBCOMMANDS[name].load : undefined;
  if (load === undefined) {
    process.stderr.write(
      `netflow2traces: unknown subcommand "${name}" (available: ${SUBCOMMAND_NAMES.join(", ")})\n`,
    );
    return 2;
  }
  let run: Runner;
  try {
    run = await load();
  } catch (err) {
    process.stderr.write(
      `netflow2traces: subcommand "${name}" is not available: ${(err as Error).message}\n`,
    );
    return 2;
  }
  return await run(args);
}
