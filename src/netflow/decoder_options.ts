/**
 * The v9/IPFIX decoder's settings: every bound on what hostile datagrams may make it keep or do, with
 * the defaults and why they are what they are. {@link decoderOptions} turns what the application passes
 * into settings the decoder can rely on (integers, nothing below its floor).
 */
import type { CustomField } from "./elements.ts";

export interface TemplateDecoderOptions {
  /** Emit elements the table does not know as `netflow.field.<id>` / `netflow.field.<pen>.<id>` hex. Default true. */
  unknownFields: boolean;
  /** 1-in-N interval for exporters that never announce one (v1/v5/v9/IPFIX). Default: none. */
  samplingDefault?: number;
  /**
   * Configured per-exporter interval; when it returns a number > 0 it beats anything announced. Called
   * once per datagram, so it should be cheap (e.g. a small CIDR list).
   */
  samplingOverride?: (exporterAddress: string) => number | undefined;
  /**
   * Per-exporter interval for exporters that announce none (the enrichment file); beats `samplingDefault`.
   * Called once per datagram.
   */
  samplingFallback?: (exporterAddress: string) => number | undefined;
  /** Elements named and typed by the user (NETFLOW_FIELDS_FILE); they win over the built-in table. */
  customFields?: readonly CustomField[];
  /** Exporter addresses with state (templates, options, sequence); the least recently seen is evicted. Default 10,000. */
  maxExporters: number;
  /** Source ids / observation domains (and v5 engines) per exporter; the oldest is evicted. Default 256. */
  maxDomainsPerExporter: number;
  /** Templates per exporter, over all its domains; the least recently (re)defined is evicted. Default 1,024. */
  maxTemplatesPerExporter: number;
  /** Templates in total; least recently seen exporters are evicted beyond it. Default 100,000. */
  maxTemplates: number;
  /**
   * Fields per template or options template. A template with more is refused (`template_refused` on the
   * packet, counted) and an earlier definition of its id is dropped. Default 512: RFC 7011 allows 65,535,
   * but real exporters send tens of fields (the widest, e.g. nProbe with every plugin, a few hundred).
   */
  maxFieldsPerTemplate: number;
  /**
   * Bytes of templates and options templates per exporter (over all its domains), as charged by
   * `templateCost` in templates.ts (wire size plus the compiled plan's heap; a 20-field template is
   * charged about 1.3 KiB, a 512-field one 15 KiB). Beyond it the exporter's least recently defined
   * templates are evicted; a template bigger than the whole budget is refused. Default 1 MiB: about 780
   * templates of 20 fields (real exporters define tens), or 69 of the widest allowed.
   */
  maxTemplateBytesPerExporter: number;
  /**
   * Bytes of templates in total; the least recently seen exporters are evicted beyond it. Default 64 MiB:
   * about 50,000 templates of 20 fields (thousands of real exporters), and all a spoofing flood of
   * maximal templates can pin (the count bound alone let it pin gigabytes).
   */
  maxTemplateBytes: number;
  /** Data sets held waiting for a template, in total. 0 disables holding. Default 1,024. */
  maxPendingSets: number;
  /** Data sets held per exporter. Default 64. */
  maxPendingSetsPerExporter: number;
  /** Bytes held waiting for templates, in total. Default 4 MiB. */
  maxPendingBytes: number;
  /**
   * Bytes held waiting for templates per exporter, so one exporter cannot take the whole buffer. Default
   * 1 MiB (a quarter of the total; 64 full 16 KiB datagrams).
   */
  maxPendingBytesPerExporter: number;
  /**
   * Flow records one datagram (or one released deferred copy of it) may yield. A datagram that would
   * yield more yields none: it carries a `too_many_flows` error with the count, so it becomes one ERROR
   * export span instead of tens of thousands of flow spans (a 1-octet template makes 65,000 records out
   * of one datagram). Counted before any record is decoded. Default 10,000: a full 64 KiB datagram of
   * real records (≥ 20 octets each) holds fewer than 3,300.
   */
  maxFlowsPerPacket: number;
  /**
   * How long a held data set waits for its template, from its receive time. Default 30 s: exporters
   * re-send templates every few seconds to a minute; data older than this is not worth the memory.
   */
  pendingTimeoutMs: number;
  /**
   * Names announced in options data (interfaces, VRFs, applications; option_names.ts) kept in all. Default
   * 100,000 (about 4,096 per domain for two dozen busy routers): at most 256 characters each, a few tens
   * of MB at worst. Past it, new ids go unnamed (counted in `optionNamesRefused`); known ones are updated.
   */
  maxOptionNames: number;
}

