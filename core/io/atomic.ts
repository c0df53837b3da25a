/**
 * Crash-safe output files: data goes to a temporary file beside the target, which is fsynced
 * and then moved into place in one step. A crash leaves only the temporary file (named
 * `<target>.tmp-<random>`), never a half-written target; an interrupted command line deletes
 * it (temporaries.ts).
 *
 * @module
 */
import { writeSync } from "node:fs";
import { HexzError, osReason } from "../errors.ts";
import { trackTemporary } from "./temporaries.ts";

export interface AtomicFile {
  readonly file: Deno.FsFile;
  readonly tempPath: string;
  readonly path: string;
  /**
   * Tells how many more bytes reached the file (by any writer). Every SYNC_AHEAD bytes it
   * starts an fdatasync in the background, so the page cache is written back while the work
   * goes on and `commit` finds little left to flush.
   */
  wrote(bytes: number): void;
  /** fsyncs, moves the file into place (refusing to replace unless `force`), fsyncs the dir. */
  commit(): Promise<void>;
  /** Closes and deletes the temporary file. Safe after commit (then it does nothing). */
  abort(): Promise<void>;
}

/**
 * Bytes written between background fdatasyncs. On the 1 GiB OS image (218 MB of data),
 * extract's commit took 137-158 ms without them and 47-64 ms with one every 8 to 64 MiB, of
 * which the final fsync was under 10 ms (the rest is replacing the previous output); the
 * writes themselves were no slower (2026-11-23).
 */
const SYNC_AHEAD = 32 * 1024 * 1024;

/** The directory part of a path ("." for a bare name, "/" at the root). */
export function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : path.slice(0, i);
}

/** Eight random hex digits, for names of temporary files and directories. */
export function randomSuffix(): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(4)),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

function refuse(path: string): never {
  throw new HexzError("exists", `${path}: already exists (use --force to overwrite)`);
}

/**
 * What an output may not be, checked before anything is written: an existing file without
 * `force`; something other than a regular file (a device, a directory, a symbolic link: moving
 * a new file into place would replace it, not write into it); one of `inputs` (the files the
 * output is made from), which the move would destroy.
 */
function checkOutput(path: string, force: boolean, inputs: readonly string[]) {
  let st: Deno.FileInfo;
  try {
    st = Deno.lstatSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw new HexzError("io", `${path}: ${osReason(e)}`);
  }
  if (!force) refuse(path);
  if (st.isSymlink) {
    throw new HexzError("exists", `${path}: is a symbolic link (give the file it points to)`);
  }
  if (!st.isFile) throw new HexzError("exists", `${path}: exists and is not a regular file`);
  for (const input of inputs) {
    try {
      const i = Deno.statSync(input);
      if (i.dev === st.dev && i.ino === st.ino) {
        throw new HexzError(
          "exists",
          input === path
            ? `${path}: is also an input: write the output elsewhere`
            : `${path}: is the same file as the input ${input}`,
        );
      }
    } catch (e) {
      if (e instanceof HexzError) throw e; // an input that vanished is not this output
    }
  }
}

/**
 * Creates the temporary file for `path` (see checkOutput for what `path` may not be).
 * `inputs` are the files the output is made from.
 */
export async function createAtomicFile(
  path: string,
  force = false,
  inputs: readonly string[] = [],
): Promise<AtomicFile> {
  checkOutput(path, force, inputs);
  const tempPath = `${path}.tmp-${randomSuffix()}`;
  // Tracked before it exists: an interrupt while the open is still settling (the file is
  // already there) must find it.
  const untrack = trackTemporary(tempPath, "file");
  let file: Deno.FsFile;
  try {
    file = await Deno.open(tempPath, { write: true, read: true, createNew: true, mode: 0o644 });
  } catch (e) {
    untrack();
    if (e instanceof Deno.errors.NotFound && !isDirectory(dirOf(path))) {
      throw new HexzError("not-found", `${dirOf(path)}: no such directory`);
    }
    throw new HexzError("io", `${path}: cannot create: ${osReason(e)}`);
  }
  let state: "open" | "done" = "open";
  let unsynced = 0;
  let syncing: Promise<void> | null = null;
  let syncError: Error | null = null;
  return {
    file,
    tempPath,
    path,
    wrote(bytes) {
      unsynced += bytes;
      if (unsynced < SYNC_AHEAD || syncing || state !== "open") return;
      unsynced = 0;
      syncing = file.syncData().then(
        () => void (syncing = null),
        (e) => {
          syncError ??= e;
          syncing = null;
        },
      );
    },
    async commit() {
      if (state !== "open") throw new Error("atomic file already finished");
      try {
        await syncing;
        if (syncError) throw syncError;
        await file.sync();
        file.close();
        state = "done";
        if (force) {
          await Deno.rename(tempPath, path);
        } else {
          // link(2) fails if the target appeared meanwhile: no silent clobbering.
          try {
            await Deno.link(tempPath, path);
          } catch (e) {
            if (e instanceof Deno.errors.AlreadyExists) refuse(path);
            throw e;
          }
          await Deno.remove(tempPath);
        }
        syncDir(dirOf(path));
      } catch (e) {
        await Deno.remove(tempPath).catch(() => {});
        if (e instanceof HexzError) throw e;
        throw new HexzError("io", `${path}: cannot write: ${osReason(e)}`);
      } finally {
        untrack();
      }
    },
    async abort() {
      if (state === "done") return;
      state = "done";
      await syncing;
      try {
        file.close();
      } catch { /* already closed */ }
      await Deno.remove(tempPath).catch(() => {});
      untrack();
    },
  };
}

/** fsync a directory so a rename in it is durable (best effort: some file systems refuse). */
export function syncDir(dir: string) {
  try {
    const d = Deno.openSync(dir, { read: true });
    try {
      d.syncSync();
    } finally {
      d.close();
    }
  } catch { /* not supported here; the rename itself is still atomic */ }
}

/** Writes all of `data` at the file's current position; `what` names the file in the error
 * (a full disk: `x.img: cannot write: no space left on device`). */
export function writeAll(file: Deno.FsFile, data: Uint8Array, what: string): Promise<void> {
  // Synchronous writes: Deno's async file ops each cost a trip through a thread pool, which
  // measurably dominated extract; our writers are sequential anyway.
  try {
    let done = 0;
    while (done < data.length) done += file.writeSync(data.subarray(done));
    return Promise.resolve();
  } catch (e) {
    return Promise.reject(new HexzError("io", `${what}: cannot write: ${osReason(e)}`));
  }
}

/**
 * Writes `length` bytes of `data` from `from` at `position` of the descriptor `fd` (a
 * positioned write, whatever else writes to the file); `what` names the file in the error.
 */
export function writeAllAt(
  fd: number,
  data: Uint8Array,
  from: number,
  length: number,
  position: number,
  what: string,
): void {
  let done = 0;
  try {
    while (done < length) done += writeSync(fd, data, from + done, length - done, position + done);
  } catch (e) {
    throw new HexzError("io", `${what}: cannot write: ${osReason(e)}`);
  }
}
