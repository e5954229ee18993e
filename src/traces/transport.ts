/**
 * One OTLP request, sent once: what every transport (http_transport.ts, grpc_transport.ts) answers, and how
 * network and TLS errors read to a user. Retrying is not the transport's job: the delivery queue
 * (delivery.ts) decides when a batch goes again, so a retry is always the same bytes.
 */
import { gzipSync } from "node:zlib";

/** What became of one attempt to send a request. */
export type SendOutcome =
  /** The backend took the request; `rejectedSpans` of it were refused (OTLP partial success). */
  | { kind: "accepted"; rejectedSpans: number; message?: string }
  /** Not taken, worth sending again (outage, overload, timeout, credentials, …). */
  | { kind: "retry"; problem: ExportProblem; retryAfterMs?: number }
  /** The backend says the request itself is malformed: sending it again cannot help. */
  | { kind: "rejected"; problem: ExportProblem };

/** Why an attempt failed, in words a user can act on. */
export interface ExportProblem {
  /** One line, e.g. `connection refused`, `HTTP 503 Service Unavailable`, `gRPC UNAVAILABLE: …`. */
  message: string;
  /** 401/403, UNAUTHENTICATED/PERMISSION_DENIED: the headers (credentials) are wrong. */
  credentials?: boolean;
}

export interface Transport {
  /** Sends one encoded ExportTraceServiceRequest (or metrics request) within `timeoutMs`. Never throws. */
  send(body: Uint8Array, timeoutMs: number): Promise<SendOutcome>;
  close(): void;
}

/** gRPC status names (grpc/doc/statuscodes.md), for messages. */
/**
 * The request body as sent with OTEL_EXPORTER_OTLP_COMPRESSION=gzip. zlib level 1: per flow it costs about a
 * fifth of level 6 (`deno task bench`, rows "gzip level …") and still shrinks the protobuf 8.7:1 against 11:1.
 */
export function gzipRequest(body: Uint8Array): Uint8Array {
  return gzipSync(body, { level: 1 });
}

export const GRPC_STATUS_NAMES = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
] as const;

export const CREDENTIALS_HINT = "credentials rejected: check OTEL_EXPORTER_OTLP_HEADERS";

/**
 * A socket, DNS or TLS error as one line: `connection refused`, `DNS lookup failed for tempo`, … With `tls`,
 * a reset names the usual cause: a server that wants a client certificate resets the handshake.
 */
export function describeNetworkError(err: unknown, host: string, tls = false): string {
  const text = describe(err, host);
  return tls && text.startsWith("connection reset")
    ? `${text} during TLS (does it require a client certificate? OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE)`
    : text;
}

function describe(err: unknown, host: string): string {
  let e = err as NodeJS.ErrnoException;
  // node:http2 wraps the socket's error ("pending stream has been canceled", cause: ECONNREFUSED).
  while (
    e?.cause && typeof e.cause === "object" && (e.code === undefined || e.code.startsWith("ERR_HTTP2"))
  ) {
    e = e.cause as NodeJS.ErrnoException;
  }
  const code = e?.code ?? "";
  const detail = e?.message ?? String(err);
  switch (code) {
    case "ECONNREFUSED":
      return `connection refused by ${host} (nothing listening there?)`;
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EAI_NONAME":
      return `DNS lookup failed for ${host}`;
    case "ECONNRESET":
    case "EPIPE":
      return `connection reset by ${host}`;
    case "ETIMEDOUT":
      return `connection to ${host} timed out`;
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return `no route to ${host}`;
  }
  if (/NGHTTP2_REFUSED_STREAM/.test(detail)) {
    return `${host} refused the request (the server is shutting down?)`;
  }
  if (/GOAWAY|NGHTTP2_/.test(detail)) return `connection to ${host} closed by the server (${detail})`;
  if (
    /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME|TLS|SSL|wrong version number|certificate/i.test(
      `${code} ${detail}`,
    )
  ) {
    return `TLS: ${detail}${code && !detail.includes(code) ? ` (${code})` : ""}`;
  }
  return code && !detail.includes(code) ? `${detail} (${code})` : detail;
}

/** Reads `partial_success` (field 1: rejected_spans = 1, error_message = 2) of an Export*ServiceResponse. */
export function readPartialSuccess(body: Uint8Array | undefined): { rejected: number; message?: string } {
  const out: { rejected: number; message?: string } = { rejected: 0 };
  if (!body || body.length === 0) return out;
  try {
    forEachField(body, 0, body.length, (field, wire, start, end) => {
      if (field !== 1 || wire !== 2) return;
      forEachField(body, start, end, (f, w, s, e, value) => {
        if (f === 1 && w === 0) out.rejected = value;
        else if (f === 2 && w === 2) out.message = new TextDecoder().decode(body.subarray(s, e));
      });
    });
  } catch {
    // Not protobuf (a misbehaving proxy): the status said success, and that is what counts.
  }
  return out;
}

/**
 * Walks the fields of one protobuf message: `fn(field, wireType, start, end, varintValue)`; for
 * length-delimited fields [start, end) is the payload. Throws on malformed input.
 */
function forEachField(
  b: Uint8Array,
  from: number,
  to: number,
  fn: (field: number, wire: number, start: number, end: number, value: number) => void,
): void {
  let p = from;
  const varint = () => {
    let v = 0, m = 1, x;
    do {
      if (p >= to) throw new Error("truncated varint");
      x = b[p++];
      v += (x & 0x7f) * m;
      m *= 128;
    } while (x & 0x80);
    return v;
  };
  while (p < to) {
    const key = varint();
    const wire = key & 7, field = Math.floor(key / 8);
    if (wire === 0) {
      const v = varint();
      fn(field, wire, p, p, v);
    } else if (wire === 2) {
      const n = varint();
      if (p + n > to) throw new Error("truncated field");
      fn(field, wire, p, p + n, n);
      p += n;
    } else if (wire === 1 || wire === 5) {
      const n = wire === 1 ? 8 : 4;
      if (p + n > to) throw new Error("truncated field");
      fn(field, wire, p, p + n, 0);
      p += n;
    } else throw new Error(`wire type ${wire}`);
  }
}

/** `Retry-After` (seconds or an HTTP date) → milliseconds from now, or undefined. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  if (/^\s*\d+\s*$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * google.rpc.RetryInfo inside `grpc-status-details-bin` (a google.rpc.Status: details = 3, each an Any with
 * type_url = 1, value = 2; RetryInfo.retry_delay = 1 is a Duration of seconds = 1, nanos = 2) → ms.
 */
export function parseGrpcRetryInfo(details: Uint8Array): number | undefined {
  let delay: number | undefined;
  try {
    forEachField(details, 0, details.length, (field, wire, start, end) => {
      if (field !== 3 || wire !== 2) return;
      let typeUrl = "", value: [number, number] | undefined;
      forEachField(details, start, end, (f, w, s, e) => {
        if (f === 1 && w === 2) typeUrl = new TextDecoder().decode(details.subarray(s, e));
        else if (f === 2 && w === 2) value = [s, e];
      });
      if (!typeUrl.endsWith("google.rpc.RetryInfo") || !value) return;
      forEachField(details, value[0], value[1], (f, w, s, e) => {
        if (f !== 1 || w !== 2) return;
        let seconds = 0, nanos = 0;
        forEachField(details, s, e, (df, dw, _s, _e, v) => {
          if (df === 1 && dw === 0) seconds = v;
          else if (df === 2 && dw === 0) nanos = v;
        });
        delay = seconds * 1000 + Math.round(nanos / 1e6);
      });
    });
  } catch {
    return undefined;
  }
  return delay;
}
