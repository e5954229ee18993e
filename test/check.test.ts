/**
 * `netflow2traces check`: one test trace to the configured endpoint, one line saying whether it was taken or
 * why not, and an exit code a script can act on — against a receiver that accepts (HTTP and gRPC), nothing
 * listening, one that answers 401, a wrong path, and a gRPC client pointed at the OTLP/HTTP port.
 */
import assert from "node:assert/strict";
import { freeUdpPort, runCollectorCommand } from "./support/collector.ts";
import { startOtlpReceiver } from "./support/otlp_receiver.ts";

const check = (env: Record<string, string>) => runCollectorCommand(["check"], env);

Deno.test("check: a receiver that accepts gets one whole test trace, over HTTP and gRPC; exit 0", async () => {
  for (const protocol of ["http", "grpc"] as const) {
    const receiver = await startOtlpReceiver({ protocol });
    try {
      const r = await check({
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: protocol === "http" ? "http/protobuf" : "grpc",
      });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(
        r.stdout,
        /^check: ok: http:\/\/127\.0\.0\.1:\d+.* accepted a test trace \(3 spans, exporter 192\.0\.2\.1\) in \d+ ms\n$/,
      );
      const spans = receiver.spans;
      assert.deepEqual(spans.map((s) => s.name).sort(), [
        "netflow.export",
        "netflow.flow",
        "netflow.process_flows",
      ]);
      assert.equal(new Set(spans.map((s) => s.traceId)).size, 1);
      assert.equal(
        spans[0].attributes["netflow.exporter.address"] ?? spans[1].attributes["netflow.exporter.address"],
        "192.0.2.1",
      );
    } finally {
      await receiver.close();
    }
  }
});

Deno.test("check: nothing listening, 401, a wrong path, gRPC at the HTTP port: one line each, exit 1 or 3", async () => {
  const nothing = await check({ OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${freeUdpPort()}` });
  assert.equal(nothing.code, 1);
  assert.match(
    nothing.stdout,
    /^check: FAILED: .*\(grpc\): connection refused by 127\.0\.0\.1:\d+ \(nothing listening there\?\)\n$/,
  );

  const denied = await startOtlpReceiver({
    protocol: "http",
    failWith: { httpStatus: 401, message: "bad token" },
  });
  try {
    const r = await check({
      OTEL_EXPORTER_OTLP_ENDPOINT: denied.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
    });
    assert.equal(r.code, 3, r.stdout);
    assert.match(
      r.stdout,
      /^check: FAILED: .*credentials rejected: check OTEL_EXPORTER_OTLP_HEADERS \(HTTP 401 Unauthorized: bad token\)\n$/,
    );
  } finally {
    await denied.close();
  }

  const http = await startOtlpReceiver({ protocol: "http" });
  try {
    const wrongPath = await check({
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${http.url}/v1/trace`,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
    });
    assert.equal(wrongPath.code, 1, wrongPath.stdout);
    assert.match(wrongPath.stdout, /^check: FAILED: .*HTTP 404.*is \/v1\/trace the right path\?/);
    // gRPC spoken to an HTTP/1.1 receiver: whatever the failure, it is one line and not "ok".
    const grpcAtHttp = await check({
      OTEL_EXPORTER_OTLP_ENDPOINT: http.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: "grpc",
    });
    assert.equal(grpcAtHttp.code, 1, grpcAtHttp.stdout);
    assert.match(grpcAtHttp.stdout, /^check: FAILED: [^\n]+\n$/);
    assert.equal(http.spans.length, 0);
  } finally {
    await http.close();
  }

  const bad = await check({ OTEL_EXPORTER_OTLP_PROTOCOL: "carrier-pigeon" });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^check: .*OTEL_EXPORTER_OTLP_PROTOCOL/);
});
