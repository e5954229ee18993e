/**
 * Bounded state under attack: 1M distinct spoofed exporter addresses, each announcing an IPFIX or v9
 * template with a fresh id (and some sending data for templates they never announce), fed straight to the
 * decoder. The caches stay within DEFAULT_TEMPLATE_DECODER_OPTIONS, eviction is counted, a legitimate
 * exporter that keeps sending still decodes every datagram, and the heap stays flat from 100k on.
 */
import assert from "node:assert/strict";
import v8 from "node:v8";
import vm from "node:vm";
import { NetflowDecoder } from "../src/netflow/decoder.ts";
import { DEFAULT_TEMPLATE_DECODER_OPTIONS } from "../src/netflow/decoder_options.ts";
import { encodeIpfix, encodeV9, flowRecord, standardTemplate, type Template } from "../src/tools/encode.ts";

v8.setFlagsFromString("--expose-gc");
const gc: () => void = vm.runInNewContext("gc");
const heapMb = () => {
  gc();
  gc();
  return Deno.memoryUsage().heapUsed / 2 ** 20;
};

const EXPORT_MS = 1_700_000_000_000;
/** 1M by hand (`NF2T_SPOOF_TOTAL=1000000`, about 20 s); the suite runs 300k to stay short. */
const TOTAL = Number(Deno.env.get("NF2T_SPOOF_TOTAL") ?? 300_000);

Deno.test({
  name:
    "spoofed (1M by hand, 300k in CI) exporters and template ids: caches bounded, evictions counted, the real exporter decodes",
  sanitizeOps: false,
  sanitizeResources: false,
  fn() {
    const limits = DEFAULT_TEMPLATE_DECODER_OPTIONS;
    const decoder = new NetflowDecoder();
    const stats = decoder.stats;
    const small: Template = {
      id: 256,
      fields: [{ id: 8, length: 4 }, { id: 12, length: 4 }, { id: 2, length: 4 }],
    };
    // Templates sent by the spoofed sources: the template id (offset 20 in IPFIX, 24 in v9) and the domain
    // are patched per datagram.
    const ipfixTemplate = encodeIpfix({ exportTimeMs: EXPORT_MS, observationDomainId: 1 }, [
      { type: "templates", templates: [small] },
    ]);
    const v9Template = encodeV9({ sysUptimeMs: 1000, exportTimeMs: EXPORT_MS, sourceId: 1 }, [
      { type: "templates", templates: [small] },
    ]);
    // Data for a template that never comes: held, then dropped when the pending buffer is full.
    const orphan = encodeIpfix({ exportTimeMs: EXPORT_MS, observationDomainId: 1 }, [
      {
        type: "data",
        template: small,
        records: Array.from({ length: 20 }, () => ["10.0.0.1", "10.0.0.2", 1]),
      },
    ]);
    // The legitimate exporter: template every 50k datagrams (as routers re-send them), data every 1,000.
    const real = standardTemplate(4, { id: 300 });
    const realTemplate = encodeIpfix({ exportTimeMs: EXPORT_MS, observationDomainId: 7 }, [
      { type: "templates", templates: [real] },
    ]);
    const flows = Array.from(
      { length: 10 },
      (_, i) => ({ srcAddr: `192.0.2.${i + 1}`, dstAddr: "198.51.100.1" }),
    );
    const realData = encodeIpfix({ exportTimeMs: EXPORT_MS, observationDomainId: 7 }, [
      { type: "data", template: real, records: flows.map((f) => flowRecord(f, real)) },
    ]);

    let clock = EXPORT_MS, realPackets = 0, realFlows = 0, heapAt100k = 0;
    const started = performance.now();
    decoder.decode(realTemplate, "203.0.113.5", 2055, clock);
    const checkBounds = (at: number) => {
      const where = `after ${at}: ${JSON.stringify(stats)}`;
      assert.ok(stats.exporters <= limits.maxExporters, where);
      assert.ok(stats.templates <= limits.maxTemplates, where);
      assert.ok(stats.pendingSets <= limits.maxPendingSets, where);
      assert.ok(stats.pendingBytes <= limits.maxPendingBytes, where);
    };
    for (let i = 0; i < TOTAL; i++) {
      const address = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      const templateId = 256 + (i % 65_000);
      let d: Uint8Array;
      if (i % 4 === 3) {
        d = orphan;
        d[16] = templateId >> 8;
        d[17] = templateId & 255;
      } else if (i % 2 === 0) {
        d = ipfixTemplate;
        d[20] = templateId >> 8;
        d[21] = templateId & 255;
        d[15] = i & 255;
      } else {
        d = v9Template;
        d[24] = templateId >> 8;
        d[25] = templateId & 255;
        d[19] = i & 255;
      }
      decoder.decode(d, address, 2055, clock);
      if (i % 1_000 === 999) {
        clock += 100;
        decoder.expire(clock);
        if (i % 50_000 === 49_999) decoder.decode(realTemplate, "203.0.113.5", 2055, clock);
        const [p] = decoder.decode(realData, "203.0.113.5", 2055, clock);
        assert.equal(p.error, undefined, `real exporter at ${i}: ${p.error?.message}`);
        realPackets++;
        realFlows += p.flows.length;
      }
      if (i % 100_000 === 99_999) checkBounds(i + 1);
      if (i === 99_999) heapAt100k = heapMb();
    }
    const heapAt1M = heapMb();
    const seconds = (performance.now() - started) / 1000;
    checkBounds(TOTAL);
    assert.equal(realFlows, realPackets * 10);
    assert.ok(stats.exporterEvictions >= TOTAL - limits.maxExporters, JSON.stringify(stats));
    assert.ok(stats.pendingDropped > 0, JSON.stringify(stats));
    console.log(
      `spoofing: ${TOTAL} datagrams in ${seconds.toFixed(1)} s; exporters=${stats.exporters} ` +
        `templates=${stats.templates} pending_sets=${stats.pendingSets} exporter_evictions=${stats.exporterEvictions} ` +
        `pending_dropped=${stats.pendingDropped}; heap at 100k ${heapAt100k.toFixed(1)} MiB, ` +
        `at ${TOTAL / 1000}k ${heapAt1M.toFixed(1)} MiB`,
    );
    // The caches are full from about 10k exporters on; what remains is noise.
    assert.ok(heapAt1M - heapAt100k < 16, `heap grew ${heapAt100k} → ${heapAt1M} MiB`);
  },
});
