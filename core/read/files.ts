/**
 * Directory archives: list the file table, read files by name, and restore the tree with its
 * modes, times, device nodes, FIFOs and extended attributes (nodes, FIFOs and xattrs through
 * calls the caller gives, `SpecialFiles`, since Deno has none). Extraction never writes
 * outside the target directory: paths are validated when the table is decoded (relative, no
 * `..`, every ancestor a directory listed earlier), existing symlinks in the way are replaced
 * rather than followed, hard links are made to files this extraction wrote, and symlinks are
 * created after all files (with their owners and times, set on the links themselves).
 *
 * @module
 */
import { HexzError, osReason } from "../errors.ts";
import { decodeFileTable, type FileEntry } from "../format/filetable.ts";
import { dirOf, randomSuffix, writeAll } from "../io/atomic.ts";
import { trackTemporary } from "../io/temporaries.ts";
import type { Archive } from "./archive.ts";
import { FEATURE } from "../format/constants.ts";
import { writeFilesByBlock } from "./file_blocks.ts";
import { selectEntries } from "./select.ts";
import { closeSync, lchownSync, lutimesSync, openSync } from "node:fs";
import { expectArchive, expectOptions, expectString } from "../args.ts";

const tables = new WeakMap<Archive, FileEntry[]>();

/** The archive's file table, or null for image archives. */
export async function fileTable(a: Archive): Promise<FileEntry[] | null> {
  expectArchive(a, "fileTable");
  const cached = tables.get(a);
  if (cached) return cached;
  const bytes = await a.section("fileTable");
  if (!bytes) return null;
  let t: FileEntry[];
  try {
    t = decodeFileTable(bytes, a.size("disk"));
  } catch (e) {
    // The table's own errors do not know which archive they are about.
    if (e instanceof HexzError) {
      throw new HexzError(e.code, `${a.source.name}: ${e.message}`, { cause: e });
    }
    throw e;
  }
  tables.set(a, t);
  return t;
}

/** The entry for `path` (with or without a leading `/`), or throws not-found. */
export async function findFile(a: Archive, path: string): Promise<FileEntry> {
  expectArchive(a, "findFile");
  expectString(path, "findFile: path");
  const t = await fileTable(a);
  if (!t) throw new HexzError("usage", `${a.source.name}: not a directory archive`);
  const p = path.replace(/^\/+/, "").replace(/\/+$/, "");
  const e = t.find((x) => x.path === p);
  if (!e) throw new HexzError("not-found", `${a.source.name}: no file '${path}' in the archive`);
  return e;
}

/** Reads `length` bytes at `offset` of a file entry's content. */
export async function readFile(
  a: Archive,
  e: FileEntry,
  offset = 0,
  length = e.size - offset,
): Promise<Uint8Array> {
  expectArchive(a, "readFile");
  expectOptions(e, "readFile: entry", true);
  if (e.type !== "file") throw new HexzError("usage", `${e.path}: not a regular file`);
  if (offset < 0 || length < 0 || offset + length > e.size) {
    throw new HexzError(
      "usage",
      `${e.path}: range ${offset}+${length} is outside the file (${e.size} bytes)`,
    );
  }
  return await a.read("disk", e.offset + offset, length);
}

