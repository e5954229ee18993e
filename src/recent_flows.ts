/**
 * The last flows for the status page (`/api/flows`): the packets that carried the last {@link RECENT_FLOWS}
 * flows are kept by reference (a packet is never changed once emitted), and their flow spans' attributes
 * are planned only when the page asks, by the same `planTrace()` every span writer uses, so the page shows
 * exactly what was exported. Bounded: those flows plus at most one datagram's worth more.
 */
import type { ExportPacket } from "./netflow/types.ts";
import type { Attributes } from "./traces/attributes.ts";
import { planTrace, type TracePlanOptions } from "./traces/spans.ts";

export const RECENT_FLOWS = 100;

export interface RecentFlow {
  receivedAtMs: number;
  exporter: string;
  /** The flow span's times (epoch ms) and attributes, as exported. */
  startMs: number;
  endMs: number;
  attributes: Attributes;
}

export class RecentFlows {
  private packets: ExportPacket[] = [];
  private flows = 0;

  record(packet: ExportPacket): void {
    const n = packet.flows.length;
    if (n === 0) return;
    this.packets.push(packet);
    this.flows += n;
    // Drop whole packets from the front while the rest still hold enough flows.
    let drop = 0;
    while (this.flows - this.packets[drop].flows.length >= RECENT_FLOWS) {
      this.flows -= this.packets[drop++].flows.length;
    }
    if (drop > 0) this.packets.splice(0, drop);
  }

  /** The last {@link RECENT_FLOWS} flows, newest first. */
  list(options: TracePlanOptions): RecentFlow[] {
    const out: RecentFlow[] = [];
    for (let p = this.packets.length - 1; p >= 0 && out.length < RECENT_FLOWS; p--) {
      const packet = this.packets[p];
      const plan = planTrace(packet, options);
      for (let i = plan.flows.length - 1; i >= 0 && out.length < RECENT_FLOWS; i--) {
        const f = plan.flows[i];
        out.push({
          receivedAtMs: packet.receivedAtMs,
          exporter: packet.exporterAddress,
          startMs: f.startMs,
          endMs: f.endMs,
          attributes: f.attributes,
        });
      }
    }
    return out;
  }
}

/** The Workers' lists as one: the newest {@link RECENT_FLOWS} by receive time. */
export function mergeRecentFlows(lists: readonly (readonly RecentFlow[])[]): RecentFlow[] {
  if (lists.length === 1) return lists[0] as RecentFlow[];
  return lists.flat().sort((a, b) => b.receivedAtMs - a.receivedAtMs).slice(0, RECENT_FLOWS);
}
