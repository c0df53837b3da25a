/**
 * A byte source: the one interface every reader takes. Files, in-memory buffers, HTTP ranges
 * and anything else that can return bytes at an offset plug in here unchanged.
 *
 * @module
 */
import { HexzError } from "../errors.ts";

export interface ByteSource {
  /** Total length in bytes. */
  readonly size: number;
  /** A short, human-readable name for error messages (a path or URL). */
  readonly name: string;
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

/** Opens a local file as a byte source (reads with positioned reads; safe for concurrent use). */
export async function fileSource(path: string): Promise<ByteSource> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new HexzError("not-found", `${path}: no such file`);
    }
    if (e instanceof Deno.errors.PermissionDenied) {
      throw new HexzError("io", `${path}: permission denied`);
    }
    throw new HexzError("io", `${path}: ${(e as Error).message}`);
  }
  const info = await file.stat();
  if (!info.isFile) {
    file.close();
    throw new HexzError("io", `${path}: not a regular file`);
  }
  let closed = false;
  // Deno has no pread; serialise seek+read pairs so concurrent callers never interleave.
  let chain: Promise<unknown> = Promise.resolve();
  const src: ByteSource = {
    size: info.size,
    name: path,
    read(offset, length) {
      checkRange(src, offset, length);
      const job = chain.then(async () => {
        const out = new Uint8Array(length);
        await file.seek(offset, Deno.SeekMode.Start);
        let done = 0;
        while (done < length) {
          const n = await file.read(out.subarray(done));
          if (n === null) {
            throw new HexzError("io", `${path}: unexpected end of file at ${offset + done}`);
          }
          done += n;
        }
        return out;
      });
      chain = job.catch(() => {});
      return job;
    },
    close() {
      if (!closed) {
        closed = true;
        file.close();
      }
    },
  };
  return src;
}
