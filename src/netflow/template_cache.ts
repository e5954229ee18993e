/**
 * The template cache's rules: installing a template (compiled once, a re-sent one reused), refusing one
 * over a limit, withdrawing, and evicting within the count and byte bounds per exporter and in total.
 * Every change to an exporter's `templates` goes through here (or `removeDomainTemplates`), so the
 * counts and bytes in the stats always match what is cached.
 */
import type { TemplateDecoderOptions } from "./decoder_options.ts";
import type { TemplateDecoderStats } from "./decoder_stats.ts";
import {
  type DomainState,
  type ExporterState,
  type ExporterTable,
  removeDomainTemplates,
} from "./exporter_state.ts";
import { type CompileOptions, compilePlan, type Plan, sameSpec, type TemplateSpec } from "./templates.ts";
import type { DecodeError } from "./types.ts";

export class TemplateCache {
  readonly #opts: TemplateDecoderOptions;
  readonly #compile: CompileOptions;
  readonly #stats: TemplateDecoderStats;
  readonly #exporters: ExporterTable;

  constructor(options: TemplateDecoderOptions, stats: TemplateDecoderStats, exporters: ExporterTable) {
    this.#opts = options;
    this.#compile = {
      unknownFields: options.unknownFields !== false,
      ...(options.customFields?.length
        ? { custom: new Map(options.customFields.map((f) => [f.pen * 65536 + f.id, f])) }
        : {}),
    };
    this.#stats = stats;
    this.#exporters = exporters;
  }

  /**
   * Refuses a template: counted, and an earlier definition of the same id is dropped, since data that
   * follows is laid out by the refused one (decoding it with the old layout would give garbage).
   */
  refuse(exporter: ExporterState, domain: DomainState, templateId: number, message: string): DecodeError {
    const key = domain.key * 65536 + templateId;
    const existing = exporter.templates.get(key);
    if (existing !== undefined) this.#remove(exporter, key, existing);
    this.#stats.templatesRefused++;
    return { kind: "template_refused", message };
  }

  /**
   * Adds or replaces a template within the count and byte bounds. Returns why it was not installed: a
   * `bad_template` (cannot be compiled) or a `template_refused` (over a limit) error.
   */
  install(exporter: ExporterState, domain: DomainState, spec: TemplateSpec): DecodeError | undefined {
    const o = this.#opts;
    const stats = this.#stats;
    const id = spec.templateId;
    const fieldCount = spec.fields.length / 2;
    if (fieldCount > o.maxFieldsPerTemplate) {
      return this.refuse(
        exporter,
        domain,
        id,
        `template ${id} has ${fieldCount} fields (limit ${o.maxFieldsPerTemplate})`,
      );
    }
    const key = domain.key * 65536 + id;
    const templates = exporter.templates;
    const existing = templates.get(key);
    let plan: Plan;
    if (existing !== undefined && sameSpec(existing.spec, spec)) {
      plan = existing; // re-sent unchanged: no recompilation
    } else {
      const compiled = compilePlan(spec, this.#compile);
      if (typeof compiled === "string") {
        if (existing !== undefined) this.#remove(exporter, key, existing); // no stale layout stays
        return { kind: "bad_template", message: compiled };
      }
      plan = compiled;
      if (plan.cost > o.maxTemplateBytesPerExporter) {
        return this.refuse(
          exporter,
          domain,
          id,
          `template ${id} needs ${plan.cost} bytes (limit ${o.maxTemplateBytesPerExporter} per exporter)`,
        );
      }
    }
    // Re-inserted below, most recently defined last; a data template may replace an options template of
    // the same id (or the reverse): the old plan and its domain index entry go.
    if (existing !== undefined) this.#remove(exporter, key, existing);
    while (templates.size >= o.maxTemplatesPerExporter) {
      this.#evictOldest(exporter);
      stats.templateEvictions++;
    }
    while (templates.size > 0 && exporter.templateBytes + plan.cost > o.maxTemplateBytesPerExporter) {
      this.#evictOldest(exporter);
      stats.templateByteEvictions++;
    }
    templates.set(key, plan);
    exporter.templateBytes += plan.cost;
    stats.templates++;
    stats.templateBytes += plan.cost;
    if (plan.spec.options) (domain.optionTemplates ??= new Set()).add(id);
    else (domain.dataTemplates ??= new Set()).add(id);
    // The totals: the least recently seen exporters go first, then (with limits set oddly low) this
    // exporter's oldest templates.
    if (stats.templates > o.maxTemplates || stats.templateBytes > o.maxTemplateBytes) {
      for (const other of this.#exporters.values()) {
        if (stats.templates <= o.maxTemplates && stats.templateBytes <= o.maxTemplateBytes) break;
        if (other !== exporter) this.#exporters.evictExporter(other);
      }
      while (
        templates.size > 1 &&
        (stats.templates > o.maxTemplates || stats.templateBytes > o.maxTemplateBytes)
      ) {
        this.#evictOldest(exporter);
        stats.templateByteEvictions++;
      }
    }
    return undefined;
  }

  /** IPFIX withdrawal of one template (RFC 7011 §8.1). */
  withdraw(exporter: ExporterState, domain: DomainState, templateId: number): void {
    const key = domain.key * 65536 + templateId;
    const plan = exporter.templates.get(key);
    if (plan !== undefined) {
      this.#remove(exporter, key, plan);
      this.#stats.templatesWithdrawn++;
    }
  }

  /**
   * Withdraws all (options) templates of the domain. Touches only the domain's own index, which it
   * empties: a repeat in the same message (a storm of withdraw-all records) finds nothing, in O(1).
   */
  withdrawAll(exporter: ExporterState, domain: DomainState, options: boolean): void {
    this.#stats.templatesWithdrawn += removeDomainTemplates(
      this.#stats,
      exporter,
      domain,
      options ? domain.optionTemplates : domain.dataTemplates,
    );
  }

  /** Removes one cached template and its accounting. */
  #remove(exporter: ExporterState, key: number, plan: Plan): void {
    exporter.templates.delete(key);
    exporter.templateBytes -= plan.cost;
    this.#stats.templates--;
    this.#stats.templateBytes -= plan.cost;
    const domain = exporter.domains.get(Math.floor(key / 65536));
    if (domain !== undefined) {
      (plan.spec.options ? domain.optionTemplates : domain.dataTemplates)?.delete(key % 65536);
    }
  }

  #evictOldest(exporter: ExporterState): void {
    const [key, plan] = exporter.templates.entries().next().value!;
    this.#remove(exporter, key, plan);
  }
}
