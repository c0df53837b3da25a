/**
 * Which files of a directory archive an overlay touched: file contents live in the disk
 * stream at known offsets (the file table), overlays record changed 4 KiB blocks of that
 * stream; a file changed where its byte range meets a changed block.
 *
 * @module
 */
import type { FileEntry } from "../format/filetable.ts";
import { OVERLAY_BLOCK } from "./overlay.ts";

export interface ChangedFile {
  path: string;
  size: number;
  /** Bytes of the file that lie in changed blocks. */
  changedBytes: number;
}

/** Files meeting the sorted changed disk `blocks`, in file table order. */
export function changedFiles(entries: FileEntry[], blocks: number[]): ChangedFile[] {
  const out: ChangedFile[] = [];
  for (const e of entries) {
    if (e.type !== "file" || e.size === 0) continue;
    const start = e.offset, end = e.offset + e.size;
    // First changed block that could overlap [start, end).
    let lo = 0, hi = blocks.length;
    const first = Math.floor(start / OVERLAY_BLOCK);
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (blocks[mid] < first) lo = mid + 1;
      else hi = mid;
    }
    let changed = 0;
    for (let i = lo; i < blocks.length && blocks[i] * OVERLAY_BLOCK < end; i++) {
      const a = Math.max(start, blocks[i] * OVERLAY_BLOCK);
      const b = Math.min(end, (blocks[i] + 1) * OVERLAY_BLOCK);
      if (b > a) changed += b - a;
    }
    if (changed > 0) out.push({ path: e.path, size: e.size, changedBytes: changed });
  }
  return out;
}
