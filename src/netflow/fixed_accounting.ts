/**
 * What v1/v5 datagrams (decoded statelessly by fixed.ts) get from the decoder's state: the configured
 * sampling (an override beats the header, the header beats the default) and, for v5, sequence accounting
 * per exporter + engine type/id, counting flows.
 */
import { configuredInterval, fallbackInterval, type TemplateDecoderOptions } from "./decoder_options.ts";
import { countSequence, type TemplateDecoderStats } from "./decoder_stats.ts";
import type { ExporterTable } from "./exporter_state.ts";
import { observeSequence, RECORD_LIMITS } from "./sequence.ts";
import type { ExportPacket } from "./types.ts";

export function accountFixed(
  packet: ExportPacket,
  options: TemplateDecoderOptions,
  exporters: ExporterTable,
  stats: TemplateDecoderStats,
): void {
  const override = configuredInterval(options, packet.exporterAddress);
  const fallback = fallbackInterval(options, packet.exporterAddress);
  const interval = override > 0
    ? override
    : (packet.samplingInterval ?? 0) > 0
    ? 0
    : fallback > 0
    ? fallback
    : 0;
  if (interval > 0) { for (const flow of packet.flows) flow.samplingInterval = interval; }
  if (packet.version !== 5 || packet.sequence === undefined) return;
  const exporter = exporters.touchExporter(packet.exporterAddress);
  const domain = exporters.touchDomain(exporter, 5, ((packet.engineType ?? 0) << 8) | (packet.engineId ?? 0));
  countSequence(stats, packet, observeSequence(domain, packet.sequence, packet.flows.length, RECORD_LIMITS));
}
