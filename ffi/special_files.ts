/**
 * What Deno offers no call for and a root file system needs: extended attributes
 * (llistxattr/lgetxattr/lsetxattr, never following a symlink) and device nodes and FIFOs
 * (mknod), through libc. `build` reads xattrs with `readXattrs`; `extractTree` makes nodes
 * and sets xattrs with `specialFiles` (both injected by mod.ts, so the core needs no FFI).
 *
 * @module
 */
import { HexzError } from "../core/errors.ts";
import type { Xattr } from "../core/format/filetable.ts";
import type { SpecialFiles } from "../core/read/files.ts";
import { makedev } from "../core/format/devnum.ts";
import { cString, ERRNO, errno, libcIfAllowed, strerror } from "./libc.ts";

const dec = new TextDecoder("utf-8", { fatal: true });

/** File type bits of mknod(2)'s mode. */
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;

/** Calls `get(buf)` with a buffer that grows until the answer fits (ERANGE: it grew since the
 * size was asked for). Returns the bytes, or the errno of a failure. */
function sized(get: (buf: Uint8Array | null, size: number) => number): Uint8Array | number {
  for (let tries = 0; tries < 8; tries++) {
    const n = get(null, 0);
    if (n < 0) return errno();
    if (n === 0) return new Uint8Array(0); // the common case: one call
    const buf = new Uint8Array(n);
    const m = get(buf, n);
    if (m >= 0) return buf.subarray(0, m);
    if (errno() !== ERRNO.ERANGE) return errno();
  }
  return ERRNO.ERANGE;
}

/**
 * The extended attributes of `path` itself (a symlink's own, never its target's), sorted by
 * name; [] where the file system has none. Null where they cannot be read here: not Linux, or
 * no --allow-ffi (never prompted for). Throws for a file that cannot be read.
 */
export function readXattrs(path: string): Xattr[] | null {
  const lib = libcIfAllowed();
  if (!lib) return null;
  const p = cString(path);
  const list = sized((b, n) => Number(lib.llistxattr(p, b, BigInt(n))));
  if (typeof list === "number") {
    if (list === ERRNO.EOPNOTSUPP) return [];
    throw new HexzError("io", `${path}: cannot list extended attributes: ${strerror(list)}`);
  }
  const out: Xattr[] = [];
  let start = 0;
  for (let i = 0; i < list.length; i++) {
    if (list[i] !== 0) continue;
    const raw = list.subarray(start, i);
    start = i + 1;
    if (!raw.length) continue;
    let name: string;
    try {
      name = dec.decode(raw);
    } catch {
      throw new HexzError("unsupported", `${path}: an xattr name that is not UTF-8`);
    }
    const n = cString(name);
    const value = sized((b, size) => Number(lib.lgetxattr(p, n, b, BigInt(size))));
    if (value === ERRNO.ENODATA) continue; // removed since the list was taken
    if (typeof value === "number") {
      throw new HexzError("io", `${path}: cannot read xattr ${name}: ${strerror(value)}`);
    }
    out.push({ name, value: value.slice() });
  }
  return out.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/** The node and xattr calls of `extractTree`, or null without FFI (see `readXattrs`). */
export function specialFiles(): SpecialFiles | null {
  const lib = libcIfAllowed();
  if (!lib) return null;
  const failure = (r: number) => {
    if (r === 0) return null;
    const code = errno();
    return { errno: code, reason: strerror(code), permission: code === ERRNO.EPERM };
  };
  return {
    setXattr(path, name, value) {
      return failure(lib.lsetxattr(cString(path), cString(name), value, BigInt(value.length), 0));
    },
    makeNode(path, e) {
      if (!lib.mknod) {
        return { errno: ERRNO.ENOSYS, reason: "no mknod in this libc", permission: false };
      }
      const kind = e.type === "chardev" ? S_IFCHR : e.type === "blockdev" ? S_IFBLK : S_IFIFO;
      const dev = e.type === "fifo" ? 0n : makedev(e.major ?? 0, e.minor ?? 0);
      return failure(lib.mknod(cString(path), kind | (e.mode & 0o777), dev));
    },
  };
}
