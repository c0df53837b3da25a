/**
 * The FUSE kernel protocol (7.31 and later, as in <linux/fuse.h>): opcodes, flags, and the
 * byte layouts of the requests read from /dev/fuse and the replies written to it. All fields
 * are little-endian on the machines we run on (x86-64, aarch64). Offsets below were checked
 * with `offsetof`/`sizeof` against /usr/include/linux/fuse.h (linux-libc-dev 6.1, FUSE 7.38).
 *
 * A request is `fuse_in_header` followed by the opcode's argument struct (and, for LOOKUP,
 * a NUL-terminated name; for WRITE, the data). A reply is `fuse_out_header` followed by the
 * opcode's result struct, or the header alone with a negative errno.
 *
 * @module
 */

/** Opcodes (enum fuse_opcode). */
export const OP = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  GETXATTR: 22,
  LISTXATTR: 23,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  ACCESS: 34,
  INTERRUPT: 36,
  DESTROY: 38,
  BATCH_FORGET: 42,
} as const;

export const FUSE_ROOT_ID = 1;
export const KERNEL_MAJOR = 7;
/** The oldest minor version whose struct layouts this file encodes (init_out with max_pages). */
export const MIN_MINOR = 31;
/** The newest minor version we answer with. */
export const MAX_MINOR = 38;

/** fuse_init_in / fuse_init_out `flags` bits we use. */
export const INIT_FLAG = {
  ASYNC_READ: 1 << 0,
  BIG_WRITES: 1 << 5,
  MAX_PAGES: 1 << 22,
  CACHE_SYMLINKS: 1 << 23,
} as const;

/** fuse_open_out `open_flags`: keep the page cache across opens (contents never change). */
export const FOPEN_KEEP_CACHE = 1 << 1;

/** fuse_setattr_in `valid` bits. */
export const FATTR = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  FH: 1 << 6,
  ATIME_NOW: 1 << 7,
  MTIME_NOW: 1 << 8,
  LOCKOWNER: 1 << 9,
  CTIME: 1 << 10,
} as const;

/** File type bits of `mode` (S_IFMT and friends). */
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;

/** Struct sizes (sizeof). */
export const SIZE = {
  inHeader: 40,
  outHeader: 16,
  attr: 88,
  entryOut: 128,
  attrOut: 104,
  initIn: 16, // the fields before flags2 (FUSE_INIT_EXT), all we read
  initOut: 64,
  openIn: 8,
  openOut: 16,
  readIn: 40,
  writeIn: 40,
  writeOut: 8,
  setattrIn: 88,
  statfsOut: 80,
  direntName: 24, // offsetof(struct fuse_dirent, name)
  getxattrIn: 8,
} as const;

/** The largest WRITE we accept and the request buffer that holds it (header + write_in). */
export const MAX_WRITE = 1 << 20;
export const REQUEST_BUFFER = MAX_WRITE + 4096;

/** A negative-errno reply ends up here: thrown by file-system handlers, never shown to users. */
export class FuseErrno extends Error {
  constructor(readonly errno: number, message = `errno ${errno}`) {
    super(message);
    this.name = "FuseErrno";
  }
}

/** struct fuse_in_header: len@0 u32, opcode@4 u32, unique@8 u64, nodeid@16 u64, uid@24,
 * gid@28, pid@32 u32, total_extlen@36 u16, padding@38 u16. */
export interface InHeader {
  len: number;
  opcode: number;
  unique: bigint;
  nodeid: number;
  uid: number;
  gid: number;
  pid: number;
}

export function decodeInHeader(dv: DataView): InHeader {
  return {
    len: dv.getUint32(0, true),
    opcode: dv.getUint32(4, true),
    unique: dv.getBigUint64(8, true),
    nodeid: u64(dv, 16),
    uid: dv.getUint32(24, true),
    gid: dv.getUint32(28, true),
    pid: dv.getUint32(32, true),
  };
}

/** A u64 field as a number; node ids, offsets and sizes we handle all fit in 2^53. */
export function u64(dv: DataView, at: number): number {
  return dv.getUint32(at, true) + dv.getUint32(at + 4, true) * 0x1_0000_0000;
}

function setU64(dv: DataView, at: number, v: number) {
  dv.setUint32(at, v >>> 0, true);
  dv.setUint32(at + 4, Math.floor(v / 0x1_0000_0000), true);
}

/** struct fuse_out_header: len@0 u32, error@4 i32 (0 or -errno), unique@8 u64. */
export function encodeOutHeader(len: number, error: number, unique: bigint): Uint8Array {
  const b = new Uint8Array(SIZE.outHeader);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, len, true);
  dv.setInt32(4, error, true);
  dv.setBigUint64(8, unique, true);
  return b;
}

