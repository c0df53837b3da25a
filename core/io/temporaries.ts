/**
 * The temporary files and directories this process is writing (an archive before it is moved
 * into place, a tree being staged), so that an interrupted command can delete them instead of
 * leaving gigabytes behind under a `.tmp-` name. The core only keeps the list; whoever owns the
 * process decides when to call `removeTemporaries` (the command line does on SIGINT, SIGTERM
 * and SIGHUP, see cli/interrupt.ts; a program using the library can do the same).
 *
 * @module
 */

const live = new Map<string, "file" | "dir">();

/** Records `path` as temporary until the returned function is called (after it was moved
 * into place or deleted). */
export function trackTemporary(path: string, kind: "file" | "dir"): () => void {
  live.set(path, kind);
  return () => void live.delete(path);
}

/** The temporary paths being written now. */
export function temporaries(): string[] {
  return [...live.keys()];
}

/**
 * Deletes every temporary file and directory still being written, synchronously (it runs
 * from a signal handler just before the process exits); returns the paths it removed. Work
 * still writing to them fails afterwards, so call it only when giving up.
 */
export function removeTemporaries(): string[] {
  const removed: string[] = [];
  for (const [path, kind] of live) {
    try {
      Deno.removeSync(path, { recursive: kind === "dir" });
      removed.push(path);
    } catch { /* gone already (moved into place or removed): nothing to clean */ }
  }
  live.clear();
  return removed;
}
