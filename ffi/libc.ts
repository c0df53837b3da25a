/**
 * The few libc calls that Deno does not offer (the FUSE session, holes of sparse files, reads
 * that never wait for the disk), bound through `Deno.dlopen("libc.so.6")`.
 *
 * The library is opened on first use, so importing this module needs no `--allow-ffi`.
 * `errno` is thread-local: it is meaningful only right after a synchronous call made on the
 * JavaScript thread. Calls marked `nonblocking` run on a worker thread; their errno is lost,
 * so only calls whose failure needs no diagnosis are made that way (`poll`, `umount2`).
 *
 * @module
 */
import { HexzError } from "../core/errors.ts";
import { concatBytes } from "../core/format/bytes.ts";

/** errno values of Linux x86-64 and aarch64 (asm-generic/errno*.h). */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  EBADF: 9,
  EAGAIN: 11,
  EACCES: 13,
  EBUSY: 16,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  EFBIG: 27,
  ENOSPC: 28,
  EROFS: 30,
  ERANGE: 34,
  ENOSYS: 38,
  ENODATA: 61,
  EPROTO: 71,
  EOPNOTSUPP: 95,
  ECONNABORTED: 103,
  ENOTCONN: 107,
} as const;

/** open(2) flags. */
export const O_RDONLY = 0o0;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;

/** lseek(2) whence values of Linux: the next data at or after an offset, the next hole. */
export const SEEK_END = 2;
export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;

/** preadv2(2) flag: fail with EAGAIN instead of waiting for the disk. */
export const RWF_NOWAIT = 8;
/** posix_fadvise(2) advice: drop the file's clean pages from the page cache. */
export const POSIX_FADV_DONTNEED = 4;

/** mount(2) flags and umount2(2) flags. */
export const MS_RDONLY = 1;
export const MS_NOSUID = 2;
export const MS_NODEV = 4;
export const MNT_DETACH = 2;

/** poll(2) events; `struct pollfd` is { int fd; short events; short revents; } (8 bytes). */
export const POLLIN = 0x001;
export const POLLERR = 0x008;
export const POLLHUP = 0x010;
export const POLLNVAL = 0x020;

const SYMBOLS = {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  lseek: { parameters: ["i32", "i64", "i32"], result: "i64" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  writev: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  poll_wait: {
    name: "poll",
    parameters: ["buffer", "u64", "i32"],
    result: "i32",
    nonblocking: true,
  },
  mount: { parameters: ["buffer", "buffer", "buffer", "u64", "buffer"], result: "i32" },
  umount2: { parameters: ["buffer", "i32"], result: "i32" },
  umount2_wait: {
    name: "umount2",
    parameters: ["buffer", "i32"],
    result: "i32",
    nonblocking: true,
  },
  strerror: { parameters: ["i32"], result: "pointer" },
  getuid: { parameters: [], result: "u32" },
  llistxattr: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
  lgetxattr: { parameters: ["buffer", "buffer", "buffer", "usize"], result: "isize" },
  lsetxattr: { parameters: ["buffer", "buffer", "buffer", "usize", "i32"], result: "i32" },
  // A symbol of its own since glibc 2.33 (before, a macro over __xmknod).
  mknod: { parameters: ["buffer", "u32", "u64"], result: "i32", optional: true },
  getgid: { parameters: [], result: "u32" },
  __errno_location: { parameters: [], result: "pointer" },
  // glibc 2.26 and later; optional so that libc still loads without it.
  preadv2: { parameters: ["i32", "buffer", "i32", "i64", "i32"], result: "isize", optional: true },
  posix_fadvise: { parameters: ["i32", "i64", "i64", "i32"], result: "i32", optional: true },
} as const satisfies Deno.ForeignLibraryInterface;

export type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let lib: Deno.DynamicLibrary<typeof SYMBOLS> | null = null;

/** The bound symbols; opens libc on first call. */
export function libc(): Libc {
  if (!lib) {
    try {
      lib = Deno.dlopen("libc.so.6", SYMBOLS);
    } catch (e) {
      if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
        throw new HexzError("usage", "FUSE needs the --allow-ffi permission");
      }
      throw new HexzError("unsupported", `cannot load libc.so.6: ${(e as Error).message}`);
    }
  }
  return lib.symbols;
}

/**
 * The bound symbols where using them needs no asking: on Linux, with --allow-ffi already
 * granted (never prompted for) and libc loadable; null otherwise, for callers that then do
 * without (read holes, wait for the disk).
 */
export function libcIfAllowed(): Libc | null {
  if (Deno.build.os !== "linux") return null;
  try {
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
    return libc();
  } catch {
    return null;
  }
}

/** errno of the last synchronous libc call made on this thread. */
export function errno(): number {
  const p = libc().__errno_location();
  return p ? new Deno.UnsafePointerView(p).getInt32() : 0;
}

/** The C library's text for an errno value ("Device or resource busy"). */
export function strerror(code: number): string {
  const p = libc().strerror(code);
  return p ? Deno.UnsafePointerView.getCString(p) : `errno ${code}`;
}

const enc = new TextEncoder();

/** A NUL-terminated copy of `s`, for `const char *` parameters. */
export function cString(s: string): Uint8Array<ArrayBuffer> {
  const b = enc.encode(s);
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

/**
 * Reads a small kernel file (/proc, /sys) through libc. Deno asks for --allow-all before it
 * reads /proc or /sys itself; code that may use FFI can read them anyway, so it does so here.
 */
export function readKernelFile(path: string): string {
  const lib = libc();
  const fd = lib.open(cString(path), O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) throw new HexzError("io", `${path}: ${strerror(errno())}`);
  const parts: Uint8Array[] = [];
  try {
    for (;;) {
      const b = new Uint8Array(65536);
      const n = Number(lib.read(fd, b, BigInt(b.length)));
      if (n < 0) {
        const e = errno();
        if (e === ERRNO.EINTR) continue;
        throw new HexzError("io", `${path}: ${strerror(e)}`);
      }
      if (n === 0) break;
      parts.push(b.subarray(0, n));
    }
  } finally {
    lib.close(fd);
  }
  return new TextDecoder().decode(concatBytes(...parts));
}

/** Writes a short value to a kernel file (/sys) through libc; see `readKernelFile`. */
export function writeKernelFile(path: string, text: string): void {
  const lib = libc();
  const fd = lib.open(cString(path), O_WRONLY | O_CLOEXEC, 0);
  if (fd < 0) throw new HexzError("io", `${path}: ${strerror(errno())}`);
  try {
    const b = enc.encode(text);
    if (Number(lib.write(fd, b, BigInt(b.length))) !== b.length) {
      throw new HexzError("io", `${path}: ${strerror(errno())}`);
    }
  } finally {
    lib.close(fd);
  }
}
