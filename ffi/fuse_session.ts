/**
 * A FUSE session spoken directly on /dev/fuse: mount(2) with the device's descriptor, then
 * read requests and write replies until the kernel ends the connection (unmount).
 *
 * Why the kernel protocol rather than libfuse through FFI: libfuse calls back into JavaScript
 * from its own threads, which block until the isolate gets to them, so every request pays two
 * thread hand-offs and replies cannot be sent from asynchronous code directly. Here requests
 * are read on the JavaScript thread and each is answered whenever its promise settles, so many
 * reads are in flight at once and nothing but libc is needed.
 *
 * The device is opened non-blocking. A `poll` on a worker thread (FFI `nonblocking`) waits for
 * requests without holding the event loop; then every queued request is read synchronously,
 * which also keeps `errno` readable. Mounting with mount(2) needs root (CAP_SYS_ADMIN).
 *
 * Never read the mount synchronously from the process that serves it: the read would wait for
 * a reply that this same thread must write.
 *
 * @module
 */
import { HexzError, osReason } from "../core/errors.ts";
import {
  type Attr,
  decodeGetxattrIn,
  decodeInHeader,
  decodeInitIn,
  decodeOpenIn,
  decodeReadIn,
  decodeSetattrIn,
  decodeWriteIn,
  type DirEntry,
  encodeAttrOut,
  encodeDirents,
  encodeEntryOut,
  encodeGetxattrOut,
  encodeInitOut,
  encodeOpenOut,
  encodeOutHeader,
  encodeStatfsOut,
  encodeWriteOut,
  FATTR,
  FOPEN_KEEP_CACHE,
  FuseErrno,
  INIT_FLAG,
  KERNEL_MAJOR,
  MAX_MINOR,
  MAX_WRITE,
  MIN_MINOR,
  OP,
  REQUEST_BUFFER,
  S_IFDIR,
  S_IFMT,
  SIZE,
  type StatFs,
} from "./fuse_proto.ts";
import {
  cString,
  ERRNO,
  errno,
  libc,
  MNT_DETACH,
  MS_NODEV,
  MS_NOSUID,
  MS_RDONLY,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  readKernelFile,
  strerror,
  writeKernelFile,
} from "./libc.ts";
import { expectString } from "../core/args.ts";

/** What a file system served over FUSE implements. Inode numbers are stable node ids; 1 is
 * the root. Handlers throw `FuseErrno` to answer with an errno. */
export interface FuseFileSystem {
  /** The attributes of `name` in directory `parent`, or null when there is no such name. */
  lookup(parent: number, name: string): Attr | null;
  getattr(ino: number): Attr;
  /** Every entry of a directory, `.` and `..` included, in a stable order. */
  readdir(ino: number): readonly DirEntry[];
  readlink(ino: number): string;
  /** Checks an open(2) with these flags; returns whether page-cache contents stay valid. */
  open(ino: number, flags: number): { keepCache: boolean };
  /** Up to `size` bytes at `offset` (fewer only at the end of the file). */
  read(ino: number, offset: number, size: number): Promise<Uint8Array>;
  /** Writes `data` at `offset`; returns how many bytes were written (all but at an end). */
  write(ino: number, offset: number, data: Uint8Array): Promise<number>;
  /** truncate(2)/ftruncate(2); returns the new attributes. */
  setSize(ino: number, size: number): Promise<Attr>;
  /** Makes completed writes to `ino` durable. */
  fsync(ino: number): Promise<void>;
  statfs(): StatFs;
  /** The extended attributes of `ino`, names unique ([] for none). */
  xattrs(ino: number): readonly { name: string; value: Uint8Array }[];
}

export interface FuseMountOptions {
  /** An existing directory. */
  mountpoint: string;
  /** First column of /proc/mounts (the archive path). */
  source: string;
  /** File system type shown as `fuse.<subtype>`. */
  subtype: string;
  readOnly: boolean;
  /** Let users other than the mounting one use the mount (root only). */
  allowOther: boolean;
  /** How long the kernel may cache names and attributes, in seconds. */
  cacheSeconds: number;
  /** Readahead of the mount (default 1 MiB, the largest request we take). */
  readaheadBytes?: number;
  /** Called for handler failures that are not a `FuseErrno` (they are answered with EIO). */
  onError?: (e: unknown) => void;
}

