import assert from "node:assert/strict";
import { createLogger, formatLine, LOG_LEVELS, parseLogLevel, rateLimited } from "../src/log.ts";

const T = new Date("2026-11-24T14:40:00.123Z");

function capture(level: Parameters<typeof createLogger>[0]) {
  const lines: string[] = [];
  const log = createLogger(level, { write: (l) => lines.push(l), now: () => T });
  return { log, lines };
}

Deno.test("log lines: ISO time, level, message, key=value fields", () => {
  const { log, lines } = capture("DEBUG");
  log.info("listening", {
    listen: "udp://0.0.0.0:2055",
    port: 2055,
    ok: true,
    skipped: undefined,
    none: null,
  });
  assert.deepEqual(lines, [
    "2026-11-24T14:40:00.123Z INFO listening listen=udp://0.0.0.0:2055 port=2055 ok=true",
  ]);
});

Deno.test("field values with spaces, quotes, = or newlines are JSON-quoted; objects are JSON", () => {
  assert.equal(
    formatLine(T, "WARNING", "x", { a: "two words", b: 'say "hi"', c: "k=v", d: "", e: "line\nbreak" }),
    '2026-11-24T14:40:00.123Z WARNING x a="two words" b="say \\"hi\\"" c="k=v" d="" e="line\\nbreak"',
  );
  assert.equal(
    formatLine(T, "ERROR", "x", { error: new Error("boom now") }),
    `${T.toISOString()} ERROR x error="boom now"`,
  );
  assert.equal(formatLine(T, "INFO", "x", { o: { a: 1 } }), `${T.toISOString()} INFO x o="{\\"a\\":1}"`);
  assert.equal(formatLine(T, "INFO", "x", { n: 10n }), `${T.toISOString()} INFO x n=10`);
  assert.equal(formatLine(T, "INFO", "multi\nline"), `${T.toISOString()} INFO multi line`);
});

Deno.test("level filtering: only the level and above are written", () => {
  const { log, lines } = capture("WARNING");
  log.debug("d");
  log.info("i");
  log.warn("w");
  log.error("e");
  log.critical("c");
  assert.deepEqual(lines.map((l) => l.split(" ").slice(1).join(" ")), ["WARNING w", "ERROR e", "CRITICAL c"]);
  assert.equal(log.level, "WARNING");
  assert.ok(!log.enabled("INFO"));
  assert.ok(log.enabled("WARNING"));
  assert.ok(log.enabled("CRITICAL"));
  const all = capture("DEBUG");
  for (const l of LOG_LEVELS) all.log.log(l, "m");
  assert.equal(all.lines.length, 5);
});

Deno.test("parseLogLevel is case-insensitive and accepts WARN", () => {
  assert.equal(parseLogLevel("debug"), "DEBUG");
  assert.equal(parseLogLevel(" Info "), "INFO");
  assert.equal(parseLogLevel("warn"), "WARNING");
  assert.equal(parseLogLevel("WARNING"), "WARNING");
  assert.equal(parseLogLevel("critical"), "CRITICAL");
  assert.equal(parseLogLevel("trace"), undefined);
  assert.equal(parseLogLevel(""), undefined);
});

Deno.test("rateLimited writes a key once per interval and reports what it held back", () => {
  const { log, lines } = capture("INFO");
  let now = 0;
  const limited = rateLimited(log, 1000, () => now);
  assert.ok(limited.log("INFO", "a", "waiting for templates", { exporter: "192.0.2.1" }));
  assert.ok(!limited.log("INFO", "a", "waiting for templates", { exporter: "192.0.2.1" }));
  assert.ok(limited.log("INFO", "b", "other key"));
  now = 999;
  assert.ok(!limited.log("INFO", "a", "waiting for templates", { exporter: "192.0.2.1" }));
  now = 1000;
  assert.ok(limited.log("INFO", "a", "waiting for templates", { exporter: "192.0.2.1" }));
  now = 2500;
  assert.ok(limited.log("INFO", "a", "waiting for templates", { exporter: "192.0.2.1" }));
  assert.deepEqual(lines.map((l) => l.slice(25)), [
    "INFO waiting for templates exporter=192.0.2.1",
    "INFO other key",
    "INFO waiting for templates exporter=192.0.2.1 suppressed=2",
    "INFO waiting for templates exporter=192.0.2.1",
  ]);
  // Disabled levels cost nothing and are not counted.
  assert.ok(!limited.log("DEBUG", "c", "hidden"));
  assert.equal(limited.size, 2);
});

Deno.test("rateLimited stays bounded under a flood of distinct keys", () => {
  const { log } = capture("INFO");
  const limited = rateLimited(log, 60_000, () => 0);
  for (let i = 0; i < 50_000; i++) limited.log("INFO", `exporter-${i}`, "waiting");
  assert.ok(limited.size <= 10_000, `size ${limited.size}`);
});

Deno.test("rate-limited log: maxLines caps lines over all keys per interval (a spray of sources)", () => {
  const lines: string[] = [];
  let t = 0;
  const log = createLogger("INFO", { write: (l) => lines.push(l) });
  const limited = rateLimited(log, 60_000, () => t, { maxLines: 3 });
  for (let i = 0; i < 100; i++) limited.log("WARNING", `10.0.0.${i}`, "dropped", { exporter: `10.0.0.${i}` });
  assert.equal(lines.length, 3);
  t = 60_000; // the next interval: room again, and a known key reports what it held back
  limited.log("WARNING", "10.0.0.0", "dropped", { exporter: "10.0.0.0" });
  limited.log("WARNING", "10.0.0.50", "dropped", { exporter: "10.0.0.50" });
  assert.equal(lines.length, 5);
});
