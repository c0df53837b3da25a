/**
 * An archive as a file system: the root holds `disk` and `memory` (each only when its stream
 * is not empty) as regular files of the stream's logical size, and for directory archives
 * the tree of the file table under `files/`, with its modes, owners, times and symlinks, its
 * device nodes and FIFOs (with their device numbers; opening one is the kernel's business) and
 * its extended attributes (getxattr/listxattr, read-only); the names of a hard-linked file are
 * one inode, whose link count is their number.
 *
 * Read-only unless mounted read-write: then writes to `disk` and `memory` go to an overlay
 * (4 KiB blocks in a separate file, see core/overlay/overlay.ts) and reads see them. Their
 * sizes are fixed, like a block device: writing past the end fails with ENOSPC and truncation
 * to another size with EPERM. The `files/` tree stays read-only.
 *
 * @module
 */
import { HexzError, LOCKED, osReason } from "../core/errors.ts";
import type { FileEntry } from "../core/format/filetable.ts";
import {
  defaultOverlayPath,
  openOverlay,
  type Overlay,
  type OverlayCompactOptions,
} from "../core/overlay/overlay.ts";
import type { Archive } from "../core/read/archive.ts";
import { fileTable } from "../core/read/files.ts";
import {
  type Attr,
  type DirEntry,
  FUSE_ROOT_ID,
  FuseErrno,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  type StatFs,
} from "../ffi/fuse_proto.ts";
import {
  type FuseFileSystem,
  type FuseSession,
  isNotConnected,
  mountAt,
  mountFuse,
} from "../ffi/fuse_session.ts";
import { ERRNO, libc } from "../ffi/libc.ts";
import { open } from "../net/open.ts";
import { cachedReader } from "../ffi/cached_read.ts";
import { expectOptions, expectString } from "../core/args.ts";

type Stream = "disk" | "memory";

interface Node {
  attr: Attr;
  parent: number;
  /** Directories: name to inode, and the listing READDIR returns. */
  children?: Map<string, number>;
  list?: DirEntry[];
  stream?: Stream;
  file?: FileEntry;
  target?: string;
  /** Tree entries: their extended attributes (a hard link's are its file's). */
  xattrs?: FileEntry["xattrs"];
}

export interface ArchiveFsOptions {
  /** Where writes to `disk` and `memory` go; null for a read-only view. */
  overlay: Overlay | null;
  writable: boolean;
  /** Owner of every inode; for tree entries, overrides the recorded owner when given. */
  uid?: number;
  gid?: number;
}

const O_ACCMODE = 3;
const O_RDONLY = 0;

