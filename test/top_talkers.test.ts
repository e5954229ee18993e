/**
 * The status page's traffic views (issue 17): top talkers (exact while small, bounded and still right about
 * the heavy hitters under a million distinct 5-tuples, windows by receive time, merged over Workers) and the
 * last flows (bounded, newest first, attributes exactly as `planTrace()` gives the span writers).
 */
import assert from "node:assert/strict";
import type { ExportPacket, Flow } from "../src/netflow/types.ts";
import { mergeTopWindows, SKETCH_LIMIT, TOP_ROWS, TopTalkers, type TopWindow } from "../src/top_talkers.ts";
import { mergeRecentFlows, RECENT_FLOWS, RecentFlows } from "../src/recent_flows.ts";
import { planTrace, type TracePlanOptions } from "../src/traces/spans.ts";

const T0 = Date.UTC(2026, 11, 3, 12, 0, 30);

function packet(flows: Flow[], receivedAtMs = T0, exporterAddress = "192.0.2.1"): ExportPacket {
  return { version: 9, exporterAddress, exporterPort: 2055, sizeBytes: 100, receivedAtMs, flows };
}

const tcp = (
  src: string,
  dst: string,
  srcPort: number,
  dstPort: number,
  bytes: number,
  more: Partial<Flow> = {},
) => ({
  srcAddr: src,
  dstAddr: dst,
  srcPort,
  dstPort,
  protocol: 6,
  bytes,
  packets: Math.ceil(bytes / 1000),
  ...more,
});

const rows = (w: TopWindow, d: keyof TopWindow["top"]) => w.top[d].map((r) => [r.key, r.bytes, r.flows]);

Deno.test("top talkers: exact figures by source, destination, conversation, service and interface", () => {
  const top = new TopTalkers();
  top.record(packet([
    tcp("10.0.0.1", "10.0.0.2", 50_000, 443, 5_000, { inputIf: 3, outputIf: 7 }),
    tcp("10.0.0.2", "10.0.0.1", 443, 50_000, 20_000, { inputIf: 7, outputIf: 3 }),
    // Sampled 1 in 100: counted as the estimate the span carries.
    tcp("10.0.0.3", "10.0.0.2", 40_000, 22, 100, {
      samplingInterval: 100,
      inputIf: 3,
      extra: { "netflow.interface.input.name": "<b>ge-0/0/3</b>" },
    }),
    { srcAddr: "10.0.0.1", dstAddr: "10.0.0.9", protocol: 1, bytes: 84, packets: 1 },
  ]));
  const [one, five, fifteen] = top.windows(T0 + 1_000);
  assert.deepEqual([one.minutes, five.minutes, fifteen.minutes], [1, 5, 15]);
  assert.deepEqual([one.bytes, one.flows], [5_000 + 20_000 + 10_000 + 84, 4]);
  assert.deepEqual(rows(one, "source"), [["10.0.0.2", 20_000, 1], ["10.0.0.3", 10_000, 1], [
    "10.0.0.1",
    5_084,
    2,
  ]]);
  assert.deepEqual(rows(one, "destination").slice(0, 2), [["10.0.0.1", 20_000, 1], ["10.0.0.2", 15_000, 2]]);
  // Both directions are one conversation.
  assert.deepEqual(rows(one, "conversation"), [
    ["10.0.0.1 ↔ 10.0.0.2", 25_000, 2],
    ["10.0.0.2 ↔ 10.0.0.3", 10_000, 1],
    ["10.0.0.1 ↔ 10.0.0.9", 84, 1],
  ]);
  assert.deepEqual(rows(one, "service"), [["tcp/443", 25_000, 2], ["tcp/22", 10_000, 1], ["icmp", 84, 1]]);
  const ifaces = one.top.interface;
  const if3 = ifaces.find((r) => r.key === "192.0.2.1 3")!;
  assert.deepEqual([if3.inBytes, if3.outBytes, if3.name], [15_000, 20_000, "<b>ge-0/0/3</b>"]);
  assert.ok(one.top.source.every((r) => r.error === 0), "exact while small");
  assert.equal(one.top.source[0].packets, 20);
});

Deno.test("top talkers: windows by receive time: a flow 3 minutes old is in 5 and 15 min, not in 1 min", () => {
  const top = new TopTalkers();
  top.record(packet([tcp("10.0.0.1", "10.0.0.2", 1_000, 80, 700)], T0 - 3 * 60_000));
  top.record(packet([tcp("10.0.0.5", "10.0.0.2", 1_000, 80, 300)], T0 - 12 * 60_000));
  top.record(packet([tcp("10.0.0.6", "10.0.0.2", 1_000, 80, 100)], T0));
  const [one, five, fifteen] = top.windows(T0);
  assert.deepEqual([one.bytes, five.bytes, fifteen.bytes], [100, 800, 1_100]);
  assert.ok(one.fromMs <= T0 && one.toMs > T0 && one.toMs - one.fromMs === 2 * 60_000);
  assert.equal(fifteen.toMs - fifteen.fromMs, 16 * 60_000, "the current minute and 15 whole ones before it");
  // 20 minutes later everything has aged out.
  assert.equal(top.windows(T0 + 20 * 60_000)[2].bytes, 0);
});

