/**
 * The fill value: what the elements of a chunk that was never written read as. The fill
 * value message (0x05, versions 1-3) or the old one (0x04); without either, or when no value
 * is defined, elements read as zero bytes, as in HDF5.
 *
 * @module
 */
import { bad, type Cursor } from "./cursor.ts";

/** The fill value's bytes, or null for zeros. */
export function parseFill(c: Cursor, old: boolean): Uint8Array | null {
  if (old) {
    const size = c.u32();
    return size ? c.take(size) : null;
  }
  const version = c.u8();
  if (version === 1 || version === 2) {
    c.skip(2); // allocation and write times
    const defined = c.u8();
    if (version === 2 && !defined) return null;
    if (c.left === 0) return null;
    const size = c.u32();
    return size ? c.take(size) : null;
  }
  if (version === 3) {
    const flags = c.u8();
    if (!(flags & 0x20)) return null;
    const size = c.u32();
    return size ? c.take(size) : null;
  }
  bad(c.what, `fill value version ${version}`);
}
