/**
 * `check`: verifies every checksum and hash in an archive: header (on open), master index,
 * every page, every section and every block (decompressed and hashed). The first bad record
 * is named in the error.
 *
 * @module
 */
import { KIND, STREAMS } from "../format/constants.ts";
import type { Archive } from "./archive.ts";

export interface CheckReport {
  pages: number;
  blocks: number;
  /** Logical bytes verified. */
  bytes: number;
  sections: number;
}

export interface CheckOptions {
  onProgress?: (done: number, total: number) => void;
}

/** Throws HexzError("corrupt") naming the first bad record; returns counts when all is well. */
export async function checkArchive(a: Archive, opts: CheckOptions = {}): Promise<CheckReport> {
  const report: CheckReport = { pages: 0, blocks: 0, bytes: 0, sections: 0 };
  for (const kind of ["dictionary", "metadata", "fileTable"] as const) {
    if (await a.section(kind)) report.sections++;
  }
  if (a.header.metadata.length) await a.metadata();
  for (let i = 0; i < a.pages.length; i++) {
    await a.page(i);
    report.pages++;
  }
  const total = a.header.streams.reduce((n, s) => n + s.logicalSize, 0);
  let last = 0;
  for (let s = 0; s < STREAMS.length; s++) {
    for await (const b of a.blocks(s)) {
      // Zero blocks hold no bytes: their entry was validated with the page.
      if (b.entry.kind !== KIND.zero) await a.readBlock(s, b.index);
      report.blocks++;
      report.bytes += b.entry.logicalLength;
      if (opts.onProgress && report.bytes - last >= 16 * 1024 * 1024) {
        last = report.bytes;
        opts.onProgress(report.bytes, total);
      }
    }
  }
  opts.onProgress?.(report.bytes, total);
  return report;
}
