/**
 * A bounds-checked reader over bytes of an HDF5 file: every field read past the end of its
 * structure is reported as the corrupt object it is (named by `what`), never read as garbage.
 * Addresses and lengths ("size of offsets" and "size of lengths" bytes, little-endian) are
 * returned as numbers; an address of all ones is the undefined address, `UNDEF`.
 *
 * @module
 */
import { HexzError } from "../errors.ts";

/** The undefined address (all bits set in the file). */
export const UNDEF = -1;

/** Throws a corrupt error naming the HDF5 object. */
export function bad(what: string, problem: string): never {
  throw new HexzError("corrupt", `${what}: ${problem}`);
}

export class Cursor {
  pos: number;
  constructor(
    readonly bytes: Uint8Array,
    readonly what: string,
    readonly offsetSize = 8,
    readonly lengthSize = 8,
    pos = 0,
  ) {
    this.pos = pos;
  }

  get left(): number {
    return this.bytes.length - this.pos;
  }

  need(n: number): void {
    if (!(n >= 0) || this.pos + n > this.bytes.length) {
      bad(this.what, `truncated (needs ${n} bytes at ${this.pos} of ${this.bytes.length})`);
    }
  }

  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }

  take(n: number): Uint8Array {
    this.need(n);
    const b = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  u8(): number {
    this.need(1);
    return this.bytes[this.pos++];
  }

  /** An unsigned little-endian integer of `n` bytes (1-8); above 2^53 it is refused. */
  uint(n: number, field = "a field"): number {
    this.need(n);
    let v = 0;
    for (let i = n - 1; i >= 0; i--) v = v * 256 + this.bytes[this.pos + i];
    this.pos += n;
    if (!Number.isSafeInteger(v)) bad(this.what, `${field} is too large`);
    return v;
  }

  u16(): number {
    return this.uint(2);
  }

  u32(): number {
    return this.uint(4);
  }

  /** An address: `UNDEF` when all its bytes are 0xff. */
  address(field = "an address"): number {
    this.need(this.offsetSize);
    let all = true;
    for (let i = 0; i < this.offsetSize; i++) all &&= this.bytes[this.pos + i] === 0xff;
    if (all) {
      this.pos += this.offsetSize;
      return UNDEF;
    }
    return this.uint(this.offsetSize, field);
  }

  length(field = "a length"): number {
    return this.uint(this.lengthSize, field);
  }

  /** Checks a 4-byte signature. */
  signature(sig: string): void {
    const b = this.take(4);
    for (let i = 0; i < 4; i++) {
      if (b[i] !== sig.charCodeAt(i)) bad(this.what, `no ${sig} signature`);
    }
  }
}
