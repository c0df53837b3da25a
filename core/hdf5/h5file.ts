/**
 * An open HDF5 file: its byte source, its superblock, and bounds-checked reads of the
 * structures its addresses point at. Every read names the object it is for, so a damaged or
 * truncated file fails with a message that says which object is broken.
 *
 * @module
 */
import { type ByteSource, readExact } from "../io/source.ts";
import { bad, Cursor, UNDEF } from "./cursor.ts";
import { readSuperblock, type Superblock } from "./superblock.ts";

/** The most bytes read for one metadata structure (a heap, a header block, a B-tree node). */
export const MAX_METADATA = 64 * 1024 * 1024;

export interface H5File {
  src: ByteSource;
  sb: Superblock;
  /** The absolute offset of file address `a` (addresses are relative to the base). */
  abs(a: number): number;
  /** `length` bytes at absolute offset `at`, checked to lie within the file. */
  read(at: number, length: number, what: string): Promise<Uint8Array>;
  /** A cursor over `length` bytes at absolute offset `at`. */
  cursor(at: number, length: number, what: string): Promise<Cursor>;
  /** A cursor over bytes already read (same address and length widths). */
  over(bytes: Uint8Array, what: string): Cursor;
}

export async function openH5(src: ByteSource): Promise<H5File> {
  const sb = await readSuperblock(src);
  const f: H5File = {
    src,
    sb,
    abs(a) {
      return a === UNDEF ? UNDEF : sb.base + a;
    },
    async read(at, length, what) {
      if (at === UNDEF) bad(what, "undefined address");
      if (!(length >= 0) || !Number.isSafeInteger(at) || at < 0 || at + length > src.size) {
        bad(what, `${length} bytes at ${at} lie outside the file (${src.size} bytes)`);
      }
      return length === 0 ? new Uint8Array(0) : await readExact(src, at, length);
    },
    async cursor(at, length, what) {
      if (length > MAX_METADATA) bad(what, `${length} bytes is too large`);
      return f.over(await f.read(at, length, what), what);
    },
    over(bytes, what) {
      return new Cursor(bytes, what, sb.offsetSize, sb.lengthSize);
    },
  };
  return f;
}
