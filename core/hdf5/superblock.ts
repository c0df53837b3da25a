/**
 * The HDF5 superblock: where the file says how wide its addresses and lengths are and where
 * its root group is. Looked for at offset 0, 512, 1024, 2048 ... (a user block may precede
 * it). Versions 0 and 1 (HDF5 1.6 / h5py's default) carry the root group as a symbol table
 * entry; versions 2 and 3 (`libver="latest"`) point at its object header and end in a lookup3
 * checksum.
 *
 * @module
 */
import { HexzError } from "../errors.ts";
import { type ByteSource, readExact } from "../io/source.ts";
import { lookup3 } from "./checksum.ts";
import { bad, Cursor, UNDEF } from "./cursor.ts";

const SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

export interface Superblock {
  version: number;
  /** Where the signature is: addresses in the file are relative to `base`. */
  base: number;
  offsetSize: number;
  lengthSize: number;
  /** The root group's object header (absolute). */
  root: number;
  /** Versions 0/1: the root's cached symbol table (B-tree, local heap), if any. */
  rootCache?: { btree: number; heap: number };
}

function isSignature(b: Uint8Array): boolean {
  return SIGNATURE.every((v, i) => b[i] === v);
}

/** Finds and reads the superblock of `src`. */
export async function readSuperblock(src: ByteSource): Promise<Superblock> {
  let at = -1;
  for (let off = 0; off + 8 <= src.size; off = off ? off * 2 : 512) {
    if (isSignature(await readExact(src, off, 8))) {
      at = off;
      break;
    }
  }
  if (at < 0) {
    throw new HexzError("format", `${src.name}: not an HDF5 file (no HDF5 signature)`);
  }
  const what = `${src.name}: superblock`;
  const head = await readExact(src, at, Math.min(src.size - at, 256));
  const c = new Cursor(head, what, 8, 8, 8);
  const version = c.u8();
  if (version > 3) {
    throw new HexzError("unsupported", `${what}: version ${version} is not supported (0-3 are)`);
  }
  if (version <= 1) {
    c.skip(4); // free-space, root symbol table entry and shared header versions, reserved
    const offsetSize = c.u8(), lengthSize = c.u8();
    checkSizes(what, offsetSize, lengthSize);
    c.skip(1);
    c.skip(4); // group leaf and internal node K
    c.skip(4); // file consistency flags
    if (version === 1) c.skip(4); // indexed storage internal node K, reserved
    const o = new Cursor(head, what, offsetSize, lengthSize, c.pos);
    const base = o.address("base address");
    o.address(); // free-space info
    o.address(); // end of file
    o.address(); // driver info
    // The root group's symbol table entry.
    o.address(); // link name offset
    const header = o.address("root object header");
    const cacheType = o.u32();
    o.skip(4);
    let rootCache: Superblock["rootCache"];
    if (cacheType === 1) rootCache = { btree: o.address(), heap: o.address() };
    const b = base === UNDEF ? at : base;
    if (header === UNDEF) bad(what, "no root group");
    return {
      version,
      base: b,
      offsetSize,
      lengthSize,
      root: b + header,
      rootCache: rootCache && { btree: b + rootCache.btree, heap: b + rootCache.heap },
    };
  }
  const offsetSize = c.u8(), lengthSize = c.u8();
  checkSizes(what, offsetSize, lengthSize);
  c.skip(1); // file consistency flags
  // The checksum first: nothing of a damaged superblock is trusted.
  const end = c.pos + 4 * offsetSize;
  const sum = new Cursor(head, what, offsetSize, lengthSize, end);
  if (lookup3(head.subarray(0, end)) !== sum.u32()) bad(what, "checksum mismatch");
  const o = new Cursor(head, what, offsetSize, lengthSize, c.pos);
  const base = o.address("base address");
  o.address(); // superblock extension
  o.address(); // end of file
  const root = o.address("root object header");
  if (root === UNDEF) bad(what, "no root group");
  const b = base === UNDEF ? at : base;
  return { version, base: b, offsetSize, lengthSize, root: b + root };
}

function checkSizes(what: string, offsetSize: number, lengthSize: number) {
  for (const [n, v] of [["offsets", offsetSize], ["lengths", lengthSize]] as const) {
    if (![2, 4, 8].includes(v)) bad(what, `size of ${n} ${v} is not 2, 4 or 8`);
  }
}
