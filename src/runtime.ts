/**
 * Which runtime runs this code, decided here and nowhere else: the UDP adapter and the pipeline Worker's
 * URL depend on it.
 */

/** True on Bun (its global `Bun` object); otherwise the runtime is Deno. */
export const isBun = "Bun" in globalThis;

/**
 * True when `moduleUrl` (a caller's `import.meta.url`) lies inside a `bun build --compile` single binary,
 * whose modules sit on its virtual `$bunfs` drive rather than next to each other on disk.
 */
export function inBunSingleBinary(moduleUrl: string): boolean {
  return moduleUrl.includes("$bunfs");
}
