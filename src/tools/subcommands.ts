/**
 * Subcommands of the binary besides the collector itself: `send` (synthetic NetFlow/IPFIX) and
 * `healthcheck`. Each is imported when it is used, so the collector's start-up loads neither, and a
 * subcommand that fails to load fails alone.
 */
import process from "node:process";

type Runner = (args: string[]) => Promise<number>;

const SUBCOMMANDS: Record<string, () => Promise<Runner>> = {
  send: async () => (await import("./send.ts")).runSend,
  healthcheck: async () => (await import("./healthcheck.ts")).runHealthcheck,
};

/** Names of the subcommands, for help texts. */
const SUBCOMMAND_NAMES: readonly string[] = Object.keys(SUBCOMMANDS);

/** Runs subcommand `name` with `args`; returns its exit code (2 for an unknown subcommand). */
export async function runSubcommand(name: string, args: string[]): Promise<number> {
  const load = SUBCOMMANDS[name];
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
