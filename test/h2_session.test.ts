/**
 * The HTTP/2 client (src/traces/h2_session.ts): HPACK against RFC 7541 Appendix C, round trips with a real
 * gRPC server (@grpc/grpc-js), failures (refused, closed mid-request, timeout), and the protocol corners
 * (flow control, MAX_CONCURRENT_STREAMS, CONTINUATION, padding, PING, GOAWAY, RST_STREAM) against a
 * scripted server that writes frames by hand. Also GrpcTransport's messages for them.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import net from "node:net";
import * as grpc from "@grpc/grpc-js";
import { H2Error, H2Session } from "../src/traces/h2_session.ts";
import { encodeHeaderBlock, HpackDecoder, HUFFMAN_CODES, huffmanDecode } from "../src/traces/hpack.ts";
import { GrpcTransport } from "../src/traces/grpc_transport.ts";

const hex = (s: string) => Uint8Array.from(s.match(/../g)!, (h) => parseInt(h, 16));

function decodeAll(decoder: HpackDecoder, block: string): [string, string][] {
  const out: [string, string][] = [];
  decoder.decode(hex(block), (n, v) => out.push([n, v]));
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// HPACK (RFC 7541 Appendix C)
// ---------------------------------------------------------------------------------------------------------

const REQUESTS: [string, string][][] = [
  [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"]],
  [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"], [
    "cache-control",
    "no-cache",
  ]],
  [[":method", "GET"], [":scheme", "https"], [":path", "/index.html"], [":authority", "www.example.com"], [
    "custom-key",
    "custom-value",
  ]],
];
const REQUEST_TABLES: { entries: [string, string][]; size: number }[] = [
  { entries: [[":authority", "www.example.com"]], size: 57 },
  { entries: [["cache-control", "no-cache"], [":authority", "www.example.com"]], size: 110 },
  {
    entries: [["custom-key", "custom-value"], ["cache-control", "no-cache"], [
      ":authority",
      "www.example.com",
    ]],
    size: 164,
  },
];

for (
  const [name, blocks] of [
    ["C.3 requests without Huffman", [
      "828684410f7777772e6578616d706c652e636f6d",
      "828684be58086e6f2d6361636865",
      "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565",
    ]],
    ["C.4 requests with Huffman", [
      "828684418cf1e3c2e5f23a6ba0ab90f4ff",
      "828684be5886a8eb10649cbf",
      "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf",
    ]],
  ] as const
) {
  Deno.test(`hpack: RFC 7541 ${name}`, () => {
    const decoder = new HpackDecoder();
    blocks.forEach((block, i) => {
      assert.deepEqual(decodeAll(decoder, block), REQUESTS[i]);
      assert.deepEqual(decoder.dynamicTable, REQUEST_TABLES[i]);
    });
  });
}

const DATE1 = "Mon, 21 Oct 2013 20:13:21 GMT", DATE2 = "Mon, 21 Oct 2013 20:13:22 GMT";
const LOCATION = "https://www.example.com";
const COOKIE = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
const RESPONSES: [string, string][][] = [
  [[":status", "302"], ["cache-control", "private"], ["date", DATE1], ["location", LOCATION]],
  [[":status", "307"], ["cache-control", "private"], ["date", DATE1], ["location", LOCATION]],
  [
    [":status", "200"],
    ["cache-control", "private"],
    ["date", DATE2],
    ["location", LOCATION],
    ["content-encoding", "gzip"],
    ["set-cookie", COOKIE],
  ],
];
// With a 256-byte table, each response evicts: after the third, three entries remain.
const RESPONSE_TABLES: { entries: [string, string][]; size: number }[] = [
  {
    entries: [["location", LOCATION], ["date", DATE1], ["cache-control", "private"], [":status", "302"]],
    size: 222,
  },
  {
    entries: [[":status", "307"], ["location", LOCATION], ["date", DATE1], ["cache-control", "private"]],
    size: 222,
  },
  { entries: [["set-cookie", COOKIE], ["content-encoding", "gzip"], ["date", DATE2]], size: 215 },
];

for (
  const [name, blocks] of [
    ["C.5 responses without Huffman", [
      "4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d546e17687474" +
      "70733a2f2f7777772e6578616d706c652e636f6d",
      "4803333037c1c0bf",
      "88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a69707738666f6f3d415344" +
      "4a4b48514b425a584f5157454f50495541585157454f49553b206d61782d6167653d333630303b2076657273696f6e3d31",
    ]],
    ["C.6 responses with Huffman", [
      "488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae" +
      "82ae43d3",
      "4883640effc1c0bf",
      "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b39" +
      "60d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007",
    ]],
  ] as const
) {
  Deno.test(`hpack: RFC 7541 ${name} (256-byte table, eviction)`, () => {
    const decoder = new HpackDecoder(256);
    blocks.forEach((block, i) => {
      assert.deepEqual(decodeAll(decoder, block), RESPONSES[i]);
      assert.deepEqual(decoder.dynamicTable, RESPONSE_TABLES[i]);
    });
  });
}

Deno.test("hpack: the Huffman code rebuilt from lengths matches RFC 7541 Appendix B", () => {
  // A sample of the table's rows: [symbol, code, length].
  const rows: [number, number, number][] = [
    [0, 0x1ff8, 13],
    [1, 0x7fffd8, 23],
    [9, 0xffffea, 24],
    [10, 0x3ffffffc, 30],
    [22, 0x3ffffffe, 30],
    [32, 0x14, 6],
    [48, 0x0, 5],
    [58, 0x5c, 7],
    [88, 0xfc, 8],
    [92, 0x7fff0, 19],
    [116, 0x9, 5],
    [127, 0xffffffc, 28],
    [128, 0xfffe6, 20],
    [153, 0x1fffdc, 21],
    [195, 0x7fff1, 19],
    [255, 0x3ffffee, 26],
    [256, 0x3fffffff, 30],
  ];
  for (const [sym, code, length] of rows) {
    assert.deepEqual(HUFFMAN_CODES[sym], { code, length }, `symbol ${sym}`);
  }
  // Complete prefix code: the Kraft sum is exactly 1.
  assert.equal(HUFFMAN_CODES.reduce((s, c) => s + 2 ** -c.length, 0), 1);
  // Every byte value round-trips through an encoder built from the same table.
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  assert.deepEqual(huffmanDecode(huffmanEncode(all)), all);
});

Deno.test("hpack: invalid input is refused (padding, EOS, index, table size update)", () => {
  assert.throws(() => huffmanDecode(Uint8Array.of(0xff, 0xff, 0xff, 0xff)), /EOS|invalid/); // EOS
  assert.throws(() => huffmanDecode(Uint8Array.of(0x00)), /padding/); // "0" then 3 zero bits
  assert.throws(() => huffmanDecode(Uint8Array.of(0x1f, 0xff)), /padding/); // "0" then 11 one bits
  assert.throws(() => new HpackDecoder().decode(Uint8Array.of(0x80), () => {}), /index 0/);
  assert.throws(() => new HpackDecoder().decode(Uint8Array.of(0xbe), () => {}), /beyond/);
  assert.throws(() => new HpackDecoder().decode(Uint8Array.of(0x82, 0x20), () => {}), /size update/);
  assert.throws(() => new HpackDecoder(256).decode(hex("3fe201"), () => {}), /above 256/);
  assert.throws(() => new HpackDecoder().decode(hex("0003"), () => {}), /truncated/);
});

Deno.test("hpack: our encoding decodes back (indexed, static names, new names, long values)", () => {
  const headers: [string, string][] = [
    [":method", "POST"],
    [":path", "/opentelemetry.proto.collector.trace.v1.TraceService/Export"],
    ["content-type", "application/grpc"],
    ["te", "trailers"],
    ["authorization", `Bearer ${"x".repeat(300)}`],
    ["x-ünïcode", "välue"],
  ];
  const decoder = new HpackDecoder();
  const out: [string, string][] = [];
  decoder.decode(encodeHeaderBlock(headers), (n, v) => out.push([n, v]));
  assert.deepEqual(out, headers);
  assert.equal(decoder.dynamicTable.size, 0);
});

function huffmanEncode(bytes: Uint8Array): Uint8Array {
  let bits = "";
  for (const b of bytes) bits += HUFFMAN_CODES[b].code.toString(2).padStart(HUFFMAN_CODES[b].length, "0");
  bits = bits.padEnd(Math.ceil(bits.length / 8) * 8, "1");
  return Uint8Array.from(bits.match(/.{8}/g)!, (x) => parseInt(x, 2));
}

// ---------------------------------------------------------------------------------------------------------
// Against @grpc/grpc-js
// ---------------------------------------------------------------------------------------------------------

const PATH = "/test.Echo/Call";
const identity = (b: Buffer) => b;
type Handler = (
  request: Buffer,
) => { error?: grpc.ServiceError | Partial<grpc.StatusObject>; reply?: Buffer } | null;

/** A grpc-js server whose one method answers with `handle` (null: never answers). */
async function startGrpcServer(handle: Handler) {
  const server = new grpc.Server();
  server.addService({
    Call: {
      path: PATH,
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
  }, {
    Call: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      const r = handle(call.request);
      if (r) callback((r.error as grpc.ServiceError) ?? null, r.reply);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      "127.0.0.1:0",
      grpc.ServerCredentials.createInsecure(),
      (e, p) => e ? reject(e) : resolve(p),
    )
  );
  return { port, close: () => server.forceShutdown() };
}

const GRPC_HEADERS: [string, string][] = [
  [":method", "POST"],
  [":path", PATH],
  ["content-type", "application/grpc"],
  ["te", "trailers"],
];

function grpcMessage(payload: Uint8Array): Uint8Array[] {
  const prefix = new Uint8Array(5);
  new DataView(prefix.buffer).setUint32(1, payload.length);
  return [prefix, payload];
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 10)) & 0xff;
  return b;
}

