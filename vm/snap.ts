/**
 * Snapshots a running VM that `bootVm` started: over its QMP socket the VM is stopped (QEMU
 * drains and flushes its disk writes into the overlay first), its RAM and device state are
 * saved with a migration to a file (`exec:cat > FILE`), and a thin archive of the VM's base is
 * written whose disk stream is the disk as the VM sees it (base + overlay) and whose memory
 * stream is that saved state, with the machine recorded in its metadata. The VM then goes on
 * (or quits). `bootVm` of the snapshot resumes it.
 *
 * @module
 */
import { HexzError, osReason } from "../core/errors.ts";
import { randomSuffix } from "../core/io/atomic.ts";
import { trackTemporary } from "../core/io/temporaries.ts";
import { commitOverlay } from "../core/overlay/commit.ts";
import { openOverlay } from "../core/overlay/overlay.ts";
import type { PackProgress, PackResult } from "../core/pack/pack.ts";
import type { Archive } from "../core/read/archive.ts";
import type { CodecName } from "../core/format/constants.ts";
import { type VmInfo, vmInfoPath } from "./boot.ts";
import { checkVmConfig, VM_METADATA_KEY } from "./qemu.ts";
import { awaitMigration, connectQmp, type Qmp } from "./qmp.ts";

export interface SnapOptions {
  /** The snapshot to write. */
  output: string;
  /** Opens the VM's base archive (default: `open` from net/open.ts, without a password). */
  open?: (path: string) => Promise<Archive>;
  /** Quit the VM after the snapshot instead of letting it go on. */
  quit?: boolean;
  force?: boolean;
  message?: string;
  compression?: CodecName;
  level?: number;
  /** Give up saving the state after this long (default 10 minutes); the VM goes on. */
  timeoutMs?: number;
  /** Aborting it gives up (rejecting with a HexzError "interrupted"): the VM goes on as if the
   * snapshot had failed, and the state file is removed; the caller deletes the unfinished
   * output (core/io/temporaries.ts) before it exits. */
  signal?: AbortSignal;
  onProgress?: (p: PackProgress) => void;
}

export interface SnapResult extends PackResult {
  /** Bytes of the saved RAM and device state (the memory stream). */
  stateBytes: number;
  /** The VM's run state when the snapshot began ("running", "paused", ...). */
  wasRunning: boolean;
}

/** The description `bootVm` left beside the QMP socket, checked. */
export async function readVmInfo(qmp: string): Promise<VmInfo> {
  const path = vmInfoPath(qmp);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new HexzError(
        "not-found",
        `${qmp}: not the QMP socket of a VM started by 'hexz boot --qmp' (no ${path})`,
      );
    }
    throw new HexzError("io", `${path}: ${osReason(e)}`);
  }
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(text);
  } catch {
    throw new HexzError("corrupt", `${path}: not JSON`);
  }
  if (
    typeof v !== "object" || v === null || typeof v.archive !== "string" ||
    typeof v.overlay !== "string" || typeof v.pid !== "number"
  ) {
    throw new HexzError("corrupt", `${path}: not a hexz VM description`);
  }
  return {
    archive: v.archive,
    overlay: v.overlay,
    pid: v.pid,
    config: checkVmConfig(v.config, path),
  };
}

/** `'...'` for sh, whatever the path holds. */
function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** Saves the stopped VM's state into `file` by a migration; waits until it is complete. */
async function saveState(qmp: Qmp, file: string, timeoutMs: number): Promise<void> {
  await qmp.execute("migrate", { uri: `exec:cat > ${shellQuote(file)}` });
  const until = Date.now() + timeoutMs;
  await awaitMigration(
    qmp,
    (detail) => new HexzError("io", `QEMU could not save the VM's state${detail}`),
    async () => {
      if (Date.now() > until) {
        await qmp.execute("migrate_cancel").catch(() => {});
        throw new HexzError("io", `saving the VM's state took over ${timeoutMs / 1000} s`);
      }
    },
  );
}

/**
 * Snapshots the VM behind the QMP socket `qmpPath` into `opts.output` (see the module doc).
 * Whatever fails, a VM that was running is let run again (unless `quit`) and the state file
 * is removed.
 */
export async function snapVm(qmpPath: string, opts: SnapOptions): Promise<SnapResult> {
  const info = await readVmInfo(qmpPath);
  const qmp = await connectQmp(qmpPath);
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new HexzError("io", "interrupted"));
    opts.signal?.addEventListener("abort", onAbort);
    if (opts.signal?.aborted) onAbort();
  });
  aborted.catch(() => {});
  /** `p`, unless the caller gives up first (`p` is then left to fail on its own, silently). */
  const unlessAborted = <T>(p: Promise<T>): Promise<T> => {
    p.catch(() => {});
    return Promise.race([p, aborted]);
  };
  let wasRunning = false;
  let stateFile: string | null = null;
  let untrack = () => {};
  let ok = false;
  try {
    const status = await qmp.execute("query-status") as { running?: boolean; status?: string };
    wasRunning = status?.running === true;
    if (!wasRunning && status?.status !== "paused") {
      throw new HexzError("usage", `${qmpPath}: the VM is ${status?.status}: cannot snapshot it`);
    }
    if (wasRunning) await qmp.execute("stop");
    stateFile = `${opts.output}.tmp-state-${randomSuffix()}`;
    untrack = trackTemporary(stateFile, "file");
    await unlessAborted(saveState(qmp, stateFile, opts.timeoutMs ?? 600_000));
    const stateBytes = (await Deno.stat(stateFile)).size;
    const openArchive = opts.open ??
      (async (p: string) => (await import("../net/open.ts")).open(p));
    const base = await openArchive(info.archive);
    try {
      // The VM is stopped and QEMU flushed its writes: the overlay's log is complete.
      const ov = await openOverlay(info.overlay, base, { readOnly: true, writerPaused: true });
      try {
        const r = await unlessAborted(commitOverlay(base, ov, {
          output: opts.output,
          memory: stateFile,
          basePath: info.archive,
          metadata: { [VM_METADATA_KEY]: info.config },
          message: opts.message,
          compression: opts.compression,
          level: opts.level,
          force: opts.force,
          onProgress: opts.onProgress,
        }));
        ok = true;
        return { ...r, stateBytes, wasRunning };
      } finally {
        await ov.close();
      }
    } finally {
      base.close();
    }
  } finally {
    if (stateFile) await Deno.remove(stateFile).catch(() => {});
    untrack();
    opts.signal?.removeEventListener("abort", onAbort);
    try {
      // A migration given up on is cancelled, else QEMU would not let the VM run.
      if (!ok) await qmp.execute("migrate_cancel").catch(() => {});
      if (opts.quit && ok) await qmp.execute("quit");
      else if (wasRunning) await qmp.execute("cont");
    } finally {
      qmp.close();
    }
  }
}