export interface FuseSession {
  readonly mountpoint: string;
  /** Settles when the kernel has ended the session (unmounted) and every reply is written. */
  readonly done: Promise<void>;
  /**
   * Unmounts (lazily if the mount is busy) and waits for the session to end, for at most
   * `waitMs`; then closes the device, which makes any remaining users see ENOTCONN.
   */
  unmount(waitMs?: number): Promise<void>;
}

/** The FUSE device. */
const DEVICE = "/dev/fuse";
const POLL_MS = 1000;

/** Mounts `fs` at `opts.mountpoint`; resolves once the kernel's INIT has been answered. */
export async function mountFuse(fs: FuseFileSystem, opts: FuseMountOptions): Promise<FuseSession> {
  const lib = libc();
  const fd = lib.open(cString(DEVICE), O_RDWR | O_NONBLOCK | O_CLOEXEC, 0);
  if (fd < 0) {
    const e = errno();
    throw new HexzError("unsupported", `${DEVICE}: ${strerror(e)} (is the fuse module loaded?)`);
  }
  const uid = lib.getuid();
  const gid = lib.getgid();
  const data = [
    `fd=${fd}`,
    `rootmode=${S_IFDIR.toString(8)}`,
    `user_id=${uid}`,
    `group_id=${gid}`,
    "default_permissions",
    ...(opts.allowOther ? ["allow_other"] : []),
  ].join(",");
  const flags = MS_NOSUID | MS_NODEV | (opts.readOnly ? MS_RDONLY : 0);
  const target = cString(opts.mountpoint);
  if (
    lib.mount(
      cString(opts.source),
      target,
      cString(`fuse.${opts.subtype}`),
      BigInt(flags),
      cString(data),
    ) !== 0
  ) {
    const e = errno();
    lib.close(fd);
    throw e === ERRNO.EPERM
      ? new HexzError("unsupported", `${opts.mountpoint}: mounting needs root (CAP_SYS_ADMIN)`)
      : new HexzError("io", `${opts.mountpoint}: cannot mount: ${strerror(e)}`);
  }
  const session = startSession(fd, fs, opts, target);
  try {
    await session.ready;
  } catch (e) {
    await session.unmount(1000);
    throw e;
  }
  setReadahead(opts.mountpoint, opts.readaheadBytes ?? MAX_WRITE);
  return session;
}

/**
 * The kernel offers a new FUSE connection 128 KiB of readahead and caps the INIT answer
 * there, so sequential reads arrive as 128 KiB requests. Root can raise it afterwards through
 * the connection's backing device in sysfs; elsewhere the default stays.
 */
function setReadahead(mountpoint: string, bytes: number) {
  const m = mountAt(mountpoint);
  if (!m) return;
  try {
    writeKernelFile(`/sys/class/bdi/${m.device}/read_ahead_kb`, `${bytes >> 10}`);
  } catch { /* not root, or sysfs is read-only here: keep the kernel's default */ }
}

interface Running extends FuseSession {
  ready: Promise<void>;
}