Deno.test("h2 + grpc-js: a 3 MB request (flow control) and 16 concurrent ones arrive intact", async () => {
  const server = await startGrpcServer((req) => ({ reply: Buffer.from(sha256(req)) }));
  const session = new H2Session({ host: "127.0.0.1", port: server.port });
  try {
    const big = pattern(3_000_000, 1);
    const r = await session.request(GRPC_HEADERS, grpcMessage(big), 10_000);
    assert.equal(r.status, 200);
    assert.equal(r.trailers["grpc-status"], "0");
    assert.equal(new TextDecoder().decode(r.data.subarray(5)), sha256(big));

    const bodies = Array.from({ length: 16 }, (_, i) => pattern(50_000 + i * 10_000, i));
    const answers = await Promise.all(
      bodies.map((b) => session.request(GRPC_HEADERS, grpcMessage(b), 10_000)),
    );
    answers.forEach((a, i) => assert.equal(new TextDecoder().decode(a.data.subarray(5)), sha256(bodies[i])));
    assert.ok(session.usable);
  } finally {
    session.close();
    server.close();
  }
});

Deno.test("h2 + grpc-js: an error status arrives trailers-only (grpc-status in the headers)", async () => {
  const server = await startGrpcServer(() => ({
    error: { code: grpc.status.UNAVAILABLE, details: "down now" },
  }));
  const session = new H2Session({ host: "127.0.0.1", port: server.port });
  try {
    const r = await session.request(GRPC_HEADERS, grpcMessage(pattern(10, 0)), 5_000);
    assert.equal(r.status, 200);
    assert.equal(r.headers["grpc-status"], "14");
    assert.equal(decodeURIComponent(r.headers["grpc-message"]), "down now");
    assert.deepEqual(r.trailers, {});
  } finally {
    session.close();
    server.close();
  }
});

