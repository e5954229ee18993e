/**
 * A short, deterministic fuzz run of the decoder (the long run is `deno task fuzz`): mutated valid
 * v1/v5/v9/IPFIX datagrams, template storms from many exporters and random bytes. No exception may escape,
 * no `internal` error (the decoder's last-resort catch) may appear, every input decodes in bounded time,
 * and the decoder's caches stay within their bounds.
 */
import assert from "node:assert/strict";
import { runFuzz, seedCorpus } from "../bench/fuzz.ts";
import { NetflowDecoder } from "../src/netflow/decoder.ts";

Deno.test("fuzz: mutated and random datagrams never crash the decoder, in bounded time and state", () => {
  for (const seed of [1, 0xc0ffee]) {
    const r = runFuzz({ seed, maxInputs: 40_000, durationMs: 4_000 });
    const detail = JSON.stringify({ ...r, stats: undefined }, null, 1).slice(0, 4000);
    assert.ok(r.inputs >= 5_000, `too few inputs: ${r.inputs}`);
    assert.equal(r.crashes, 0, detail);
    assert.deepEqual(r.boundViolations, []);
    // Re-timed slow inputs (see runFuzz): a single input never takes long.
    assert.ok(r.maxDecodeMs < 100, `slowest input took ${r.maxDecodeMs} ms`);
    assert.ok(r.heapAfterMb - r.heapBeforeMb < 64, `heap grew ${r.heapBeforeMb} → ${r.heapAfterMb} MiB`);
    // The mutators reach the interesting paths.
    assert.ok(r.flows > 0 && r.stats.exporterEvictions > 0 && r.stats.pendingDropped > 0);
    for (const kind of ["truncated", "bad_set", "unknown_version", "bad_template", "template_missing"]) {
      assert.ok((r.errorsByKind[kind] ?? 0) > 0, `no ${kind} error reached`);
    }
  }
});

Deno.test("fuzz: the seed corpus decodes cleanly (the mutators start from valid input)", () => {
  const decoder = new NetflowDecoder();
  for (const { name, bytes } of seedCorpus()) {
    const [packet] = decoder.decode(bytes, "192.0.2.1", 2055, 1_700_000_000_000);
    assert.equal(packet.error, undefined, `${name}: ${packet.error?.message}`);
  }
});

/** Inputs that once crashed the decoder (hex, one per line, `#` comments), replayed on every run. */
const FIXTURES = new URL("./fixtures/fuzz_regressions.txt", import.meta.url);

Deno.test("fuzz: regression fixtures decode without an internal error", () => {
  let text = "";
  try {
    text = Deno.readTextFileSync(FIXTURES);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const decoder = new NetflowDecoder();
  for (const line of text.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"))) {
    const bytes = new Uint8Array(line.match(/../g)!.map((h) => parseInt(h, 16)));
    for (const p of decoder.decode(bytes, "192.0.2.1", 2055, 1_700_000_000_000)) {
      assert.notEqual(p.error?.kind, "internal", p.error?.message ?? "");
    }
  }
});