/** What a file system reports about an inode. */
export interface Attr {
  ino: number;
  /** Type and permission bits (S_IFREG | 0o444 ...). */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  /** Modification time in ms since the epoch; also used for atime and ctime. */
  mtimeMs: number;
  /** Device number of a character or block device. */
  rdev?: { major: number; minor: number };
}

/** A device number as struct fuse_attr's rdev holds it (the kernel's new_encode_dev). */
function encodeRdev(d: { major: number; minor: number } | undefined): number {
  if (!d) return 0;
  return ((d.minor & 0xff) | ((d.major & 0xfff) << 8) | ((d.minor & ~0xff) << 12)) >>> 0;
}

/** struct fuse_attr (88 bytes): ino@0, size@8, blocks@16, atime@24, mtime@32, ctime@40 u64;
 * atimensec@48, mtimensec@52, ctimensec@56, mode@60, nlink@64, uid@68, gid@72, rdev@76,
 * blksize@80, flags@84 u32. */
function putAttr(dv: DataView, at: number, a: Attr) {
  const sec = Math.floor(a.mtimeMs / 1000);
  const nsec = Math.round((a.mtimeMs - sec * 1000) * 1e6);
  setU64(dv, at + 0, a.ino);
  setU64(dv, at + 8, a.size);
  setU64(dv, at + 16, Math.ceil(a.size / 512));
  for (const o of [24, 32, 40]) dv.setBigInt64(at + o, BigInt(sec), true);
  for (const o of [48, 52, 56]) dv.setUint32(at + o, nsec, true);
  dv.setUint32(at + 60, a.mode, true);
  dv.setUint32(at + 64, a.nlink, true);
  dv.setUint32(at + 68, a.uid, true);
  dv.setUint32(at + 72, a.gid, true);
  dv.setUint32(at + 76, encodeRdev(a.rdev), true);
  dv.setUint32(at + 80, 4096, true);
  dv.setUint32(at + 84, 0, true);
}

function timeout(dv: DataView, at: number, nsecAt: number, seconds: number) {
  setU64(dv, at, Math.floor(seconds));
  dv.setUint32(nsecAt, 0, true);
}

/** struct fuse_entry_out (128 bytes): nodeid@0, generation@8, entry_valid@16, attr_valid@24
 * u64; entry_valid_nsec@32, attr_valid_nsec@36 u32; attr@40. A null `attr` is a negative
 * entry (nodeid 0): the kernel caches "no such name" for `ttl` seconds. */
export function encodeEntryOut(attr: Attr | null, ttl: number): Uint8Array {
  const b = new Uint8Array(SIZE.entryOut);
  const dv = new DataView(b.buffer);
  setU64(dv, 0, attr ? attr.ino : 0);
  timeout(dv, 16, 32, ttl);
  timeout(dv, 24, 36, ttl);
  if (attr) putAttr(dv, 40, attr);
  return b;
}

/** struct fuse_attr_out (104 bytes): attr_valid@0 u64, attr_valid_nsec@8 u32, dummy@12,
 * attr@16. */
export function encodeAttrOut(attr: Attr, ttl: number): Uint8Array {
  const b = new Uint8Array(SIZE.attrOut);
  const dv = new DataView(b.buffer);
  timeout(dv, 0, 8, ttl);
  putAttr(dv, 16, attr);
  return b;
}

/** struct fuse_init_in: major@0, minor@4, max_readahead@8, flags@12 u32 (then flags2...). */
export interface InitIn {
  major: number;
  minor: number;
  maxReadahead: number;
  flags: number;
}

export function decodeInitIn(dv: DataView, at: number): InitIn {
  return {
    major: dv.getUint32(at, true),
    minor: dv.getUint32(at + 4, true),
    maxReadahead: dv.getUint32(at + 8, true),
    flags: dv.getUint32(at + 12, true),
  };
}

/** struct fuse_init_out (64 bytes): major@0, minor@4, max_readahead@8, flags@12 u32;
 * max_background@16, congestion_threshold@18 u16; max_write@20, time_gran@24 u32;
 * max_pages@28, map_alignment@30 u16; flags2@32 u32; unused[7]. */
export interface InitOut {
  major: number;
  minor: number;
  maxReadahead: number;
  flags: number;
  maxBackground: number;
  congestionThreshold: number;
  maxWrite: number;
  timeGran: number;
  maxPages: number;
}

export function encodeInitOut(o: InitOut): Uint8Array {
  const b = new Uint8Array(SIZE.initOut);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, o.major, true);
  dv.setUint32(4, o.minor, true);
  dv.setUint32(8, o.maxReadahead, true);
  dv.setUint32(12, o.flags, true);
  dv.setUint16(16, o.maxBackground, true);
  dv.setUint16(18, o.congestionThreshold, true);
  dv.setUint32(20, o.maxWrite, true);
  dv.setUint32(24, o.timeGran, true);
  dv.setUint16(28, o.maxPages, true);
  return b;
}

