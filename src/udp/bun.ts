/**
 * Bun adapter: `node:dgram`, the only Bun API that really enlarges SO_RCVBUF (8 MiB here), which is
 * the slack that absorbs bursts while spans are built.
 */
import dgram from "node:dgram";
import { BindError, type DatagramHandler, type DatagramSource } from "./source.ts";

const RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;

export async function openBunSource(host: string, port: number): Promise<DatagramSource> {
  const socket = dgram.createSocket({
    type: host.includes(":") ? "udp6" : "udp4",
    recvBufferSize: RECEIVE_BUFFER_BYTES,
  });
  let handler: DatagramHandler = () => {};
  socket.on("message", (msg, rinfo) => handler(msg, rinfo.address, rinfo.port));
  await new Promise<void>((resolve, reject) => {
    socket.once("error", (err: NodeJS.ErrnoException) => {
      const why = err.code === "EADDRINUSE"
        ? "address already in use"
        : err.code === "EACCES"
        ? "permission denied"
        : err.message;
      reject(new BindError(`cannot listen on udp ${host}:${port}: ${why}`));
    });
    socket.bind(port, host, () => resolve());
  });
  const local = socket.address();
  let stopped: () => void = () => {};
  const running = new Promise<void>((r) => (stopped = r));
  let lastDatagramAt = 0;
  return {
    host: local.address,
    port: local.port,
    run(onDatagram) {
      handler = (data, address, p) => {
        lastDatagramAt = performance.now();
        onDatagram(data, address, p);
      };
      return running;
    },
    async close(drainMs = 0) {
      if (drainMs > 0) {
        lastDatagramAt = performance.now();
        while (performance.now() - lastDatagramAt < drainMs) {
          await new Promise((r) => setTimeout(r, Math.max(1, drainMs / 4)));
        }
      }
      socket.close();
      stopped();
    },
  };
}
