/**
 * The one runtime-specific seam: where datagrams come from. Everything past `onDatagram` is plain
 * TypeScript that runs on Deno and Bun alike. The adapters (deno.ts, bun.ts) only bind, receive and stop a
 * socket; the shutdown drain policy is written here once, on top of them.
 */
import { isBun } from "../runtime.ts";

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

/** What an adapter provides: a bound socket that receives until stopped. */
export interface DatagramSocket {
  readonly host: string;
  readonly port: number;
  /** Delivers datagrams until `stop()`; resolves when receiving has stopped. */
  receive(onDatagram: DatagramHandler): Promise<void>;
  /** Stops receiving now; called once. */
  stop(): void;
}

/** Draining at shutdown stops after at most this many times `drainMs`, even while datagrams keep coming. */
const DRAIN_LIMIT_FACTOR = 5;

/** A {@link DatagramSource} over an adapter's socket: the drain at `close()` is the same on every runtime. */
export function drainingSource(socket: DatagramSocket): DatagramSource {
  let lastDatagramAt = 0;
  let closing: Promise<void> | undefined;
  return {
    host: socket.host,
    port: socket.port,
    run(onDatagram: DatagramHandler) {
      return socket.receive((data, address, port) => {
        lastDatagramAt = performance.now();
        onDatagram(data, address, port);
      });
    },
    close(drainMs = 0) {
      closing ??= (async () => {
        if (drainMs > 0) {
          lastDatagramAt = performance.now();
          // Bounded: an exporter that keeps sending must not hold shutdown open (what the kernel had queued
          // when close() was called is read within milliseconds).
          const giveUpAt = lastDatagramAt + DRAIN_LIMIT_FACTOR * drainMs;
          while (performance.now() - lastDatagramAt < drainMs && performance.now() < giveUpAt) {
            await new Promise((r) => setTimeout(r, Math.max(1, drainMs / 4)));
          }
        }
        socket.stop();
      })();
      return closing;
    },
  };
}

/** Binding failed in a way the user can act on: the message is the one line to show. */
export class BindError extends Error {}

/** How to open the socket. */
export interface SocketOptions {
  /** SO_REUSEPORT: several processes share the port, the kernel spreads senders over them (NETFLOW_REUSE_PORT). */
  reusePort?: boolean;
}

/** Opens a UDP socket on `host:port` with the adapter for the running runtime. */
export async function openDatagramSource(
  host: string,
  port: number,
  options: SocketOptions = {},
): Promise<DatagramSource> {
  if (isBun) {
    const { openBunSource } = await import("./bun.ts");
    return openBunSource(host, port, options);
  }
  const { openDenoSource } = await import("./deno.ts");
  return openDenoSource(host, port, options);
}
