/**
 * The Worker that decodes datagrams and exports their traces, so the socket's thread only receives
 * (with a 208 KiB kernel buffer, a few milliseconds of encoding or GC on that thread lose datagrams).
 * Messages: see {@link WorkerRequest} and {@link WorkerReply} in pipeline_protocol.ts.
 */
import { createLogger } from "./log.ts";
import { Pipeline } from "./pipeline.ts";
import { lookMerge, readBatch, type WorkerReply, type WorkerRequest } from "./pipeline_protocol.ts";

/** How often counters go to the socket side (stats line, /metrics). */
const SNAPSHOT_INTERVAL_MS = 250;

// deno-lint-ignore no-explicit-any
const scope = globalThis as any as {
  onmessage: ((e: MessageEvent<WorkerRequest>) => void) | null;
  postMessage(message: WorkerReply): void;
};
let pipeline: Pipeline | undefined;
let persistTemplates = false;
let snapshots: ReturnType<typeof setInterval> | undefined;
let batches = 0;
let summaries: ReturnType<typeof setInterval> | undefined;
/** How often the exporters' summaries go to the socket side (the status page). */
const SUMMARY_INTERVAL_MS = 1_000;

scope.onmessage = (event) => {
  const msg = event.data;
  switch (msg.type) {
    case "init": {
      persistTemplates = msg.settings.templateCacheFile !== undefined;
      pipeline = new Pipeline(
        msg.settings,
        createLogger(msg.settings.logLevel, { format: msg.settings.logFormat }),
        (exporters) => scope.postMessage({ type: "templates", exporters }),
      );
      snapshots = setInterval(
        () => scope.postMessage({ type: "snapshot", snapshot: pipeline!.snapshot(batches) }),
        SNAPSHOT_INTERVAL_MS,
      );
      summaries = setInterval(
        () => scope.postMessage({ type: "exporters", list: pipeline!.exporterSummaries() }),
        SUMMARY_INTERVAL_MS,
      );
      scope.postMessage({ type: "ready" });
      break;
    }
    case "batch":
      batches++;
      readBatch(msg.buffer, msg.count, (datagram, address, port, receivedAtMs, listener) => {
        pipeline!.handle(datagram, address, port, receivedAtMs, listener);
      });
      break;
    case "look": {
      // JSON text: a string crosses to the socket thread far cheaper than the objects (no structured clone),
      // and a lone Worker's answer is final (merged with nothing), so it goes out as it is.
      const value = msg.what === "top" ? pipeline!.topWindows(msg.minutes) : pipeline!.lastFlows();
      const final = msg.final ? lookMerge(msg.what, [value]) : value;
      scope.postMessage({ type: "look", id: msg.id, json: JSON.stringify(final) });
      break;
    }
    case "enrich":
      pipeline!.setEnrichment(msg.table);
      break;
    case "stop":
      clearInterval(snapshots);
      clearInterval(summaries);
      pipeline!.stop().then(() =>
        scope.postMessage({
          type: "stopped",
          snapshot: pipeline!.snapshot(batches),
          ...(persistTemplates ? { exporters: pipeline!.templates() } : {}),
        })
      );
      break;
  }
};
