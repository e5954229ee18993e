/**
 * Builds single-file binaries into dist/ and writes dist/SHA256SUMS.
 *
 *   deno task build                          deno compile for every Deno target (needs internet: deno
 *                                            downloads the denort runtime it embeds from dl.deno.land)
 *   deno task build:bun                      bun build --compile for every Bun target (needs only the npm
 *                                            registry: Bun fetches cross-compile bases from it, once)
 *   deno task build:bun -- linux-x64 linux-arm64   only the named targets
 *
 * Binaries are named `netflow2traces-<runtime>-<os>-<arch>[.exe]` (the names install.sh downloads).
 * Environment: `BUN` = the bun executable (default: `bun` on PATH, else `npx -y bun@BUN_VERSION`);
 * `NETFLOW2TRACES_DIST` = output directory (default `dist`).
 *
 * The version is whatever the sources report (`--version`); bundling and compiling inline it, so it is exact.
 * The pipeline Worker (src/pipeline_worker.ts) is an extra entry point for Bun (a compiled Bun binary cannot
 * load a Worker that was not bundled, and hangs) and an `--include` for Deno.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { spawnSync } from "node:child_process";

/** The Bun release the binaries embed when bun is not on PATH (the project's mirror runtime). */
export const BUN_VERSION = "1.4.5";

export const DENO_TARGETS: Record<string, string> = {
  "linux-x64": "x86_64-unknown-linux-gnu",
  "linux-arm64": "aarch64-unknown-linux-gnu",
  "darwin-x64": "x86_64-apple-darwin",
  "darwin-arm64": "aarch64-apple-darwin",
  "windows-x64": "x86_64-pc-windows-msvc",
};
export const BUN_TARGETS: Record<string, string> = {
  "linux-x64": "bun-linux-x64",
  "linux-arm64": "bun-linux-arm64",
  "linux-x64-musl": "bun-linux-x64-musl",
  "linux-arm64-musl": "bun-linux-arm64-musl",
  "darwin-x64": "bun-darwin-x64",
  "darwin-arm64": "bun-darwin-arm64",
  "windows-x64": "bun-windows-x64",
};
/** The permissions the collector needs, baked into the Deno binaries (same as `deno task start`). */
const DENO_PERMISSIONS = ["--allow-net", "--allow-env", "--allow-read", "--allow-write", "--allow-sys"];
/**
 * V8 flags of every Deno run of the collector (the `start` task holds the same, a test checks): 2 MiB
 * semi-spaces instead of 16 keep short-lived garbage (flows, request buffers) from inflating RSS: 120–128 MB
 * instead of 141–143 MB at 100k flows/s, at no measurable CPU cost (docs/PERFORMANCE.md).
 */
export const DENO_V8_FLAGS = "--v8-flags=--max-semi-space-size=2";

/** The command that runs bun: `$BUN`, else `bun` on PATH, else bun from the npm registry through npx. */
export function bunCommand(): string[] {
  const fromEnv = process.env.BUN;
  if (fromEnv) return [fromEnv];
  const probe = spawnSync("bun", ["--version"], { stdio: "ignore" });
  if (probe.status === 0) return ["bun"];
  return ["npx", "-y", `bun@${BUN_VERSION}`];
}

/** The output file of one target. */
export function binaryName(runtime: "bun" | "deno", target: string): string {
  return `netflow2traces-${runtime}-${target}${target.startsWith("windows") ? ".exe" : ""}`;
}

/** The Worker's module, bundled next to main.ts (src/app.ts starts it by this path in a Bun binary). */
const WORKER_ENTRY = "src/pipeline_worker.ts";

/** The full command line that builds `target` into `out`. */
export function buildCommand(runtime: "bun" | "deno", target: string, out: string): string[] {
  if (runtime === "bun") {
    return [
      ...bunCommand(),
      "build",
      "--compile",
      // otlp-grpc-exporter-base loads grpc-js through createRequire in its ESM build, which the bundler
      // cannot see ("Cannot find module '@grpc/grpc-js'" at run time); the CJS builds bundle it.
      "--conditions",
      "require",
      // A binary must not pick up bunfig.toml or .env by itself: our own loader applies SPEC precedence.
      "--no-compile-autoload-dotenv",
      "--no-compile-autoload-bunfig",
      `--target=${BUN_TARGETS[target]}`,
      "main.ts",
      WORKER_ENTRY,
      "--outfile",
      out,
    ];
  }
  return [
    process.execPath,
    "compile",
    ...DENO_PERMISSIONS,
    DENO_V8_FLAGS,
    "--unstable-net",
    "--target",
    DENO_TARGETS[target],
    "--include",
    WORKER_ENTRY,
    "--output",
    out,
    "main.ts",
  ];
}

/** Writes `dir/SHA256SUMS` (sha256sum format) over every `netflow2traces-*` file in `dir`. */
export function writeChecksums(dir: string): number {
  const sums = readdirSync(dir)
    .filter((f) => f.startsWith("netflow2traces-"))
    .sort()
    .map((f) => `${createHash("sha256").update(readFileSync(join(dir, f))).digest("hex")}  ${f}`);
  writeFileSync(join(dir, "SHA256SUMS"), sums.join("\n") + "\n");
  return sums.length;
}

function main(argv: string[]): number {
  const [runtime, ...rest] = argv;
  if (runtime !== "bun" && runtime !== "deno") {
    console.error("usage: build.ts bun|deno [target…]");
    return 2;
  }
  const targets = runtime === "bun" ? BUN_TARGETS : DENO_TARGETS;
  const only = rest.filter((a) => a !== "--");
  const selected = only.length ? only : Object.keys(targets);
  for (const name of selected) {
    if (!targets[name]) {
      console.error(`unknown ${runtime} target ${name}; known: ${Object.keys(targets).join(", ")}`);
      return 2;
    }
  }
  const dist = process.env.NETFLOW2TRACES_DIST ?? "dist";
  mkdirSync(dist, { recursive: true });
  let failed = 0;
  for (const name of selected) {
    const [tool, ...args] = buildCommand(runtime, name, join(dist, binaryName(runtime, name)));
    console.log(`$ ${tool} ${args.join(" ")}`);
    const r = spawnSync(tool, args, { stdio: "inherit" });
    if (r.status !== 0) {
      console.error(`build failed for ${name}${r.error ? `: ${r.error.message}` : ""}`);
      failed++;
    }
  }
  const n = writeChecksums(dist);
  console.log(`wrote ${join(dist, "SHA256SUMS")} (${n} files)`);
  return failed ? 1 : 0;
}

if (import.meta.main) process.exit(main(process.argv.slice(2)));
