/**
 * Writing tar entries: POSIX ustar headers, with a PAX extended header in front of an entry
 * whose name, link name, size, owner or time ustar cannot hold (a name over 100 bytes that no
 * split into prefix and name fits, sizes from 8 GiB, times before 1970 or with milliseconds),
 * and extended attributes as `SCHILY.xattr.NAME` records (GNU tar --xattrs reads them).
 * GNU tar reads them all (tests/tar_test.ts).
 *
 * @module
 */
import { BLOCK, encodeHeader, octalMax } from "./header.ts";
import { encodePax, XATTR_KEY } from "./pax.ts";
import { HexzError } from "../errors.ts";

export interface TarHeaderInput {
  path: string;
  type: "file" | "dir" | "symlink" | "hardlink" | "chardev" | "blockdev" | "fifo";
  mode: number;
  uid: number;
  gid: number;
  mtimeMs: number;
  size: number;
  /** A symlink's target or a hard link's first name. */
  target?: string;
  /** Device number (character and block devices). */
  major?: number;
  minor?: number;
  xattrs?: { name: string; value: Uint8Array }[];
}

const enc = new TextEncoder();
const TYPEFLAG = {
  file: "0",
  hardlink: "1",
  symlink: "2",
  chardev: "3",
  blockdev: "4",
  dir: "5",
  fifo: "6",
} as const;

/** `ms` as a PAX time: seconds with a fraction, sign in front. */
function paxTime(ms: number): string {
  const abs = Math.abs(ms);
  const frac = abs % 1000;
  return `${ms < 0 ? "-" : ""}${Math.floor(abs / 1000)}${
    frac ? "." + String(frac).padStart(3, "0").replace(/0+$/, "") : ""
  }`;
}

/** A split of `name` into ustar prefix (≤ 155 bytes) and name (≤ 100), or null. */
function splitName(b: Uint8Array): { name: Uint8Array; prefix?: Uint8Array } | null {
  if (b.length <= 100) return { name: b };
  for (let i = Math.max(0, b.length - 101); i < b.length && i <= 155; i++) {
    if (b[i] === 0x2f && i > 0 && b.length - i - 1 <= 100 && b.length - i - 1 > 0) {
      return { prefix: b.subarray(0, i), name: b.subarray(i + 1) };
    }
  }
  return null;
}

/** The header blocks of one entry (a PAX header first when needed); content and its padding
 * are the caller's. */
export function entryHeader(e: TarHeaderInput): Uint8Array {
  const path = enc.encode(e.type === "dir" ? `${e.path}/` : e.path);
  const target = enc.encode(e.target ?? "");
  const records: [string, string | Uint8Array][] = [];
  const split = splitName(path);
  if (!split) records.push(["path", e.type === "dir" ? `${e.path}/` : e.path]);
  if (target.length > 100) records.push(["linkpath", e.target!]);
  if (e.size > octalMax(12)) records.push(["size", String(e.size)]);
  if (e.uid > octalMax(8)) records.push(["uid", String(e.uid)]);
  if (e.gid > octalMax(8)) records.push(["gid", String(e.gid)]);
  const secs = Math.floor(e.mtimeMs / 1000);
  if (e.mtimeMs % 1000 !== 0 || secs < 0 || secs > octalMax(12)) {
    records.push(["mtime", paxTime(e.mtimeMs)]);
  }
  for (const x of e.xattrs ?? []) records.push([`${XATTR_KEY}${x.name}`, x.value]);
  const fit = (v: number, len: number) => (v >= 0 && v <= octalMax(len) ? v : 0);
  const device = e.type === "chardev" || e.type === "blockdev";
  if (device && !((e.major ?? 0) <= octalMax(8) && (e.minor ?? 0) <= octalMax(8))) {
    throw new HexzError(
      "unsupported",
      `${e.path}: device ${e.major},${e.minor}: a number too large for a tar header`,
    );
  }
  const main = encodeHeader({
    name: split?.name ?? path.subarray(0, 100),
    prefix: split?.prefix,
    mode: e.mode & 0o7777,
    uid: fit(e.uid, 8),
    gid: fit(e.gid, 8),
    size: fit(e.size, 12),
    mtime: fit(secs, 12),
    typeflag: TYPEFLAG[e.type],
    linkname: target.length <= 100 ? target : target.subarray(0, 100),
    ...(device ? { devmajor: e.major ?? 0, devminor: e.minor ?? 0 } : {}),
  });
  if (!records.length) return main;
  const data = encodePax(records);
  const pax = encodeHeader({
    name: enc.encode("PaxHeaders/entry"),
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: data.length,
    mtime: fit(secs, 12),
    typeflag: "x",
  });
  const out = new Uint8Array(BLOCK + padded(data.length) + BLOCK);
  out.set(pax, 0);
  out.set(data, BLOCK);
  out.set(main, BLOCK + padded(data.length));
  return out;
}

/** `n` rounded up to whole blocks. */
export function padded(n: number): number {
  return Math.ceil(n / BLOCK) * BLOCK;
}

/** The end-of-archive marker: two zero blocks. */
export const END_OF_ARCHIVE = new Uint8Array(2 * BLOCK);
