/**
 * A small leveled logger. One line per event, to stderr (stdout belongs to the console span exporter):
 *
 * ```
 * 2026-11-24T14:40:00.123Z INFO listening listen=udp://0.0.0.0:2055 exporter=http://localhost:4317
 * ```
 *
 * Fields are appended as `key=value`; a value with spaces, quotes, `=` or control characters is written as a
 * JSON string, so every line stays one line and can be split mechanically.
 *
 * @example
 * ```ts
 * const log = createLogger("INFO");
 * log.info("templates restored", { file: "/var/lib/n2t/templates.json", templates: 12 });
 * const state = { exporters: 3 };
 * if (log.enabled("DEBUG")) log.debug("state", { dump: JSON.stringify(state) }); // built only when written
 * ```
 */
import process from "node:process";

export const LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] as const;
export type LogLevel = typeof LOG_LEVELS[number];

const RANK: Record<LogLevel, number> = { DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40, CRITICAL: 50 };

/** `LOG_LEVEL` text to a level: case-insensitive, `WARN` is `WARNING`. Undefined when unknown. */
export function parseLogLevel(text: string): LogLevel | undefined {
  const upper = text.trim().toUpperCase();
  if (upper === "WARN") return "WARNING";
  return (LOG_LEVELS as readonly string[]).includes(upper) ? upper as LogLevel : undefined;
}

/** Values of the optional `key=value` pairs; `undefined` and `null` fields are left out. */
export type LogFields = Record<string, unknown>;

export type LogMethod = (message: string, fields?: LogFields) => void;

export interface Logger {
  /** The lowest level written. */
  readonly level: LogLevel;
  /** Whether `level` is written: check it before building expensive fields. */
  enabled(level: LogLevel): boolean;
  log(level: LogLevel, message: string, fields?: LogFields): void;
  debug: LogMethod;
  info: LogMethod;
  warn: LogMethod;
  error: LogMethod;
  critical: LogMethod;
}

export interface LoggerOptions {
  /** Receives each line without its newline. Default: stderr. */
  write?: (line: string) => void;
  /** `text` (`key=value`, the default) or `json` (one object per line, the same fields; LOG_FORMAT). */
  format?: LogFormat;
  /** Clock, for tests. */
  now?: () => Date;
}

