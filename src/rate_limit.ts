/**
 * The span budget per exporter (NETFLOW_RATE_LIMIT, SPEC §3 and §5). Some exporters keep no flow cache
 * (Juniper PTX/ACX on Junos Evolved export every sampled packet as its own record) and a flood or a
 * misconfigured router can send a hundred times its usual volume. Above the budget, an exporter's flows are
 * sampled systematically 1-in-N, N chosen per second from its rate (the last second's, or this second's so
 * far, projected over the whole second once it is over the budget, whichever is higher: so a burst after a
 * quiet second is thinned from its start), and each kept flow's sampling interval is
 * multiplied by N and marked
 * `netflow.flow.rate_limited`, so estimated counters still sum to what was sent. Traces stay whole: a packet
 * keeps fewer flow spans, and `netflow.flow.count` says how many. With several pipeline Workers the
 * collector routes by exporter address alone while a limit is set, so one limiter sees all of an exporter.
 */
import type { ExportPacket, Flow } from "./netflow/types.ts";

/** The least part of a second a rate is projected from (earlier in the second, a few packets say little). */
const MIN_ELAPSED_S = 0.25;
/** Exporters the limiter remembers; the least recently seen is forgotten beyond it. */
const MAX_EXPORTERS = 10_000;

interface ExporterRate {
  /** The second (epoch s) `count` belongs to. */
  second: number;
  count: number;
  previous: number;
  /** Flows seen, for the systematic 1-in-N choice. */
  seen: number;
}

export const RATE_LIMITED = "netflow.flow.rate_limited";

export class RateLimiter {
  readonly #limit: number;
  readonly #exporters = new Map<string, ExporterRate>();

  /** `limit`: flows per second per exporter kept as spans. */
  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Thins `packet.flows` to the budget; returns how many flows were left out. */
  apply(packet: ExportPacket): number {
    const flows = packet.flows;
    if (flows.length === 0) return 0;
    const r = this.#rate(packet.exporterAddress, Math.floor(packet.receivedAtMs / 1000));
    r.count += flows.length;
    // Over the budget already this second: project the count over the whole second, so a burst after a
    // quiet second is thinned from its start rather than once N has crept up.
    const projected = r.count > this.#limit
      ? r.count / Math.max(MIN_ELAPSED_S, (packet.receivedAtMs % 1000) / 1000)
      : r.count;
    const rate = Math.max(projected, r.previous);
    if (rate <= this.#limit) {
      r.seen += flows.length;
      return 0;
    }
    const n = Math.ceil(rate / this.#limit);
    const kept: Flow[] = [];
    for (const flow of flows) {
      if (r.seen++ % n !== 0) continue;
      flow.samplingInterval = (flow.samplingInterval ?? 1) * n;
      if (flow.extra === undefined) flow.extra = { [RATE_LIMITED]: true };
      else flow.extra[RATE_LIMITED] = true;
      kept.push(flow);
    }
    packet.flows = kept;
    return flows.length - kept.length;
  }

  #rate(address: string, second: number): ExporterRate {
    const exporters = this.#exporters;
    let r = exporters.get(address);
    if (r === undefined) {
      if (exporters.size >= MAX_EXPORTERS) exporters.delete(exporters.keys().next().value!);
      r = { second, count: 0, previous: 0, seen: 0 };
      exporters.set(address, r);
    } else if (second !== r.second) {
      // A second without flows in between means a rate of 0 then.
      r.previous = second === r.second + 1 ? r.count : 0;
      r.second = second;
      r.count = 0;
      exporters.delete(address); // most recently seen last
      exporters.set(address, r);
    }
    return r;
  }
}