Deno.test("h2 + grpc-js: a request past its timeout is cancelled, the session still works", async () => {
  const server = await startGrpcServer((req) => req.length === 1 ? null : { reply: Buffer.from("ok") });
  const session = new H2Session({ host: "127.0.0.1", port: server.port });
  try {
    await assert.rejects(
      session.request(GRPC_HEADERS, grpcMessage(Uint8Array.of(1)), 200),
      (e: H2Error) => e.kind === "timeout" && /200 ms/.test(e.message),
    );
    const r = await session.request(GRPC_HEADERS, grpcMessage(Uint8Array.of(1, 2)), 5_000);
    assert.equal(new TextDecoder().decode(r.data.subarray(5)), "ok");
  } finally {
    session.close();
    server.close();
  }
});

Deno.test("GrpcTransport + grpc-js: accepted, UNAVAILABLE, INVALID_ARGUMENT, UNAUTHENTICATED", async () => {
  const statuses = [0, grpc.status.UNAVAILABLE, grpc.status.INVALID_ARGUMENT, grpc.status.UNAUTHENTICATED];
  const server = await startGrpcServer((req) => {
    const code = statuses[req[0]];
    return code === 0 ? { reply: Buffer.alloc(0) } : { error: { code, details: `status ${code}` } };
  });
  const transport = new GrpcTransport({
    endpoint: `http://127.0.0.1:${server.port}`,
    headers: { "x-test": "1" },
    compression: "gzip",
    path: PATH,
    userAgent: "h2-test",
  });
  try {
    assert.deepEqual(await transport.send(Uint8Array.of(0), 5_000), {
      kind: "accepted",
      rejectedSpans: 0,
      message: undefined,
    });
    assert.deepEqual(await transport.send(Uint8Array.of(1), 5_000), {
      kind: "retry",
      problem: { message: "gRPC UNAVAILABLE: status 14" },
      retryAfterMs: undefined,
    });
    assert.deepEqual(await transport.send(Uint8Array.of(2), 5_000), {
      kind: "rejected",
      problem: { message: "gRPC INVALID_ARGUMENT: status 3" },
    });
    const auth = await transport.send(Uint8Array.of(3), 5_000);
    assert.equal(auth.kind === "retry" && auth.problem.credentials, true);
  } finally {
    transport.close();
    server.close();
  }
});

