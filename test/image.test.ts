/**
 * The scratch Docker image without a Docker engine: assemble exactly what the Dockerfile's final stage holds
 * (by interpreting its instructions over what the builder stage's `deploy/rootfs.sh` produces), then run the
 * binary from it in a chroot as the image's numeric user, with only /proc mounted (as a container runtime
 * does), end to end over UDP and OTLP. Reports the would-be image size.
 *
 * Needs root, `unshare` and `chroot` (util-linux, coreutils): skipped locally without them, fails under CI=true.
 */
import { freeTcpPort } from "./support/collector.ts";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { bunBinary, CI, endToEnd, ROOT, run, which } from "./support/binary.ts";
import { join } from "./support/paths.ts";

/** How to run as root: directly, or through password-less sudo (CI runners); undefined if neither. */
const AS_ROOT: string[] | undefined = (() => {
  if (Deno.uid() === 0) return [];
  try {
    const ok = new Deno.Command("sudo", { args: ["-n", "true"], stdout: "null", stderr: "null" })
      .outputSync();
    return ok.success ? ["sudo", "-n", "-E"] : undefined;
  } catch {
    return undefined;
  }
})();
const HAVE_TOOLS = AS_ROOT !== undefined && which("unshare") !== undefined && which("chroot") !== undefined;
if (!HAVE_TOOLS && !CI) {
  console.log("image.test: skipping the chroot run (needs root or sudo, unshare and chroot)");
}

interface FinalStage {
  copies: { chown?: string; src: string; dst: string }[];
  env: Record<string, string>;
  user: string;
  expose: string[];
  healthcheck: string[];
  entrypoint: string[];
}

/** Logical lines (continuations joined, comments dropped) of the last stage; fails on anything unknown. */
function parseFinalStage(text: string): FinalStage {
  const lines = text.replace(/\\\n/g, " ").split("\n").map((l) => l.trim()).filter((l) =>
    l && !l.startsWith("#")
  );
  const from = lines.findLastIndex((l) => /^FROM\s/i.test(l));
  assert.equal(lines[from], "FROM scratch", "the final stage is FROM scratch");
  const stage: FinalStage = { copies: [], env: {}, user: "", expose: [], healthcheck: [], entrypoint: [] };
  for (const line of lines.slice(from + 1)) {
    const [instruction, rest] = [line.split(/\s+/)[0].toUpperCase(), line.replace(/^\S+\s+/, "")];
    let m;
    switch (instruction) {
      case "COPY":
        m = /^--from=builder(?:\s+--chown=(\d+:\d+))?\s+(\S+)\s+(\S+)$/.exec(rest);
        assert.ok(m, `this test does not know how to reproduce: ${line}`);
        stage.copies.push({ chown: m[1], src: m[2], dst: m[3] });
        break;
      case "ENV":
        for (const kv of rest.split(/\s+/)) {
          const i = kv.indexOf("=");
          stage.env[kv.slice(0, i)] = kv.slice(i + 1);
        }
        break;
      case "USER":
        stage.user = rest;
        break;
      case "EXPOSE":
        stage.expose.push(...rest.split(/\s+/));
        break;
      case "HEALTHCHECK":
        stage.healthcheck = JSON.parse(rest.replace(/^.*?\bCMD\s+/, ""));
        break;
      case "ENTRYPOINT":
        stage.entrypoint = JSON.parse(rest);
        break;
      default:
        assert.fail(`this test does not know the final-stage instruction: ${line}`);
    }
  }
  return stage;
}

/** `COPY --from=builder [--chown=u:g] SRC/ DST/`: SRC's contents into DST; DST and the copies get the owner. */
async function applyCopy(builderRoot: string, image: string, c: FinalStage["copies"][number]) {
  assert.ok(c.src.startsWith("/out/") && c.src.endsWith("/") && c.dst.endsWith("/"), JSON.stringify(c));
  const src = join(builderRoot, c.src);
  const dst = join(image, c.dst);
  mkdirSync(dst, { recursive: true });
  for (
    const cmd of [
      ["cp", "-a", `${src}.`, dst],
      ...(c.chown ? [[...AS_ROOT!, "chown", "-R", c.chown, dst]] : []),
    ]
  ) {
    const r = await run(cmd);
    assert.equal(r.code, 0, `${cmd.join(" ")}: ${r.stderr}`);
  }
}

function treeBytes(dir: string): { bytes: number; files: string[] } {
  let bytes = 0;
  const files: string[] = [];
  const visit = (p: string, rel: string) => {
    for (const e of readdirSync(p)) {
      const st = statSync(join(p, e));
      if (st.isDirectory()) visit(join(p, e), `${rel}/${e}`);
      else {
        bytes += st.size;
        files.push(`${rel}/${e}`);
      }
    }
  };
  visit(dir, "");
  return { bytes, files: files.sort() };
}

