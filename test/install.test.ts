/**
 * install.sh against a fake release served on 127.0.0.1 (GitHub's layout: BASE/latest/download/FILE and
 * BASE/download/vVERSION/FILE), run by /bin/sh; shellcheck on the shell scripts; `systemd-analyze verify` on
 * the systemd unit. shellcheck and systemd-analyze come from apt (shellcheck, systemd): skipped locally
 * without them, required under CI=true.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { CI, ROOT, which } from "./support/binary.ts";
import { join } from "./support/paths.ts";

const INSTALL_SH = join(ROOT, "install.sh");
const UNIT = join(ROOT, "deploy/netflow2traces.service");
const SHELLCHECK = which("shellcheck");
const SYSTEMD_ANALYZE = which("systemd-analyze");

const sha256 = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");
const fakeBinary = (version: string) => `#!/bin/sh\necho "netflow2traces ${version} (fake)"\n`;

/** A fake release: v0.9.0 is "latest"; v0.9.1's SHA256SUMS does not match its binary. */
function releaseFiles(version: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const t of ["linux-x64", "linux-arm64", "darwin-x64", "darwin-arm64"]) {
    files.set(`netflow2traces-bun-${t}`, fakeBinary(`${version} ${t}`));
  }
  const sums = [...files].map(([name, body]) => `${sha256(body)}  ${name}`);
  files.set("SHA256SUMS", sums.join("\n") + "\n");
  files.set("netflow2traces.service", readFileSync(UNIT, "utf8"));
  if (version === "0.9.1") files.set("netflow2traces-bun-linux-x64", fakeBinary("0.9.1 tampered"));
  return files;
}

interface Release {
  base: string;
  requests: string[];
  close(): Promise<void>;
}

function startRelease(): Release {
  const releases: Record<string, Map<string, string>> = {
    "latest/download": releaseFiles("0.9.0"),
    "download/v0.9.0": releaseFiles("0.9.0"),
    "download/v0.9.1": releaseFiles("0.9.1"),
  };
  const requests: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    requests.push(path);
    const m = /^\/releases\/(latest\/download|download\/v[^/]+)\/([^/]+)$/.exec(path);
    const body = m && releases[m[1]]?.get(m[2]);
    return body === undefined || body === null
      ? new Response("not found\n", { status: 404 })
      : new Response(body, { headers: { "content-type": "application/octet-stream" } });
  });
  return {
    base: `http://127.0.0.1:${server.addr.port}/releases`,
    requests,
    close: () => server.shutdown(),
  };
}

/** A directory of links to every command in /usr/bin and /bin except `without`, plus `extra` scripts. */
function toolDir(dir: string, without: string[], extra: Record<string, string> = {}): string {
  mkdirSync(dir, { recursive: true });
  for (const src of ["/usr/bin", "/bin"]) {
    for (const name of readdirSync(src)) {
      if (without.includes(name) || name in extra || existsSync(join(dir, name))) continue;
      symlinkSync(join(src, name), join(dir, name));
    }
  }
  for (const [name, text] of Object.entries(extra)) {
    writeFileSync(join(dir, name), text);
    chmodSync(join(dir, name), 0o755);
  }
  return dir;
}

