/**
 * Real flow exporters and an independent decoder, for interoperability tests.
 *
 * - {@link runSoftflowd} and {@link runPmacctd} replay a traffic pcap through softflowd or pmacctd (nfprobe
 *   plugin) and export NetFlow/IPFIX to `127.0.0.1:port`; both flush every flow at the end of the file and exit.
 * - {@link captureDatagrams} records what reaches a UDP port with tshark while a function runs.
 * - {@link tsharkDecode} decodes such a capture with Wireshark's cflow dissector and normalises every header
 *   and flow record to the shape of our own decoder's output ({@link normalizeFlow}, {@link normalizeHeader}).
 *
 * ```ts
 * const port = 20_555, pcap = "/tmp/traffic.pcap";
 * const capture = await captureDatagrams(port, () => runSoftflowd(pcap, 9, port));
 * const { records } = await tsharkDecode(capture.path, port);
 * await capture.cleanup();
 * ```
 *
 * Every child process is bounded by a timeout and killed in `finally`; temporary files live in one directory
 * per call that the caller (or the helper itself) removes.
 */
import { readFileSync } from "node:fs";
import { elementInfo } from "../../src/netflow/elements.ts";
import type { ExportPacket, Flow } from "../../src/netflow/types.ts";
import { join } from "./paths.ts";

/** Debian package that provides each tool the interop tests run. */
export const TOOL_PACKAGES: Record<string, string> = {
  softflowd: "softflowd",
  pmacctd: "pmacct",
  tshark: "tshark",
  dumpcap: "wireshark-common (pulled in by tshark)",
};