function lstatOrNull(p: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(p);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** Why a node or an xattr could not be made; `permission`: EPERM, what needs root. */
export interface SpecialFailure {
  errno: number;
  reason: string;
  permission: boolean;
}

/**
 * The calls Deno lacks (ffi/special_files.ts): both act on `path` itself, never through a
 * symlink, and return null or why they failed.
 */
export interface SpecialFiles {
  /** lsetxattr(2). */
  setXattr(path: string, name: string, value: Uint8Array): SpecialFailure | null;
  /** mknod(2) of a device node or FIFO entry, with its permission bits. */
  makeNode(path: string, e: FileEntry): SpecialFailure | null;
}

export interface ExtractTreeOptions {
  force?: boolean;
  /**
   * Makes device nodes and FIFOs and sets extended attributes; without it (mod.ts gives it
   * where --allow-ffi is granted) they are reported through `onWarning`, nodes as not made.
   */
  special?: SpecialFiles | null;
  /**
   * Told once per kind, after the extraction, of what could not be restored: device nodes
   * (also counted in the result's `notCreated`) and xattrs by namespace. GNU tar's rules: a
   * node it cannot make is an error (its exit status says so), an xattr it cannot set a
   * warning.
   */
  onWarning?: (message: string) => void;
  /** Restore only these paths and what is under them (selectEntries), not the whole tree. */
  paths?: readonly string[];
  onProgress?: (done: number, total: number) => void;
  /** Threads that decode and write files, this one included (local, unencrypted archives;
   * default: one per core, started once 8 MiB has been decoded here). */
  workers?: number;
}

export interface ExtractTreeResult {
  entries: number;
  bytes: number;
  /** Device nodes and FIFOs that could not be made (the rest of the tree is restored). */
  notCreated: number;
}

/**
 * Restores the tree of a directory archive under `outDir`. File system calls are synchronous:
 * each of Deno's asynchronous ones costs a trip through its thread pool (about 60 us here
 * against 5 us), and a file takes seven or more of them.
 */
export async function extractTree(
  a: Archive,
  outDir: string,
  opts: ExtractTreeOptions = {},
): Promise<ExtractTreeResult> {
  expectArchive(a, "extractTree");
  expectString(outDir, "extractTree: output directory");
  expectOptions(opts, "extractTree: options");
  const table = await fileTable(a);
  if (!table) throw new HexzError("usage", `${a.source.name}: not a directory archive`);
  if (opts.paths !== undefined && !Array.isArray(opts.paths)) {
    throw new HexzError("usage", "extractTree: paths must be an array of strings");
  }
  for (const p of opts.paths ?? []) expectString(p, "extractTree: path");
  const t = opts.paths?.length ? selectEntries(table, opts.paths) : table;
  // Where a backslash separates paths, such a name would land elsewhere than it says.
  const odd = Deno.build.os === "windows" && t.find((e) => e.path.includes("\\"));
  if (odd) {
    throw new HexzError(
      "unsupported",
      `${JSON.stringify(odd.path)}: a name with a backslash cannot be extracted on Windows`,
    );
  }
  const root = outDir.replace(/\/+$/, "") || "/";
  const st = lstatOrNull(root);
  if (st && !st.isDirectory) {
    throw new HexzError("exists", `${root}: exists and is not a directory`);
  }
  // Into a new or empty directory nothing can be in the way but what this extract made.
  let empty = true;
  if (st) {
    for (const _ of Deno.readDirSync(root)) {
      empty = false;
      break;
    }
  }
  if (!empty && !opts.force) {
    throw new HexzError(
      "exists",
      `${root}: directory is not empty (use --force to extract into it)`,
    );
  }
  if (!empty) return await extractTreeInto(a, t, root, root, false, opts);
  // A new or empty target: the tree is built in a staging directory and moved into place
  // when complete, so a failed extract (a full disk, a damaged block) leaves no half tree. A
  // new target is staged beside it and renamed in one step; an existing empty one (perhaps a
  // mount point, so never replaced) gets a staging directory inside, whose entries are moved
  // up at the end.
  const inside = st !== null;
  if (!inside) Deno.mkdirSync(dirOf(root), { recursive: true });
  const staging = inside
    ? `${root}/.hexz-extract-${randomSuffix()}`
    : `${root}.tmp-${randomSuffix()}`;
  Deno.mkdirSync(staging, { mode: inside ? 0o700 : 0o777 });
  const untrack = trackTemporary(staging, "dir");
  try {
    const r = await extractTreeInto(a, t, staging, root, true, opts);
    if (!inside) Deno.renameSync(staging, root);
    else {
      for (const e of Deno.readDirSync(staging)) {
        Deno.renameSync(`${staging}/${e.name}`, `${root}/${e.name}`);
      }
      Deno.removeSync(staging);
    }
    return r;
  } catch (e) {
    try {
      Deno.removeSync(staging, { recursive: true });
    } catch { /* the error that brought us here matters more */ }
    if (e instanceof HexzError) {
      throw new HexzError(e.code, e.message.replaceAll(staging, root), { cause: e });
    }
    throw new HexzError("io", `${root}: cannot extract: ${osReason(e)}`);
  } finally {
    untrack();
  }
}

/** Writes the tree `t` under `dest` (`root` names it in messages); `empty`: nothing is in
 * the way there. */
async function extractTreeInto(
  a: Archive,
  t: FileEntry[],
  dest: string,
  root: string,
  empty: boolean,
  opts: ExtractTreeOptions,
): Promise<ExtractTreeResult> {
  if (!empty) Deno.mkdirSync(root, { recursive: true });
  const asRoot = runningAsRoot();
  const special = opts.special ?? null;
  const problems = createProblems();
  const attrs = (p: string, e: FileEntry) => setAttributes(p, e, asRoot, special, problems);
  // Each content once: hard links are made to the file that holds it.
  const files = t.filter((e) => e.type === "file" && !e.hardLinkTo);
  const total = files.reduce((n, e) => n + e.size, 0);
  let bytes = 0;
  const place = (e: FileEntry): string => {
    const p = `${dest}/${e.path}`;
    if (empty) return p;
    const old = lstatOrNull(p);
    // Replace whatever is in the way unless it is the directory we want: never follow it.
    if (old && !(e.type === "dir" && old.isDirectory)) Deno.removeSync(p, { recursive: true });
    return p;
  };
  const makeDir = (e: FileEntry) => {
    const p = place(e);
    try {
      Deno.mkdirSync(p, { recursive: false });
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    }
    Deno.chmodSync(p, 0o700);
  };
  const finished = (e: FileEntry) => {
    bytes += e.size;
    opts.onProgress?.(bytes, total);
    attrs(`${dest}/${e.path}`, e);
  };
  if (a.source.path !== undefined && !(a.header.features & FEATURE.encrypted)) {
    // A local archive: every directory first, then the files as one walk over the blocks.
    for (const e of t) if (e.type === "dir") makeDir(e);
    await writeFilesByBlock(a, files, {
      create(e) {
        const p = place(e);
        try {
          return { path: p, fd: openSync(p, "wx", 0o600) };
        } catch (err) {
          throw new HexzError("io", `${p}: cannot create: ${osReason(err)}`);
        }
      },
      finish(e, fd) {
        closeSync(fd);
        finished(e);
      },
    }, { workers: opts.workers });
  } else {
    for (const e of t) {
      if (e.type === "dir") makeDir(e);
      else if (e.type === "file" && !e.hardLinkTo) {
        const p = place(e); // once: it clears what is in the way
        const f = Deno.openSync(p, { write: true, createNew: true, mode: 0o600 });
        try {
          const piece = 4 * 1024 * 1024;
          for (let off = 0; off < e.size; off += piece) {
            await writeAll(f, await readFile(a, e, off, Math.min(piece, e.size - off)), p);
          }
        } finally {
          f.close();
        }
        finished(e);
      }
    }
  }
  for (const e of t) {
    if (e.type !== "chardev" && e.type !== "blockdev" && e.type !== "fifo") continue;
    const p = place(e);
    const failed = special ? special.makeNode(p, e) : null;
    if (!special || failed) problems.node(e, failed);
    else attrs(p, e);
  }
  for (const e of t) {
    if (!e.hardLinkTo) continue;
    const p = place(e);
    try {
      Deno.linkSync(`${dest}/${e.hardLinkTo}`, p);
    } catch (err) {
      throw new HexzError(
        "io",
        `${p}: cannot make a hard link to ${e.hardLinkTo}: ${osReason(err)}`,
      );
    }
  }
  for (const e of t) {
    if (e.type !== "symlink") continue;
    const p = place(e);
    Deno.symlinkSync(e.target, p);
    setLinkAttributes(p, e, asRoot, special, problems);
  }
  // Directories last, deepest first, so their times are not disturbed by their contents.
  for (const e of [...t].reverse()) {
    if (e.type !== "dir") continue;
    attrs(`${dest}/${e.path}`, e);
  }
  problems.report(opts.onWarning ?? (() => {}));
  return { entries: t.length, bytes, notCreated: problems.notCreated };
}

type Problems = ReturnType<typeof createProblems>;

/**
 * What could not be restored, gathered so that each kind is told once: nodes by type, xattrs
 * by namespace (`security`, `trusted`, `user`, `system`), each with the first reason seen.
 */
function createProblems() {
  const kinds = new Map<string, { count: number; reason: string }>();
  let notCreated = 0;
  const add = (key: string, failure: SpecialFailure | null) => {
    const k = kinds.get(key) ?? { count: 0, reason: "" };
    k.count++;
    k.reason ||= !failure
      ? "needs the --allow-ffi permission"
      : failure.permission
      ? `${failure.reason} (needs root)`
      : failure.reason;
    kinds.set(key, k);
  };
  return {
    get notCreated() {
      return notCreated;
    },
    node(e: FileEntry, failure: SpecialFailure | null) {
      notCreated++;
      add(`node ${e.type}`, failure);
    },
    xattr(name: string, failure: SpecialFailure | null) {
      add(`xattr ${name.split(".")[0]}`, failure);
    },
    report(warn: (message: string) => void) {
      const nodes: Record<string, [string, string]> = {
        chardev: ["character device", "character devices"],
        blockdev: ["block device", "block devices"],
        fifo: ["FIFO", "FIFOs"],
      };
      for (const [key, { count, reason }] of kinds) {
        const [what, name] = key.split(" ");
        warn(
          what === "node"
            ? `${count} ${nodes[name][count === 1 ? 0 : 1]} not created: ${reason}`
            : `${name}.* extended attributes not set (${count} of them): ${reason}`,
        );
      }
    },
  };
}

/** The extended attributes of `e` on `p` itself; failures go to `problems`. */
function setXattrs(
  p: string,
  e: FileEntry,
  special: SpecialFiles | null,
  problems: Problems,
): void {
  for (const x of e.xattrs ?? []) {
    const failed = special ? special.setXattr(p, x.name, x.value) : null;
    if (!special || failed) problems.xattr(x.name, failed);
  }
}

/**
 * Mode, owner (as root), extended attributes and modification time of a restored file,
 * directory or node. The xattrs come after chown and chmod: a change of owner clears
 * `security.capability`, and a POSIX ACL set after chmod keeps its own mask.
 */
function setAttributes(
  p: string,
  e: FileEntry,
  asRoot: boolean,
  special: SpecialFiles | null,
  problems: Problems,
): void {
  // The owner first: chown clears the setuid and setgid bits that chmod then sets.
  if (asRoot) {
    try {
      Deno.chownSync(p, e.uid, e.gid);
    } catch {
      // An owner that cannot be given here: the file keeps ours.
    }
  }
  Deno.chmodSync(p, e.mode);
  setXattrs(p, e, special, problems);
  Deno.utimeSync(p, e.mtimeMs / 1000, e.mtimeMs / 1000);
}

/**
 * Owner (as root) and modification time of a restored symlink, set on the link itself: Deno's
 * own calls follow links, node:fs has the `l` variants (lchown, lutimes). A symlink has no mode
 * of its own on Linux.
 */
function setLinkAttributes(
  p: string,
  e: FileEntry,
  asRoot: boolean,
  special: SpecialFiles | null,
  problems: Problems,
): void {
  if (asRoot) {
    try {
      lchownSync(p, e.uid, e.gid);
    } catch {
      // As for files: the link keeps our owner.
    }
  }
  setXattrs(p, e, special, problems);
  lutimesSync(p, e.mtimeMs / 1000, e.mtimeMs / 1000);
}

/** Whether owners can be restored: only as root, and only when `--allow-sys=uid` lets us ask. */
function runningAsRoot(): boolean {
  try {
    return Deno.uid() === 0;
  } catch {
    return false;
  }
}
