/**
 * Builds single-file binaries into dist/ and writes dist/SHA256SUMS.
 *
 *   deno task build            deno compile for every Deno target (needs internet: deno fetches denort)
 *   deno task build:bun        bun build --compile for every Bun target (works offline)
 *   … -- linux-x64 linux-arm64  only the named targets
 *
 * The version is baked in from src/config.ts (PRODUCT_VERSION), so `--version` of a binary is exact.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { spawnSync } from "node:child_process";

const DENO_TARGETS: Record<string, string> = {
  "linux-x64": "x86_64-unknown-linux-gnu",
  "linux-arm64": "aarch64-unknown-linux-gnu",
  "darwin-x64": "x86_64-apple-darwin",
  "darwin-arm64": "aarch64-apple-darwin",
  "windows-x64": "x86_64-pc-windows-msvc",
};
const BUN_TARGETS: Record<string, string> = {
  "linux-x64": "bun-linux-x64",
  "linux-arm64": "bun-linux-arm64",
  "linux-x64-musl": "bun-linux-x64-musl",
  "linux-arm64-musl": "bun-linux-arm64-musl",
  "darwin-x64": "bun-darwin-x64",
  "darwin-arm64": "bun-darwin-arm64",
  "windows-x64": "bun-windows-x64",
};
/** The permissions the collector needs, baked into the Deno binaries. */
const DENO_PERMISSIONS = ["--allow-net", "--allow-env", "--allow-read", "--allow-write", "--allow-sys"];

const DIST = "dist";
const [flavour, ...only] = process.argv.slice(2);
const targets = flavour === "bun" ? BUN_TARGETS : DENO_TARGETS;
const selected = only.length ? only : Object.keys(targets);
mkdirSync(DIST, { recursive: true });

let failed = 0;
for (const name of selected) {
  const target = targets[name];
  if (!target) {
    console.error(`unknown target ${name}; known: ${Object.keys(targets).join(", ")}`);
    process.exit(2);
  }
  const exe = name.startsWith("windows") ? ".exe" : "";
  const out = join(DIST, `netflow2traces-${flavour === "bun" ? "bun" : "deno"}-${name}${exe}`);
  const args = flavour === "bun"
    ? [
      "build",
      "--compile",
      // grpc-js is loaded through createRequire in the ESM build; the CJS build bundles it.
      "--conditions",
      "require",
      // A compiled binary must not pick up bunfig.toml or .env by itself: our own loader applies SPEC precedence.
      "--no-compile-autoload-dotenv",
      "--no-compile-autoload-bunfig",
      `--target=${target}`,
      "main.ts",
      "--outfile",
      out,
    ]
    : ["compile", ...DENO_PERMISSIONS, "--unstable-net", "--target", target, "--output", out, "main.ts"];
  const tool = flavour === "bun" ? (process.env.BUN ?? "bun") : process.execPath;
  console.log(`$ ${tool} ${args.join(" ")}`);
  const r = spawnSync(tool, args, { stdio: "inherit" });
  if (r.status !== 0) {
    console.error(`build failed for ${name}`);
    failed++;
  }
}

const sums = readdirSync(DIST)
  .filter((f) => f.startsWith("netflow2traces-"))
  .sort()
  .map((f) => `${createHash("sha256").update(readFileSync(join(DIST, f))).digest("hex")}  ${f}`);
writeFileSync(join(DIST, "SHA256SUMS"), sums.join("\n") + "\n");
console.log(`wrote ${join(DIST, "SHA256SUMS")} (${sums.length} files)`);
process.exit(failed ? 1 : 0);
