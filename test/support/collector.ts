/** Runs the real collector as a child process, the way a user runs it, for integration tests. */
import { dirname, fromFileUrl, join } from "./paths.ts";

const ROOT = join(dirname(fromFileUrl(import.meta.url)), "..", "..");

export interface CollectorProcess {
  port: number;
  /** The process id (its CPU and memory, for benchmarks). */
  pid: number;
  /** Everything the process wrote to stderr (logs) and stdout so far. */
  stderr(): string;
  stdout(): string;
  /** Sends `signal` and waits for the exit code. */
  stop(signal?: Deno.Signal): Promise<number>;
  /** Sends `signal` without waiting. */
  kill(signal: Deno.Signal): void;
  /** Waits for the process to exit by itself. */
  exited: Promise<number>;
}

/** A UDP port that was free a moment ago. */
export function freeUdpPort(hostname = "127.0.0.1"): number {
  const sock = Deno.listenDatagram({ hostname, port: 0, transport: "udp" });
  const port = (sock.addr as Deno.NetAddr).port;
  sock.close();
  return port;
}

/** A TCP port on 127.0.0.1 that was free a moment ago (e.g. for NETFLOW_HTTP_LISTEN). */
export function freeTcpPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Resolves once `ok()` holds, polling every 20 ms; rejects naming `what` after `timeoutMs`. */
export async function waitUntil(ok: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The command that runs the collector from source, with the permissions `deno task start` grants. */
export function collectorCommand(args: string[] = []): string[] {
  return [
    Deno.execPath(),
    "run",
    "--allow-net",
    "--allow-env",
    "--allow-read",
    "--allow-write",
    "--allow-sys",
    join(ROOT, "main.ts"),
    ...args,
  ];
}

/**
 * Runs the collector's command with `args` (a subcommand such as `check` or `replay`) to its exit, in an empty
 * directory (no stray .env) with a clean environment plus `env`; returns the exit code and output.
 */
export async function runCollectorCommand(args: string[], env: Record<string, string>) {
  const [cmd, ...rest] = collectorCommand(args);
  const out = await new Deno.Command(cmd, {
    args: rest,
    cwd: Deno.makeTempDirSync(),
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: Deno.env.get("HOME") ?? "/tmp",
      NO_COLOR: "1",
      ...env,
    },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/**
 * Starts the collector with `env` (merged over a clean base environment) and waits for its "listening" line.
 * Unless the test sets them, it listens on a free 127.0.0.1 port, logs at INFO, and serves no HTTP (the
 * default 127.0.0.1:9464 would be taken by the first of the tests running at once).
 */
export async function startCollectorProcess(
  env: Record<string, string>,
  options: { args?: string[]; cwd?: string; waitForListening?: boolean; command?: string[] } = {},
): Promise<CollectorProcess> {
  const port = env.NETFLOW_LISTEN_PORT ? Number(env.NETFLOW_LISTEN_PORT) : freeUdpPort();
  const [cmd, ...args] = options.command ?? collectorCommand(options.args);
  const child = new Deno.Command(cmd, {
    args,
    cwd: options.cwd ?? Deno.makeTempDirSync(),
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: Deno.env.get("HOME") ?? "/tmp",
      NO_COLOR: "1",
      NETFLOW_LISTEN_HOST: "127.0.0.1",
      NETFLOW_LISTEN_PORT: String(port),
      NETFLOW_HTTP_LISTEN: "off",
      ...env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let err = "", out = "";
  const decoder = new TextDecoder();
  const listening = Promise.withResolvers<void>();
  const pump = async (stream: ReadableStream<Uint8Array>, onText: (t: string) => void) => {
    for await (const chunk of stream) onText(decoder.decode(chunk, { stream: true }));
  };
  const pumps = Promise.all([
    pump(child.stderr, (t) => {
      err += t;
      if (/\blistening\b/.test(err)) listening.resolve();
    }),
    pump(child.stdout, (t) => (out += t)),
  ]);
  const exited = child.status.then(async (s) => {
    await pumps;
    listening.reject(new Error(`collector exited with ${s.code} before listening:\n${err}`));
    return s.code;
  });
  if (options.waitForListening !== false) {
    const timer = setTimeout(
      () => listening.reject(new Error(`collector not listening after 20 s:\n${err}`)),
      20_000,
    );
    try {
      await listening.promise;
    } catch (e) {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await exited;
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }
  listening.promise.catch(() => {});
  const kill = (signal: Deno.Signal) => {
    try {
      child.kill(signal);
    } catch { /* already exited */ }
  };
  return {
    port,
    pid: child.pid,
    stderr: () => err,
    stdout: () => out,
    exited,
    kill,
    async stop(signal: Deno.Signal = "SIGTERM") {
      kill(signal);
      return await exited;
    },
  };
}

/** Sends datagrams from one socket (one exporter address:port) to the collector. */
export async function sendDatagrams(
  port: number,
  datagrams: Uint8Array[],
  host = "127.0.0.1",
): Promise<number> {
  const sock = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  try {
    for (const d of datagrams) await sock.send(d, { transport: "udp", hostname: host, port });
    return (sock.addr as Deno.NetAddr).port;
  } finally {
    sock.close();
  }
}
