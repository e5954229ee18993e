/**
 * Start-up time: spawn → the collector's "listening" line, median of N runs (default 7).
 *   deno task bench:startup [-- "command args…"]   (default: deno run main.ts; e.g. a compiled binary)
 */
import process from "node:process";

const deno = Deno.execPath();
const cmd = process.argv[2]?.split(" ") ??
  [deno, "run", "--allow-net", "--allow-env", "--allow-read", "--allow-write", "--allow-sys", "main.ts"];
const runs = Number(process.argv[3] ?? 7);
const times: number[] = [];
for (let i = 0; i < runs; i++) {
  const sock = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const port = (sock.addr as Deno.NetAddr).port;
  sock.close();
  const t0 = performance.now();
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env: {
      NETFLOW_LISTEN_HOST: "127.0.0.1",
      NETFLOW_LISTEN_PORT: String(port),
      OTEL_TRACES_EXPORTER: "otlp",
    },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
    text += chunk;
    if (text.includes("listening")) break;
  }
  times.push(performance.now() - t0);
  child.kill("SIGKILL");
  await child.status;
}
times.sort((a, b) => a - b);
const median = times[Math.floor(times.length / 2)];
console.log(
  `start-up to "listening": median ${median.toFixed(0)} ms (min ${times[0].toFixed(0)}, max ${
    times.at(-1)!.toFixed(0)
  }) over ${runs} runs of ${cmd.join(" ")}`,
);
console.log(JSON.stringify({ command: cmd, medianMs: Math.round(median), runsMs: times.map(Math.round) }));
