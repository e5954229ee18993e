/**
 * A light OTLP trace receiver for benchmarks, run as its own process: counts spans per name and measures
 * export lag (arrival − the `netflow.export` span's end, which is the packet's export time) without
 * decoding attributes, so it costs the machine little next to the collector.
 *
 *   deno run -A bench/count_receiver.ts http|grpc   → prints {"port":N}; on SIGTERM prints the totals as JSON
 */
import http from "node:http";
import http2 from "node:http2";
import process from "node:process";
import zlib from "node:zlib";

const protocol = process.argv[2] === "grpc" ? "grpc" : "http";
let spans = 0, flowSpans = 0, exportSpans = 0, requests = 0;
const lags: number[] = [];

function varint(b: Uint8Array, p: number): [number, number] {
  let v = 0, mul = 1;
  for (;;) {
    const x = b[p++];
    v += (x & 0x7f) * mul;
    if (x < 0x80) return [v, p];
    mul *= 128;
  }
}

/** Calls `fn(start, end)` for each length-delimited field `want` in b[start, end). */
function each(b: Uint8Array, start: number, end: number, want: number, fn: (s: number, e: number) => void) {
  let p = start;
  while (p < end) {
    let key;
    [key, p] = varint(b, p);
    const field = Math.floor(key / 8), wt = key & 7;
    if (wt === 0) [, p] = varint(b, p);
    else if (wt === 1) p += 8;
    else if (wt === 5) p += 4;
    else if (wt === 2) {
      let len;
      [len, p] = varint(b, p);
      if (field === want) fn(p, p + len);
      p += len;
    } else throw new Error(`wire type ${wt}`);
  }
}

function count(body: Uint8Array): void {
  const now = Date.now();
  let latestExportEnd = 0;
  each(
    body,
    0,
    body.length,
    1,
    (rs, re) =>
      each(body, rs, re, 2, (ss, se) =>
        each(body, ss, se, 2, (s, e) => {
          spans++;
          // name (5) decides the kind; end time (8, fixed64) for export spans
          let p = s, name = "", endMs = 0;
          while (p < e) {
            let key;
            [key, p] = varint(body, p);
            const field = Math.floor(key / 8), wt = key & 7;
            if (wt === 0) [, p] = varint(body, p);
            else if (wt === 1) {
              if (field === 8) {
                const lo = body[p] | (body[p + 1] << 8) | (body[p + 2] << 16) | (body[p + 3] << 24);
                const hi = body[p + 4] | (body[p + 5] << 8) | (body[p + 6] << 16) | (body[p + 7] << 24);
                endMs = ((hi >>> 0) * 4294967296 + (lo >>> 0)) / 1e6;
              }
              p += 8;
            } else if (wt === 5) p += 4;
            else {
              let len;
              [len, p] = varint(body, p);
              if (field === 5) name = new TextDecoder().decode(body.subarray(p, p + len));
              p += len;
            }
          }
          if (name === "netflow.flow") flowSpans++;
          else if (name === "netflow.export") {
            exportSpans++;
            if (endMs > latestExportEnd) latestExportEnd = endMs;
          }
        })),
  );
  requests++;
  if (latestExportEnd > 0) lags.push(now - latestExportEnd);
}

function percentile(xs: number[], p: number): number | null {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor(p * s.length))]);
}

let server: http.Server | http2.Http2Server;
if (protocol === "http") {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      let body: Uint8Array = Buffer.concat(chunks);
      if (req.headers["content-encoding"] === "gzip") body = zlib.gunzipSync(body);
      count(body);
      res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
    });
  });
} else {
  // Large flow-control windows, as gRPC servers set them (grpc-go's BDP estimation grows to 16 MiB):
  // with HTTP/2's default 64 KiB the receiver, not the collector, would set the pace.
  server = http2.createServer({ settings: { initialWindowSize: 16 << 20 } });
  server.on("session", (session: http2.ServerHttp2Session) => session.setLocalWindowSize(64 << 20));
  server.on("stream", (stream: http2.ServerHttp2Stream) => {
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => {
      const all = Buffer.concat(chunks);
      for (let p = 0; p + 5 <= all.length;) {
        const len = all.readUInt32BE(p + 1);
        let msg: Uint8Array = all.subarray(p + 5, p + 5 + len);
        if (all[p] === 1) msg = zlib.gunzipSync(msg);
        count(msg);
        p += 5 + len;
      }
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end(Buffer.from([0, 0, 0, 0, 0]));
    });
  });
}
server.listen(0, "127.0.0.1", () => {
  const addr = server.address() as { port: number };
  console.log(JSON.stringify({ port: addr.port }));
});
const totals = () =>
  JSON.stringify({
    progress: flowSpans,
    requests,
    spans,
    flowSpans,
    exportSpans,
    lagP50Ms: percentile(lags, 0.5),
    lagP99Ms: percentile(lags, 0.99),
  });
// The totals whenever they moved, so the driver has them even if this process dies at the end (Deno's
// node:http2 server can abort on the collector's GOAWAY: an nghttp2 assertion, exit 134).
let reported = -1;
setInterval(() => {
  if (flowSpans !== reported) console.log(totals());
  reported = flowSpans;
}, 200);
const report = () => {
  console.log(totals());
  process.exit(0);
};
process.on("SIGTERM", report);
process.on("SIGINT", report);