function startSession(
  fd: number,
  fs: FuseFileSystem,
  opts: FuseMountOptions,
  target: Uint8Array<ArrayBuffer>,
): Running {
  const lib = libc();
  const buf = new Uint8Array(REQUEST_BUFFER);
  const pollfd = new Uint8Array(8);
  const pollView = new DataView(pollfd.buffer);
  pollView.setInt32(0, fd, true);
  pollView.setInt16(4, POLLIN, true);
  const pending = new Set<Promise<void>>();
  const dec = new TextDecoder();
  const ttl = opts.cacheSeconds;
  let stopped = false;
  let closed = false;
  let initDone: { resolve: () => void; reject: (e: Error) => void };
  const ready = new Promise<void>((resolve, reject) => initDone = { resolve, reject });
  const report = opts.onError ?? ((e) => console.error(e));

  function closeDevice() {
    if (!closed) {
      closed = true;
      lib.close(fd);
    }
  }

  /** Writes one reply with writev(2): the header, then `parts` without copying them. */
  function reply(unique: bigint, error: number, parts: Uint8Array[] = []) {
    if (closed) return;
    const body = parts.filter((p) => p.length > 0);
    const len = SIZE.outHeader + body.reduce((n, p) => n + p.length, 0);
    const all = [encodeOutHeader(len, -error, unique), ...body];
    const iov = new BigUint64Array(all.length * 2);
    all.forEach((p, i) => {
      iov[2 * i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(p)));
      iov[2 * i + 1] = BigInt(p.length);
    });
    const n = Number(lib.writev(fd, iov, all.length));
    if (n < 0) {
      const e = errno();
      // ENOENT: the request was interrupted and is gone; ENODEV: the session has ended.
      if (e !== ERRNO.ENOENT && e !== ERRNO.ENODEV) {
        report(new HexzError("io", `${DEVICE}: reply failed: ${strerror(e)}`));
      }
    }
  }

  function fail(unique: bigint, e: unknown) {
    if (e instanceof FuseErrno) return reply(unique, e.errno);
    report(e);
    reply(unique, ERRNO.EIO);
  }

  /** Answers with what `fn` returns, now or when its promise settles. */
  function answer(unique: bigint, fn: () => Uint8Array[] | Promise<Uint8Array[]>) {
    let r: Uint8Array[] | Promise<Uint8Array[]>;
    try {
      r = fn();
    } catch (e) {
      return fail(unique, e);
    }
    if (!(r instanceof Promise)) return reply(unique, 0, r);
    const p: Promise<void> = r.then((parts) => reply(unique, 0, parts), (e) => fail(unique, e))
      .finally(() => pending.delete(p));
    pending.add(p);
  }

  function init(unique: bigint, dv: DataView) {
    const k = decodeInitIn(dv, SIZE.inHeader);
    if (k.major !== KERNEL_MAJOR || k.minor < MIN_MINOR) {
      reply(unique, ERRNO.EPROTO);
      initDone.reject(
        new HexzError(
          "unsupported",
          `kernel FUSE ${k.major}.${k.minor} is too old (needs ${KERNEL_MAJOR}.${MIN_MINOR})`,
        ),
      );
      return;
    }
    const want = INIT_FLAG.ASYNC_READ | INIT_FLAG.BIG_WRITES | INIT_FLAG.MAX_PAGES |
      INIT_FLAG.CACHE_SYMLINKS;
    reply(unique, 0, [
      encodeInitOut({
        major: KERNEL_MAJOR,
        minor: Math.min(k.minor, MAX_MINOR),
        maxReadahead: Math.min(k.maxReadahead, MAX_WRITE),
        flags: k.flags & want,
        maxBackground: 0,
        congestionThreshold: 0,
        maxWrite: MAX_WRITE,
        timeGran: 1,
        maxPages: MAX_WRITE / 4096,
      }),
    ]);
    initDone.resolve();
  }

  function dispatch(n: number) {
    const dv = new DataView(buf.buffer, 0, n);
    if (n < SIZE.inHeader) return report(new HexzError("io", `${DEVICE}: short request`));
    const h = decodeInHeader(dv);
    if (h.len !== n) {
      report(new HexzError("io", `${DEVICE}: request length ${h.len} but ${n} bytes read`));
      return reply(h.unique, ERRNO.EIO);
    }
    const at = SIZE.inHeader;
    const u = h.unique;
    const ino = h.nodeid;
    const need = (size: number) => {
      if (n < at + size) throw new FuseErrno(ERRNO.EINVAL, "request too short");
    };
    switch (h.opcode) {
      case OP.INIT:
        return init(u, dv);
      case OP.FORGET:
      case OP.BATCH_FORGET:
      case OP.INTERRUPT:
        // No reply: inodes are static, so lookup counts are not kept, and an interrupted
        // request is still answered when it completes.
        return;
      case OP.DESTROY:
        stopped = true;
        return reply(u, 0);
      case OP.LOOKUP:
        return answer(u, () => {
          const raw = buf.subarray(at, n);
          const end = raw.indexOf(0);
          const name = dec.decode(end >= 0 ? raw.subarray(0, end) : raw);
          return [encodeEntryOut(fs.lookup(ino, name), ttl)];
        });
      case OP.GETATTR:
        return answer(u, () => [encodeAttrOut(fs.getattr(ino), ttl)]);
      case OP.SETATTR:
        return answer(u, () => {
          need(SIZE.setattrIn);
          const s = decodeSetattrIn(dv, at);
          const ignorable = FATTR.FH | FATTR.LOCKOWNER;
          if ((s.valid & ~ignorable) !== FATTR.SIZE) throw new FuseErrno(ERRNO.EPERM);
          return fs.setSize(ino, s.size).then((a) => [encodeAttrOut(a, ttl)]);
        });
      case OP.READLINK:
        return answer(u, () => [new TextEncoder().encode(fs.readlink(ino))]);
      case OP.OPEN:
        return answer(u, () => {
          need(SIZE.openIn);
          const r = fs.open(ino, decodeOpenIn(dv, at).flags);
          return [encodeOpenOut(0, r.keepCache ? FOPEN_KEEP_CACHE : 0)];
        });
      case OP.OPENDIR:
        return answer(u, () => {
          if ((fs.getattr(ino).mode & S_IFMT) !== S_IFDIR) throw new FuseErrno(ERRNO.ENOTDIR);
          return [encodeOpenOut(0, 0)];
        });
      case OP.READ:
        return answer(u, () => {
          need(SIZE.readIn);
          const r = decodeReadIn(dv, at);
          return fs.read(ino, r.offset, r.size).then((d) => [d]);
        });
      case OP.WRITE:
        return answer(u, () => {
          need(SIZE.writeIn);
          const w = decodeWriteIn(dv, at);
          need(SIZE.writeIn + w.size);
          const data = buf.slice(at + SIZE.writeIn, at + SIZE.writeIn + w.size);
          return fs.write(ino, w.offset, data).then((done) => [encodeWriteOut(done)]);
        });
      case OP.READDIR:
        return answer(u, () => {
          need(SIZE.readIn);
          const r = decodeReadIn(dv, at);
          return [encodeDirents(fs.readdir(ino), r.offset, r.size)];
        });
      case OP.STATFS:
        return answer(u, () => [encodeStatfsOut(fs.statfs())]);
      case OP.FSYNC:
      case OP.FSYNCDIR:
        return answer(u, () => fs.fsync(ino).then(() => []));
      case OP.GETXATTR:
        return answer(u, () => {
          need(SIZE.getxattrIn + 1);
          const { size } = decodeGetxattrIn(dv, at);
          const raw = buf.subarray(at + SIZE.getxattrIn, n);
          const end = raw.indexOf(0);
          const name = dec.decode(end >= 0 ? raw.subarray(0, end) : raw);
          const x = fs.xattrs(ino).find((a) => a.name === name);
          if (!x) throw new FuseErrno(ERRNO.ENODATA);
          return [xattrReply(x.value, size)];
        });
      case OP.LISTXATTR:
        return answer(u, () => {
          need(SIZE.getxattrIn);
          const { size } = decodeGetxattrIn(dv, at);
          const names = fs.xattrs(ino).map((a) => `${a.name}\0`).join("");
          return [xattrReply(new TextEncoder().encode(names), size)];
        });
      case OP.RELEASE:
      case OP.RELEASEDIR:
      case OP.FLUSH:
      case OP.ACCESS:
        return reply(u, 0);
      default:
        // SETXATTR, REMOVEXATTR and everything we do not implement: the kernel remembers
        // ENOSYS for most opcodes and stops asking.
        return reply(u, ERRNO.ENOSYS);
    }
  }

  /**
   * The reply to GETXATTR or LISTXATTR as getxattr(2) and listxattr(2) answer: for a buffer
   * of `size` 0 the length alone; the bytes when they fit; ERANGE when they do not.
   */
  function xattrReply(value: Uint8Array, size: number): Uint8Array {
    if (size === 0) return encodeGetxattrOut(value.length);
    if (value.length > size) throw new FuseErrno(ERRNO.ERANGE);
    return value;
  }

  /** Reads every queued request; returns false once the kernel has ended the session. */
  function drain(): boolean {
    for (;;) {
      if (stopped || closed) return false;
      const n = Number(lib.read(fd, buf, BigInt(buf.length)));
      if (n >= 0) {
        dispatch(n);
        continue;
      }
      const e = errno();
      if (e === ERRNO.EAGAIN) return true;
      if (e === ERRNO.EINTR || e === ERRNO.ENOENT) continue;
      if (e !== ERRNO.ENODEV && e !== ERRNO.ECONNABORTED) {
        report(new HexzError("io", `${DEVICE}: read failed: ${strerror(e)}`));
      }
      return false;
    }
  }

  async function loop() {
    while (drain()) {
      const r = await lib.poll_wait(pollfd, 1n, POLL_MS);
      // POLLERR (connection gone) is seen by the next read as ENODEV, which ends the loop.
      if (r > 0 && pollView.getInt16(6, true) & (POLLHUP | POLLNVAL)) break;
    }
    stopped = true;
    initDone.reject(new HexzError("io", `${opts.mountpoint}: unmounted before it started`));
    while (pending.size) await Promise.allSettled([...pending]);
    closeDevice();
  }

  const done = loop();
  ready.catch(() => {});
  return {
    mountpoint: opts.mountpoint,
    ready,
    done,
    async unmount(waitMs = 5000) {
      if (!stopped) {
        if (await lib.umount2_wait(target, 0) !== 0) await lib.umount2_wait(target, MNT_DETACH);
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<void>((r) => timer = setTimeout(r, waitMs));
      await Promise.race([done, late]);
      clearTimeout(timer);
      stopped = true;
      while (pending.size) await Promise.allSettled([...pending]);
      closeDevice();
    },
  };
}