/** struct fuse_open_in: flags@0 (the open(2) flags), open_flags@4. */
export function decodeOpenIn(dv: DataView, at: number): { flags: number } {
  return { flags: dv.getUint32(at, true) };
}

/** struct fuse_open_out (16 bytes): fh@0 u64, open_flags@8 u32, padding@12. */
export function encodeOpenOut(fh: number, openFlags: number): Uint8Array {
  const b = new Uint8Array(SIZE.openOut);
  const dv = new DataView(b.buffer);
  setU64(dv, 0, fh);
  dv.setUint32(8, openFlags, true);
  return b;
}

/** struct fuse_read_in (40 bytes): fh@0, offset@8 u64; size@16, read_flags@20 u32;
 * lock_owner@24 u64; flags@32, padding@36 u32. READDIR uses the same struct. */
export function decodeReadIn(dv: DataView, at: number): { offset: number; size: number } {
  return { offset: u64(dv, at + 8), size: dv.getUint32(at + 16, true) };
}

/** struct fuse_write_in (40 bytes): fh@0, offset@8 u64; size@16, write_flags@20 u32;
 * lock_owner@24 u64; flags@32, padding@36; the data follows. */
export function decodeWriteIn(dv: DataView, at: number): { offset: number; size: number } {
  return { offset: u64(dv, at + 8), size: dv.getUint32(at + 16, true) };
}

/** struct fuse_write_out (8 bytes): size@0 u32, padding@4. */
export function encodeWriteOut(size: number): Uint8Array {
  const b = new Uint8Array(SIZE.writeOut);
  new DataView(b.buffer).setUint32(0, size, true);
  return b;
}

/** struct fuse_setattr_in (88 bytes): valid@0 u32, padding@4, fh@8, size@16, lock_owner@24,
 * atime@32, mtime@40, ctime@48 u64; atimensec@56, mtimensec@60, ctimensec@64, mode@68,
 * unused4@72, uid@76, gid@80, unused5@84 u32. */
export function decodeSetattrIn(dv: DataView, at: number): { valid: number; size: number } {
  return { valid: dv.getUint32(at, true), size: u64(dv, at + 16) };
}

/** struct fuse_kstatfs (80 bytes): blocks@0, bfree@8, bavail@16, files@24, ffree@32 u64;
 * bsize@40, namelen@44, frsize@48, padding@52 u32; spare[6]. */
export interface StatFs {
  blocks: number;
  files: number;
}

export function encodeStatfsOut(s: StatFs): Uint8Array {
  const b = new Uint8Array(SIZE.statfsOut);
  const dv = new DataView(b.buffer);
  setU64(dv, 0, s.blocks);
  setU64(dv, 24, s.files);
  dv.setUint32(40, 4096, true);
  dv.setUint32(44, 255, true);
  dv.setUint32(48, 4096, true);
  return b;
}

/** One directory entry as READDIR returns it. */
export interface DirEntry {
  name: string;
  ino: number;
  /** Type bits of the entry's mode (S_IFDIR, S_IFREG, S_IFLNK). */
  mode: number;
}

const enc = new TextEncoder();

/**
 * struct fuse_dirent records: ino@0 u64, off@8 u64 (the cookie of the next entry), namelen@16,
 * type@20 u32 (DT_*, that is mode >> 12), name@24; each record padded to 8 bytes. Encodes
 * entries from index `start` while they fit in `max` bytes.
 */
export function encodeDirents(
  entries: readonly DirEntry[],
  start: number,
  max: number,
): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (let i = start; i < entries.length; i++) {
    const name = enc.encode(entries[i].name);
    const recLen = (SIZE.direntName + name.length + 7) & ~7;
    if (total + recLen > max) break;
    const rec = new Uint8Array(recLen);
    const dv = new DataView(rec.buffer);
    setU64(dv, 0, entries[i].ino);
    setU64(dv, 8, i + 1);
    dv.setUint32(16, name.length, true);
    dv.setUint32(20, (entries[i].mode & S_IFMT) >>> 12, true);
    rec.set(name, SIZE.direntName);
    parts.push(rec);
    total += recLen;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** struct fuse_getxattr_in (also LISTXATTR's): size@0 u32, padding@4; GETXATTR's name
 * follows, NUL-terminated. `size` 0 asks for the length alone. */
export function decodeGetxattrIn(dv: DataView, at: number): { size: number } {
  return { size: dv.getUint32(at, true) };
}

/** struct fuse_getxattr_out: size@0 u32, padding@4 (the answer to a size probe). */
export function encodeGetxattrOut(size: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setUint32(0, size, true);
  return b;
}
