/**
 * A byte source: the one interface every reader takes. Files, in-memory buffers, HTTP ranges
 * and anything else that can return bytes at an offset plug in here unchanged.
 *
 * @module
 */
import { type FileHandle, open as fsOpen } from "node:fs/promises";
import { constants, readSync } from "node:fs";
import { HexzError, osReason } from "../errors.ts";
import { describeValue, expectOptions, expectString } from "../args.ts";

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

/**
 * `src.read(offset, length)`, held to its contract: a source that returns fewer bytes (or more,
 * or no bytes at all) is reported as the failed read it is, not as the damage its bytes would
 * look like. For sources that callers hand in.
 */
export async function readExact(
  src: ByteSource,
  offset: number,
  length: number,
): Promise<Uint8Array> {
  const bytes: unknown = await src.read(offset, length);
  if (bytes instanceof Uint8Array && bytes.length === length) return bytes;
  const at = `${length} bytes at offset ${offset}`;
  if (!(bytes instanceof Uint8Array)) {
    throw new HexzError("io", `${src.name}: read of ${at} returned ${describeValue(bytes)}`);
  }
  throw new HexzError(
    "io",
    bytes.length < length
      ? `${src.name}: short read: ${bytes.length} of ${at}`
      : `${src.name}: read of ${at} returned ${bytes.length} bytes`,
  );
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
  if (!(bytes instanceof Uint8Array)) {
    throw new HexzError(
      "usage",
      `memorySource: expected a Uint8Array, got ${describeValue(bytes)}`,
    );
  }
  expectString(name, "memorySource: name", "a name");
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
 * Reads up to `buf.length` bytes of the file `fd` at `offset` into `buf`, but only what the
 * page cache already holds: returns the bytes read at once, 0 when the disk would have to be
 * waited for (or the call cannot tell), and never blocks. `buf` is never on the V8 heap (its
 * address may be handed to the kernel). ffi/cached_read.ts has one (preadv2 with RWF_NOWAIT).
 */
export type CachedRead = (fd: number, buf: Uint8Array, offset: number) => number;

export interface FileSourceOptions {
  /**
   * For servers: reads are served from the page cache synchronously when `cachedRead` can,
   * and otherwise (once the disk proves slow, see `blockAtMostMs`) wait for the disk on
   * Deno's I/O threads, so that a slow disk does not hold up the event loop and the other
   * clients. Without it every read is synchronous.
   */
  cachedRead?: CachedRead;
  /**
   * With `cachedRead`: the reads it cannot serve are made right here while such reads have
   * taken less than this on average (default 1 ms; the trip through Deno's I/O threads costs
   * about 80 µs on the test machine, as much as a cold read from its virtio disk), and on the
   * I/O threads once the disk is slower. 0: always on the I/O threads.
   */
  blockAtMostMs?: number;
}

/**
 * Where a read that the page cache could not serve is made: here (`here()`) while such reads
 * have taken less than `blockAtMostMs` on average (default 1 ms), else on the I/O threads.
 * `took` feeds it each one's time; the average weighs the last eight or so.
 */
export function missPolicy(blockAtMostMs = 1): { here(): boolean; took(ms: number): void } {
  let avg = 0;
  return {
    here: () => avg < blockAtMostMs,
    took(ms) {
      avg += (ms - avg) / 8;
    },
  };
}

/**
 * Opens a local file as a byte source. Reads are positioned (pread through `node:fs`), so
 * callers never interleave. They are synchronous: a read from the page cache costs a few
 * microseconds, far less than a trip through Deno's I/O thread pool (which dominated extract
 * when it was used); the price is that a read from a slow disk holds up the event loop, which
 * `opts.cachedRead` avoids for the reads the page cache cannot serve.
 */
export async function fileSource(
  path: string,
  opts: FileSourceOptions = {},
): Promise<ByteSource> {
  expectString(path, "fileSource");
  expectOptions(opts, "fileSource: options");
  let fh: FileHandle;
  try {
    // O_NONBLOCK: opening a FIFO would otherwise wait for a writer (it is refused below);
    // on a regular file it changes nothing.
    fh = await fsOpen(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ENOENT") throw new HexzError("not-found", `${path}: no such file`);
    if (code === "EACCES" || code === "EPERM") {
      throw new HexzError("io", `${path}: permission denied`);
    }
    throw new HexzError("io", `${path}: ${osReason(e)}`);
  }
  const info = await fh.stat();
  if (!info.isFile()) {
    await fh.close();
    throw new HexzError(
      "io",
      info.isDirectory()
        ? `${path}: is a directory, not an archive`
        : `${path}: ${fileKind(info)}, not an archive (archives are regular files)`,
    );
  }
  let closed = false;
  const misses = missPolicy(opts.blockAtMostMs);
  const readInto = (out: Uint8Array, from: number, offset: number) => {
    let done = from;
    while (done < out.length) {
      let n: number;
      try {
        n = readSync(fh.fd, out, done, out.length - done, offset + done);
      } catch (e) {
        throw new HexzError("io", `${path}: ${osReason(e)}`);
      }
      if (n === 0) throw new HexzError("io", `${path}: unexpected end of file at ${offset + done}`);
      done += n;
    }
  };
  const readCachedOrWait = async (offset: number, length: number, cached: CachedRead) => {
    checkRange(src, offset, length);
    // An ArrayBuffer of its own is never on the V8 heap, whatever its size.
    const out = new Uint8Array(new ArrayBuffer(length));
    let done = length ? Math.max(0, Math.min(length, cached(fh.fd, out, offset))) : 0;
    if (done === length) return out;
    const t0 = performance.now();
    if (misses.here()) {
      // The disk answers fast: waiting here costs less than the trip to the I/O threads.
      readInto(out, done, offset);
      misses.took(performance.now() - t0);
      return out;
    }
    try {
      while (done < length) {
        let n: number;
        try {
          n = (await fh.read(out, done, length - done, offset + done)).bytesRead;
        } catch (e) {
          throw new HexzError("io", `${path}: ${osReason(e)}`);
        }
        if (n === 0) {
          throw new HexzError("io", `${path}: unexpected end of file at ${offset + done}`);
        }
        done += n;
      }
    } finally {
      // Measured from here too (it includes the trip, about 80 µs on the test machine), so a
      // disk that has become fast again is noticed.
      misses.took(performance.now() - t0);
    }
    return out;
  };
  const src: ByteSource = {
    size: info.size,
    name: path,
    path,
    read(offset, length) {
      if (opts.cachedRead) return readCachedOrWait(offset, length, opts.cachedRead);
      try {
        checkRange(src, offset, length);
        const out = new Uint8Array(length);
        readInto(out, 0, offset);
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

/** What a file that is not a regular file is, as `ls -l` would tell. */
function fileKind(info: {
  isBlockDevice(): boolean;
  isCharacterDevice(): boolean;
  isFIFO(): boolean;
  isSocket(): boolean;
}): string {
  if (info.isBlockDevice()) return "a block device";
  if (info.isCharacterDevice()) return "a character device";
  if (info.isFIFO()) return "a FIFO";
  if (info.isSocket()) return "a socket";
  return "not a regular file";
}
