/**
 * Paced NetFlow sender for the end-to-end benchmark, run as its own process:
 *   deno run -A bench/e2e_sender.ts PORT FLOWS_PER_SEC SECONDS [VERSION] [EXPORT_STREAMS]
 * Datagrams come from the synthetic traffic generator (pre-built, then re-stamped with the current
 * export time as they go out). Prints {"datagrams":N,"flows":N,"seconds":S} when done.
 */
import process from "node:process";
import { TrafficGenerator } from "../src/tools/traffic.ts";

const [port, flowsPerSec, seconds, version, streams] = process.argv.slice(2).map(Number);
const v = (version || 5) as 5 | 9 | 10;
const gen = new TrafficGenerator({
  version: v,
  seed: 7,
  ipv6: v === 5 ? 0 : 0.2,
  templateIntervalMs: 1000,
  exporters: streams || 1,
});
const perDatagram = gen.flowsPerPacket;
const rate = flowsPerSec / perDatagram; // datagrams per second
const pool: { bytes: Uint8Array; flows: number }[] = [];
const poolSize = Math.min(Math.ceil(rate * 2), 20_000);
for (let i = 0, t = Date.now(); i < poolSize; i++) {
  const d = gen.next(t + (i * 1000) / rate);
  pool.push({ bytes: d.payload, flows: d.flows.length });
}

/** Re-stamps the header's export time (v5: secs + nsecs, v9: secs, IPFIX: secs) with now. */
function stamp(bytes: Uint8Array, now: number): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v === 5) {
    view.setUint32(8, Math.floor(now / 1000));
    view.setUint32(12, (now % 1000) * 1e6);
  } else if (v === 9) {
    view.setUint32(8, Math.floor(now / 1000));
  } else {
    view.setUint32(4, Math.floor(now / 1000));
  }
}

const sock = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
const target = { transport: "udp" as const, hostname: "127.0.0.1", port };
let sent = 0, flows = 0, next = 0;
const start = performance.now();
const end = start + seconds * 1000;
while (performance.now() < end) {
  const due = Math.floor(((performance.now() - start) / 1000) * rate);
  const now = Date.now();
  while (sent < due) {
    const d = pool[next];
    next = (next + 1) % pool.length;
    stamp(d.bytes, now);
    await sock.send(d.bytes, target);
    sent++;
    flows += d.flows;
  }
  await new Promise((r) => setTimeout(r, 2));
}
sock.close();
console.log(JSON.stringify({ datagrams: sent, flows, seconds: (performance.now() - start) / 1000 }));
