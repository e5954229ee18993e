/**
 * NETFLOW_FIELDS_FILE (SPEC §5): elements named and typed by the user, for v9 and IPFIX; a wrong type or a
 * clash is one start-up line; and, end to end, an enterprise element reaches the span under its name.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { FieldsFileError, parseFields } from "../src/fields_file.ts";
import { NetflowDecoder } from "../src/netflow/decoder.ts";
import { parseCli } from "../src/config.ts";
import { B } from "./support/bytes.ts";
import { E1, ipfix, NOW, set, tpl, v9 } from "./support/v9_ipfix_fixtures.ts";
import { startCollectorProcess } from "./support/collector.ts";
import { startOtlpReceiver } from "./support/otlp_receiver.ts";
import { join } from "./support/paths.ts";

const FILE = `
fields:
  - { pen: 9, id: 12235, name: cisco_http_url, type: string }   # an enterprise element
  - { id: 95, name: application_id_hex, type: hex }              # pen 0 (IANA) renames or retypes
  - { pen: 2636, id: 1, name: juniper.cpid, type: unsigned }
  - { id: 40000, name: my_rtt_ms, type: float }
`;

Deno.test("fields file: enterprise and IANA elements by their new names and types, in v9 and IPFIX", () => {
  const d = new NetflowDecoder({ customFields: parseFields(FILE) });
  const url = "/index.html";
  const p = d.decode(
    ipfix(1, 0, [
      set(2, tpl(256, [[8, 4], [12235, url.length, 9], [95, 4], [1, 2, 2636], [1, 8]])),
      set(256, new B().ip("10.0.0.1").str(url).u8(13, 0, 0, 80).u16(7).u64(1_000).build()),
    ]),
    E1,
    2055,
    NOW,
  )[0];
  const f = p.flows[0];
  assert.equal(f.bytes, 1_000, "the SPEC counters are untouched");
  assert.deepEqual(f.extra, {
    "netflow.cisco_http_url": url,
    "netflow.application_id_hex": "0d000050",
    "netflow.juniper.cpid": 7,
  });
  // v9 has no enterprise bit: an IANA-range id of the file's applies there too.
  const q = d.decode(
    v9(1, 1, 1_000_000, [
      set(0, tpl(300, [[8, 4], [40000, 4]], false)),
      set(300, new B().ip("10.0.0.2").raw(new Uint8Array(new Float32Array([2.5]).buffer).reverse()).build()),
    ]),
    E1,
    2055,
    NOW,
  )[0];
  assert.equal(q.flows[0].extra?.["netflow.my_rtt_ms"], 2.5);
  // Without the file: the built-in names.
  const plain = new NetflowDecoder().decode(
    ipfix(1, 0, [set(2, tpl(256, [[95, 4]])), set(256, new B().u8(13, 0, 0, 80).build())]),
    E1,
    2055,
    NOW,
  )[0];
  assert.deepEqual(plain.flows[0].extra, { "netflow.application_id": "0d000050" });
});

Deno.test("fields file: a wrong type or a clash is one line naming the entry", () => {
  const bad: [string, RegExp][] = [
    [
      "fields: [ { id: 1000, name: x, type: strng } ]",
      /fields\[0\]\.type: "strng" is not one of unsigned, signed/,
    ],
    [
      "fields: [ { id: 8, name: src, type: ipv4 } ]",
      /IANA element 8 fills a SPEC attribute and cannot be renamed/,
    ],
    [
      "fields: [ { id: 1000, name: flow.bytes, type: unsigned } ]",
      /netflow\.flow\.bytes is a SPEC attribute/,
    ],
    [
      "fields: [ { pen: 9, id: 1, name: a, type: hex }, { pen: 9, id: 1, name: b, type: hex } ]",
      /fields\[1\]: pen 9 id 1 is already defined by fields\[0\]/,
    ],
    [
      "fields: [ { id: 1000, name: a, type: hex }, { id: 1001, name: a, type: hex } ]",
      /already used by fields\[0\]/,
    ],
    ["fields: [ { id: 1000, name: Bad-Name, type: hex } ]", /fields\[0\]\.name: must be lower_snake_case/],
    ["fields: [ { id: 99999, name: a, type: hex } ]", /fields\[0\]\.id: must be an integer from 0 to 65535/],
    [
      "fields: [ { pen: 9, id: 40000, name: a, type: hex } ]",
      /fields\[0\]\.id: must be an integer from 0 to 32767/,
    ],
  ];
  for (const [text, re] of bad) {
    assert.throws(() => parseFields(text), (err: Error) => {
      assert.ok(err instanceof FieldsFileError);
      assert.match(err.message, re);
      return true;
    }, text);
  }
  const dir = Deno.makeTempDirSync();
  writeFileSync(join(dir, "f.yaml"), "fields: [ { id: 1000, name: a, type: nope } ]");
  assert.throws(
    () => parseCli([], { NETFLOW_FIELDS_FILE: "f.yaml" }, dir),
    /^ConfigError: invalid NETFLOW_FIELDS_FILE="f\.yaml": fields\[0\]\.type: "nope" is not one of/,
  );
});

Deno.test("end to end: the collector emits a fields-file element under its name", async () => {
  const dir = Deno.makeTempDirSync();
  writeFileSync(join(dir, "fields.yaml"), FILE);
  const receiver = await startOtlpReceiver({ protocol: "http" });
  const collector = await startCollectorProcess({
    NETFLOW_FIELDS_FILE: join(dir, "fields.yaml"),
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_BSP_SCHEDULE_DELAY: "100",
    NETFLOW_STATS_INTERVAL: "0",
  });
  const sock = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  try {
    const url = "/login";
    const d = ipfix(1, 0, [
      set(2, tpl(256, [[8, 4], [12235, url.length, 9]])),
      set(256, new B().ip("10.0.0.1").str(url).build()),
    ], Math.floor(Date.now() / 1000));
    await sock.send(d, { transport: "udp", hostname: "127.0.0.1", port: collector.port });
    const spans = await receiver.waitForSpans(3, 10_000);
    const flow = spans.find((s) => s.name === "netflow.flow")!;
    assert.equal(flow.attributes["netflow.cisco_http_url"], url);
    assert.equal(await collector.stop(), 0);
  } finally {
    sock.close();
    collector.kill("SIGKILL");
    await collector.exited;
    await receiver.close();
  }
});
