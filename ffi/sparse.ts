/**
 * The data ranges of a sparse file, from lseek(2) with SEEK_DATA and SEEK_HOLE (Linux; Deno's
 * own seek accepts neither). File systems without hole support report the whole file as data,
 * which is always correct: a range reported as a hole reads as zeros.
 *
 * @module
 */
import type { DataRange } from "../core/pack/input.ts";
import {
  cString,
  ERRNO,
  errno,
  libcIfAllowed,
  O_CLOEXEC,
  O_RDONLY,
  SEEK_DATA,
  SEEK_END,
  SEEK_HOLE,
} from "./libc.ts";

/**
 * The data ranges of the regular file at `path`, sorted and disjoint; null where they cannot
 * be found: not Linux, no --allow-ffi (never prompted for), or the file cannot be opened or
 * sought here (the caller then reads the whole file and reports its own errors).
 */
export function findDataRanges(path: string): DataRange[] | null {
  const lib = libcIfAllowed();
  if (!lib) return null;
  const fd = lib.open(cString(path), O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return null;
  try {
    const size = Number(lib.lseek(fd, 0n, SEEK_END));
    if (size < 0) return null;
    const ranges: DataRange[] = [];
    let pos = 0;
    while (pos < size) {
      const data = Number(lib.lseek(fd, BigInt(pos), SEEK_DATA));
      if (data < 0) {
        if (errno() === ERRNO.ENXIO) break; // no data after pos: the rest is a hole
        return null; // EINVAL and others: this file system cannot tell
      }
      const hole = Number(lib.lseek(fd, BigInt(data), SEEK_HOLE));
      if (hole < 0) return null;
      if (hole <= data) return null; // not a sane answer: read everything
      ranges.push({ offset: data, length: hole - data });
      pos = hole;
    }
    return ranges;
  } finally {
    lib.close(fd);
  }
}
