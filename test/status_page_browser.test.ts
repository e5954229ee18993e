/**
 * The status page (issue 17) in a real browser: headless Chromium over CDP (test/support/browser.ts) loads
 * `/` from the Bun binary, watches a replay from two exporters arrive (exporters, top talkers, last flows),
 * and shows hostile exporter and interface names as text. A screenshot is kept as a test artefact in `$TEST_ARTIFACTS` (default: <tmp>/test-artifacts).
 *
 * Without Chromium (apt: chromium) the test is skipped locally and fails under CI=true.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { encodeV5 } from "../src/tools/encode.ts";
import { bunBinary, CI } from "./support/binary.ts";
import { BrowserPage, findChromium } from "./support/browser.ts";
import { freeTcpPort, startCollectorProcess, waitUntil } from "./support/collector.ts";
import { startOtlpReceiver } from "./support/otlp_receiver.ts";
import { join } from "./support/paths.ts";

const CHROMIUM = findChromium();
if (!CHROMIUM && !CI) console.log("status_page_browser.test: skipping (needs chromium, apt: chromium)");

const SCRIPT_NAME = "<script>alert(1)</script>";
const IMG_NAME = "<img src=x onerror=alert(2)>";
const INTERFACE_NAME = "<script>alert(3)</script>ge-0/0/3";
const FLOWS_COLUMN = 10; // exporter, name, versions, domains, templates, options tables, sampling, first/last seen, datagrams, flows

/** The text of the cells of the exporters table's row for `address` (undefined while there is none). */
const rowOf = (address: string) =>
  `[...document.querySelectorAll("#exporters tr")].map((tr) => [...tr.cells].map((td) => td.textContent))` +
  `.find((cells) => cells[0] === ${JSON.stringify(address)})`;