// ---------------------------------------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------------------------------------

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

Deno.test("h2: connection refused rejects with the socket's error; GrpcTransport names it", async () => {
  const port = await freePort();
  const session = new H2Session({ host: "127.0.0.1", port });
  await assert.rejects(
    session.request(GRPC_HEADERS, [], 2_000),
    (e: H2Error) => e.kind === "network" && (e.cause as { code?: string }).code === "ECONNREFUSED",
  );
  assert.equal(session.usable, false);
  const transport = new GrpcTransport({
    endpoint: `http://127.0.0.1:${port}`,
    headers: {},
    compression: "none",
    path: PATH,
    userAgent: "t",
  });
  const outcome = await transport.send(Uint8Array.of(1), 2_000);
  assert.equal(outcome.kind, "retry");
  assert.match(
    outcome.kind === "retry" ? outcome.problem.message : "",
    /^connection refused by 127\.0\.0\.1:\d+/,
  );
});

/**
 * A hand-written HTTP/2 server: reads the client preface and frames, hands each to `onFrame` with a
 * `send(type, flags, id, payload)` for answering. Starts with `settings` (id/value pairs).
 */
async function startScriptedServer(
  settings: [number, number][],
  onFrame: (
    f: { type: number; flags: number; id: number; payload: Uint8Array },
    conn: ScriptedConnection,
  ) => void,
) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    let buf = new Uint8Array(0), prefaceSeen = false;
    const conn: ScriptedConnection = {
      socket,
      send(type, flags, id, payload = new Uint8Array(0)) {
        const f = new Uint8Array(9 + payload.length);
        const v = new DataView(f.buffer);
        v.setUint32(0, payload.length << 8);
        f[3] = type;
        f[4] = flags;
        v.setUint32(5, id);
        f.set(payload, 9);
        socket.write(f);
      },
    };
    const s = new Uint8Array(settings.length * 6);
    settings.forEach(([k, val], i) => {
      new DataView(s.buffer).setUint16(i * 6, k);
      new DataView(s.buffer).setUint32(i * 6 + 2, val);
    });
    conn.send(4, 0, 0, s);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    socket.on("data", (chunk: Uint8Array) => {
      const next = new Uint8Array(buf.length + chunk.length);
      next.set(buf);
      next.set(chunk, buf.length);
      buf = next;
      if (!prefaceSeen) {
        if (buf.length < 24) return;
        assert.equal(new TextDecoder().decode(buf.subarray(0, 24)), "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        buf = buf.subarray(24);
        prefaceSeen = true;
      }
      while (buf.length >= 9) {
        const len = (buf[0] << 16) | (buf[1] << 8) | buf[2];
        if (buf.length < 9 + len) break;
        const id = new DataView(buf.buffer, buf.byteOffset).getUint32(5) & 0x7fffffff;
        onFrame({ type: buf[3], flags: buf[4], id, payload: buf.slice(9, 9 + len) }, conn);
        buf = buf.subarray(9 + len);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(r));
    },
  };
}

