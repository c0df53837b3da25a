/**
 * The file table of directory archives: one record per directory, file, symlink and hard
 * link, in depth-first order with names sorted within each directory (so every directory
 * precedes its contents). File contents live in the disk stream at `offset` for `size` bytes.
 * Stored as the archive's file-table section (feature bit 3). See docs/FORMAT.md, "File
 * table".
 *
 * A table without hard links is written as version 1, which every hexz with directory
 * archives reads; hard links need version 2 (record type 4), which older readers refuse as an
 * unknown version.
 *
 * @module
 */
import { ensure, HexzError } from "../errors.ts";
import { blake3 } from "../hash/blake3.ts";
import { equalBytes, getU64, setU64, view } from "./bytes.ts";

export type FileType = "file" | "dir" | "symlink";
const TYPE_CODE: Record<FileType, number> = { file: 1, dir: 2, symlink: 3 };
const CODE_TYPE: Record<number, FileType> = { 1: "file", 2: "dir", 3: "symlink" };
/** Record type of a hard link (version 2): another name of an earlier regular file. */
const HARD_LINK = 4;

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
}

const MAGIC = new Uint8Array([0x48, 0x58, 0x46, 0x54]); // "HXFT"
/** Tables without hard links are written as version 1; version 2 adds record type 4. */
const VERSION_PLAIN = 1;
const VERSION_LINKS = 2;
const HEAD = 16;
const FIXED = 48;
const MAX_NAME = 4096;

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

/** Throws unless `p` is a safe relative path (nothing that could escape an extraction dir). */
export function checkEntryPath(p: string): void {
  const parts = p.split("/");
  if (
    !p || p.startsWith("/") || p.includes("\0") || p.includes("\\") ||
    parts.some((c) => c === "" || c === "." || c === "..")
  ) {
    throw new HexzError("corrupt", `file table: unsafe path ${JSON.stringify(p)}`);
  }
}

/** Encodes `entries` as version 1, or as version 2 when one of them is a hard link. */
export function encodeFileTable(entries: FileEntry[]): Uint8Array {
  const isLink = (e: FileEntry) => e.type === "file" && !!e.hardLinkTo;
  const names = entries.map((e) =>
    [enc.encode(e.path), enc.encode(isLink(e) ? e.hardLinkTo : e.target)] as const
  );
  const size = HEAD + names.reduce((n, [a, b]) => n + FIXED + a.length + b.length, 0) + 32;
  const bytes = new Uint8Array(size);
  const dv = view(bytes);
  bytes.set(MAGIC, 0);
  dv.setUint16(4, entries.some(isLink) ? VERSION_LINKS : VERSION_PLAIN, true);
  dv.setUint32(8, entries.length, true);
  let off = HEAD;
  entries.forEach((e, i) => {
    const [name, target] = names[i];
    // Fields too small for what is given would be written wrapped: a table that reads back
    // as something else. Refused instead, naming the entry.
    const shown = e.path.length > 80 ? `${e.path.slice(0, 77)}...` : e.path;
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
      setU64(dv, off + 16, e.size);
      setU64(dv, off + 24, e.offset);
      dv.setUint32(off + 32, e.uid, true);
      dv.setUint32(off + 36, e.gid, true);
    }
    bytes.set(name, off + FIXED);
    bytes.set(target, off + FIXED + name.length);
    off += FIXED + name.length + target.length;
  });
  bytes.set(blake3(bytes.subarray(0, off)), off);
  return bytes;
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
  if (version !== VERSION_PLAIN && version !== VERSION_LINKS) {
    throw new HexzError(
      "format",
      `${what}: unsupported version ${version} (this hexz reads versions 1 and 2)`,
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
    ensure(type !== undefined, `${what}: entry ${i} has an unknown type`);
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
    checkEntryPath(path);
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
    if (link) {
      // Another name of an earlier regular file (never of a link, a directory or a symlink, so
      // links form no chains or cycles), with no attributes of its own.
      const first = files.get(target);
      ensure(
        first !== undefined,
        `${what}: ${path}: hard link to ${JSON.stringify(target)}, not an earlier regular file`,
      );
      ensure(
        e.mode === 0 && e.mtimeMs === 0 && e.uid === 0 && e.gid === 0,
        `${what}: ${path}: a hard link has attributes of its own`,
      );
      out.push({ ...first, path, target: "", hardLinkTo: target });
    } else {
      if (type === "file") files.set(path, e);
      out.push(e);
    }
    off += FIXED + nameLen + targetLen;
  }
  ensure(off === end, `${what}: trailing bytes after the entries`);
  return out;
}
