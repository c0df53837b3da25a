/**
 * Writing around the page cache (`O_DIRECT`): the device reads the bytes straight from our
 * buffer, so the kernel copies nothing into page-cache pages. The copy into fresh pages
 * (`copy_folio_from_iter_atomic`) was the largest kernel cost of a parallel pack on the test
 * host; written this way, the 112 MiB archive of the 1 GiB OS image packed with two workers in
 * 0.772 against 0.900 s (medians of 12 interleaved runs; 0.815 against 0.884 s in another),
 * while the pack on one thread, which must wait for each write, was no faster (1.086 against
 * 1.071 s). So `pack` writes directly only when workers compress (bench/README).
 *
 * Direct writes need an aligned buffer, offset and length (DIRECT_ALIGN covers 512-byte and
 * 4 KiB devices). Where the file system refuses them (tmpfs before Linux 6.6, some FUSE file
 * systems), or off Linux, `openDirect` answers null and the caller writes through the page
 * cache instead.
 *
 * @module
 */
import { closeSync, constants, openSync, writeSync } from "node:fs";

/** Alignment of a direct write's buffer address, file offset and length. */
export const DIRECT_ALIGN = 4096;

/** A descriptor for direct writes into an existing file. */
export interface DirectFile {
  /** Writes `data` (aligned, a multiple of DIRECT_ALIGN long) at `position` (aligned). */
  writeAt(data: Uint8Array, position: number): void;
  close(): void;
}

/** Opens `path` (which exists) for direct writes, or null where that is not possible. */
export function openDirect(path: string): DirectFile | null {
  const flag = constants.O_DIRECT;
  if (Deno.build.os !== "linux" || !flag) return null;
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | flag);
  } catch {
    return null; // EINVAL: no O_DIRECT on this file system
  }
  return {
    writeAt(data, position) {
      let done = 0;
      while (done < data.length) {
        done += writeSync(fd, data, done, data.length - done, position + done);
      }
    },
    close() {
      closeSync(fd);
    },
  };
}

/**
 * `size` bytes at a page-aligned address, as direct writes need: the memory of a WebAssembly
 * instance, which the runtime maps whole pages for (an ArrayBuffer from the allocator is only
 * 16-byte aligned).
 */
export function alignedBuffer(size: number): Uint8Array {
  const pages = Math.ceil(size / 65536);
  return new Uint8Array(new WebAssembly.Memory({ initial: pages, maximum: pages }).buffer, 0, size);
}
