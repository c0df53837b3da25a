/**
 * How pack reads its input files: in sequence, with synchronous reads, and sparse files without
 * their holes. A disk image is mostly holes (the OS image of bench/ is 1 GiB with 240 MiB of
 * data). Where the platform can say which ranges of a file hold data (SEEK_DATA/SEEK_HOLE on
 * Linux, see ffi/sparse.ts), pack does not read the holes: reading one makes the kernel
 * allocate and zero page-cache pages only for us to find zeros in them. The archive is the
 * same either way: a hole is read as the zeros it is.
 *
 * @module
 */
import { HexzError } from "../errors.ts";
import type { SequentialInput } from "../chunk/split.ts";

/** A range of a file that may hold data; everything outside the ranges reads as zeros. */
export interface DataRange {
  offset: number;
  length: number;
}

/**
 * Finds the data ranges of the regular file at `path`, sorted and disjoint; null when the
 * platform cannot tell (the whole file is then read).
 */
export type FindDataRanges = (path: string) => DataRange[] | null;

/** `ranges` clamped to [0, size), checked to be sorted and disjoint, empty ones dropped. */
export function checkRanges(ranges: DataRange[], size: number): DataRange[] {
  const out: DataRange[] = [];
  let end = 0;
  for (const r of ranges) {
    if (!Number.isSafeInteger(r.offset) || !Number.isSafeInteger(r.length) || r.length < 0) {
      throw new HexzError("io", `bad data range ${r.offset}+${r.length}`);
    }
    if (r.offset < end) {
      throw new HexzError("io", `data ranges overlap or are unsorted at ${r.offset}`);
    }
    const a = Math.min(r.offset, size), b = Math.min(r.offset + r.length, size);
    if (b > a) out.push({ offset: a, length: b - a });
    end = r.offset + r.length;
  }
  return out;
}

/**
 * A test for ranges asked in increasing order of offset: whether [offset, offset + length)
 * lies wholly in a hole (touches no data range).
 */
export function holeTest(ranges: DataRange[]): (offset: number, length: number) => boolean {
  let i = 0;
  return (offset, length) => {
    // Skip the ranges that end at or before `offset`; they cannot touch this or later ranges.
    while (i < ranges.length && ranges[i].offset + ranges[i].length <= offset) i++;
    return i === ranges.length || ranges[i].offset >= offset + length;
  };
}

/**
 * Reads `file` (of `size` bytes, from offset 0) in sequence like a plain read loop, but fills
 * holes with zeros in memory instead of reading them. Reads stop at `size`, or earlier if the
 * file turns out shorter.
 */
export function sparseReads(file: Deno.FsFile, size: number, ranges: DataRange[]): SequentialInput {
  let pos = 0;
  let i = 0;
  let at = -1; // the file's position, when known
  return {
    read(into) {
      try {
        if (pos >= size || into.length === 0) return Promise.resolve(null);
        while (i < ranges.length && ranges[i].offset + ranges[i].length <= pos) i++;
        const r = ranges[i];
        if (!r || r.offset > pos) {
          // In a hole: zeros up to the next data range.
          const n = Math.min(into.length, (r ? r.offset : size) - pos);
          into.subarray(0, n).fill(0);
          pos += n;
          return Promise.resolve(n);
        }
        if (at !== pos) {
          file.seekSync(pos, Deno.SeekMode.Start);
          at = pos;
        }
        const want = Math.min(into.length, r.offset + r.length - pos);
        const n = file.readSync(into.subarray(0, want));
        if (n === null || n === 0) {
          pos = size; // the file is shorter than it was: end of input, as a plain read would
          return Promise.resolve(null);
        }
        pos += n;
        at += n;
        return Promise.resolve(n);
      } catch (e) {
        return Promise.reject(new HexzError("io", `read failed: ${(e as Error).message}`));
      }
    },
  };
}

/**
 * A file read with synchronous reads: Deno's async read goes through a bounce buffer (one more
 * copy of every input byte), the synchronous one lands in our buffer directly. Pack reads its
 * input strictly in sequence, so nothing else waits on the event loop meanwhile.
 */
export function syncReads(file: Deno.FsFile): SequentialInput {
  return {
    read(into) {
      try {
        return Promise.resolve(file.readSync(into));
      } catch (e) {
        return Promise.reject(new HexzError("io", `read failed: ${(e as Error).message}`));
      }
    },
  };
}

/** An input file opened for pack: how to read it, and where its holes are when known. */
export interface FileInput {
  input: SequentialInput;
  /** Whether a range (asked in increasing order) lies wholly in a hole; absent if unknown. */
  inHole?: (offset: number, length: number) => boolean;
}

/** Reads `file` (`size` bytes, at `path`), without its holes when `find` can tell them. */
export function fileInput(
  file: Deno.FsFile,
  path: string,
  size: number,
  find?: FindDataRanges,
): FileInput {
  const found = find?.(path);
  if (!found) return { input: syncReads(file) };
  const ranges = checkRanges(found, size);
  return { input: sparseReads(file, size, ranges), inHole: holeTest(ranges) };
}