interface ScriptedConnection {
  socket: net.Socket;
  send(type: number, flags: number, id: number, payload?: Uint8Array): void;
}

const u32 = (...xs: number[]) => {
  const b = new Uint8Array(xs.length * 4);
  xs.forEach((x, i) => new DataView(b.buffer).setUint32(i * 4, x));
  return b;
};
const DATA = 0, HEADERS = 1, RST_STREAM = 3, SETTINGS = 4, PING = 6, GOAWAY = 7, WINDOW_UPDATE = 8;
const CONTINUATION = 9, END_STREAM = 1, END_HEADERS = 4, PADDED = 8;

Deno.test("h2: the server closing the connection mid-request fails it", async () => {
  const server = await startScriptedServer([], (f, conn) => {
    if (f.type === DATA) conn.socket.destroy(); // the first DATA frame: gone
  });
  const session = new H2Session({ host: "127.0.0.1", port: server.port });
  try {
    await assert.rejects(
      session.request(GRPC_HEADERS, grpcMessage(pattern(200_000, 3)), 5_000),
      (e: H2Error) =>
        e.kind === "closed" ||
        (e.kind === "network" && /ECONNRESET|EPIPE/.test(String((e.cause as Error)?.message))),
    );
    assert.equal(session.usable, false);
  } finally {
    await server.close();
  }
});