export const DEFAULT_TEMPLATE_DECODER_OPTIONS: Readonly<TemplateDecoderOptions> = {
  unknownFields: true,
  maxExporters: 10_000,
  maxDomainsPerExporter: 256,
  maxTemplatesPerExporter: 1_024,
  maxTemplates: 100_000,
  maxFieldsPerTemplate: 512,
  maxTemplateBytesPerExporter: 1024 * 1024,
  maxTemplateBytes: 64 * 1024 * 1024,
  maxPendingSets: 1_024,
  maxPendingSetsPerExporter: 64,
  maxPendingBytes: 4 * 1024 * 1024,
  maxPendingBytesPerExporter: 1024 * 1024,
  maxFlowsPerPacket: 10_000,
  pendingTimeoutMs: 30_000,
  maxOptionNames: 100_000,
};

const NUMERIC_OPTIONS = [
  "maxExporters",
  "maxDomainsPerExporter",
  "maxTemplatesPerExporter",
  "maxTemplates",
  "maxFieldsPerTemplate",
  "maxTemplateBytesPerExporter",
  "maxTemplateBytes",
  "maxPendingSets",
  "maxPendingSetsPerExporter",
  "maxPendingBytes",
  "maxPendingBytesPerExporter",
  "maxFlowsPerPacket",
  "pendingTimeoutMs",
  "maxOptionNames",
] as const;

/**
 * The defaults with `options` over them; a bound that is not a finite number ≥ 0 takes its default, and
 * the counts that must allow at least one of something are at least 1.
 */
export function decoderOptions(options: Partial<TemplateDecoderOptions>): TemplateDecoderOptions {
  const o = { ...DEFAULT_TEMPLATE_DECODER_OPTIONS, ...options };
  for (const k of NUMERIC_OPTIONS) {
    const v = o[k];
    o[k] = Number.isFinite(v) && v >= 0 ? Math.floor(v) : DEFAULT_TEMPLATE_DECODER_OPTIONS[k];
  }
  o.maxExporters = Math.max(1, o.maxExporters);
  o.maxDomainsPerExporter = Math.max(1, o.maxDomainsPerExporter);
  o.maxTemplatesPerExporter = Math.max(1, o.maxTemplatesPerExporter);
  o.maxTemplates = Math.max(1, o.maxTemplates);
  o.maxFieldsPerTemplate = Math.max(1, o.maxFieldsPerTemplate);
  return o;
}

/** The interval for an exporter that announces none: its own (`samplingFallback`), else the default, else 0. */
export function fallbackInterval(options: TemplateDecoderOptions, address: string): number {
  const own = options.samplingFallback?.(address);
  if (typeof own === "number" && own > 0 && Number.isFinite(own)) return own;
  return options.samplingDefault ?? 0;
}

/** The configured per-exporter sampling interval (`samplingOverride`), or 0 when there is none. */
export function configuredInterval(options: TemplateDecoderOptions, address: string): number {
  const fn = options.samplingOverride;
  if (fn === undefined) return 0;
  const v = fn(address);
  return typeof v === "number" && v > 0 && Number.isFinite(v) ? v : 0;
}
