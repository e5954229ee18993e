/**
 * TLS for OTLP, end to end with the collector process: https:// endpoints for http/protobuf and gRPC, a
 * custom CA (OTEL_EXPORTER_OTLP_CERTIFICATE), mutual TLS (OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE/KEY), a
 * wrong CA (nothing delivered, spans counted as failed), and OTEL_EXPORTER_OTLP_INSECURE for gRPC.
 * Certificates are made in the test with the openssl CLI.
 */
import assert from "node:assert/strict";
import { encodeV5 } from "../src/tools/encode.ts";
import { sendDatagrams, startCollectorProcess } from "./support/collector.ts";
import { type ReceiverTls, startOtlpReceiver } from "./support/otlp_receiver.ts";

function openssl(dir: string, ...args: string[]): void {
  const r = new Deno.Command("openssl", { args, cwd: dir, stdout: "null", stderr: "piped" }).outputSync();
  if (r.code !== 0) throw new Error(`openssl ${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate signed by it, and an unrelated CA. */
function makeCertificates(): string {
  const dir = Deno.makeTempDirSync({ prefix: "nf2t-tls-" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  for (const ca of ["ca", "other-ca"]) {
    openssl(
      dir,
      "req",
      "-x509",
      ...ec,
      "-keyout",
      `${ca}.key`,
      "-out",
      `${ca}.crt`,
      "-days",
      "2",
      "-subj",
      `/CN=${ca}`,
    );
  }
  Deno.writeTextFileSync(
    `${dir}/server.ext`,
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
  );
  Deno.writeTextFileSync(`${dir}/client.ext`, "extendedKeyUsage=clientAuth\n");
  Deno.writeTextFileSync(
    `${dir}/elsewhere.ext`,
    "subjectAltName=DNS:elsewhere.invalid\nextendedKeyUsage=serverAuth\n",
  );
  for (const who of ["server", "client", "elsewhere"]) {
    openssl(
      dir,
      "req",
      "-new",
      ...ec,
      "-keyout",
      `${who}.key`,
      "-out",
      `${who}.csr`,
      "-subj",
      `/CN=nf2t-${who}`,
    );
    openssl(
      dir,
      "x509",
      "-req",
      "-in",
      `${who}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "2",
      "-extfile",
      `${who}.ext`,
      "-out",
      `${who}.crt`,
    );
  }
  return dir;
}

const DIR = makeCertificates();
const read = (f: string) => Deno.readTextFileSync(`${DIR}/${f}`);
const SERVER: ReceiverTls = { key: read("server.key"), cert: read("server.crt") };
/** Signed by the right CA, but for another host name. */
const ELSEWHERE: ReceiverTls = { key: read("elsewhere.key"), cert: read("elsewhere.crt") };
const MUTUAL: ReceiverTls = { ...SERVER, ca: read("ca.crt"), requestCert: true };

const v5 = encodeV5({ sysUptimeMs: 10_000, exportTimeMs: Date.now() }, [
  { srcAddr: "10.0.0.1", dstAddr: "10.0.0.2", srcPort: 5000, dstPort: 443, protocol: 6 },
]);

interface Case {
  tls?: ReceiverTls;
  env: Record<string, string>;
  /** Use https:// even though the receiver is plaintext (for OTEL_EXPORTER_OTLP_INSECURE). */
  forceHttps?: boolean;
  delivered: boolean;
}

async function run(protocol: "http" | "grpc", c: Case) {
  const receiver = await startOtlpReceiver({ protocol, tls: c.tls });
  const endpoint = c.forceHttps ? receiver.url.replace(/^http:/, "https:") : receiver.url;
  const collector = await startCollectorProcess({
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: protocol === "http" ? "http/protobuf" : "grpc",
    OTEL_BSP_SCHEDULE_DELAY: "50",
    OTEL_EXPORTER_OTLP_TIMEOUT: "2000",
    // A failing TLS handshake is retried; at shutdown, what is still held counts as failed after this.
    OTEL_BSP_EXPORT_TIMEOUT: "1000",
    ...c.env,
  });
  try {
    await sendDatagrams(collector.port, [v5, v5]);
    if (c.delivered) {
      await receiver.waitForSpans(6, 10_000);
    } else {
      await new Promise((r) => setTimeout(r, 1_500));
    }
    assert.equal(await collector.stop(), 0);
    const totals = collector.stderr().split("\n").find((l) => l.includes("stopped")) ?? collector.stderr();
    if (c.delivered) {
      assert.match(totals, /spans_exported=6 spans_dropped=0 spans_failed=0/);
    } else {
      assert.equal(receiver.spans.length, 0);
      assert.match(totals, /spans_exported=0 spans_dropped=0 spans_failed=6/);
      // The user learns why from one line (a server that wants a client certificate may just reset).
      assert.match(
        collector.stderr(),
        /WARNING export failing endpoint=https:\S+ error="(TLS: |connection reset by \S+ during TLS \(does it require a client certificate)/,
      );
    }
  } finally {
    await collector.stop("SIGKILL");
    await receiver.close();
  }
}

const CA = { OTEL_EXPORTER_OTLP_CERTIFICATE: `${DIR}/ca.crt` };
const CLIENT = {
  OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: `${DIR}/client.crt`,
  OTEL_EXPORTER_OTLP_CLIENT_KEY: `${DIR}/client.key`,
};

for (const protocol of ["http", "grpc"] as const) {
  Deno.test(`tls (${protocol}): https endpoint with the custom CA delivers`, async () => {
    await run(protocol, { tls: SERVER, env: CA, delivered: true });
  });
  Deno.test(`tls (${protocol}): the wrong CA delivers nothing and counts spans_failed`, async () => {
    await run(protocol, {
      tls: SERVER,
      env: { OTEL_EXPORTER_OTLP_CERTIFICATE: `${DIR}/other-ca.crt` },
      delivered: false,
    });
  });
  Deno.test(`tls (${protocol}): a certificate for another name fails (host name is verified)`, async () => {
    await run(protocol, { tls: ELSEWHERE, env: CA, delivered: false });
  });
  Deno.test(`tls (${protocol}): mutual TLS with the client certificate delivers, without it fails`, async () => {
    await run(protocol, { tls: MUTUAL, env: { ...CA, ...CLIENT }, delivered: true });
    await run(protocol, { tls: MUTUAL, env: CA, delivered: false });
  });
}

Deno.test("tls (grpc): OTEL_EXPORTER_OTLP_INSECURE=true speaks plaintext to an https:// endpoint", async () => {
  await run("grpc", { env: { OTEL_EXPORTER_OTLP_INSECURE: "true" }, forceHttps: true, delivered: true });
});