async function install(env: Record<string, string>, args: string[] = []) {
  const r = await new Deno.Command("/bin/sh", {
    args: [INSTALL_SH, ...args],
    clearEnv: true,
    env: { PATH: "/usr/local/bin:/usr/bin:/bin", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

async function withRelease(fn: (release: Release, tmp: string) => Promise<void>) {
  const release = startRelease();
  const tmp = Deno.makeTempDirSync({ prefix: "nf2t-install-" });
  try {
    await fn(release, tmp);
  } finally {
    await release.close();
    Deno.removeSync(tmp, { recursive: true });
  }
}

const uname = (s: string, m: string) =>
  `#!/bin/sh\ncase "$1" in -s) echo ${s} ;; -m) echo ${m} ;; *) echo ${s} ;; esac\n`;

Deno.test("install.sh: latest release, checksum verified, installed to the system dir", async () => {
  await withRelease(async (release, tmp) => {
    const bin = join(tmp, "sysbin");
    mkdirSync(bin);
    const r = await install({
      HOME: join(tmp, "home"),
      NETFLOW2TRACES_BASE_URL: release.base,
      NETFLOW2TRACES_SYSTEM_BIN_DIR: bin,
      PATH: `${toolDir(join(tmp, "tools"), [], { uname: uname("Linux", "x86_64") })}`,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /checksum OK/);
    assert.match(r.stdout, new RegExp(`installed ${bin}/netflow2traces`));
    assert.match(r.stdout, /netflow2traces 0\.9\.0 linux-x64 \(fake\)/);
    assert.equal(readFileSync(join(bin, "netflow2traces"), "utf8"), fakeBinary("0.9.0 linux-x64"));
    assert.deepEqual(release.requests, [
      "/releases/latest/download/netflow2traces-bun-linux-x64",
      "/releases/latest/download/SHA256SUMS",
    ]);
  });
});

Deno.test("install.sh: pinned version, aarch64/arm64 and macOS names, ~/.local/bin fallback, wget only", async () => {
  await withRelease(async (release, tmp) => {
    const home = join(tmp, "home");
    const cases: [string, string, string][] = [["Linux", "aarch64", "linux-arm64"], [
      "Darwin",
      "arm64",
      "darwin-arm64",
    ], [
      "Linux",
      "amd64",
      "linux-x64",
    ]];
    for (const [s, m, asset] of cases) {
      release.requests.length = 0;
      const tools = toolDir(join(tmp, `tools-${s}-${m}`), ["curl"], { uname: uname(s, m) });
      const r = await install({
        HOME: home,
        PATH: tools,
        NETFLOW2TRACES_BASE_URL: release.base,
        NETFLOW2TRACES_SYSTEM_BIN_DIR: join(tmp, "does-not-exist"),
      }, ["--version", "0.9.0"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /is not writable .* installing to .*\/home\/\.local\/bin/);
      assert.match(r.stdout, /is not on your PATH/);
      assert.equal(
        readFileSync(join(home, ".local/bin/netflow2traces"), "utf8"),
        fakeBinary(`0.9.0 ${asset}`),
      );
      assert.deepEqual(release.requests, [
        `/releases/download/v0.9.0/netflow2traces-bun-${asset}`,
        "/releases/download/v0.9.0/SHA256SUMS",
      ]);
    }
  });
});

Deno.test("install.sh: a checksum mismatch refuses to install", async () => {
  await withRelease(async (release, tmp) => {
    const dir = join(tmp, "bin");
    const r = await install({
      HOME: tmp,
      PATH: toolDir(join(tmp, "tools"), [], { uname: uname("Linux", "x86_64") }),
      NETFLOW2TRACES_BASE_URL: release.base,
      NETFLOW2TRACES_VERSION: "v0.9.1",
      NETFLOW2TRACES_INSTALL_DIR: dir,
    });
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /checksum mismatch for netflow2traces-bun-linux-x64: expected [0-9a-f]{64}, got [0-9a-f]{64}/,
    );
    assert.match(r.stderr, /not installing/);
    assert.equal(existsSync(join(dir, "netflow2traces")), false);
  });
});

Deno.test("install.sh: an unsupported CPU or OS is one clear line, before any download", async () => {
  await withRelease(async (release, tmp) => {
    for (
      const [s, m, expected] of [
        ["Linux", "riscv64", "unsupported architecture: riscv64 (supported: x86_64/amd64, aarch64/arm64)"],
        ["Linux", "armv7l", "unsupported architecture: armv7l"],
        ["FreeBSD", "amd64", "unsupported operating system: FreeBSD"],
      ]
    ) {
      const r = await install({
        HOME: tmp,
        PATH: toolDir(join(tmp, `tools-${s}-${m}`), [], { uname: uname(s, m) }),
        NETFLOW2TRACES_BASE_URL: release.base,
        NETFLOW2TRACES_INSTALL_DIR: join(tmp, "bin"),
      });
      assert.equal(r.code, 1);
      assert.ok(r.stderr.includes(`netflow2traces: ${expected}`), r.stderr);
    }
    assert.deepEqual(release.requests, []);
  });
});

Deno.test("install.sh: neither curl nor wget is a clear message", async () => {
  await withRelease(async (release, tmp) => {
    const r = await install({
      HOME: tmp,
      PATH: toolDir(join(tmp, "tools"), ["curl", "wget"], { uname: uname("Linux", "x86_64") }),
      NETFLOW2TRACES_BASE_URL: release.base,
      NETFLOW2TRACES_INSTALL_DIR: join(tmp, "bin"),
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /neither curl nor wget is installed: install one of them/);
    assert.deepEqual(release.requests, []);
  });
});

Deno.test({
  name: "install.sh --systemd: unit with ExecStart = the installed binary, env file; systemd-analyze verify",
  ignore: !SYSTEMD_ANALYZE && !CI,
  async fn() {
    if (!SYSTEMD_ANALYZE) throw new Error("CI=true requires systemd-analyze (apt: systemd)");
    await withRelease(async (release, tmp) => {
      const dirs = { bin: join(tmp, "usr/local/bin"), unit: join(tmp, "systemd"), etc: join(tmp, "etc") };
      mkdirSync(dirs.unit, { recursive: true });
      const r = await install({
        HOME: tmp,
        PATH: toolDir(join(tmp, "tools"), [], { uname: uname("Linux", "x86_64") }),
        NETFLOW2TRACES_BASE_URL: release.base,
        NETFLOW2TRACES_INSTALL_DIR: dirs.bin,
        NETFLOW2TRACES_SYSTEMD_DIR: dirs.unit,
        NETFLOW2TRACES_ETC_DIR: dirs.etc,
      }, ["--systemd"]);
      assert.equal(r.code, 0, r.stderr);
      const unit = readFileSync(join(dirs.unit, "netflow2traces.service"), "utf8");
      assert.match(unit, new RegExp(`^ExecStart=${dirs.bin}/netflow2traces$`, "m"));
      assert.match(readFileSync(join(dirs.etc, "env"), "utf8"), /OTEL_EXPORTER_OTLP_ENDPOINT/);
      assert.match(r.stdout, /systemctl enable --now netflow2traces/);
      await verifyUnit(join(dirs.unit, "netflow2traces.service"));
    });
  },
});

/** `systemd-analyze verify` prints warnings (unknown keys, bad values) but exits 0: require silence. */
async function verifyUnit(path: string) {
  const r = await new Deno.Command(SYSTEMD_ANALYZE!, { args: ["verify", "--man=no", path], stderr: "piped" })
    .output();
  const out = new TextDecoder().decode(r.stderr);
  assert.equal(r.code, 0, out);
  assert.equal(out.trim(), "", `systemd-analyze verify ${path}:\n${out}`);
}

Deno.test({
  name: "systemd unit: verifies cleanly; hardening present; catches a typo",
  ignore: !SYSTEMD_ANALYZE && !CI,
  async fn() {
    if (!SYSTEMD_ANALYZE) throw new Error("CI=true requires systemd-analyze (apt: systemd)");
    const text = readFileSync(UNIT, "utf8");
    for (
      const line of [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "Restart=on-failure",
        "EnvironmentFile=-/etc/netflow2traces/env",
        "StateDirectory=netflow2traces",
        "CapabilityBoundingSet=",
        "#   AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "ExecStart=/usr/local/bin/netflow2traces",
      ]
    ) assert.match(text, new RegExp(`^${line.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&")}$`, "m"), line);
    assert.match(text, /^RestrictAddressFamilies=AF_INET AF_INET6/m);
    assert.doesNotMatch(text, /^MemoryDenyWriteExecute=yes/m, "the JIT needs W^X mappings");
    const tmp = Deno.makeTempDirSync({ prefix: "nf2t-unit-" });
    try {
      // verify checks that ExecStart exists: point it at a stand-in executable.
      const exe = join(tmp, "netflow2traces");
      writeFileSync(exe, fakeBinary("0"));
      chmodSync(exe, 0o755);
      writeFileSync(join(tmp, "netflow2traces.service"), text.replace(/^ExecStart=.*$/m, `ExecStart=${exe}`));
      await verifyUnit(join(tmp, "netflow2traces.service"));
      const bad = join(tmp, "bad", "netflow2traces.service");
      mkdirSync(join(tmp, "bad"));
      writeFileSync(
        bad,
        text.replace(/^ExecStart=.*$/m, `ExecStart=${exe}`).replace(
          "ProtectSystem=strict",
          "ProtectSystem=strickt",
        ),
      );
      await assert.rejects(verifyUnit(bad), /protect system value/);
    } finally {
      Deno.removeSync(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "shellcheck: install.sh and deploy/rootfs.sh are clean POSIX sh",
  ignore: !SHELLCHECK && !CI,
  async fn() {
    if (!SHELLCHECK) throw new Error("CI=true requires shellcheck (apt: shellcheck)");
    const r = await new Deno.Command(SHELLCHECK!, {
      args: ["--shell=sh", "--severity=style", INSTALL_SH, join(ROOT, "deploy/rootfs.sh")],
      stdout: "piped",
    }).output();
    assert.equal(r.code, 0, new TextDecoder().decode(r.stdout));
    assert.match(readFileSync(INSTALL_SH, "utf8"), /^#!\/bin\/sh\n/);
  },
});

if (!SHELLCHECK && !CI) console.log("install.test: skipping shellcheck (apt: shellcheck)");
if (!SYSTEMD_ANALYZE && !CI) console.log("install.test: skipping systemd-analyze verify (apt: systemd)");