/** Full path of `tool` on PATH (or in the sbin directories Debian uses), or undefined. */
export function findTool(tool: string): string | undefined {
  const dirs = [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/sbin", "/sbin", "/usr/bin", "/bin"];
  for (const dir of dirs) {
    if (!dir) continue;
    try {
      const path = join(dir, tool);
      const info = Deno.statSync(path);
      if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Tools among `tools` that are not installed, with the package to install for each. */
export function missingTools(tools: string[]): string[] {
  return tools.filter((t) => !findTool(t)).map((t) => `${t} (apt-get install ${TOOL_PACKAGES[t] ?? t})`);
}

export interface RunResult {
  /** The command line that ran, for reports. */
  command: string[];
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command to completion, bounded by `timeoutMs` (then SIGKILL and an error). Output is collected;
 * the process never outlives this call.
 */
export async function runBounded(
  command: string[],
  timeoutMs: number,
  options: { cwd?: string } = {},
): Promise<RunResult> {
  const [cmd, ...args] = command;
  const child = new Deno.Command(cmd, {
    args,
    cwd: options.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  })
    .spawn();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        reject(new Error(`${command.join(" ")}: no exit within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    const out = await Promise.race([child.output(), timeout]);
    const decoder = new TextDecoder();
    return {
      command,
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  } finally {
    clearTimeout(timer);
    if (timedOut) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
      await child.status.catch(() => {});
    }
  }
}

/**
 * Replays `pcapPath` through softflowd, exporting NetFlow `version` (1, 5, 9 or 10 = IPFIX) to
 * 127.0.0.1:`targetPort`. With `-r`, softflowd reads the whole file, expires every flow at end of file,
 * sends them and exits (`-d`: no daemon). The pid file goes to a private temporary directory.
 * `extraArgs` adds flags such as `-A milli` (IPFIX absolute times).
 */
export async function runSoftflowd(
  pcapPath: string,
  version: 1 | 5 | 9 | 10,
  targetPort: number,
  options: { extraArgs?: string[]; timeoutMs?: number } = {},
): Promise<RunResult> {
  const dir = Deno.makeTempDirSync({ prefix: "softflowd-" });
  try {
    const result = await runBounded([
      findTool("softflowd") ?? "softflowd",
      "-r",
      pcapPath,
      "-n",
      `127.0.0.1:${targetPort}`,
      "-v",
      String(version),
      "-d",
      "-p",
      join(dir, "softflowd.pid"),
      // No control socket: softflowd 1.1.0 in -r mode can block in accept() on it after reading the file
      // (seen with some socket paths), instead of flushing and exiting.
      "-c",
      "none",
      ...(options.extraArgs ?? []),
    ], options.timeoutMs ?? 15_000);
    if (result.code !== 0) throw new Error(`softflowd exited with ${result.code}: ${result.stderr}`);
    return result;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** pmacct's aggregation primitives for the nfprobe plugin: every one becomes a template field. */
export const PMACCT_AGGREGATE =
  "src_host, dst_host, src_port, dst_port, proto, tos, tcpflags, src_as, dst_as, src_mask, dst_mask, " +
  "in_iface, out_iface, src_mac, dst_mac, vlan, peer_dst_ip";

/**
 * Replays `pcapPath` through pmacctd's nfprobe plugin (a separate NetFlow v9/IPFIX implementation from
 * softflowd's: it exports absolute flowStart/EndMilliseconds, MACs, VLAN, BGP next hop, AS and mask
 * fields), to 127.0.0.1:`targetPort`. pmacctd reads the savefile, waits ~2 s for its plugins, flushes every
 * flow at end of file and exits. `engine` sets the v9 source ID / IPFIX observation domain.
 */
export async function runPmacctd(
  pcapPath: string,
  version: 9 | 10,
  targetPort: number,
  options: { engine?: number; aggregate?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  const dir = Deno.makeTempDirSync({ prefix: "pmacctd-" });
  try {
    const config = join(dir, "pmacctd.conf");
    Deno.writeTextFileSync(
      config,
      [
        "daemonize: false",
        `pcap_savefile: ${pcapPath}`,
        "plugins: nfprobe",
        `nfprobe_receiver: 127.0.0.1:${targetPort}`,
        `nfprobe_version: ${version}`,
        `nfprobe_engine: ${options.engine ?? 0}`,
        `aggregate: ${options.aggregate ?? PMACCT_AGGREGATE}`,
        `pidfile: ${join(dir, "pmacctd.pid")}`,
        "",
      ].join("\n"),
    );
    const result = await runBounded(
      [findTool("pmacctd") ?? "pmacctd", "-f", config],
      options.timeoutMs ?? 20_000,
      {
        cwd: dir,
      },
    );
    if (result.code !== 0) {
      throw new Error(`pmacctd exited with ${result.code}: ${result.stderr}${result.stdout}`);
    }
    return result;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

export interface Capture {
  /** Classic pcap file (Ethernet link type) of every datagram sent to the port while `fn` ran. */
  path: string;
  /** The tshark command line used. */
  command: string[];
  /** Removes the capture file and its directory. */
  cleanup(): void;
}

/**
 * Captures UDP datagrams to `port` on the loopback interface with tshark while `fn` runs: starts tshark,
 * waits until it reports that it is capturing, runs `fn`, gives the kernel `settleMs` to deliver the last
 * datagrams, then stops tshark with SIGINT (it writes out what it has) and waits for it to exit.
 */
export async function captureDatagrams(
  port: number,
  fn: () => Promise<unknown>,
  options: { settleMs?: number; startTimeoutMs?: number } = {},
): Promise<Capture> {
  const dir = Deno.makeTempDirSync({ prefix: "capture-" });
  const path = join(dir, "capture.pcap");
  const command = [
    findTool("tshark") ?? "tshark",
    "-i",
    "lo",
    "-f",
    `udp dst port ${port}`,
    "-F",
    "pcap",
    "-w",
    path,
  ];
  const cleanup = () => Deno.removeSync(dir, { recursive: true });
  const [cmd, ...args] = command;
  const child = new Deno.Command(cmd, { args, stdin: "null", stdout: "null", stderr: "piped" }).spawn();
  let stderr = "";
  const capturing = Promise.withResolvers<void>();
  const pump = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) {
      stderr += decoder.decode(chunk, { stream: true });
      if (/Capturing on/.test(stderr)) capturing.resolve();
    }
  })();
  const exited = child.status.then((s) => {
    capturing.reject(new Error(`tshark exited (${s.code}) before capturing: ${stderr.trim()}`));
    return s;
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      capturing.promise,
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`tshark did not start capturing: ${stderr.trim()}`)),
          options.startTimeoutMs ?? 10_000,
        );
      }),
    ]);
    clearTimeout(timer);
    // "Capturing on" is printed as the capture starts; give the BPF filter a moment to be attached.
    await new Promise((r) => setTimeout(r, 200));
    await fn();
    await new Promise((r) => setTimeout(r, options.settleMs ?? 300));
  } catch (err) {
    cleanup();
    throw err;
  } finally {
    clearTimeout(timer);
    try {
      child.kill("SIGINT");
    } catch {
      // already gone
    }
    const killer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }, 5_000);
    await exited;
    clearTimeout(killer);
    await pump.catch(() => {});
  }
  return { path, command, cleanup };
}

/** UDP payloads to `port` in a classic pcap file (Ethernet or Linux cooked link type, IPv4/IPv6), in order. */
export function readUdpPayloads(path: string, port: number): Uint8Array[] {
  const file = readFileSync(path);
  const bytes = new Uint8Array(file.buffer, file.byteOffset, file.byteLength);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, true);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && magic !== 0xd4c3b2a1 && magic !== 0x4d3cb2a1) {
    throw new Error(`${path}: not a classic pcap file`);
  }
  const linkType = view.getUint32(20, le);
  const out: Uint8Array[] = [];
  for (let off = 24; off + 16 <= bytes.length;) {
    const incl = view.getUint32(off + 8, le);
    const frame = bytes.subarray(off + 16, off + 16 + incl);
    off += 16 + incl;
    let ip: number;
    let etherType: number;
    if (linkType === 1) {
      ip = 14;
      etherType = (frame[12] << 8) | frame[13];
    } else if (linkType === 113) {
      ip = 16;
      etherType = (frame[14] << 8) | frame[15];
    } else {
      throw new Error(`${path}: unsupported link type ${linkType}`);
    }
    let udp: number;
    if (etherType === 0x0800 && frame[ip + 9] === 17) udp = ip + (frame[ip] & 0x0f) * 4;
    else if (etherType === 0x86dd && frame[ip + 6] === 17) udp = ip + 40;
    else continue;
    const dstPort = (frame[udp + 2] << 8) | frame[udp + 3];
    const udpLength = (frame[udp + 4] << 8) | frame[udp + 5];
    if (dstPort !== port) continue;
    out.push(frame.slice(udp + 8, udp + udpLength));
  }
  return out;
}

/**
 * One flow record in a form both decoders can be reduced to. Only fields the record carries are present.
 * `elements` holds further IPFIX/v9 elements by IANA id (values as numbers or canonical strings).
 */
export interface NormalizedRecord {
  version?: number;
  srcAddr?: string;
  dstAddr?: string;
  srcPort?: number;
  dstPort?: number;
  protocol?: number;
  bytes?: number;
  packets?: number;
  tcpFlags?: number;
  tos?: number;
  inputIf?: number;
  outputIf?: number;
  nextHop?: string;
  srcAs?: number;
  dstAs?: number;
  srcMask?: number;
  dstMask?: number;
  ipVersion?: number;
  direction?: number;
  /** Uptime-relative milliseconds. */
  firstSwitched?: number;
  lastSwitched?: number;
  /** Absolute epoch milliseconds (fractional below 1 ms). */
  startMs?: number;
  endMs?: number;
  elements?: Record<number, string | number>;
}

/** Header fields, normalised the way {@link ExportPacket} carries them. */
export interface NormalizedHeader {
  version?: number;
  sysUptimeMs?: number;
  exportTimeMs?: number;
  sequence?: number;
  sourceId?: number;
  observationDomainId?: number;
  engineType?: number;
  engineId?: number;
  samplingInterval?: number;
}

export interface TsharkDatagram {
  header: NormalizedHeader;
  /** Flow (data) records in order; options data records are left out. */
  records: NormalizedRecord[];
  /** Data sets tshark could not decode for want of a template. */
  setsWithoutTemplate: number;
}

export interface TsharkDecode {
  /** Datagrams to the port that tshark dissected as cflow. */
  datagrams: number;
  /** Every flow record, in capture order. */
  records: NormalizedRecord[];
  /** Per datagram, in capture order. */
  perDatagram: TsharkDatagram[];
  command: string[];
}

/** Elements compared beyond the {@link Flow} fields: tshark field name → IANA element id. */
const TSHARK_ELEMENTS: Record<string, number> = {
  "cflow.icmp_type_code_ipv4": 32,
  "cflow.icmp_type_code_ipv6": 139,
  "cflow.flow_end_reason": 136,
  "cflow.bgpnexthop": 18,
  "cflow.bgpnexthopv6": 63,
  "cflow.srcmac": 56,
  "cflow.dstmac": 80,
  "cflow.vlanid": 58,
};

type Numeric = "srcPort" | "dstPort" | "protocol" | "bytes" | "packets" | "tcpFlags" | "tos" | "inputIf";
type Numeric2 = "outputIf" | "srcAs" | "dstAs" | "srcMask" | "dstMask" | "ipVersion" | "direction";

/** tshark field name → numeric field (tshark prints some in hex, e.g. `0x1b`: `Number` reads both). */
const TSHARK_NUMBERS: Record<string, Numeric | Numeric2> = {
  "cflow.srcport": "srcPort",
  "cflow.dstport": "dstPort",
  "cflow.protocol": "protocol",
  "cflow.octets": "bytes",
  "cflow.packets": "packets",
  "cflow.tcpflags": "tcpFlags",
  "cflow.tos": "tos",
  "cflow.inputint": "inputIf",
  "cflow.outputint": "outputIf",
  "cflow.srcas": "srcAs",
  "cflow.dstas": "dstAs",
  "cflow.srcmask": "srcMask",
  "cflow.srcmaskv6": "srcMask",
  "cflow.dstmask": "dstMask",
  "cflow.dstmaskv6": "dstMask",
  "cflow.ip_version": "ipVersion",
  "cflow.direction": "direction",
};

const TSHARK_ADDRESSES: Record<string, "srcAddr" | "dstAddr" | "nextHop"> = {
  "cflow.srcaddr": "srcAddr",
  "cflow.srcaddrv6": "srcAddr",
  "cflow.dstaddr": "dstAddr",
  "cflow.dstaddrv6": "dstAddr",
  "cflow.nexthop": "nextHop",
  "cflow.nexthopv6": "nextHop",
};

/** `"3251085.375000000"` (seconds) → milliseconds, exact to the digit. */
function secondsToMs(text: string): number {
  const [s, frac = ""] = text.split(".");
  return Number(s) * 1000 + Number((frac + "000").slice(0, 3)) + Number("0." + (frac.slice(3) || "0"));
}

/** `"Nov 14, 2023 22:13:20.810000000 UTC"` → epoch milliseconds (fractional below 1 ms). */
function absoluteToMs(text: string): number {
  const m = /^(.*\d\d:\d\d:\d\d)(?:\.(\d+))? (UTC|GMT)$/.exec(text.trim());
  if (!m) throw new Error(`unexpected tshark time ${JSON.stringify(text)}`);
  const base = Date.parse(`${m[1]} UTC`);
  if (Number.isNaN(base)) throw new Error(`unparsable tshark time ${JSON.stringify(text)}`);
  return base + secondsToMs("0." + (m[2] ?? "0"));
}

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };

function first(value: Json): string {
  if (Array.isArray(value)) throw new Error(`repeated tshark field: ${JSON.stringify(value)}`);
  return String(value);
}

/** One tshark flow record object (`Flow 3` / `pdu 3/12`) → normalised record. */
function normalizeTsharkRecord(obj: Record<string, Json>, version: number): NormalizedRecord {
  const rec: NormalizedRecord = { version };
  const visit = (o: Record<string, Json>) => {
    for (const [key, value] of Object.entries(o)) {
      if (key.endsWith("_tree") && value && typeof value === "object" && !Array.isArray(value)) {
        if (key === "cflow.timedelta_tree") visit(value);
        continue;
      }
      if (key in TSHARK_NUMBERS) rec[TSHARK_NUMBERS[key]] = Number(first(value));
      else if (key in TSHARK_ADDRESSES) rec[TSHARK_ADDRESSES[key]] = first(value);
      else if (key === "cflow.timestart") rec.firstSwitched = secondsToMs(first(value));
      else if (key === "cflow.timeend") rec.lastSwitched = secondsToMs(first(value));
      else if (key === "cflow.abstimestart") rec.startMs = absoluteToMs(first(value));
      else if (key === "cflow.abstimeend") rec.endMs = absoluteToMs(first(value));
      else if (key in TSHARK_ELEMENTS) {
        const text = first(value);
        (rec.elements ??= {})[TSHARK_ELEMENTS[key]] = /^(0x)?[0-9a-f]+$/i.test(text) && !text.includes(":")
          ? Number(text)
          : text;
      }
    }
  };
  visit(obj);
  return rec;
}

function normalizeTsharkHeader(c: Record<string, Json>): NormalizedHeader {
  const h: NormalizedHeader = {};
  const num = (k: string) => (c[k] === undefined ? undefined : Number(first(c[k])));
  h.version = num("cflow.version");
  if (c["cflow.sysuptime"] !== undefined) h.sysUptimeMs = secondsToMs(first(c["cflow.sysuptime"]));
  const ts = (c["cflow.timestamp_tree"] ?? {}) as Record<string, Json>;
  const secs = ts["cflow.unix_secs"] ?? ts["cflow.exporttime"];
  if (secs !== undefined) {
    const nsecs = ts["cflow.unix_nsecs"] === undefined ? 0 : Number(first(ts["cflow.unix_nsecs"]));
    h.exportTimeMs = Number(first(secs)) * 1000 + Math.floor(nsecs / 1e6);
  }
  h.sequence = num("cflow.sequence");
  h.sourceId = num("cflow.source_id");
  h.observationDomainId = num("cflow.od_id");
  h.engineType = num("cflow.engine_type");
  h.engineId = num("cflow.engine_id");
  if (c["cflow.samplerate"] !== undefined) h.samplingInterval = num("cflow.samplerate");
  for (const k of Object.keys(h) as (keyof NormalizedHeader)[]) if (h[k] === undefined) delete h[k];
  return h;
}

/**
 * Decodes the NetFlow/IPFIX datagrams to `port` in a capture with tshark (`-d udp.port==PORT,cflow -T json`)
 * and normalises them. tshark needs each v9/IPFIX template earlier in the same capture, as any collector
 * does; options templates are tracked so their data records are not counted as flows.
 */
export async function tsharkDecode(pcapPath: string, port: number): Promise<TsharkDecode> {
  const command = [
    findTool("tshark") ?? "tshark",
    "-r",
    pcapPath,
    "-d",
    `udp.port==${port},cflow`,
    "-Y",
    `udp.dstport==${port}`,
    "-T",
    "json",
    "--no-duplicate-keys",
    "-J",
    "cflow",
  ];
  const result = await runBounded(command, 20_000);
  if (result.code !== 0) throw new Error(`tshark failed (${result.code}): ${result.stderr}`);
  const frames = JSON.parse(result.stdout) as { _source: { layers: Record<string, Json> } }[];
  const optionsTemplates = new Set<string>();
  const perDatagram: TsharkDatagram[] = [];
  for (const frame of frames) {
    const layer = frame._source.layers.cflow;
    if (!layer || typeof layer !== "object" || Array.isArray(layer)) {
      throw new Error(
        `frame without a (single) cflow layer: ${JSON.stringify(frame._source.layers).slice(0, 300)}`,
      );
    }
    const header = normalizeTsharkHeader(layer);
    const version = header.version ?? 0;
    const domain = header.sourceId ?? header.observationDomainId ?? 0;
    const dg: TsharkDatagram = { header, records: [], setsWithoutTemplate: 0 };
    for (const [key, value] of Object.entries(layer)) {
      if (version === 1 || version === 5) {
        if (/^pdu \d+\/\d+$/.test(key)) {
          dg.records.push(normalizeTsharkRecord(value as Record<string, Json>, version));
        }
        continue;
      }
      // "FlowSet 5 [id=1] (Options Template): 256" (v9) / "Set 5 [id=3] (Options Template): 256, 257" (IPFIX)
      const opt = /^(?:Flow)?Set \d+ \[id=\d+\] \(Options Template\): ([\d, ]+)$/.exec(key);
      if (opt) {
        for (const id of opt[1].split(",")) optionsTemplates.add(`${domain}/${id.trim()}`);
        continue;
      }
      const data = /^(?:Flow)?Set \d+ \[id=(\d+)\] \((\d+) flows\)$/.exec(key);
      if (data) {
        if (optionsTemplates.has(`${domain}/${data[1]}`)) continue;
        const set = value as Record<string, Json>;
        for (const [rk, rv] of Object.entries(set)) {
          if (/^Flow \d+$/.test(rk)) {
            dg.records.push(normalizeTsharkRecord(rv as Record<string, Json>, version));
          }
        }
        continue;
      }
      if (/^(?:Flow)?Set \d+ \[id=(\d+)\]/.test(key) && !/Template/.test(key)) dg.setsWithoutTemplate++;
    }
    perDatagram.push(dg);
  }
  return {
    datagrams: perDatagram.length,
    records: perDatagram.flatMap((d) => d.records),
    perDatagram,
    command,
  };
}

/** Our decoder's flow, reduced to the same normalised shape (all fields it has; extras by element id). */
export function normalizeFlow(flow: Flow, version: number): NormalizedRecord {
  const rec: NormalizedRecord = { version };
  const copy = [
    "srcAddr",
    "dstAddr",
    "srcPort",
    "dstPort",
    "protocol",
    "bytes",
    "packets",
    "tcpFlags",
    "tos",
    "inputIf",
    "outputIf",
    "nextHop",
    "srcAs",
    "dstAs",
    "srcMask",
    "dstMask",
    "ipVersion",
    "direction",
    "firstSwitched",
    "lastSwitched",
    "startMs",
    "endMs",
  ] as const;
  for (const k of copy) {
    if (flow[k] !== undefined) (rec as Record<string, unknown>)[k] = flow[k];
  }
  for (const id of Object.values(TSHARK_ELEMENTS)) {
    const key = elementInfo(id)?.key;
    const value = key === undefined ? undefined : flow.extra?.[key];
    if (value !== undefined) (rec.elements ??= {})[id] = typeof value === "boolean" ? Number(value) : value;
  }
  return rec;
}

/** Our decoder's packet header, reduced to the fields tshark reports. */
export function normalizeHeader(packet: ExportPacket): NormalizedHeader {
  const h: NormalizedHeader = {
    version: packet.version,
    sysUptimeMs: packet.sysUptimeMs,
    exportTimeMs: packet.exportTimeMs,
    sequence: packet.sequence,
    sourceId: packet.sourceId,
    observationDomainId: packet.observationDomainId,
    engineType: packet.engineType,
    engineId: packet.engineId,
    // The v5 header's interval is only set on the packet when > 0; tshark prints the raw 0.
    samplingInterval: packet.version === 5 ? packet.samplingInterval ?? 0 : packet.samplingInterval,
  };
  for (const k of Object.keys(h) as (keyof NormalizedHeader)[]) if (h[k] === undefined) delete h[k];
  return h;
}

/**
 * Absolute times agree within `toleranceMs` (IPFIX micro/nanosecond times are not exact in a JS number of
 * milliseconds: near 1.7e12 ms a double resolves ~0.25 µs).
 */
function sameValue(key: string, a: unknown, b: unknown, toleranceMs: number): boolean {
  if ((key === "startMs" || key === "endMs") && typeof a === "number" && typeof b === "number") {
    return Math.abs(a - b) <= toleranceMs;
  }
  return a === b;
}

export interface Comparison {
  fields: number;
  mismatches: string[];
}

/**
 * Compares every field the reference (tshark, by default) reports with ours (`actual`), recording a
 * mismatch for each value that differs or that we lack. Fields only we report are not counted.
 */
export function compareRecord(
  reference: Record<string, unknown>,
  actual: Record<string, unknown>,
  where: string,
  out: Comparison,
  options: { referenceName?: string; timeToleranceMs?: number } = {},
): void {
  const ref = options.referenceName ?? "tshark";
  const tolerance = options.timeToleranceMs ?? 0.0005;
  const check = (key: string, label: string, theirs: unknown, ours: unknown) => {
    out.fields++;
    if (!sameValue(key, theirs, ours, tolerance)) {
      out.mismatches.push(
        `${where} ${label}: ${ref} ${JSON.stringify(theirs)}, ours ${JSON.stringify(ours)}`,
      );
    }
  };
  for (const [key, value] of Object.entries(reference)) {
    if (key === "elements") {
      const ours = (actual.elements ?? {}) as Record<string, unknown>;
      for (const [id, v] of Object.entries(value as Record<string, unknown>)) {
        check(id, `element ${id}`, v, ours[id]);
      }
    } else {
      check(key, key, value, actual[key]);
    }
  }
}
