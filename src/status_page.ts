/**
 * The live status page at `/` of NETFLOW_HTTP_LISTEN: exporters, export health, top talkers and the last
 * flows, polled from `/api/exporters`, `/api/export`, `/api/top` and `/api/flows` every 2 s (with
 * NETFLOW_HTTP_AUTH a bearer token comes from the address's `#token=…`; basic credentials from the browser). Plain HTML, CSS and JavaScript in one string, shipped in the
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
<link rel="icon" href="data:,">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d232a; background: #f7f8fa; }
  h1 { font-size: 1.3rem; margin: 0 0 1rem; } h2 { font-size: 1.05rem; margin: 1.5rem 0 .5rem; }
  table { border-collapse: collapse; background: #fff; width: 100%; }
  th, td { padding: .3rem .6rem; border-bottom: 1px solid #e3e6ea; text-align: left; white-space: nowrap; }
  th { background: #eef1f4; font-weight: 600; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
  .ok { color: #137333; font-weight: 600; } .failing { color: #b3261e; font-weight: 600; }
  .box { background: #fff; padding: .8rem 1rem; border: 1px solid #e3e6ea; display: inline-block; min-width: 24rem; }
  .muted { color: #6b7280; } svg { vertical-align: middle; }
  .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(22rem, 1fr)); gap: .8rem; }
  .grid h3 { font-size: .9rem; margin: 0 0 .3rem; } .grid td:first-child { white-space: normal; }
  #flows tr.flow { cursor: pointer; } #flows tr.flow:hover { background: #f0f4ff; }
  .scroll { overflow-x: auto; }
  pre { margin: 0; white-space: pre-wrap; font-size: 12px; }
</style>
</head>
<body>
<h1>netflow2traces <span id="updated" class="muted"></span></h1>
<h2>Export</h2>
<div class="box" id="export">loading…</div>
<h2>Exporters</h2>
<div class="scroll"><table>
  <thead><tr>
    <th>exporter</th><th>name</th><th>versions</th><th>domains</th><th>templates</th><th>options tables</th>
    <th>sampling</th>
    <th>first seen</th><th>last seen</th><th>datagrams</th><th>flows</th><th>flows/s</th><th>last 10 min</th>
    <th>sequence lost</th><th>errors</th>
  </tr></thead>
  <tbody id="exporters"><tr><td colspan="15" class="muted">no exporter yet</td></tr></tbody>
</table></div>
<h2>Top talkers <select id="window" aria-label="window"><option value="1">last 1 min</option>
  <option value="5">last 5 min</option><option value="15">last 15 min</option></select>
  <span id="top-range" class="muted"></span></h2>
<div class="grid">
  <div><h3>sources</h3><table><tbody id="top-source"></tbody></table></div>
  <div><h3>destinations</h3><table><tbody id="top-destination"></tbody></table></div>
  <div><h3>conversations</h3><table><tbody id="top-conversation"></tbody></table></div>
  <div><h3>services (protocol / lower port)</h3><table><tbody id="top-service"></tbody></table></div>
  <div><h3>exporter interfaces</h3><table><tbody id="top-interface"></tbody></table></div>
</div>
<h2>Last flows <span id="flows-note" class="muted">click a flow for all its attributes, as exported</span></h2>
<table>
  <thead><tr>
    <th>received</th><th>exporter</th><th>source</th><th>destination</th><th>protocol</th><th>bytes</th>
    <th>packets</th><th>in / out</th>
  </tr></thead>
  <tbody id="flows"></tbody>
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
// NETFLOW_HTTP_AUTH=bearer:…: the token from the address (#token=…), which never reaches a server log.
const token = new URLSearchParams(location.hash.slice(1)).get("token");
const api = (path) => fetch(path, token ? { headers: { authorization: "Bearer " + token } } : {}).then((r) => {
  if (r.status === 401) throw new Error("401: open this page as /#token=… (bearer) or with the basic credentials");
  return r.json();
});
const units = (n, unit) => {
  const prefixes = ["", "k", "M", "G", "T", "P"];
  let i = 0;
  while (n >= 1000 && i < prefixes.length - 1) { n /= 1000; i++; }
  return (i === 0 ? String(Math.round(n)) : n.toFixed(n < 10 ? 2 : 1)) + " " + prefixes[i] + unit;
};
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
// Options names tables known, e.g. "12 interfaces, 3 VRFs".
const optionTables = (o) => [[o.interfaces, "interfaces"], [o.vrfs, "VRFs"], [o.applications, "applications"]]
  .filter(([n]) => n > 0).map(([n, what]) => n + " " + what).join(", ");
function row(cells) {
  const tr = el("tr");
  for (const [value, numeric] of cells) {
    const td = el("td", value instanceof Node ? undefined : value, numeric ? "n" : "");
    if (value instanceof Node) td.appendChild(value);
    tr.appendChild(td);
  }
  return tr;
}
function showTop(top) {
  const w = top.windows[0];
  if (!w) return;
  const seconds = Math.max(1, (Math.min(top.nowMs, w.toMs) - w.fromMs) / 1000);
  document.getElementById("top-range").textContent = "since " + time(w.fromMs) + ": " + units(w.bytes, "B") +
    ", " + units(w.bytes * 8 / seconds, "bit/s") + ", " + w.flows + " flows";
  for (const [dimension, rows] of Object.entries(w.top)) {
    const body = document.getElementById("top-" + dimension);
    if (!body) continue;
    body.replaceChildren();
    for (const r of rows) {
      // A figure that may be over (a key that entered the bounded sketch late) says so.
      const bytes = (r.error > 0 ? "≥ " : "") + units(r.bytes, "B");
      const cells = [[r.key]];
      if (dimension === "interface") {
        cells.push([r.name ?? ""], [units(r.inBytes * 8 / seconds, "bit/s") + " in", true],
          [units(r.outBytes * 8 / seconds, "bit/s") + " out", true]);
      } else {
        cells.push([bytes, true], [units(r.bytes * 8 / seconds, "bit/s"), true], [r.flows + " flows", true]);
      }
      body.appendChild(row(cells));
    }
    if (rows.length === 0) body.appendChild(row([["nothing yet"]]));
  }
}
function showFlows(list) {
  const body = document.getElementById("flows");
  if (body.querySelector("tr.open")) return; // keep an opened flow still while it is read
  body.replaceChildren();
  for (const f of list.flows) {
    const a = f.attributes;
    const endpoint = (addr, port) => (addr ?? "") + (port !== undefined ? ":" + port : "");
    const tr = row([
      [time(f.receivedAtMs)], [f.exporter], [endpoint(a["source.address"], a["source.port"])],
      [endpoint(a["destination.address"], a["destination.port"])],
      [a["network.transport"] ?? ""],
      [a["netflow.flow.bytes"] ?? "", true], [a["netflow.flow.packets"] ?? "", true],
      [(a["netflow.interface.input.name"] ?? a["netflow.interface.input"] ?? "") + " / " +
        (a["netflow.interface.output.name"] ?? a["netflow.interface.output"] ?? "")],
    ]);
    tr.className = "flow";
    tr.addEventListener("click", () => {
      const next = tr.nextSibling;
      if (next && next.className === "detail") { next.remove(); tr.classList.remove("open"); return; }
      const detail = el("tr", undefined, "detail"), td = el("td");
      td.colSpan = 8;
      td.appendChild(el("pre", JSON.stringify({ startMs: f.startMs, endMs: f.endMs, attributes: a }, null, 2)));
      detail.appendChild(td);
      tr.after(detail);
      tr.classList.add("open");
    });
    body.appendChild(tr);
  }
  if (list.flows.length === 0) body.appendChild(row([["no flow yet"]]));
}
async function refresh() {
  try {
    const [ex, exp, top, flows] = await Promise.all([
      api("/api/exporters"), api("/api/export"),
      api("/api/top?minutes=" + document.getElementById("window").value), api("/api/flows"),
    ]);
    showTop(top);
    showFlows(flows);
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
        [e.templates, true], [optionTables(e.optionNames)], [e.samplingInterval ? "1:" + e.samplingInterval : ""],
        [time(e.firstSeenMs)],
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
document.getElementById("window").addEventListener("change", refresh);
</script>
</body>
</html>
`;
