/**
 * The file table of directory archives: one record per directory, file, symlink, hard link,
 * device node and FIFO, in depth-first order with names sorted within each directory (so
 * every directory precedes its contents). File contents live in the disk stream at `offset` for `size` bytes.
 * Stored as the archive's file-table section (feature bit 3). See docs/FORMAT.md, "File
 * table".
 *
 * A table without hard links is written as version 1, which every hexz with directory
 * archives reads; hard links need version 2 (record type 4), which older readers refuse as an
 * unknown version. Device nodes, FIFOs and extended attributes need version 3 (record types
 * 5 to 7, an xattr count in each record and the records' extra bytes), written only when the
 * table holds one of them. Paths with a backslash (an ordinary character of a Linux name)
 * need version 4, the layout of version 3.
 *
 * @module
 */
import { ensure, HexzError } from "../errors.ts";
import { blake3 } from "../hash/blake3.ts";
import { concatBytes, equalBytes, getU64, setU64, view } from "./bytes.ts";

/** `chardev` and `blockdev` are device nodes, `fifo` a named pipe (version 3). */
export type FileType = "file" | "dir" | "symlink" | "chardev" | "blockdev" | "fifo";
const TYPE_CODE: Record<FileType, number> = {
  file: 1,
  dir: 2,
  symlink: 3,
  chardev: 5,
  blockdev: 6,
  fifo: 7,
};
const CODE_TYPE: Record<number, FileType> = Object.fromEntries(
  Object.entries(TYPE_CODE).map(([t, c]) => [c, t as FileType]),
);
/** Record type of a hard link (version 2): another name of an earlier regular file. */
const HARD_LINK = 4;
/** Version 3 record flag (byte 1): a device number follows the target. */
const FLAG_DEVICE = 1;
/** Record types that need version 3. */
const SPECIAL = new Set<FileType>(["chardev", "blockdev", "fifo"]);

/** One extended attribute: its full name (`user.comment`, `security.capability`) and value. */
export interface Xattr {
  name: string;
  value: Uint8Array;
}

/** Bounds of extended attributes, those of Linux: a name of 1..255 bytes (XATTR_NAME_MAX), a
 * value of at most 64 KiB (XATTR_SIZE_MAX), the names of one entry with their terminators at
 * most 64 KiB (XATTR_LIST_MAX); and at most 1 MiB of names and values per entry. */
export const XATTR_LIMITS = {
  name: 255,
  value: 65536,
  names: 65536,
  total: 1024 * 1024,
} as const;

export interface FileEntry {
  /** Relative path with `/` separators: no leading `/`, no `.` or `..` components. */
  path: string;
  type: FileType;
  /** Permission bits (0o7777). */
  mode: number;
  /** Modification time, milliseconds since the epoch (may be negative). */
  mtimeMs: number;
  uid: number;
  gid: number;
  /** Content bytes (files only). */
  size: number;
  /** Where the content starts in the disk stream (files only). */
  offset: number;
  /** Symlink target (symlinks only). */
  target: string;
  /**
   * Hard links (type "file" only): the path of the earlier regular file in the table that this
   * entry is another name of. Decoded entries carry that file's size, offset, mode, time and
   * owner; the encoder stores the path alone. Absent or empty: not a hard link.
   */
  hardLinkTo?: string;
  /** Device number (types "chardev" and "blockdev" only). */
  major?: number;
  minor?: number;
  /**
   * Extended attributes, sorted by name, names unique (version 3). Absent: none. A hard link
   * shares those of its file (decoded entries carry them; the encoder stores none for it).
   */
  xattrs?: Xattr[];
}

const MAGIC = new Uint8Array([0x48, 0x58, 0x46, 0x54]); // "HXFT"
/** Tables without hard links are written as version 1; version 2 adds record type 4; version 3
 * adds record types 5 to 7 and extended attributes; version 4 (the layout of version 3) lets
 * paths hold backslashes (systemd's `system-systemd\x2dcryptsetup.slice`). */
const VERSION_PLAIN = 1;
const VERSION_LINKS = 2;
const VERSION_META = 3;
const VERSION_NAMES = 4;
const HEAD = 16;
const FIXED = 48;
const MAX_NAME = 4096;

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

/**
 * Throws unless `p` is a safe relative path (nothing that could escape an extraction dir).
 * A backslash is an ordinary character of a Linux name, allowed where `backslash` (tables of
 * version 4); extraction refuses such names where it is a separator (Windows).
 */
export function checkEntryPath(p: string, backslash = false): void {
  const parts = p.split("/");
  if (
    !p || p.startsWith("/") || p.includes("\0") || (!backslash && p.includes("\\")) ||
    parts.some((c) => c === "" || c === "." || c === "..")
  ) {
    throw new HexzError("corrupt", `file table: unsafe path ${JSON.stringify(p)}`);
  }
}