// deno-lint-ignore no-control-regex
const PLAIN = /^[^\s"=\\\x00-\x1f\x7f]+$/;

function formatValue(value: unknown): string {
  let text: string;
  if (typeof value === "string") text = value;
  else if (value instanceof Error) text = value.message;
  else if (value instanceof Date) text = value.toISOString();
  else if (typeof value === "object") {
    try {
      text = JSON.stringify(value, (_k, v) => typeof v === "bigint" ? v.toString() : v);
    } catch {
      text = String(value);
    }
  } else text = String(value);
  return PLAIN.test(text) ? text : JSON.stringify(text);
}

export type LogFormat = "text" | "json";

/**
 * One log line as a JSON object: `time`, `level`, `message`, then the fields as they are (numbers stay
 * numbers; errors become their message), for Loki, Elastic or any pipeline that reads JSON lines.
 */
export function formatJsonLine(time: Date, level: LogLevel, message: string, fields?: LogFields): string {
  const out: Record<string, unknown> = { time: time.toISOString(), level, message };
  if (fields) {
    for (const key in fields) {
      const value = fields[key];
      if (value === undefined || value === null) continue;
      // The three names above belong to the line; a field of the same name keeps its value under `field.`.
      const name = key === "time" || key === "level" || key === "message" ? `field.${key}` : key;
      out[name] = value instanceof Error
        ? value.message
        : typeof value === "bigint"
        ? value.toString()
        : value;
    }
  }
  try {
    return JSON.stringify(out);
  } catch {
    return JSON.stringify({ time: out.time, level, message });
  }
}

/** One log line, without the newline. Exported for tests and for other sinks. */
export function formatLine(time: Date, level: LogLevel, message: string, fields?: LogFields): string {
  // The message is free text but must not break the one-line format.
  let line = `${time.toISOString()} ${level} ${message.replace(/[\r\n]+/g, " ")}`;
  if (fields) {
    for (const key in fields) {
      const value = fields[key];
      if (value === undefined || value === null) continue;
      line += ` ${key}=${formatValue(value)}`;
    }
  }
  return line;
}

const stderrWrite = (line: string) => {
  process.stderr.write(line + "\n");
};

export function createLogger(level: LogLevel, options: LoggerOptions = {}): Logger {
  const write = options.write ?? stderrWrite;
  const now = options.now ?? (() => new Date());
  const format = options.format === "json" ? formatJsonLine : formatLine;
  const min = RANK[level];
  const log = (l: LogLevel, message: string, fields?: LogFields) => {
    if (RANK[l] < min) return;
    write(format(now(), l, message, fields));
  };
  return {
    level,
    enabled: (l) => RANK[l] >= min,
    log,
    debug: (m, f) => log("DEBUG", m, f),
    info: (m, f) => log("INFO", m, f),
    warn: (m, f) => log("WARNING", m, f),
    error: (m, f) => log("ERROR", m, f),
    critical: (m, f) => log("CRITICAL", m, f),
  };
}

export interface RateLimitedLogger {
  /**
   * Logs under `key` at most once per interval. The first line after a quiet period carries
   * `suppressed=N` when N lines under the same key were dropped since the previous one (unless
   * `reportSuppressed` is false). `at` is the event's time on the limiter's clock, when the caller already has
   * it (a datagram's receipt time); by default the clock is read. Returns whether the line was written.
   */
  log(level: LogLevel, key: string, message: string, fields?: LogFields, at?: number): boolean;
  /** Number of keys currently tracked. */
  readonly size: number;
}

/** Keys tracked before expired ones are pruned (a flood of spoofed exporters must not grow it without end). */
const MAX_KEYS = 10_000;

/**
 * Wraps `logger` so that repeats of one key (e.g. `waiting for templates from 192.0.2.1`) are written at
 * most once per `intervalMs`, counting what was held back.
 *
 * @example
 * ```ts
 * const log = createLogger("INFO");
 * const exporter = "192.0.2.1";
 * const limited = rateLimited(log, 60_000);
 * limited.log("INFO", `templates:${exporter}`, "waiting for templates", { exporter });
 * ```
 */
export function rateLimited(
  logger: Logger,
  intervalMs: number,
  now: () => number = () => performance.now(),
  { reportSuppressed = true, maxLines = Infinity }: {
    reportSuppressed?: boolean;
    /** Lines at most per interval over all keys (a spray of spoofed sources must not flood the log). */
    maxLines?: number;
  } = {},
): RateLimitedLogger {
  const state = new Map<string, { last: number; suppressed: number }>();
  let windowStart = -Infinity, windowLines = 0;
  const prune = (t: number) => {
    for (const [k, s] of state) if (t - s.last >= intervalMs) state.delete(k);
    // Still full of keys all seen within the interval: forget the oldest half rather than grow.
    if (state.size >= MAX_KEYS) {
      let drop = state.size >> 1;
      for (const k of state.keys()) {
        if (drop-- <= 0) break;
        state.delete(k);
      }
    }
  };
  return {
    get size() {
      return state.size;
    },
    log(level, key, message, fields, at) {
      if (!logger.enabled(level)) return false;
      const t = at ?? now();
      const s = state.get(key);
      if (s && t - s.last < intervalMs) {
        s.suppressed++;
        return false;
      }
      if (t - windowStart >= intervalMs) {
        windowStart = t;
        windowLines = 0;
      }
      if (windowLines >= maxLines) {
        if (s) s.suppressed++;
        return false;
      }
      windowLines++;
      const suppressed = s?.suppressed ?? 0;
      if (s) {
        // Re-insert so iteration order stays oldest-first for pruning.
        state.delete(key);
      } else if (state.size >= MAX_KEYS) {
        prune(t);
      }
      state.set(key, { last: t, suppressed: 0 });
      logger.log(level, message, suppressed && reportSuppressed ? { ...fields, suppressed } : fields);
      return true;
    },
  };
}

/**
 * For lines about a user's mistake (allow-list rejections, sFlow on the port, unknown versions): once a
 * minute per key, and at most 20 a minute in all, so a spray of spoofed sources cannot flood the log (the
 * counters keep the full count).
 */
export function mistakeLogger(logger: Logger): RateLimitedLogger {
  return rateLimited(logger, 60_000, undefined, { maxLines: 20 });
}