Deno.test("top talkers: bounded under a million distinct 5-tuples, and the heavy hitters still found", () => {
  const top = new TopTalkers();
  const heavy = ["198.51.100.1", "198.51.100.2", "198.51.100.3"];
  const truth = new Map<string, number>();
  const started = performance.now();
  const batch: Flow[] = [];
  let flows = 0;
  for (let i = 0; i < 1_000_000; i++) {
    const src = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    batch.push(tcp(src, "172.16.0.1", 1_024 + (i % 60_000), 443 + (i % 7), 100 + (i % 50)));
    if (i % 1_000 === 0) {
      const h = heavy[(i / 1_000) % 3];
      batch.push(tcp(h, "172.16.0.1", 2_000, 443, 2_000_000));
      truth.set(h, (truth.get(h) ?? 0) + 2_000_000);
    }
    if (batch.length >= 30) {
      // 30 flows a datagram, spread over one minute.
      top.record(packet(batch.splice(0), T0 + Math.floor(i / 20_000) * 1_000));
      flows += 30;
    }
  }
  const perFlowNs = (performance.now() - started) * 1e6 / flows;
  assert.ok(top.size() <= 16 * 5 * SKETCH_LIMIT, `${top.size()} keys held`);
  const [one] = mergeTopWindows([top.windows(T0 + 59_000)]);
  const sources = one.top.source;
  assert.equal(sources.length, TOP_ROWS);
  assert.deepEqual(sources.slice(0, 3).map((r) => r.key).sort(), [...heavy].sort());
  for (const r of sources.slice(0, 3)) {
    const t = truth.get(r.key)!;
    assert.ok(r.bytes <= t && t <= r.bytes + r.error, `${r.key}: ${r.bytes} + ${r.error} vs ${t}`);
  }
  console.log(
    `${flows} flows: ${top.size()} keys held; ${perFlowNs.toFixed(0)} ns per flow (all dimensions)`,
  );
});

Deno.test("top talkers: merged over Workers (the same host in two adds up), top rows kept", () => {
  const a = new TopTalkers(), b = new TopTalkers();
  a.record(packet([tcp("10.0.0.1", "10.0.0.2", 1_000, 80, 700)], T0, "192.0.2.1"));
  b.record(packet([tcp("10.0.0.1", "10.0.0.3", 1_000, 80, 500)], T0, "192.0.2.2"));
  b.record(packet([tcp("10.0.0.4", "10.0.0.3", 1_000, 80, 900)], T0, "192.0.2.2"));
  const [one] = mergeTopWindows([a.windows(T0), b.windows(T0)]);
  assert.deepEqual(rows(one, "source"), [["10.0.0.1", 1_200, 2], ["10.0.0.4", 900, 1]]);
  assert.deepEqual([one.bytes, one.flows], [2_100, 3]);
  // Whichever Worker answers first, the same rows in the same order (ties by key).
  const tie = new TopTalkers();
  tie.record(packet([tcp("10.0.0.9", "10.0.0.3", 1_000, 80, 1_200)], T0, "192.0.2.3"));
  const lists = [a.windows(T0), b.windows(T0), tie.windows(T0)];
  assert.deepEqual(mergeTopWindows(lists), mergeTopWindows([...lists].reverse()));
  assert.deepEqual(mergeTopWindows(lists)[0].top.source.map((r) => r.key).slice(0, 2), [
    "10.0.0.1",
    "10.0.0.9",
  ]);
});

const OPTIONS: TracePlanOptions = { spanTime: "flow", collectorHost: "0.0.0.0", collectorPort: 2055 };

Deno.test("last flows: the newest 100, newest first, attributes exactly as planned for export; bounded", () => {
  const recent = new RecentFlows();
  const packets: ExportPacket[] = [];
  for (let p = 0; p < 50; p++) {
    const flows = Array.from(
      { length: 7 },
      (_, i) => tcp("10.0.0.1", "10.0.0.2", 1_000 + p, 80 + i, 100 + p * 7 + i),
    );
    const pk = packet(flows, T0 + p);
    packets.push(pk);
    recent.record(pk);
  }
  const list = recent.list(OPTIONS);
  assert.equal(list.length, RECENT_FLOWS);
  assert.equal(list[0].attributes["netflow.flow.bytes"], 100 + 49 * 7 + 6, "newest first");
  assert.equal(list[99].attributes["netflow.flow.bytes"], 100 + 49 * 7 + 6 - 99);
  const plan = planTrace(packets[49], OPTIONS);
  assert.deepEqual(list[0].attributes, plan.flows[6].attributes);
  assert.deepEqual([list[0].startMs, list[0].endMs], [plan.flows[6].startMs, plan.flows[6].endMs]);
  // Held: only the packets the last 100 flows need (at most one more than 100/7 rounds up to).
  assert.ok((recent as unknown as { packets: unknown[] }).packets.length <= Math.ceil(100 / 7) + 1);
  const merged = mergeRecentFlows([
    list.slice(0, 60),
    list.slice(60).map((f) => ({ ...f, receivedAtMs: T0 + 99 })),
  ]);
  assert.equal(merged.length, RECENT_FLOWS);
  assert.equal(merged[0].receivedAtMs, T0 + 99);
});

