/**
 * The one runtime-specific seam: where datagrams come from. Everything past `onDatagram` is plain
 * TypeScript that runs on Deno and Bun alike.
 */

/**
 * Called once per datagram. `data` may be a view into a buffer the source reuses: it is valid only until
 * the callback returns, so keep a copy of anything needed later.
 */
export type DatagramHandler = (data: Uint8Array, address: string, port: number) => void;

export interface DatagramSource {
  /** The address actually bound (the port is resolved when 0 was asked for). */
  readonly host: string;
  readonly port: number;
  /** Receives until `close()`; resolves when receiving has stopped. */
  run(onDatagram: DatagramHandler): Promise<void>;
  /**
   * Stops receiving. With `drainMs`, first keeps reading what is already queued until no datagram has
   * arrived for that long (so datagrams the kernel accepted before a shutdown are not lost), and for at most
   * 5 × `drainMs` in all (so an exporter that never pauses cannot hold shutdown open).
   */
  close(drainMs?: number): Promise<void>;
}

/** Binding failed in a way the user can act on: the message is the one line to show. */
export class BindError extends Error {}

/** Opens a UDP socket on `host:port` with the adapter for the running runtime. */
export async function openDatagramSource(host: string, port: number): Promise<DatagramSource> {
  if ("Bun" in globalThis) {
    const { openBunSource } = await import("./bun.ts");
    return openBunSource(host, port);
  }
  const { openDenoSource } = await import("./deno.ts");
  return openDenoSource(host, port);
}