Deno.test("h2: small windows, MAX_CONCURRENT_STREAMS 1, SETTINGS change, PING, padding, CONTINUATION", async () => {
  const INITIAL = 1000;
  const streams = new Map<number, { window: number; received: number[] }>();
  let connWindow = 65535, open = 0, maxOpen = 0, pingAcked = false;
  const decoder = new HpackDecoder();
  const server = await startScriptedServer([[3, 1], [4, INITIAL]], (f, conn) => {
    if (f.type === PING && f.flags & 1) pingAcked = new TextDecoder().decode(f.payload) === "pingpong";
    if (f.type === HEADERS) {
      const fields: Record<string, string> = {};
      decoder.decode(f.payload, (n, v) => (fields[n] = v));
      assert.equal(fields[":path"], PATH);
      assert.equal(fields[":authority"], `127.0.0.1:${serverPort()}`);
      streams.set(f.id, { window: INITIAL, received: [] });
      maxOpen = Math.max(maxOpen, ++open);
      conn.send(PING, 0, 0, new TextEncoder().encode("pingpong"));
    }
    if (f.type !== DATA) return;
    const s = streams.get(f.id)!;
    s.window -= f.payload.length;
    connWindow -= f.payload.length;
    assert.ok(s.window >= 0 && connWindow >= 0, "the client kept within the windows");
    s.received.push(...f.payload);
    if (s.received.length === 5) {
      // After the gRPC prefix: widen every stream window through SETTINGS (applies to open streams too).
      conn.send(SETTINGS, 0, 0, Uint8Array.of(0, 4, ...u32(INITIAL + 500)));
      s.window += 500;
    }
    if (!(f.flags & END_STREAM)) {
      conn.send(WINDOW_UPDATE, 0, f.id, u32(f.payload.length));
      conn.send(WINDOW_UPDATE, 0, 0, u32(f.payload.length));
      s.window += f.payload.length;
      connWindow += f.payload.length;
      return;
    }
    // The response: padded HEADERS split by a CONTINUATION, padded DATA, then trailers.
    open--;
    const block = encodeHeaderBlock([[":status", "200"], ["content-type", "application/grpc"], [
      "x-long",
      "y".repeat(100),
    ]]);
    conn.send(HEADERS, PADDED, f.id, Uint8Array.of(3, ...block.subarray(0, 10), 0, 0, 0));
    conn.send(CONTINUATION, END_HEADERS, f.id, block.subarray(10));
    const sum = s.received.reduce((a, b) => (a + b) & 0xffff, 0);
    conn.send(DATA, PADDED, f.id, Uint8Array.of(2, ...u32(s.received.length, sum), 0, 0));
    conn.send(HEADERS, END_HEADERS | END_STREAM, f.id, encodeHeaderBlock([["grpc-status", "0"]]));
  });
  const serverPort = () => server.port;
  const session = new H2Session({ host: "127.0.0.1", port: server.port });
  try {
    const bodies = [pattern(20_000, 1), pattern(7_000, 2), pattern(1, 3)];
    const results = await Promise.all(
      bodies.map((b) => session.request(GRPC_HEADERS, grpcMessage(b), 5_000)),
    );
    results.forEach((r, i) => {
      assert.equal(r.status, 200);
      assert.equal(r.headers["x-long"], "y".repeat(100));
      assert.equal(r.trailers["grpc-status"], "0");
      const v = new DataView(r.data.buffer, r.data.byteOffset);
      assert.equal(v.getUint32(0), bodies[i].length + 5);
      assert.equal(
        v.getUint32(4),
        [...grpcMessage(bodies[i])[0], ...bodies[i]].reduce((a, b) => (a + b) & 0xffff, 0),
      );
    });
    assert.equal(maxOpen, 1, "MAX_CONCURRENT_STREAMS 1: one stream at a time");
    assert.ok(pingAcked, "PING answered with an ACK");
  } finally {
    session.close();
    await server.close();
  }
});

Deno.test("h2: GOAWAY fails only the streams above its last id (unprocessed); RST_STREAM rejects", async () => {
  let headersSeen = 0;
  const server = await startScriptedServer([], (f, conn) => {
    if (f.type !== HEADERS) return;
    if (++headersSeen === 3) { // the third request, on the second session, is refused
      conn.send(RST_STREAM, 0, f.id, u32(7));
      return;
    }
    if (headersSeen < 2) return;
    conn.send(GOAWAY, 0, 0, Uint8Array.of(...u32(1, 0), ...new TextEncoder().encode("bye")));
    conn.send(
      HEADERS,
      END_HEADERS | END_STREAM,
      1,
      encodeHeaderBlock([[":status", "200"], ["grpc-status", "0"]]),
    );
  });
  try {
    const session = new H2Session({ host: "127.0.0.1", port: server.port });
    const first = session.request(GRPC_HEADERS, [], 5_000);
    const second = assert.rejects(
      session.request(GRPC_HEADERS, [], 5_000),
      (e: H2Error) => e.kind === "goaway" && e.unprocessed && e.message === "GOAWAY NO_ERROR: bye",
    );
    assert.equal((await first).headers["grpc-status"], "0");
    await second;
    assert.equal(session.usable, false);
    const next = new H2Session({ host: "127.0.0.1", port: server.port });
    await assert.rejects(
      next.request(GRPC_HEADERS, [], 5_000),
      (e: H2Error) => e.kind === "reset" && e.h2Code === 7 && e.unprocessed,
    );
    next.close();
  } finally {
    await server.close();
  }
});