Deno.test("top talkers above the update budget: threshold sampling keeps big flows exact, estimates the rest", () => {
  const top = new TopTalkers();
  const truth = new Map<string, number>();
  let all = 0;
  // 5 seconds at 30,000 flows/s (15 times the budget), 9 sources of small flows, and one 50 MB flow.
  for (let second = 0; second < 5; second++) {
    for (let p = 0; p < 1_000; p++) {
      const flows = Array.from({ length: 30 }, (_, i) => {
        const src = `10.0.0.${(p + i) % 9}`, bytes = 100 + ((p * 31 + i * 17) % 1_400);
        truth.set(src, (truth.get(src) ?? 0) + bytes);
        all += bytes;
        return tcp(src, "10.9.9.9", 40_000 + i, 443, bytes);
      });
      if (second === 2 && p === 500) flows.push(tcp("10.7.7.7", "10.9.9.9", 1, 22, 50_000_000));
      top.record(packet(flows, T0 + second * 1_000 + p));
    }
  }
  const [one] = mergeTopWindows([top.windows(T0 + 5_000)]);
  assert.equal(one.sampled, true);
  assert.deepEqual([one.bytes, one.flows], [all + 50_000_000, 150_001], "window totals stay exact");
  const big = one.top.source.find((r) => r.key === "10.7.7.7")!;
  assert.deepEqual([big.bytes, big.flows], [50_000_000, 1], "a flow above the threshold is counted exactly");
  let worst = 0;
  for (const [src, bytes] of truth) {
    const r = one.top.source.find((x) => x.key === src)!;
    worst = Math.max(worst, Math.abs(r.bytes - bytes) / bytes);
    assert.ok(Math.abs(r.bytes - bytes) / bytes < 0.15, `${src}: estimated ${r.bytes}, sent ${bytes}`);
  }
  console.log(`threshold sampling: worst source estimate off by ${(worst * 100).toFixed(1)} %`);
});

Deno.test("top talkers: polled now and then (the past minutes merged once, late datagrams), always the true top", () => {
  const top = new TopTalkers();
  let seed = 7;
  const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648;
  const sent: { at: number; src: string; bytes: number }[] = [];
  let ms = T0;
  for (let step = 0; step < 1_200; step++) {
    ms += 1_000; // 20 minutes, a datagram a second: below the update budget, so nothing is sampled
    // Now and then a datagram received a minute earlier than the one before it (a late one).
    const at = step % 97 === 0 ? ms - 60_000 : ms;
    const flows = Array.from({ length: 20 }, () => {
      // Skewed (a few hosts send most); the busiest change from minute to minute; under 200 keys a minute,
      // so the sketches keep every key and the top must be the true one.
      const host = (Math.floor(random() ** 3 * 150) + Math.floor(ms / 60_000) * 37) % 150;
      const bytes = 40 + Math.floor(random() * 1_500);
      sent.push({ at, src: `10.0.0.${host}`, bytes });
      return tcp(`10.0.0.${host}`, `10.9.0.${host % 40}`, 1_024 + host, 443, bytes);
    });
    top.record(packet(flows, at));
    if (step % 7 === 0 || step % 50 === 49) {
      const windows = top.windows(ms);
      for (const w of windows) {
        const truth = new Map<string, number>();
        for (const f of sent) {
          if (f.at >= w.fromMs && f.at < w.toMs) truth.set(f.src, (truth.get(f.src) ?? 0) + f.bytes);
        }
        const expected = [...truth.values()].sort((a, b) => b - a).slice(0, 30);
        assert.deepEqual(w.top.source.map((r) => r.bytes), expected, `step ${step}, ${w.minutes} min`);
        for (const r of w.top.source) assert.equal(r.bytes, truth.get(r.key), `${r.key} at step ${step}`);
        assert.ok(w.top.source.every((r) => r.error === 0));
      }
    }
  }
});

Deno.test("top talkers: bounded by the sketches alone when nothing is sampled (a million distinct keys below the budget)", () => {
  const top = new TopTalkers();
  let n = 0;
  // 1,500 flows a second of receive time (under UPDATES_PER_SECOND: every flow updates the sketches), 11 min.
  for (let p = 0; p < 33_334; p++) {
    const flows = Array.from({ length: 30 }, () => {
      n++;
      return tcp(
        `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
        `172.${n & 255}.${(n >> 8) & 255}.1`,
        n % 60_000,
        443,
        100,
      );
    });
    top.record(packet(flows, T0 + p * 20));
    if (p % 3_000 === 0) top.windows(T0 + p * 20);
  }
  const [one] = top.windows(T0 + 33_334 * 20);
  assert.equal(one.sampled, false);
  assert.ok(top.size() <= 16 * 5 * SKETCH_LIMIT, `${top.size()} keys held for ${n} distinct`);
});
