/**
 * The decoding entry point: one datagram in, export packets out. Reads the version from the first two
 * bytes and hands the datagram to the matching format. Never throws: a bad datagram becomes a packet
 * with `error` set.
 */
import type { KnownTables } from "./template_decoder.ts";
import { decodeFixed } from "./fixed.ts";
import type { TemplateDecoderOptions } from "./decoder_options.ts";
import type { TemplateDecoderStats } from "./decoder_stats.ts";
import { TemplateDecoder } from "./template_decoder.ts";
import type { ExportPacket } from "./types.ts";

export type DecoderOptions = TemplateDecoderOptions;

export class NetflowDecoder {
  /** v9/IPFIX state: template caches, options data, data awaiting templates, sequence tracking. */
  readonly #templates: TemplateDecoder;
  /** The decoder's counters (templates, held data, sequence, limits), updated in place. */
  readonly stats: TemplateDecoderStats;

  constructor(options: Partial<DecoderOptions> = {}) {
    this.#templates = new TemplateDecoder(options);
    this.stats = this.#templates.stats;
  }

  /**
   * Decodes one datagram. Returns the packet itself, followed by any earlier packets whose data sets
   * were waiting for a template that this datagram delivered.
   */
  decode(
    datagram: Uint8Array,
    exporterAddress: string,
    exporterPort: number,
    receivedAtMs: number,
    /** The listen address it came in on, when the collector has several. */
    collector?: { host: string; port: number },
  ): ExportPacket[] {
    const packet: ExportPacket = {
      version: 0,
      exporterAddress,
      exporterPort,
      sizeBytes: datagram.length,
      receivedAtMs,
      flows: [],
    };
    if (collector !== undefined) {
      packet.collectorHost = collector.host;
      packet.collectorPort = collector.port;
    }
    if (datagram.length < 2) {
      packet.error = {
        kind: "truncated",
        message: `datagram of ${datagram.length} bytes has no version field`,
      };
      return [packet];
    }
    const view = new DataView(datagram.buffer, datagram.byteOffset, datagram.byteLength);
    packet.version = view.getUint16(0);
    try {
      switch (packet.version) {
        case 1:
        case 5:
          decodeFixed(datagram, view, packet);
          this.#templates.accountFixed(packet); // configured sampling, v5 sequence accounting
          return [packet];
        case 9:
        case 10:
          return this.#templates.decode(datagram, view, packet);
        default:
          packet.error = { kind: "unknown_version", message: `unknown NetFlow version ${packet.version}` };
          return [packet];
      }
    } catch (err) {
      // Defence in depth: format code checks every length, but no datagram may take the collector down.
      packet.error = { kind: "internal", message: `decoder failure: ${(err as Error)?.message ?? err}` };
      return [packet];
    }
  }

  /** Packets whose waiting data sets expired without their template: reported as errors. */
  expire(nowMs: number): ExportPacket[] {
    return this.#templates.expire(nowMs);
  }

  /** Templates (data and options) cached and options names known, per v9/IPFIX exporter address now. */
  knownTables(): Map<string, KnownTables> {
    return this.#templates.knownTables();
  }

  /** JSON-serialisable template state to persist (templates, announced sampling, system init times). */
  snapshot(): unknown {
    return this.#templates.snapshot();
  }

  /** Restores a {@link snapshot} (validated, within the bounds); returns the templates restored. */
  restore(state: unknown): number {
    return this.#templates.restore(state);
  }
}
