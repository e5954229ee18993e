/**
 * The test receiver, proven against the real OTel JS SDK and its OTLP exporters (http/protobuf and gRPC,
 * plain and gzip): what the SDK sends is what the receiver decodes.
 */
import assert from "node:assert/strict";
import { context, type HrTime, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanExporter,
} from "@opentelemetry/sdk-trace-base";
import { ExportResultCode } from "@opentelemetry/core";
import { OTLPTraceExporter as HttpTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { OTLPTraceExporter as GrpcTraceExporter } from "@opentelemetry/exporter-trace-otlp-grpc";
import { Metadata } from "@grpc/grpc-js";
import { decodeTraceRequest, type Receiver, startOtlpReceiver } from "./support/otlp_receiver.ts";

const START: HrTime = [1_700_000_000, 123_456_789];
const END: HrTime = [1_700_000_002, 987_654_321];
const EVENT_AT: HrTime = [1_700_000_001, 5];

type Variant = { protocol: "http" | "grpc"; gzip: boolean; batch: boolean };

function exporterFor(receiver: Receiver, v: Variant, timeoutMillis = 10_000): SpanExporter {
  // deno-lint-ignore no-explicit-any
  const compression = (v.gzip ? "gzip" : "none") as any;
  if (v.protocol === "http") {
    const headers = { "x-tenant": "blue" };
    return new HttpTraceExporter({ url: receiver.tracesUrl, headers, compression, timeoutMillis });
  }
  const metadata = new Metadata();
  metadata.set("x-tenant", "blue");
  return new GrpcTraceExporter({ url: receiver.url, metadata, compression, timeoutMillis });
}

/** Exports a small trace (root → child → grandchild) through the SDK and returns what the receiver saw. */
async function exportTrace(v: Variant): Promise<{ receiver: Receiver }> {
  const receiver = await startOtlpReceiver({ protocol: v.protocol });
  const exporter = exporterFor(receiver, v);
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": "receiver-test", "service.version": "1.2.3" }),
    spanProcessors: [v.batch ? new BatchSpanProcessor(exporter) : new SimpleSpanProcessor(exporter)],
  });
  try {
    const tracer = provider.getTracer("nf2t-test", "0.0.1");
    const root = tracer.startSpan("netflow.export", {
      startTime: START,
      kind: SpanKind.SERVER,
      attributes: { "str": "x", "int": 42, "big": 1.5e9, "neg": -7, "dbl": 2.5, "bool": true, "arr": [1, 2] },
    });
    const rootCtx = trace.setSpan(context.active(), root);
    const child = tracer.startSpan("netflow.process_flows", { startTime: START }, rootCtx);
    const childCtx = trace.setSpan(rootCtx, child);
    const leaf = tracer.startSpan("netflow.flow", { startTime: START, kind: SpanKind.CLIENT }, childCtx);
    leaf.end(END);
    child.end(END);
    root.addEvent("exception", { "exception.message": "boom" }, EVENT_AT);
    root.setStatus({ code: SpanStatusCode.ERROR, message: "bad packet" });
    root.end(END);
    await provider.forceFlush();
  } finally {
    await provider.shutdown();
  }
  return { receiver };
}

const variants: Variant[] = [
  { protocol: "http", gzip: false, batch: false },
  { protocol: "http", gzip: true, batch: true },
  { protocol: "grpc", gzip: false, batch: true },
  { protocol: "grpc", gzip: true, batch: false },
];

for (const v of variants) {
  Deno.test(`SDK → receiver over ${v.protocol}${v.gzip ? " +gzip" : ""} (${v.batch ? "batch" : "simple"})`, async () => {
    const { receiver } = await exportTrace(v);
    try {
      const spans = await receiver.waitForSpans(3, 5_000);
      assert.equal(spans.length, 3);
      assert.ok(receiver.requests >= 1);
      assert.equal(receiver.headers["x-tenant"], "blue");
      if (v.protocol === "http") {
        assert.equal(receiver.headers["content-type"], "application/x-protobuf");
        assert.equal(receiver.headers["content-encoding"], v.gzip ? "gzip" : undefined);
      } else {
        assert.equal(receiver.headers["content-type"], "application/grpc");
        if (v.gzip) assert.equal(receiver.headers["grpc-encoding"], "gzip");
      }
      const byName = Object.fromEntries(spans.map((s) => [s.name, s]));
      const root = byName["netflow.export"], child = byName["netflow.process_flows"];
      const leaf = byName["netflow.flow"];

      // Ids and parent links.
      for (const s of spans) {
        assert.match(s.traceId, /^[0-9a-f]{32}$/);
        assert.match(s.spanId, /^[0-9a-f]{16}$/);
        assert.equal(s.traceId, root.traceId);
      }
      assert.equal(root.parentSpanId, "");
      assert.equal(child.parentSpanId, root.spanId);
      assert.equal(leaf.parentSpanId, child.spanId);
      assert.equal(new Set(spans.map((s) => s.spanId)).size, 3);

      // Exact nanosecond timestamps (fixed64 → bigint).
      assert.equal(root.startNs, 1_700_000_000_123_456_789n);
      assert.equal(root.endNs, 1_700_000_002_987_654_321n);
      assert.equal(leaf.startNs, root.startNs);

      // Kinds: OTLP numbers are the API's + 1.
      assert.equal(root.kind, 2);
      assert.equal(child.kind, 1);
      assert.equal(leaf.kind, 3);

      // Typed attributes.
      assert.deepEqual(root.attributes, {
        str: "x",
        int: 42,
        big: 1_500_000_000,
        neg: -7,
        dbl: 2.5,
        bool: true,
        arr: [1, 2],
      });
      assert.deepEqual(child.attributes, {});

      // Status and events.
      assert.deepEqual(root.status, { code: 2, message: "bad packet" });
      assert.deepEqual(child.status, { code: 0, message: "" });
      assert.equal(root.events.length, 1);
      assert.deepEqual(root.events[0], {
        name: "exception",
        timeNs: 1_700_000_001_000_000_005n,
        attributes: { "exception.message": "boom" },
      });

      // Resource and scope.
      assert.deepEqual(root.resource, { "service.name": "receiver-test", "service.version": "1.2.3" });
      assert.deepEqual(leaf.scope, { name: "nf2t-test", version: "0.0.1" });
    } finally {
      await receiver.close();
    }
  });
}

