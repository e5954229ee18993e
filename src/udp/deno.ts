/** Deno adapter: `Deno.listenDatagram`, reading into one reused buffer (5× faster than the async iterator). */
import {
  BindError,
  type DatagramHandler,
  type DatagramSource,
  drainingSource,
  type SocketOptions,
} from "./source.ts";

/** Largest UDP payload over IPv4/IPv6 without jumbograms; larger datagrams would be cut silently. */
const MAX_DATAGRAM = 65_535;

export function openDenoSource(host: string, port: number, options: SocketOptions = {}): DatagramSource {
  if (options.reusePort) {
    // Deno 2.9: listenDatagram has no SO_REUSEPORT (its reuseAddress lets the newest socket take all the
    // traffic, no balancing) and node:dgram's reusePort fails with EADDRINUSE.
    throw new BindError(
      "NETFLOW_REUSE_PORT=true needs the Bun build: Deno cannot open a UDP socket with SO_REUSEPORT " +
        "(use the netflow2traces-bun binary, or one port per process)",
    );
  }
  if (typeof Deno.listenDatagram !== "function") {
    throw new BindError("Deno.listenDatagram is unavailable: run with --unstable-net (deno.json sets it)");
  }
  let conn: Deno.DatagramConn;
  try {
    conn = Deno.listenDatagram({ hostname: host, port, transport: "udp" });
  } catch (err) {
    throw bindError(err, host, port);
  }
  const local = conn.addr as Deno.NetAddr;
  let closed = false;
  return drainingSource({
    host: local.hostname,
    port: local.port,
    async receive(onDatagram: DatagramHandler) {
      const buffer = new Uint8Array(MAX_DATAGRAM);
      while (!closed) {
        let received: [Uint8Array, Deno.Addr];
        try {
          received = await conn.receive(buffer);
        } catch (err) {
          if (closed) break;
          if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) break;
          throw err;
        }
        const from = received[1] as Deno.NetAddr;
        onDatagram(received[0], from.hostname, from.port);
      }
    },
    stop() {
      closed = true;
      try {
        conn.close();
      } catch { /* already closed */ }
    },
  });
}

function bindError(err: unknown, host: string, port: number): Error {
  if (err instanceof Deno.errors.AddrInUse) {
    return new BindError(`cannot listen on udp ${host}:${port}: address already in use`);
  }
  if (err instanceof Deno.errors.PermissionDenied || err instanceof Deno.errors.NotCapable) {
    return new BindError(
      `cannot listen on udp ${host}:${port}: permission denied (${(err as Error).message})`,
    );
  }
  if (err instanceof Deno.errors.AddrNotAvailable) {
    return new BindError(`cannot listen on udp ${host}:${port}: address not available on this host`);
  }
  return new BindError(`cannot listen on udp ${host}:${port}: ${(err as Error).message}`);
}
