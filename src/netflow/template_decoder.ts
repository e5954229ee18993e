/** PLACEHOLDER — replaced by the v9/IPFIX implementation. */
import type { ExportPacket } from "./types.ts";

export interface TemplateDecoderOptions {
  unknownFields: boolean;
}

export class TemplateDecoder {
  constructor(_options: Partial<TemplateDecoderOptions>) {}
  decode(_bytes: Uint8Array, _view: DataView, packet: ExportPacket): ExportPacket[] {
    packet.error = { kind: "unsupported", message: "v9/IPFIX not implemented yet" };
    return [packet];
  }
  expire(_nowMs: number): ExportPacket[] {
    return [];
  }
}