for (const protocol of ["http", "grpc"] as const) {
  Deno.test(`receiver rejects while failing and accepts again afterwards (${protocol})`, async () => {
    const receiver = await startOtlpReceiver({ protocol, failWith: true });
    const exporter = exporterFor(receiver, { protocol, gzip: false, batch: false }, 1_000);
    const provider = new BasicTracerProvider();
    const tracer = provider.getTracer("t");
    // Export directly (a processor would swallow the result); an SDK span is a ReadableSpan.
    const send = (name: string) => {
      const span = tracer.startSpan(name);
      span.end();
      return new Promise<number>((resolve) =>
        exporter.export([span as unknown as ReadableSpan], (r) => resolve(r.code))
      );
    };
    try {
      assert.equal(await send("refused"), ExportResultCode.FAILED);
      assert.ok(receiver.rejected >= 1);
      assert.equal(receiver.spans.length, 0);
      receiver.setFailing(false);
      assert.equal(await send("accepted"), ExportResultCode.SUCCESS);
      assert.deepEqual(receiver.spans.map((s) => s.name), ["accepted"]);
    } finally {
      await exporter.shutdown();
      await provider.shutdown();
      await receiver.close();
    }
  });
}

Deno.test("waitForSpans rejects with a clear message on timeout", async () => {
  const receiver = await startOtlpReceiver({ protocol: "http" });
  try {
    await assert.rejects(receiver.waitForSpans(1, 50), /expected 1 spans within 50 ms, got 0/);
  } finally {
    await receiver.close();
  }
});

Deno.test("decodeTraceRequest: hand-written bytes, int64 beyond 2^53, kvlist, bytes, empty request", () => {
  const enc = new TextEncoder();
  const varint = (v: bigint): number[] => {
    const out: number[] = [];
    v = BigInt.asUintN(64, v);
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    return [...out, Number(v)];
  };
  const len = (field: number, body: number[]) => [(field << 3) | 2, ...varint(BigInt(body.length)), ...body];
  const str = (field: number, s: string) => len(field, [...enc.encode(s)]);
  const kv = (key: string, any: number[]) => [...str(1, key), ...len(2, any)];
  const span = [
    ...len(1, Array(16).fill(0xab)),
    ...len(2, [1, 2, 3, 4, 5, 6, 7, 8]),
    ...str(5, "s"),
    ...len(9, kv("huge", [3 << 3, ...varint(2n ** 60n)])),
    ...len(9, kv("neg", [3 << 3, ...varint(-(2n ** 60n))])),
    ...len(9, kv("raw", len(7, [0xde, 0xad]))),
    ...len(9, kv("map", len(6, len(1, kv("k", str(1, "v")))))),
    ...len(9, kv("empty", [])),
    (7 << 3) | 1,
    ...[0x15, 0xcd, 0x5b, 0x07, 0, 0, 0, 0], // 123456789 little-endian fixed64
  ];
  const request = len(1, [...len(1, len(1, kv("service.name", str(1, "x")))), ...len(2, len(2, span))]);
  const [s] = decodeTraceRequest(new Uint8Array(request));
  assert.equal(s.traceId, "ab".repeat(16));
  assert.equal(s.spanId, "0102030405060708");
  assert.equal(s.name, "s");
  assert.equal(s.startNs, 123456789n);
  assert.equal(s.attributes.huge, 2n ** 60n);
  assert.equal(s.attributes.neg, -(2n ** 60n));
  assert.deepEqual(s.attributes.raw, new Uint8Array([0xde, 0xad]));
  assert.deepEqual(s.attributes.map, { k: "v" });
  assert.equal(s.attributes.empty, null);
  assert.deepEqual(s.resource, { "service.name": "x" });
  assert.deepEqual(s.scope, { name: "", version: "" });
  assert.deepEqual(decodeTraceRequest(new Uint8Array()), []);
  assert.throws(() => decodeTraceRequest(new Uint8Array([0x0a, 0x05, 1])), /truncated/);
});