const isLink = (e: FileEntry) => e.type === "file" && !!e.hardLinkTo;

/** Whether an entry needs a version 3 table: a device, a FIFO, extended attributes. */
function needsVersion3(e: FileEntry): boolean {
  return SPECIAL.has(e.type) || (!isLink(e) && (e.xattrs?.length ?? 0) > 0);
}

/**
 * The bytes a version 3 record holds after its path and target: a device's major and minor
 * (u32 each; flag bit 0 says they are there), then each extended attribute as name length u8, value length u32, name, value.
 * Throws (naming the entry as `shown`) for what the fields cannot hold or Linux would refuse.
 */
function encodeExtra(e: FileEntry, shown: string): { bytes: Uint8Array; count: number } {
  const parts: Uint8Array[] = [];
  if (e.type === "chardev" || e.type === "blockdev") {
    const dev = new Uint8Array(8);
    for (const [i, [id, v]] of ([["major", e.major], ["minor", e.minor]] as const).entries()) {
      if (!(Number.isInteger(v) && v! >= 0 && v! <= 0xffffffff)) {
        throw new HexzError("usage", `${shown}: device ${id} ${v} does not fit in 32 bits`);
      }
      view(dev).setUint32(4 * i, v!, true);
    }
    parts.push(dev);
  }
  const xattrs = isLink(e) ? [] : [...(e.xattrs ?? [])].sort((a, b) => cmp(a.name, b.name));
  if (xattrs.length > 0xffff) throw new HexzError("usage", `${shown}: too many xattrs`);
  let names = 0, total = 0;
  xattrs.forEach((x, i) => {
    const name = enc.encode(x.name);
    const bad = !x.name || name.length > XATTR_LIMITS.name || x.name.includes("\0")
      ? "a name of 1 to 255 bytes without NUL"
      : i > 0 && xattrs[i - 1].name === x.name
      ? "a name given once"
      : !(x.value instanceof Uint8Array) || x.value.length > XATTR_LIMITS.value
      ? "a value of at most 64 KiB"
      : "";
    if (bad) {
      throw new HexzError("usage", `${shown}: xattr ${JSON.stringify(x.name)} needs ${bad}`);
    }
    names += name.length + 1;
    total += name.length + x.value.length;
    if (names > XATTR_LIMITS.names || total > XATTR_LIMITS.total) {
      throw new HexzError("usage", `${shown}: extended attributes larger than Linux keeps`);
    }
    const head = new Uint8Array(5);
    head[0] = name.length;
    view(head).setUint32(1, x.value.length, true);
    parts.push(head, name, x.value);
  });
  return { bytes: concatBytes(...parts), count: xattrs.length };
}

