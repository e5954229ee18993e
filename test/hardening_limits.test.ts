/**
 * Big packets and limits: a 65,000-byte IPFIX datagram (hundreds of records and a record with a very long
 * variable-length string) decodes and arrives whole; a flow with far more than the SDK's default 128
 * attributes keeps them all; string values longer than OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT (default 2,048
 * UTF-8 bytes, Tempo's limit) are cut without splitting a character.
 */
import assert from "node:assert/strict";
import { parseCli } from "../src/config.ts";
import { NetflowDecoder } from "../src/netflow/decoder.ts";
import { truncateUtf8 } from "../src/traces/attributes.ts";
import {
  encodeIpfix,
  flowRecord,
  type RawValue,
  standardTemplate,
  type Template,
} from "../src/tools/encode.ts";
import { sendDatagrams, startCollectorProcess } from "./support/collector.ts";
import { startOtlpReceiver } from "./support/otlp_receiver.ts";

const NOW = Date.now();
const STANDARD = standardTemplate(4, { id: 300, times: "milliseconds" });
const LONG: Template = {
  id: 400,
  fields: [{ id: 8, length: 4 }, { id: 12, length: 4 }, { id: 82, length: 0xffff }], // interfaceName
};
/** 300 enterprise-specific (unknown) elements: 300 `netflow.field.32473.<id>` attributes. */
const WIDE: Template = {
  id: 500,
  fields: [
    { id: 8, length: 4 },
    { id: 12, length: 4 },
    ...Array.from({ length: 300 }, (_, i) => ({ id: i + 1, length: 2, enterprise: 32473 })),
  ],
};

/** "x" × 2047, then "é" (2 bytes: crosses 2,048), then "y"s. */
function longString(bytes: number): string {
  return "x".repeat(2047) + "é" + "y".repeat(bytes - 2049);
}

function jumbo(stringBytes: number): Uint8Array {
  const flows = Array.from({ length: 800 }, (_, i) => ({
    srcAddr: `10.0.${i >> 8}.${i & 255}`,
    dstAddr: "192.168.0.1",
    srcPort: 1024 + i,
    dstPort: 443,
    protocol: 6,
    bytes: 100,
    packets: 1,
    startMs: NOW - 5_000,
    endMs: NOW - 1_000,
  }));
  return encodeIpfix({ exportTimeMs: NOW, sequence: 1, observationDomainId: 1 }, [
    { type: "templates", templates: [STANDARD, LONG] },
    { type: "data", template: STANDARD, records: flows.map((f) => flowRecord(f, STANDARD)) },
    { type: "data", template: LONG, records: [["10.9.9.9", "10.8.8.8", longString(stringBytes)]] },
  ]);
}

/** A 65,000-byte datagram exactly: the string fills what the records leave. */
function jumbo65000(): { bytes: Uint8Array; stringBytes: number } {
  const probe = jumbo(5_000).length;
  const stringBytes = 5_000 + (65_000 - probe);
  const bytes = jumbo(stringBytes);
  assert.equal(bytes.length, 65_000);
  return { bytes, stringBytes };
}

const wideRecord: RawValue[] = ["10.7.7.7", "10.6.6.6", ...Array.from({ length: 300 }, (_, i) => i)];
const wide = encodeIpfix({ exportTimeMs: NOW, sequence: 2, observationDomainId: 1 }, [
  { type: "templates", templates: [WIDE] },
  { type: "data", template: WIDE, records: [wideRecord] },
]);

Deno.test("limits: the attribute value limit is OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT (default 2048), span variant wins", () => {
  const config = (env: Record<string, string>) => {
    const cli = parseCli([], env, "/");
    assert.equal(cli.kind, "run");
    return (cli as { config: { attributeValueLengthLimit: number } }).config;
  };
  assert.equal(config({}).attributeValueLengthLimit, 2048);
  assert.equal(config({ OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT: "100" }).attributeValueLengthLimit, 100);
  assert.equal(
    config({ OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT: "100", OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT: "300" })
      .attributeValueLengthLimit,
    300,
  );
  assert.equal(truncateUtf8("abc", 10), "abc");
  assert.equal(truncateUtf8("ab€d", 4), "ab"); // € is 3 bytes: never split
  assert.equal(truncateUtf8("ab€d", 5), "ab€");
  assert.equal(truncateUtf8(longString(3000), 2048), "x".repeat(2047));
});

Deno.test("limits: a 65,000-byte IPFIX datagram decodes completely (800 records and a long string)", () => {
  const { bytes, stringBytes } = jumbo65000();
  const [packet] = new NetflowDecoder().decode(bytes, "192.0.2.1", 2055, NOW);
  assert.equal(packet.error, undefined);
  assert.equal(packet.flows.length, 801);
  const long = packet.flows[800].extra?.["netflow.interface_name"];
  assert.equal(typeof long, "string");
  assert.equal(new TextEncoder().encode(long as string).length, stringBytes);
});

for (const limit of [undefined, 70_000] as const) {
  Deno.test(`limits end to end: jumbo datagram and a 300-attribute flow (value limit ${limit ?? "default"})`, async () => {
    const receiver = await startOtlpReceiver({ protocol: "http" });
    const collector = await startCollectorProcess({
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
      OTEL_BSP_SCHEDULE_DELAY: "100",
      ...(limit ? { OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT: String(limit) } : {}),
    });
    try {
      const { bytes, stringBytes } = jumbo65000();
      await sendDatagrams(collector.port, [bytes, wide]);
      const spans = await receiver.waitForSpans(801 + 2 + 1 + 2, 15_000);
      const flows = spans.filter((s) => s.name === "netflow.flow");
      assert.equal(flows.length, 802);
      const root = spans.find((s) =>
        s.name === "netflow.export" && s.attributes["netflow.packet.size_bytes"] === 65_000
      );
      assert.ok(root, "the jumbo datagram's export span");
      assert.equal(root.status.code, 0, root.status.message);

      const long = flows.find((s) => s.attributes["source.address"] === "10.9.9.9")!;
      const value = long.attributes["netflow.interface_name"] as string;
      if (limit) assert.equal(new TextEncoder().encode(value).length, stringBytes);
      else assert.equal(value, "x".repeat(2047)); // 2,048 bytes would split "é"

      const w = flows.find((s) => s.attributes["source.address"] === "10.7.7.7")!;
      const unknown = Object.keys(w.attributes).filter((k) => k.startsWith("netflow.field.32473."));
      assert.equal(unknown.length, 300);
      assert.ok(Object.keys(w.attributes).length > 300);
      assert.equal(w.droppedAttributesCount, 0);
      assert.equal(w.attributes["netflow.field.32473.300"], "012b"); // 299 as 2-byte hex
    } finally {
      await collector.stop("SIGKILL");
      await receiver.close();
    }
  });
}