/** Builds the inode table of `archive` and the handlers that serve it. */
export async function archiveFileSystem(
  archive: Archive,
  opts: ArchiveFsOptions,
): Promise<FuseFileSystem> {
  const nodes = new Map<number, Node>();
  const table = await fileTable(archive);
  const ownUid = opts.uid ?? libc().getuid();
  const ownGid = opts.gid ?? libc().getgid();
  const created = archive.header.createdAtMs;
  const reader = opts.overlay ?? archive;
  let nextIno = FUSE_ROOT_ID;

  const dir = (parent: number, perm: number, mtimeMs: number, uid = ownUid, gid = ownGid) => {
    const ino = nextIno++;
    nodes.set(ino, {
      attr: { ino, mode: S_IFDIR | perm, nlink: 2, uid, gid, size: 0, mtimeMs },
      parent: parent || ino,
      children: new Map(),
    });
    return ino;
  };
  const link = (parent: number, name: string, ino: number) => {
    const p = nodes.get(parent)!;
    p.children!.set(name, ino);
    if ((nodes.get(ino)!.attr.mode & S_IFMT) === S_IFDIR) p.attr.nlink++;
  };

  const root = dir(0, 0o555, created);
  for (const stream of ["disk", "memory"] as const) {
    const size = archive.size(stream);
    if (size === 0) continue;
    const ino = nextIno++;
    const mode = S_IFREG | (opts.writable ? 0o644 : 0o444);
    nodes.set(ino, {
      attr: { ino, mode, nlink: 1, uid: ownUid, gid: ownGid, size, mtimeMs: created },
      parent: root,
      stream,
    });
    link(root, stream, ino);
  }
  if (table) {
    const top = dir(root, 0o555, created);
    link(root, "files", top);
    const byPath = new Map<string, number>([["", top]]);
    /** The inode of each regular file, which its hard links share. */
    const fileIno = new Map<string, number>();
    for (const e of table) {
      const cut = e.path.lastIndexOf("/");
      const parent = byPath.get(e.path.slice(0, Math.max(cut, 0)));
      // decodeFileTable guarantees every ancestor is a directory listed earlier.
      if (parent === undefined) throw new HexzError("corrupt", `file table: orphan '${e.path}'`);
      const uid = opts.uid ?? e.uid;
      const gid = opts.gid ?? e.gid;
      let ino: number;
      if (e.type === "dir") {
        ino = dir(parent, e.mode & 0o7777, e.mtimeMs, uid, gid);
        nodes.get(ino)!.xattrs = e.xattrs;
        byPath.set(e.path, ino);
      } else if (e.type === "chardev" || e.type === "blockdev" || e.type === "fifo") {
        // Shown as they are (ls -l, stat); opening one is the kernel's business, not ours.
        ino = nextIno++;
        const kind = e.type === "chardev" ? S_IFCHR : e.type === "blockdev" ? S_IFBLK : S_IFIFO;
        const rdev = e.type === "fifo" ? undefined : { major: e.major ?? 0, minor: e.minor ?? 0 };
        nodes.set(ino, {
          attr: {
            ino,
            mode: kind | (e.mode & 0o7777),
            nlink: 1,
            uid,
            gid,
            size: 0,
            mtimeMs: e.mtimeMs,
            rdev,
          },
          parent,
          xattrs: e.xattrs,
        });
      } else if (e.hardLinkTo) {
        // decodeFileTable guarantees the first name is a regular file listed earlier.
        const first = fileIno.get(e.hardLinkTo);
        if (first === undefined) {
          throw new HexzError("corrupt", `file table: '${e.path}' links to no file`);
        }
        ino = first;
        nodes.get(ino)!.attr.nlink++;
      } else {
        ino = nextIno++;
        const isFile = e.type === "file";
        nodes.set(ino, {
          attr: {
            ino,
            mode: (isFile ? S_IFREG : S_IFLNK) | (isFile ? e.mode & 0o7777 : 0o777),
            nlink: 1,
            uid,
            gid,
            size: isFile ? e.size : new TextEncoder().encode(e.target).length,
            mtimeMs: e.mtimeMs,
          },
          parent,
          file: isFile ? e : undefined,
          target: isFile ? undefined : e.target,
          xattrs: e.xattrs,
        });
        if (isFile) fileIno.set(e.path, ino);
      }
      link(parent, e.path.slice(cut + 1), ino);
    }
  }
  for (const [ino, n] of nodes) {
    if (!n.children) continue;
    n.list = [
      { name: ".", ino, mode: S_IFDIR },
      { name: "..", ino: n.parent, mode: S_IFDIR },
      ...[...n.children].map(([name, child]) => ({
        name,
        ino: child,
        mode: nodes.get(child)!.attr.mode,
      })),
    ];
  }
  const totalBytes = [...nodes.values()].reduce(
    (s, n) => s + (n.stream ? n.attr.size : 0),
    0,
  );

  const node = (ino: number): Node => {
    const n = nodes.get(ino);
    if (!n) throw new FuseErrno(ERRNO.ENOENT);
    return n;
  };

  return {
    lookup(parent, name) {
      const p = node(parent);
      if (!p.children) throw new FuseErrno(ERRNO.ENOTDIR);
      const ino = p.children.get(name);
      return ino === undefined ? null : nodes.get(ino)!.attr;
    },
    getattr: (ino) => node(ino).attr,
    xattrs: (ino) => node(ino).xattrs ?? [],
    readdir(ino) {
      const n = node(ino);
      if (!n.list) throw new FuseErrno(ERRNO.ENOTDIR);
      return n.list;
    },
    readlink(ino) {
      const n = node(ino);
      if (n.target === undefined) throw new FuseErrno(ERRNO.EINVAL);
      return n.target;
    },
    open(ino, flags) {
      const n = node(ino);
      if (n.children) throw new FuseErrno(ERRNO.EISDIR);
      if ((flags & O_ACCMODE) !== O_RDONLY && !(opts.writable && n.stream)) {
        throw new FuseErrno(ERRNO.EROFS);
      }
      // Tree files share the disk stream, which a read-write mount can change under them.
      return { keepCache: !(opts.writable && n.file) };
    },
    async read(ino, offset, size) {
      const n = node(ino);
      const length = Math.max(0, Math.min(size, n.attr.size - offset));
      if (length === 0) return new Uint8Array(0);
      if (n.stream) return await reader.read(n.stream, offset, length);
      if (n.file) return await reader.read("disk", n.file.offset + offset, length);
      throw new FuseErrno(ERRNO.EINVAL);
    },
    async write(ino, offset, data) {
      const n = node(ino);
      if (!opts.overlay || !opts.writable || !n.stream) throw new FuseErrno(ERRNO.EROFS);
      if (offset >= n.attr.size) throw new FuseErrno(ERRNO.ENOSPC);
      const part = data.subarray(0, Math.min(data.length, n.attr.size - offset));
      await opts.overlay.write(n.stream, offset, part);
      return part.length;
    },
    setSize(ino, size) {
      const n = node(ino);
      if (!opts.writable) return Promise.reject(new FuseErrno(ERRNO.EROFS));
      if (!n.stream || size !== n.attr.size) return Promise.reject(new FuseErrno(ERRNO.EPERM));
      return Promise.resolve(n.attr);
    },
    async fsync() {
      if (opts.overlay && opts.writable) await opts.overlay.flush();
    },
    statfs: (): StatFs => ({ blocks: Math.ceil(totalBytes / 4096), files: nodes.size }),
  };
}

