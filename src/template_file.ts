/**
 * NETFLOW_TEMPLATE_CACHE_FILE on the socket side. Read once at start and split among the pipeline Workers
 * by the exporters each one owns; written from the parts the Workers send (every 30 s and at shutdown),
 * joined as text, so this thread never parses or stringifies the templates while datagrams arrive.
 */
import { readFileSync } from "node:fs";
import { rename, writeFile } from "node:fs/promises";
import type { Logger } from "./log.ts";
import { joinSnapshotParts, selectSnapshot } from "./netflow/snapshot_format.ts";
import { shardOf } from "./shard.ts";

/**
 * The file's state for each of `workers` Workers, split as the pool routes (by exporter and domain, or by
 * exporter alone); undefined: no file yet, or unreadable (logged).
 */
export function readTemplateFile(
  path: string,
  workers: number,
  byDomain: boolean,
  log: Logger,
): unknown[] | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      log.warn("cannot read template cache file", { file: path, error: (err as Error).message });
    }
    return undefined;
  }
  let state: unknown;
  try {
    state = JSON.parse(text);
  } catch (err) {
    log.warn("ignoring unreadable template cache file", { file: path, error: (err as Error).message });
    return undefined;
  }
  if (workers === 1) return [state];
  return Array.from(
    { length: workers },
    (_, i) =>
      selectSnapshot(state, (address, domain) => shardOf(address, byDomain ? domain : 0, workers) === i),
  );
}

/** Keeps each Worker's latest part and writes the joined file, one write at a time. */
export class TemplateFileWriter {
  private readonly parts: string[];
  private writing: Promise<void> | undefined;
  private dirty = false;

  /** `restored`: what each Worker started with, kept until it sends its own part. */
  constructor(
    private readonly path: string,
    restored: unknown[] | undefined,
    workers: number,
    private readonly log: Logger,
  ) {
    this.parts = Array.from({ length: workers }, (_, i) => {
      const exporters = (restored?.[i] as { exporters?: unknown } | undefined)?.exporters;
      return Array.isArray(exporters) ? JSON.stringify(exporters) : "[]";
    });
  }

  /** Worker `index`'s exporters (the JSON text of an array); the file follows. */
  update(index: number, exporters: string): void {
    this.parts[index] = exporters;
    this.dirty = true;
    this.writing ??= this.writeWhileDirty();
  }

  /** Resolves when what was updated so far is on disk. */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
  }

  private async writeWhileDirty(): Promise<void> {
    while (this.dirty) {
      this.dirty = false;
      const tmp = `${this.path}.tmp`;
      try {
        // Write then rename, so a crash mid-write never leaves a torn file behind.
        await writeFile(tmp, joinSnapshotParts(this.parts));
        await rename(tmp, this.path);
      } catch (err) {
        this.log.warn("cannot write template cache file", { file: this.path, error: (err as Error).message });
      }
    }
    this.writing = undefined;
  }
}