Deno.test("GrpcTransport: a refused stream is sent once more, then named; HTTP 415 and HTTP/1 are named", async () => {
  let attempts = 0;
  const refusing = await startScriptedServer([], (f, conn) => {
    if (f.type === HEADERS) {
      attempts++;
      conn.send(RST_STREAM, 0, f.id, u32(7));
    }
  });
  const notGrpc = await startScriptedServer([], (f, conn) => {
    if ((f.type === HEADERS || f.type === DATA) && f.flags & END_STREAM) {
      conn.send(HEADERS, END_HEADERS | END_STREAM, f.id, encodeHeaderBlock([[":status", "415"]]));
    }
  });
  const http1 = net.createServer((s) => s.end("HTTP/1.1 400 Bad Request\r\n\r\n"));
  await new Promise<void>((r) => http1.listen(0, "127.0.0.1", r));
  const transport = (port: number) =>
    new GrpcTransport({
      endpoint: `http://127.0.0.1:${port}`,
      headers: {},
      compression: "none",
      path: PATH,
      userAgent: "t",
    });
  const message = (o: Awaited<ReturnType<GrpcTransport["send"]>>) =>
    o.kind === "accepted" ? "" : o.problem.message;
  try {
    const t1 = transport(refusing.port), t2 = transport(notGrpc.port);
    const t3 = transport((http1.address() as net.AddressInfo).port);
    assert.equal(
      message(await t1.send(new Uint8Array(0), 2_000)),
      `127.0.0.1:${refusing.port} refused the request (the server is shutting down?)`,
    );
    assert.equal(attempts, 2);
    assert.match(
      message(await t2.send(new Uint8Array(0), 2_000)),
      /^gRPC export failed: HTTP 415 without grpc-status \(not a gRPC endpoint\?/,
    );
    assert.match(message(await t3.send(new Uint8Array(0), 2_000)), /HTTP\/1/);
    for (const t of [t1, t2, t3]) t.close();
  } finally {
    await refusing.close();
    await notGrpc.close();
    http1.close(); // its callback can stay pending under Deno once the client has hung up
  }
});

Deno.test("h2: responses beyond the header list or data limit fail that stream only", async () => {
  const server = await startScriptedServer([], (f, conn) => {
    if (f.type !== HEADERS) return;
    const big = f.id === 1;
    conn.send(
      HEADERS,
      END_HEADERS,
      f.id,
      encodeHeaderBlock([[":status", "200"], ["x", big ? "v".repeat(300) : "v"]]),
    );
    conn.send(DATA, 0, f.id, new Uint8Array(80));
    conn.send(DATA, END_STREAM, f.id, new Uint8Array(f.id === 3 ? 80 : 10));
  });
  const session = new H2Session({
    host: "127.0.0.1",
    port: server.port,
    maxHeaderListSize: 200,
    maxResponseBytes: 100,
  });
  try {
    await assert.rejects(
      session.request(GRPC_HEADERS, [], 2_000),
      (e: H2Error) => e.kind === "limit" && /headers larger than 200/.test(e.message),
    );
    await assert.rejects(
      session.request(GRPC_HEADERS, [], 2_000),
      (e: H2Error) => e.kind === "limit" && /larger than 100 bytes/.test(e.message),
    );
    const ok = await session.request(GRPC_HEADERS, [], 2_000);
    assert.equal(ok.data.length, 90);
  } finally {
    session.close();
    await server.close();
  }
});
