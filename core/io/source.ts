/**
 * A byte source: the one interface every reader takes. Files, in-memory buffers, HTTP ranges
 * and anything else that can return bytes at an offset plug in here unchanged.
 *
 * @module
 */
import { type FileHandle, open as fsOpen } from "node:fs/promises";
import { readSync } from "node:fs";
import { HexzError } from "../errors.ts";

export interface ByteSource {
  /** Total length in bytes. */
  readonly size: number;
  /** A short, human-readable name for error messages (a path or URL). */
  readonly name: string;
  /** The local file behind the bytes, when there is one another thread may open itself. */
  readonly path?: string;
  /**
   * Returns exactly `length` bytes starting at `offset`. Implementations throw a HexzError
   * ("corrupt") when the range lies outside `[0, size)`; callers bounds-check first anyway.
   */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Releases handles. Safe to call twice. */
  close(): void;
}

function checkRange(src: { size: number; name: string }, offset: number, length: number) {
  if (
    !Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 ||
    offset + length > src.size
  ) {
    throw new HexzError(
      "corrupt",
      `${src.name}: read of ${length} bytes at offset ${offset} is outside the file (${src.size} bytes)`,
    );
  }
}

/** A byte source over a buffer already in memory. */
export function memorySource(bytes: Uint8Array, name = "<memory>"): ByteSource {
  return {
    size: bytes.length,
    name,
    read(offset, length) {
      checkRange(this, offset, length);
      return Promise.resolve(bytes.subarray(offset, offset + length));
    },
    close() {},
  };
}

/**
 * Opens a local file as a byte source. Reads are positioned (pread through `node:fs`), so
 * callers never interleave. They are synchronous: a read from the page cache costs a few
 * microseconds, far less than a trip through Deno's I/O thread pool (which dominated extract
 * when it was used); the price is that a read from a slow disk holds up the event loop.
 */
export async function fileSource(path: string): Promise<ByteSource> {
  let fh: FileHandle;
  try {
    fh = await fsOpen(path, "r");
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ENOENT") throw new HexzError("not-found", `${path}: no such file`);
    if (code === "EACCES" || code === "EPERM") {
      throw new HexzError("io", `${path}: permission denied`);
    }
    throw new HexzError("io", `${path}: ${(e as Error).message}`);
  }
  const info = await fh.stat();
  if (!info.isFile()) {
    await fh.close();
    throw new HexzError("io", `${path}: not a regular file`);
  }
  let closed = false;
  const src: ByteSource = {
    size: info.size,
    name: path,
    path,
    read(offset, length) {
      try {
        checkRange(src, offset, length);
        const out = new Uint8Array(length);
        let done = 0;
        while (done < length) {
          let n: number;
          try {
            n = readSync(fh.fd, out, done, length - done, offset + done);
          } catch (e) {
            throw new HexzError("io", `${path}: ${(e as Error).message}`);
          }
          if (n === 0) {
            throw new HexzError("io", `${path}: unexpected end of file at ${offset + done}`);
          }
          done += n;
        }
        return Promise.resolve(out);
      } catch (e) {
        return Promise.reject(e);
      }
    },
    close() {
      if (!closed) {
        closed = true;
        fh.close().catch(() => {});
      }
    },
  };
  return src;
}