/** Byte order of two names' UTF-8 (for ASCII names, plain string order). */
function cmp(a: string, b: string): number {
  const x = enc.encode(a), y = enc.encode(b);
  for (let i = 0; i < x.length && i < y.length; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/** Encodes `entries` as version 1, as version 2 when one of them is a hard link, as version 3
 * when one is a device or a FIFO or has extended attributes, or as version 4 when a path holds
 * a backslash. */
export function encodeFileTable(entries: FileEntry[]): Uint8Array {
  const version = entries.some((e) => e.path.includes("\\"))
    ? VERSION_NAMES
    : entries.some(needsVersion3)
    ? VERSION_META
    : entries.some(isLink)
    ? VERSION_LINKS
    : VERSION_PLAIN;
  const records = entries.map((e) => {
    // Fields too small for what is given would be written wrapped: a table that reads back
    // as something else. Refused instead, naming the entry.
    const shown = e.path.length > 80 ? `${e.path.slice(0, 77)}...` : e.path;
    const name = enc.encode(e.path);
    const target = enc.encode(isLink(e) ? e.hardLinkTo! : e.target);
    const extra = version >= VERSION_META
      ? encodeExtra(e, shown)
      : { bytes: new Uint8Array(0), count: 0 };
    return { e, shown, name, target, extra };
  });
  const size = HEAD +
    records.reduce(
      (n, r) => n + FIXED + r.name.length + r.target.length + r.extra.bytes.length,
      0,
    ) +
    32;
  const bytes = new Uint8Array(size);
  const dv = view(bytes);
  bytes.set(MAGIC, 0);
  dv.setUint16(4, version, true);
  dv.setUint32(8, entries.length, true);
  let off = HEAD;
  for (const { e, shown, name, target, extra } of records) {
    if (name.length > 0xffff || target.length > 0xffff) {
      throw new HexzError(
        "usage",
        `${shown}: ${name.length > 0xffff ? "path" : "link target"} longer than 65535 bytes`,
      );
    }
    for (const [id, v] of [["uid", e.uid], ["gid", e.gid]] as const) {
      if (!isLink(e) && !(Number.isInteger(v) && v >= 0 && v <= 0xffffffff)) {
        throw new HexzError("usage", `${shown}: ${id} ${v} does not fit in 32 bits`);
      }
    }
    dv.setUint16(off + 2, name.length, true);
    dv.setUint16(off + 40, target.length, true);
    if (isLink(e)) dv.setUint8(off, HARD_LINK); // with no attributes of its own: all zero
    else {
      dv.setUint8(off, TYPE_CODE[e.type]);
      dv.setUint32(off + 4, e.mode & 0o7777, true);
      dv.setBigInt64(off + 8, BigInt(Math.trunc(e.mtimeMs)), true);
      setU64(dv, off + 16, e.type === "file" ? e.size : 0);
      setU64(dv, off + 24, e.type === "file" ? e.offset : 0);
      dv.setUint32(off + 32, e.uid, true);
      dv.setUint32(off + 36, e.gid, true);
      if (version >= VERSION_META) {
        dv.setUint8(off + 1, SPECIAL.has(e.type) && e.type !== "fifo" ? FLAG_DEVICE : 0);
        dv.setUint16(off + 42, extra.count, true);
      }
    }
    bytes.set(name, off + FIXED);
    bytes.set(target, off + FIXED + name.length);
    bytes.set(extra.bytes, off + FIXED + name.length + target.length);
    off += FIXED + name.length + target.length + extra.bytes.length;
  }
  bytes.set(blake3(bytes.subarray(0, off)), off);
  return bytes;
}

/**
 * Reads the extra bytes of version 3 record `i` at `off` (see `encodeExtra`) into `e`;
 * returns where they end. Every length is checked against `end` before it is used.
 */
function decodeExtra(
  bytes: Uint8Array,
  off: number,
  end: number,
  e: FileEntry,
  flags: number,
  count: number,
): number {
  const what = `file table: ${e.path}`;
  const dv = view(bytes);
  const device = e.type === "chardev" || e.type === "blockdev";
  ensure(
    flags === (device ? FLAG_DEVICE : 0),
    flags & ~FLAG_DEVICE
      ? `${what}: unknown flags`
      : device
      ? `${what}: a device without a device number`
      : `${what}: a device number on a ${e.type === "dir" ? "directory" : e.type}`,
  );
  if (device) {
    ensure(off + 8 <= end, `${what}: device number is truncated`);
    e.major = dv.getUint32(off, true);
    e.minor = dv.getUint32(off + 4, true);
    off += 8;
  }
  const xattrs: Xattr[] = [];
  let names = 0, total = 0;
  for (let j = 0; j < count; j++) {
    ensure(off + 5 <= end, `${what}: xattr ${j} is truncated`);
    const nameLen = bytes[off];
    const valueLen = dv.getUint32(off + 1, true);
    ensure(nameLen >= 1, `${what}: xattr ${j} has an empty name`);
    ensure(valueLen <= XATTR_LIMITS.value, `${what}: xattr ${j} value longer than 64 KiB`);
    ensure(off + 5 + nameLen + valueLen <= end, `${what}: xattr ${j} is truncated`);
    names += nameLen + 1;
    total += nameLen + valueLen;
    ensure(
      names <= XATTR_LIMITS.names && total <= XATTR_LIMITS.total,
      `${what}: extended attributes larger than Linux keeps`,
    );
    const raw = bytes.subarray(off + 5, off + 5 + nameLen);
    let name: string;
    try {
      name = dec.decode(raw);
    } catch {
      throw new HexzError("corrupt", `${what}: xattr ${j} name is not UTF-8`);
    }
    ensure(!name.includes("\0"), `${what}: xattr ${j} name holds a NUL`);
    if (j > 0) {
      const c = cmp(xattrs[j - 1].name, name);
      ensure(c !== 0, `${what}: xattr ${JSON.stringify(name)} appears twice`);
      ensure(c < 0, `${what}: xattrs are not sorted by name`);
    }
    xattrs.push({ name, value: bytes.slice(off + 5 + nameLen, off + 5 + nameLen + valueLen) });
    off += 5 + nameLen + valueLen;
  }
  if (xattrs.length) e.xattrs = xattrs;
  return off;
}

/** Decodes and validates a file table; `diskSize` bounds every file's content range. */
export function decodeFileTable(bytes: Uint8Array, diskSize: number): FileEntry[] {
  const what = "file table";
  ensure(bytes.length >= HEAD + 32, `${what}: too short`);
  ensure(
    equalBytes(blake3(bytes.subarray(0, bytes.length - 32)), bytes.subarray(bytes.length - 32)),
    `${what}: checksum mismatch`,
  );
  ensure(equalBytes(bytes.subarray(0, 4), MAGIC), `${what}: bad magic`);
  const dv = view(bytes);
  const version = dv.getUint16(4, true);
  if (version < VERSION_PLAIN || version > VERSION_NAMES) {
    throw new HexzError(
      "format",
      `${what}: unsupported version ${version} (this hexz reads versions 1 to 4)`,
    );
  }
  const count = dv.getUint32(8, true);
  ensure(count <= (bytes.length - HEAD) / FIXED, `${what}: entry count ${count} too large`);
  const end = bytes.length - 32;
  const out: FileEntry[] = [];
  /** The record type of every path so far. */
  const codes = new Map<string, number>();
  /** The regular files so far (not hard links): what a hard link may name. */
  const files = new Map<string, FileEntry>();
  let off = HEAD;
  for (let i = 0; i < count; i++) {
    ensure(off + FIXED <= end, `${what}: entry ${i} is truncated`);
    const code = dv.getUint8(off);
    const link = code === HARD_LINK && version >= VERSION_LINKS;
    const type = link ? "file" : CODE_TYPE[code];
    ensure(
      type !== undefined && (version >= VERSION_META || !SPECIAL.has(type)),
      `${what}: entry ${i} has an unknown type`,
    );
    const nameLen = dv.getUint16(off + 2, true);
    const targetLen = dv.getUint16(off + 40, true);
    ensure(nameLen <= MAX_NAME && targetLen <= MAX_NAME, `${what}: entry ${i} name too long`);
    ensure(off + FIXED + nameLen + targetLen <= end, `${what}: entry ${i} is truncated`);
    let path: string;
    let target: string;
    try {
      path = dec.decode(bytes.subarray(off + FIXED, off + FIXED + nameLen));
      target = dec.decode(bytes.subarray(off + FIXED + nameLen, off + FIXED + nameLen + targetLen));
    } catch {
      throw new HexzError("corrupt", `${what}: entry ${i} name is not UTF-8`);
    }
    checkEntryPath(path, version >= VERSION_NAMES);
    const e: FileEntry = {
      path,
      type,
      mode: dv.getUint32(off + 4, true),
      mtimeMs: Number(dv.getBigInt64(off + 8, true)),
      size: getU64(dv, off + 16, `${what} entry ${i} size`),
      offset: getU64(dv, off + 24, `${what} entry ${i} offset`),
      uid: dv.getUint32(off + 32, true),
      gid: dv.getUint32(off + 36, true),
      target,
    };
    ensure(e.mode <= 0o7777, `${what}: ${path}: bad mode`);
    ensure(e.offset + e.size <= diskSize, `${what}: ${path}: content lies outside the disk stream`);
    ensure(
      (type === "file" && !link) || (e.size === 0 && e.offset === 0),
      `${what}: ${path}: only files have content`,
    );
    ensure(
      (type === "symlink" || link) === (targetLen > 0),
      `${what}: ${path}: ${link ? "hard link" : "symlink"} target mismatch`,
    );
    ensure(!codes.has(path), `${what}: ${path} appears twice`);
    // Every ancestor must be a directory listed earlier: nothing can be written through a
    // symlink or a file on extraction.
    const slash = path.lastIndexOf("/");
    if (slash > 0) {
      ensure(
        codes.get(path.slice(0, slash)) === TYPE_CODE.dir,
        `${what}: ${path}: parent is not a directory`,
      );
    }
    codes.set(path, code);
    const xattrCount = version >= VERSION_META ? dv.getUint16(off + 42, true) : 0;
    const extraEnd = version >= VERSION_META
      ? decodeExtra(
        bytes,
        off + FIXED + nameLen + targetLen,
        end,
        e,
        dv.getUint8(off + 1),
        xattrCount,
      )
      : off + FIXED + nameLen + targetLen;
    if (link) {
      // Another name of an earlier regular file (never of a link, a directory or a symlink, so
      // links form no chains or cycles), with no attributes of its own.
      const first = files.get(target);
      ensure(
        first !== undefined,
        `${what}: ${path}: hard link to ${JSON.stringify(target)}, not an earlier regular file`,
      );
      ensure(
        e.mode === 0 && e.mtimeMs === 0 && e.uid === 0 && e.gid === 0 && xattrCount === 0,
        `${what}: ${path}: a hard link has attributes of its own`,
      );
      out.push({ ...first, path, target: "", hardLinkTo: target });
    } else {
      if (type === "file") files.set(path, e);
      out.push(e);
    }
    off = extraEnd;
  }
  ensure(off === end, `${what}: trailing bytes after the entries`);
  return out;
}