/** True for "Transport endpoint is not connected" (ENOTCONN): a FUSE mount whose server died. */
export function isNotConnected(e: unknown): boolean {
  return e instanceof Deno.errors.NotConnected ||
    (e instanceof Error && /os error 107\b/.test(e.message));
}

/**
 * Unmounts the FUSE mount at `mountpoint` from another process than the one serving it
 * (whose session then ends by itself): umount2(2) as root, `fusermount3 -u` for a user's
 * mount. A dead mount (server gone) is detached lazily, every layer of it. Returns whether
 * the mount was dead. Throws a HexzError naming the reason (busy, not mounted, not FUSE).
 */
export async function unmountFuse(mountpoint: string, lazy = false): Promise<{ stale: boolean }> {
  expectString(mountpoint, "unmount", "a directory");
  let abs: string;
  try {
    await Deno.stat(mountpoint);
    abs = await Deno.realPath(mountpoint);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new HexzError("not-found", `${mountpoint}: no such directory`);
    }
    if (!isNotConnected(e)) throw new HexzError("io", `${mountpoint}: ${osReason(e)}`);
    const path = mountpoint.startsWith("/") ? mountpoint : `${Deno.cwd()}/${mountpoint}`;
    await detachDead(path.replace(/\/+$/, "") || "/");
    return { stale: true };
  }
  const type = mountAt(abs)?.type;
  if (!type) throw new HexzError("not-found", `${mountpoint}: nothing is mounted here`);
  if (!type.startsWith("fuse")) {
    throw new HexzError("usage", `${mountpoint}: a ${type} mount, not a FUSE one`);
  }
  detach(abs, lazy);
  return { stale: false };
}