Deno.test("Dockerfile: final stage is scratch + binary, non-root numeric user, 2055/udp, healthcheck via the binary", () => {
  const text = readFileSync(join(ROOT, "Dockerfile"), "utf8");
  const stage = parseFinalStage(text);
  assert.equal(stage.user, "65532:65532");
  assert.ok(stage.expose.includes("2055/udp"));
  assert.deepEqual(stage.entrypoint, ["/netflow2traces"]);
  assert.deepEqual(stage.healthcheck, ["/netflow2traces", "healthcheck"]);
  assert.ok(stage.env.NETFLOW_HTTP_LISTEN, "the healthcheck needs the HTTP endpoint on");
  // The builder stage makes /out with the same script this test runs.
  assert.match(text, /sh deploy\/rootfs\.sh "\/dist\/netflow2traces-bun-\$target" \/out/);
  const ignore = readFileSync(join(ROOT, ".dockerignore"), "utf8");
  for (const p of ["package.json", "deno.lock", "main.ts", "src/", "scripts/", "deploy/"]) {
    assert.ok(ignore.includes(`!${p}`), `.dockerignore lets ${p} through`);
  }
});

Deno.test({
  name: "scratch image, assembled and run in a chroot as 65532 with only /proc: end to end over gRPC",
  ignore: !HAVE_TOOLS && !CI,
  async fn() {
    if (!HAVE_TOOLS) throw new Error("CI=true requires root, unshare and chroot for the image test");
    const stage = parseFinalStage(readFileSync(join(ROOT, "Dockerfile"), "utf8"));
    const bin = await bunBinary("linux-x64");
    const tmp = Deno.makeTempDirSync({ prefix: "nf2t-image-" });
    try {
      // The builder stage's product, then the final stage's COPY instructions, in order.
      const builder = join(tmp, "builder");
      const r = await run(["sh", join(ROOT, "deploy/rootfs.sh"), bin, join(builder, "out")]);
      assert.equal(r.code, 0, r.stderr);
      const image = join(tmp, "image");
      mkdirSync(image);
      for (const c of stage.copies) await applyCopy(builder, image, c);

      const { bytes, files } = treeBytes(image);
      const gz = await run(["sh", "-c", `tar -C '${image}' -cf - . | gzip -6 | wc -c`]);
      console.log(
        `would-be image: ${bytes} bytes in ${files.length} files (${(bytes / 1e6).toFixed(1)} MB; ` +
          `gzip'd layer ${Number(gz.stdout)} bytes):\n  ${files.join("\n  ")}`,
      );
      assert.ok(files.includes("/netflow2traces") && files.includes("/etc/passwd"));
      assert.ok(files.some((f) => f.startsWith("/etc/ssl/certs/")));
      const state = statSync(join(image, "var/lib/netflow2traces"));
      assert.equal(state.uid, 65532);

      // What the container runtime adds: a /proc mount point (runtimes mount procfs there).
      mkdirSync(join(image, "proc"));
      const [uid, gid] = stage.user.split(":");
      const chrooted = (args: string[]) => [
        ...AS_ROOT!,
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        `mount -t proc proc "$0/proc" && exec chroot --userspec=${uid}:${gid} "$0" "$@"`,
        image,
        ...args,
      ];
      const httpPort = freeTcpPort();
      const wired = readFileSync(join(ROOT, "src/tools/subcommands.ts"), "utf8").includes("runHealthcheck") &&
        readFileSync(join(ROOT, "src/app.ts"), "utf8").includes("startHttpServer");
      let healthcheck: { code: number; stdout: string; stderr: string } | undefined;
      const result = await endToEnd(chrooted(stage.entrypoint), "grpc", {
        ipfix: 10,
        env: {
          // The image's ENV, except the HTTP port (this chroot shares the host's network).
          ...stage.env,
          NETFLOW_LISTEN_HOST: "127.0.0.1",
          NETFLOW_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
          HOME: "/",
        },
        onRunning: async () => {
          if (wired) {
            healthcheck = await run(chrooted(stage.healthcheck), {
              NETFLOW_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
            });
          }
        },
      });
      if (wired) {
        assert.equal(healthcheck?.code, 0, `healthcheck in the image: ${JSON.stringify(healthcheck)}`);
        console.log(`in the image: ${healthcheck?.stdout.trim()}`);
      } else {
        console.log(
          "image.test: `healthcheck` not dispatched / HTTP server not wired yet; healthcheck not run",
        );
      }
      // The non-root user could write the template cache into the image's state directory.
      const cache = join(image, "var/lib/netflow2traces/templates.json");
      assert.ok(existsSync(cache), `template cache written; log:\n${result.collector.stderr()}`);
      assert.equal(statSync(cache).uid, 65532);
      console.log(
        `chroot run: ${result.spans.length} spans; start-up to "listening" ${result.startupMs.toFixed(0)} ms`,
      );
    } finally {
      if (AS_ROOT!.length) await run([...AS_ROOT!, "rm", "-rf", tmp]);
      else Deno.removeSync(tmp, { recursive: true });
    }
  },
});
