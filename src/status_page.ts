/**
 * The live status page at `/` of NETFLOW_HTTP_LISTEN: exporters and export health, polled from
 * `/api/exporters` and `/api/export` every 2 s. Plain HTML, CSS and JavaScript in one string, shipped in the
 * binary: no CDN, no build step, no external request (the Content-Security-Policy forbids any). Every value
 * reaches the page through `textContent`, never as markup, since exporter-supplied strings (names) are shown.
 */

/** Sent with the page: nothing may load from elsewhere, scripts and styles only inline. */
export const STATUS_PAGE_CSP =
  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:";

export const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>netflow2traces</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d232a; background: #f7f8fa; }
  h1 { font-size: 1.3rem; margin: 0 0 1rem; } h2 { font-size: 1.05rem; margin: 1.5rem 0 .5rem; }
  table { border-collapse: collapse; background: #fff; width: 100%; }
  th, td { padding: .3rem .6rem; border-bottom: 1px solid #e3e6ea; text-align: left; white-space: nowrap; }
  th { background: #eef1f4; font-weight: 600; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
  .ok { color: #137333; font-weight: 600; } .failing { color: #b3261e; font-weight: 600; }
  .box { background: #fff; padding: .8rem 1rem; border: 1px solid #e3e6ea; display: inline-block; min-width: 24rem; }
  .muted { color: #6b7280; } svg { vertical-align: middle; }
</style>
</head>
<body>
<h1>netflow2traces <span id="updated" class="muted"></span></h1>
<h2>Export</h2>
<div class="box" id="export">loading…</div>
<h2>Exporters</h2>
<table>
  <thead><tr>
    <th>exporter</th><th>name</th><th>versions</th><th>domains</th><th>templates</th><th>sampling</th>
    <th>first seen</th><th>last seen</th><th>datagrams</th><th>flows</th><th>flows/s</th><th>last 10 min</th>
    <th>sequence lost</th><th>errors</th>
  </tr></thead>
  <tbody id="exporters"><tr><td colspan="14" class="muted">no exporter yet</td></tr></tbody>
</table>
<script>
"use strict";
const el = (tag, text, cls) => {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
};
const time = (ms) => (ms ? new Date(ms).toLocaleTimeString() : "");
const versionName = (v) => (v === 10 ? "IPFIX" : "v" + v);
function sparkline(values) {
  const ns = "http://www.w3.org/2000/svg", w = 120, h = 18, max = Math.max(1, ...values);
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", w);
  svg.setAttribute("height", h);
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "#1a73e8");
  line.setAttribute("points", values.map((v, i) => (i * w / (values.length - 1)).toFixed(1) + "," +
    (h - 1 - v / max * (h - 2)).toFixed(1)).join(" "));
  svg.appendChild(line);
  return svg;
}
function row(cells) {
  const tr = el("tr");
  for (const [value, numeric] of cells) {
    const td = el("td", value instanceof Node ? undefined : value, numeric ? "n" : "");
    if (value instanceof Node) td.appendChild(value);
    tr.appendChild(td);
  }
  return tr;
}
async function refresh() {
  try {
    const [ex, exp] = await Promise.all([
      fetch("/api/exporters").then((r) => r.json()),
      fetch("/api/export").then((r) => r.json()),
    ]);
    const body = document.getElementById("exporters");
    body.replaceChildren();
    for (const e of ex.exporters) {
      // Flows per second over the current 10 s bucket and the one before it (or since first seen).
      const n = e.flowsPerBucket.length, since = (ex.nowMs - e.firstSeenMs) / 1000;
      const window = Math.max(1, Math.min(10 + (ex.nowMs - e.bucketAtMs) / 1000, since));
      const rate = (e.flowsPerBucket[n - 1] + e.flowsPerBucket[n - 2]) / window;
      const errors = Object.entries(e.errors).map(([k, v]) => k + " " + v).join(", ");
      body.appendChild(row([
        [e.address], [e.name ?? ""], [e.versions.map(versionName).join(", ")], [e.domains.join(", ")],
        [e.templates, true], [e.samplingInterval ? "1:" + e.samplingInterval : ""], [time(e.firstSeenMs)],
        [time(e.lastSeenMs)], [e.datagrams, true], [e.flows, true], [rate.toFixed(1), true],
        [sparkline(e.flowsPerBucket)], [e.sequenceLost, true], [errors],
      ]));
    }
    if (ex.exporters.length === 0) {
      body.appendChild(row([["no exporter yet: point a router at this collector's UDP port"]]));
    }
    const box = document.getElementById("export");
    box.replaceChildren();
    const state = el("div");
    state.appendChild(el("span", exp.state === "failing" ? "failing" : "ok", exp.state === "failing" ? "failing" : "ok"));
    state.appendChild(el("span", " " + (exp.exporter ?? "") + " " + (exp.endpoint ?? "") + " " + (exp.protocol ?? "")));
    box.appendChild(state);
    if (exp.state === "failing") {
      box.appendChild(el("div", "failing since " + time(exp.failingSinceMs) + ": " + (exp.lastError ?? "")));
    }
    const b = exp.books;
    if (exp.exporter === "none") {
      box.appendChild(el("div", "OTEL_TRACES_EXPORTER=none: no spans are built; flows received " + exp.flowsReceived));
      document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
      return;
    }
    box.appendChild(el("div", "spans exported " + b.spansExported + ", dropped " + b.spansDropped + ", failed " +
      b.spansFailed + ", held " + b.spansHeld));
    box.appendChild(el("div", "flows received " + exp.flowsReceived + " = exported " + b.flowsExported +
      " + dropped " + b.flowsDropped + " + failed " + b.flowsFailed + " + held " + b.flowsHeld));
    box.appendChild(el("div", "queue " + exp.queueDepth + " of " + exp.queueCapacity + " spans; spool " +
      exp.spoolBytes + " bytes", "muted"));
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (err) {
    document.getElementById("updated").textContent = "cannot reach the collector: " + err;
  }
}
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
`;
