/**
 * Writing the files of a directory archive block by block: the disk stream is walked once in
 * order, each block that some file needs is decoded once (by the block kernel, into
 * WebAssembly memory, verified against its BLAKE3) and every file it overlaps gets its piece
 * in one positioned write. Zero blocks are never decoded or written: the files are created at
 * their full size, so those ranges are holes. Extracting a tree this way allocates nothing per
 * block, where reading each file through `Archive.read` decoded into and copied between
 * JavaScript buffers (on the v1 root file system, 206 MiB in 5,329 files, a third of the
 * extract's CPU was the garbage collector and page faults of those buffers).
 *
 * @module
 */
import { closeSync, ftruncateSync, openSync, writeSync } from "node:fs";
import { HexzError } from "../errors.ts";
import { KIND } from "../format/constants.ts";
import type { FileEntry } from "../format/filetable.ts";
import type { Archive } from "./archive.ts";
import { createBlockKernel } from "./block_kernel.ts";
import { locate } from "./locate.ts";

export interface FileSink {
  /** Creates the file (its place is ready) and returns a descriptor open for writing. */
  create(e: FileEntry): number;
  /** Called once the file's last byte is written; the sink closes `fd`. */
  finish(e: FileEntry, fd: number): void;
}

/**
 * Writes the contents of the regular files `files` (entries of `a`'s file table) through
 * `sink`. Files are created when the walk reaches their first byte and finished after their
 * last; a failure leaves the files written so far (the caller reports it). `a` must be a local
 * file (`a.source.path`); blocks the kernel cannot decode (dictionaries, encrypted blocks,
 * parents that are not local files) are read through the archive instead.
 */
export async function writeFilesByBlock(
  a: Archive,
  files: readonly FileEntry[],
  sink: FileSink,
): Promise<void> {
  const kernel = createBlockKernel();
  const archiveFds = new Map<Archive, number>();
  const fdOf = (archive: Archive) => {
    let fd = archiveFds.get(archive);
    if (fd === undefined) {
      try {
        fd = openSync(archive.source.path!, "r");
      } catch (e) {
        throw new HexzError("io", `${archive.source.path}: ${(e as Error).message}`);
      }
      archiveFds.set(archive, fd);
    }
    return fd;
  };
  const create = (e: FileEntry) => {
    const fd = sink.create(e);
    try {
      ftruncateSync(fd, e.size); // what no block writes (zero blocks) reads as zeros
    } catch (err) {
      closeSync(fd);
      throw new HexzError("io", `${e.path}: cannot write: ${(err as Error).message}`);
    }
    return fd;
  };
  const active: { e: FileEntry; fd: number }[] = [];
  try {
    const sorted: FileEntry[] = [];
    for (const e of files) {
      if (e.size === 0) sink.finish(e, create(e));
      else sorted.push(e);
    }
    sorted.sort((x, y) => x.offset - y.offset);
    let next = 0;
    for await (const b of a.blocks("disk")) {
      if (next === sorted.length && active.length === 0) break;
      const start = b.offset, len = b.entry.logicalLength, end = start + len;
      // Blocks come in order from offset 0, so a file starting before `end` overlaps this one.
      while (next < sorted.length && sorted[next].offset < end) {
        const e = sorted[next++];
        active.push({ e, fd: create(e) });
      }
      if (active.length === 0) continue;
      if (b.entry.kind !== KIND.zero) {
        let mem: Uint8Array, at: number;
        const found = await locate(a, b);
        if (found) {
          const { archive, entry } = found;
          at = kernel.reserve(entry.storedLength, len);
          kernel.decode({
            fd: fdOf(archive),
            location: entry.location,
            storedLength: entry.storedLength,
            logicalLength: len,
            codec: entry.codec,
            hash: entry.hash,
            what: `disk block ${b.index} (offset ${start})` +
              (archive === a ? "" : ` in parent ${archive.source.path}`),
          }, at);
          mem = kernel.bytes();
        } else {
          mem = await a.readBlock("disk", b.index);
          at = 0;
        }
        for (const { e, fd } of active) {
          const from = Math.max(start, e.offset), to = Math.min(end, e.offset + e.size);
          let done = 0;
          try {
            while (done < to - from) {
              done += writeSync(
                fd,
                mem,
                at + from - start + done,
                to - from - done,
                from - e.offset + done,
              );
            }
          } catch (err) {
            throw new HexzError("io", `${e.path}: cannot write: ${(err as Error).message}`);
          }
        }
      }
      for (let i = 0; i < active.length;) {
        const { e, fd } = active[i];
        if (e.offset + e.size <= end) {
          active.splice(i, 1);
          sink.finish(e, fd);
        } else i++;
      }
    }
    if (next < sorted.length || active.length) {
      const e = active[0]?.e ?? sorted[next];
      throw new HexzError("corrupt", `${e.path}: extends past the end of the disk stream`);
    }
  } finally {
    for (const { fd } of active) closeSync(fd);
    for (const fd of archiveFds.values()) closeSync(fd);
  }
}