Deno.test({
  name: "status page in headless Chromium: loads from the binary, shows a replay live, names as text",
  ignore: !CHROMIUM && !CI,
  async fn(t) {
    if (!CHROMIUM) throw new Error("CI=true requires chromium (apt: chromium, see .ci/install-apt.sh)");
    const bin = await bunBinary("linux-x64");
    await using page = await BrowserPage.launch(CHROMIUM);
    const dir = Deno.makeTempDirSync();
    writeFileSync(
      join(dir, "enrich.yaml"),
      `exporters:\n  - { match: 127.0.0.2, name: "${SCRIPT_NAME}", interfaces: { 3: "${INTERFACE_NAME}" } }\n` +
        `  - { match: 127.0.0.3, name: "${IMG_NAME}" }\n`,
    );
    const receiver = await startOtlpReceiver({ protocol: "grpc" });
    const httpPort = freeTcpPort();
    const origin = `http://127.0.0.1:${httpPort}`;
    const collector = await startCollectorProcess({
      NETFLOW_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
      NETFLOW_ENRICH_FILE: join(dir, "enrich.yaml"),
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_BSP_SCHEDULE_DELAY: "100",
      NETFLOW_STATS_INTERVAL: "0",
    }, { command: [bin] });
    const a = Deno.listenDatagram({ hostname: "127.0.0.2", port: 0, transport: "udp" });
    const b = Deno.listenDatagram({ hostname: "127.0.0.3", port: 0, transport: "udp" });
    const to = { transport: "udp" as const, hostname: "127.0.0.1", port: collector.port };
    const sequence = new Map<Deno.DatagramConn, number>();
    /** `datagrams` v5 datagrams of `flows` flows each from `sock`, sequence numbers running on. */
    const send = async (sock: Deno.DatagramConn, datagrams: number, flows: number) => {
      for (let i = 0; i < datagrams; i++) {
        const seq = sequence.get(sock) ?? 0;
        sequence.set(sock, seq + flows);
        const records = Array.from({ length: flows }, (_, i) => ({
          srcAddr: "10.0.0.1",
          dstAddr: `10.0.0.${2 + i}`,
          srcPort: 40_000 + seq + i,
          dstPort: 443,
          protocol: 6,
          packets: 3,
          bytes: 1_500,
          inputIf: 3,
          outputIf: 4,
        }));
        await sock.send(
          encodeV5({ sysUptimeMs: 10_000, unixSecs: Math.floor(Date.now() / 1000), sequence: seq }, records),
          to,
        );
      }
    };
    const errors = () => page.errors;
    try {
      let scripts = 0;
      await t.step(
        "the page loads from the binary with no external request, error or CSP violation",
        async () => {
          await page.navigate(`${origin}/`);
          await page.waitFor(`document.getElementById("updated").textContent.startsWith("updated")`);
          scripts = await page.evaluate(`document.querySelectorAll("script").length`);
          assert.equal(scripts, 1);
          assert.ok(page.requests.includes(`${origin}/api/exporters`), page.requests.join("\n"));
          const foreign = page.requests.filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith("data:"));
          assert.deepEqual(foreign, []);
          assert.deepEqual(errors(), []);
          assert.deepEqual(page.cspViolations, []);
        },
      );

      await t.step("it shows the exporters of a replay", async () => {
        await send(a, 4, 5);
        await send(b, 2, 3);
        await page.waitFor(`${rowOf("127.0.0.2")}?.[${FLOWS_COLUMN}] === "20"`, 15_000);
        await page.waitFor(`${rowOf("127.0.0.3")}?.[${FLOWS_COLUMN}] === "6"`, 15_000);
        const addresses = await page.evaluate(
          `[...document.querySelectorAll("#exporters tr")].map((tr) => tr.cells[0].textContent)`,
        );
        assert.deepEqual(addresses, ["127.0.0.2", "127.0.0.3"], "busiest first");
        await page.waitFor(
          `document.getElementById("export").textContent.includes("flows received 26")`,
          15_000,
        );
      });

      await t.step("it updates as new flows arrive, without a reload", async () => {
        await page.evaluate(`window.notReloaded = true`);
        await send(b, 2, 5);
        await page.waitFor(`${rowOf("127.0.0.3")}?.[${FLOWS_COLUMN}] === "16"`, 15_000);
        assert.equal(await page.evaluate(`window.notReloaded`), true);
      });

      await t.step("hostile exporter names render as text", async () => {
        assert.equal((await page.evaluate(rowOf("127.0.0.2")))[1], SCRIPT_NAME);
        assert.equal((await page.evaluate(rowOf("127.0.0.3")))[1], IMG_NAME);
        assert.equal(await page.evaluate(`document.querySelectorAll("script").length`), scripts);
        assert.equal(await page.evaluate(`document.querySelectorAll("img").length`), 0);
        assert.deepEqual(page.dialogs, []);
      });

      await t.step(
        "top talkers and the last flows; a flow opens to its attributes; interface names as text",
        async () => {
          const cells = (id: string) =>
            `[...document.querySelectorAll("#${id} tr")].map((tr) => [...tr.cells].map((td) => td.textContent))`;
          await page.waitFor(
            `${cells("top-interface")}.some((c) => c[1] === ${JSON.stringify(INTERFACE_NAME)})`,
          );
          const sources = await page.evaluate(cells("top-source"));
          assert.deepEqual(sources[0].slice(0, 2), ["10.0.0.1", "54.0 kB"], "36 flows of 1,500 B");
          await page.waitFor(`document.querySelectorAll("#flows tr.flow").length === 36`);
          await page.evaluate(`document.querySelector("#flows tr.flow").click()`);
          const detail = await page.evaluate(`document.querySelector("#flows tr.detail pre").textContent`);
          const opened = JSON.parse(detail);
          assert.equal(opened.attributes["source.address"], "10.0.0.1");
          assert.equal(opened.attributes["netflow.flow.bytes"], 1_500);
          assert.equal(await page.evaluate(`document.querySelectorAll("script").length`), scripts);
          assert.deepEqual(page.dialogs, []);
        },
      );

      await t.step("a screenshot is kept as a test artefact", async () => {
        const png = await page.screenshot();
        const outDir = Deno.env.get("TEST_ARTIFACTS") ?? join(tmpdir(), "test-artifacts");
        mkdirSync(outDir, { recursive: true });
        const file = join(outDir, "status_page.png");
        writeFileSync(file, png);
        console.log(`status page screenshot: ${file}`);
        assert.deepEqual(
          [...png.subarray(0, 8)],
          [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
          "PNG signature",
        );
        const ihdr = new DataView(png.buffer, png.byteOffset + 16, 8); // width, height after the IHDR chunk head
        assert.ok(ihdr.getUint32(0) >= 800, `width ${ihdr.getUint32(0)}`);
        assert.ok(ihdr.getUint32(4) >= 600, `height ${ihdr.getUint32(4)}`);
      });

      await t.step(
        "all along: only the collector's own origin, no error or dialog (and the recorders do see them)",
        async () => {
          assert.deepEqual(
            page.requests.filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith("data:")),
            [],
          );
          assert.deepEqual([errors(), page.cspViolations], [[], []]);
          // The CSP forbids this fetch: the violation must be reported, or the empty lists above prove nothing.
          await page.evaluate(`fetch("https://example.com/").catch(() => {})`);
          await waitUntil(() => page.cspViolations.length > 0, "the CSP violation to be recorded", 5_000);
          // Likewise a dialog: the recorder sees it (and dismisses it, so the page goes on).
          await page.evaluate(`alert("probe")`);
          assert.deepEqual(page.dialogs, ["probe"]);
        },
      );
      assert.equal(await collector.stop(), 0, collector.stderr());
    } finally {
      a.close();
      b.close();
      collector.kill("SIGKILL");
      await collector.exited;
      await receiver.close();
    }
  },
});
