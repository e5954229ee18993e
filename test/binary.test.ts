/**
 * The single binaries, proven the way users run them: `deno task build:bun`'s linux-x64 binary end to end
 * over both OTLP protocols (a few thousand spans each, so grpc-js on Bun is exercised under some load), and
 * the linux-arm64 binary under qemu-aarch64-static (apt: qemu-user-static, libc6-arm64-cross).
 *
 * Without qemu the arm64 test is skipped locally and fails under CI=true.
 */
import assert from "node:assert/strict";
import { existsSync, statSync } from "node:fs";
import { bunBinary, CI, endToEnd, run, which } from "./support/binary.ts";
import { collectorCommand, freeUdpPort, startCollectorProcess } from "./support/collector.ts";

const QEMU = which("qemu-aarch64-static");
const ARM64_SYSROOT = "/usr/aarch64-linux-gnu";
const HAVE_QEMU = QEMU !== undefined && existsSync(`${ARM64_SYSROOT}/lib/ld-linux-aarch64.so.1`);
if (!HAVE_QEMU && !CI) {
  console.log("binary.test: skipping linux-arm64 (needs qemu-aarch64-static and libc6-arm64-cross from apt)");
}

/** What `--version` prints when the collector runs from source: the binary must say exactly the same. */
async function sourceVersion(): Promise<string> {
  const r = await run(collectorCommand(["--version"]));
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

Deno.test("bun linux-x64 binary: --version is the sources' version; size", async () => {
  const bin = await bunBinary("linux-x64");
  const r = await run([bin, "--version"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\d+\.\d+\.\d+/);
  assert.equal(r.stdout, await sourceVersion());
  console.log(`${bin}: ${statSync(bin).size} bytes, --version: ${r.stdout.trim()}`);
});

for (const protocol of ["http", "grpc"] as const) {
  Deno.test(`bun linux-x64 binary end to end over ${protocol}: v5 + IPFIX in, 3,003 flows out`, async () => {
    const bin = await bunBinary("linux-x64");
    const r = await endToEnd([bin], protocol, { ipfix: 100 });
    console.log(`${protocol}: ${r.spans.length} spans; start-up to "listening" ${r.startupMs.toFixed(0)} ms`);
  });
}

Deno.test("bun linux-x64 binary: a port in use gives one line and exit code 1", async () => {
  const bin = await bunBinary("linux-x64");
  const port = freeUdpPort();
  const holder = Deno.listenDatagram({ hostname: "127.0.0.1", port, transport: "udp" });
  try {
    const c = await startCollectorProcess(
      { NETFLOW_LISTEN_PORT: String(port), OTEL_TRACES_EXPORTER: "none" },
      {
        command: [bin],
        waitForListening: false,
      },
    );
    assert.equal(await c.exited, 1, c.stderr());
    assert.match(c.stderr(), /address already in use/);
  } finally {
    holder.close();
  }
});

Deno.test({
  name: "bun linux-arm64 binary under qemu-aarch64-static: --version and a short run over gRPC",
  ignore: !HAVE_QEMU && !CI,
  async fn() {
    if (!HAVE_QEMU) {
      throw new Error(
        "CI=true requires qemu-aarch64-static and /usr/aarch64-linux-gnu (apt: qemu-user-static libc6-arm64-cross)",
      );
    }
    const bin = await bunBinary("linux-arm64");
    const qemu = [QEMU!, "-L", ARM64_SYSROOT, bin];
    const t0 = performance.now();
    const v = await run([...qemu, "--version"]);
    assert.equal(v.code, 0, v.stderr);
    assert.equal(v.stdout, await sourceVersion());
    const versionMs = performance.now() - t0;
    const r = await endToEnd(qemu, "grpc", { ipfix: 3, timeoutMs: 30_000 });
    console.log(
      `${bin}: ${statSync(bin).size} bytes; under qemu: --version ${versionMs.toFixed(0)} ms, ` +
        `start-up to "listening" ${r.startupMs.toFixed(0)} ms, ${r.spans.length} spans over gRPC`,
    );
  },
});