/** Lazily unmounts dead FUSE mounts at `path` until a live file system shows through. */
async function detachDead(path: string) {
  for (let i = 0; i < 64; i++) {
    detach(path, true);
    try {
      await Deno.stat(path);
      return;
    } catch (e) {
      if (!isNotConnected(e)) return;
    }
  }
}

function detach(path: string, lazy: boolean) {
  const lib = libc();
  if (lib.getuid() !== 0) return fusermountUnmount(path, lazy);
  if (lib.umount2(cString(path), lazy ? MNT_DETACH : 0) === 0) return;
  const e = errno();
  if (e === ERRNO.EBUSY) {
    throw new HexzError("io", `${path}: busy (a process is using it); try --lazy`);
  }
  if (e === ERRNO.EINVAL) throw new HexzError("usage", `${path}: not a mount point`);
  throw new HexzError("io", `${path}: cannot unmount: ${strerror(e)}`);
}

function fusermountUnmount(path: string, lazy: boolean) {
  let p: Deno.CommandOutput;
  try {
    p = new Deno.Command("fusermount3", {
      args: ["-u", ...(lazy ? ["-z"] : []), path],
      stdout: "null",
      stderr: "piped",
    }).outputSync();
  } catch (e) {
    throw new HexzError("io", `${path}: cannot run fusermount3: ${osReason(e)}`);
  }
  if (!p.success) {
    const why = new TextDecoder().decode(p.stderr).trim().split("\n")[0];
    throw new HexzError("io", `${path}: cannot unmount: ${why}`);
  }
}

/** A line of /proc/self/mountinfo: the device number and type of what is mounted. */
export interface MountEntry {
  /** `major:minor` of the mounted file system (FUSE connections are 0:N). */
  device: string;
  type: string;
  source: string;
}

/** What is mounted exactly at `path` (absolute, resolved; the topmost mount), or null. */
export function mountAt(path: string): MountEntry | null {
  const text = readKernelFile("/proc/self/mountinfo");
  // Spaces, tabs, newlines and backslashes in the fields are written as octal escapes.
  const unescape = (s: string) =>
    s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
  let found: MountEntry | null = null;
  for (const line of text.split("\n")) {
    // id parent major:minor root mountpoint options [optional...] - type source superoptions
    const [left, right] = line.split(" - ");
    if (!right) continue;
    const f = left.split(" ");
    const r = right.split(" ");
    if (f.length >= 5 && unescape(f[4]) === path) {
      found = { device: f[2], type: r[0], source: unescape(r[1] ?? "") };
    }
  }
  return found;
}