export interface MountArchiveOptions {
  mountpoint: string;
  /** Accept writes to `disk` and `memory`, kept in the overlay. */
  readWrite?: boolean;
  /** Overlay file; default: the archive path with `.hxo` for `.hxz`. A read-only mount shows
   * an overlay only when one is named here. */
  overlay?: string;
  /** Decompressed-block cache of the archive, in bytes. */
  cacheBytes?: number;
  /** The password of an encrypted archive; without it an encrypted archive is refused
   * before anything is mounted. */
  password?: string;
  uid?: number;
  gid?: number;
  /** Unexpected errors while serving (the request is answered with EIO). */
  onError?: (e: unknown) => void;
  /** How the overlay of a read-write mount compacts (default: on open and while written,
   * when mostly dead; see openOverlay). */
  compact?: OverlayCompactOptions;
}

export interface MountedArchive {
  readonly mountpoint: string;
  readonly overlay: Overlay | null;
  /** Settles when the mount has gone away (unmounted by anyone) and state is flushed. */
  readonly done: Promise<void>;
  /** Unmounts (lazily if busy), flushes the overlay and closes everything. */
  close(): Promise<void>;
}

export { defaultOverlayPath };

/** Checks that `mountpoint` is a directory we can mount on; returns its absolute path. */
export async function checkMountpoint(mountpoint: string): Promise<string> {
  expectString(mountpoint, "mount point", "a directory");
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(mountpoint);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new HexzError("not-found", `${mountpoint}: no such directory`);
    }
    if (isNotConnected(e)) {
      throw new HexzError(
        "io",
        `${mountpoint}: stale FUSE mount (its server is gone); run: hexz unmount ${mountpoint}`,
      );
    }
    throw new HexzError("io", `${mountpoint}: ${osReason(e)}`);
  }
  if (!st.isDirectory) throw new HexzError("usage", `${mountpoint}: not a directory`);
  const abs = await Deno.realPath(mountpoint);
  // Mounting over a FUSE mount (a live one, or one whose server was just killed and the
  // kernel has not yet noticed) would stack on it: the next unmount would bring it back.
  const under = mountAt(abs);
  if (under?.type.startsWith("fuse")) {
    throw new HexzError(
      "exists",
      `${mountpoint}: already a FUSE mount point (${under.source}); run: hexz unmount ${mountpoint}`,
    );
  }
  return abs;
}

/** Opens the archive (and overlay) at `path` and mounts it; resolves once the mount is live. */
export async function mountArchive(
  path: string,
  opts: MountArchiveOptions,
): Promise<MountedArchive> {
  expectString(path, "mountArchive");
  expectOptions(opts, "mountArchive: options", true);
  const mountpoint = await checkMountpoint(opts.mountpoint);
  // Reads that must wait for the disk do so off the event loop, which serves the kernel.
  const archive = await open(path, {
    cacheBytes: opts.cacheBytes,
    cachedRead: cachedReader() ?? undefined,
    password: opts.password,
  });
  if (archive.header.encryption && !archive.keys) {
    archive.close();
    throw new HexzError("password", `${path}: ${LOCKED} (MountArchiveOptions.password)`);
  }
  let overlay: Overlay | null = null;
  let session: FuseSession;
  try {
    if (opts.readWrite) {
      overlay = await openOverlay(opts.overlay ?? defaultOverlayPath(path), archive, {
        ...opts.compact,
        create: true,
      });
    } else if (opts.overlay) {
      overlay = await openOverlay(opts.overlay, archive, { readOnly: true });
    }
    const fs = await archiveFileSystem(archive, {
      overlay,
      writable: !!opts.readWrite,
      uid: opts.uid,
      gid: opts.gid,
    });
    session = await mountFuse(fs, {
      mountpoint,
      // The mount's source as /proc/mounts shows it: the archive's real path, or its URL.
      source: /^[a-z][a-z0-9+.-]*:\/\//i.test(path) ? path : await Deno.realPath(path),
      subtype: "hexz",
      readOnly: !opts.readWrite,
      allowOther: libc().getuid() === 0,
      cacheSeconds: opts.readWrite ? 1 : 3600,
      onError: opts.onError,
    });
  } catch (e) {
    await overlay?.close();
    archive.close();
    throw e;
  }
  let finished: Promise<void> | null = null;
  const finish = () =>
    finished ??= (async () => {
      try {
        await overlay?.flush();
      } finally {
        await overlay?.close();
        archive.close();
      }
    })();
  const done = session.done.then(finish);
  return {
    mountpoint,
    overlay,
    done,
    async close() {
      await session.unmount();
      await finish();
    },
  };
}
