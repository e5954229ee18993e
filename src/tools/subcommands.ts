/** Subcommands of the binary besides the collector itself. */
import process from "node:process";

export function runSubcommand(name: string, _args: string[]): Promise<number> {
  process.stderr.write(`netflow2traces: subcommand "${name}" is not available yet\n`);
  return Promise.resolve(2);
}
