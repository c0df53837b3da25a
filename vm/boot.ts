/**
 * Boots a VM from an archive: the archive's disk stream is served by hexz's NBD server on a
 * private Unix socket, writes go to an overlay (the archive never changes), and
 * qemu-system-x86_64 runs until the guest ends. An archive made by `snapVm` (a memory stream
 * and the machine in its metadata) is resumed: QEMU waits for a saved state, which is streamed
 * to it from the archive over a second private socket, and the guest continues where it was
 * saved (unless `fresh`). Another archive's memory stream is left alone.
 *
 * While it runs, a file beside the QMP socket (`vmInfoPath`) says which archive and overlay
 * the VM runs on and with which machine, for `snapVm`.
 *
 * @module
 */
import { removeStaleSocket } from "../serve/socket.ts";
import { HexzError, osReason } from "../core/errors.ts";
import { createAtomicFile, dirOf, writeAll } from "../core/io/atomic.ts";
import {
  openOverlay,
  type OverlayCompactOptions,
  overlayWritten,
} from "../core/overlay/overlay.ts";
import type { Archive } from "../core/read/archive.ts";
import { serveNbd } from "../serve/nbd.ts";
import {
  type Accel,
  checkVmConfig,
  chooseAccel,
  DEFAULT_MACHINE,
  DEFAULT_MEMORY_MIB,
  qemuArgs,
  startQemu,
  VM_METADATA_KEY,
  type VmConfig,
} from "./qemu.ts";
import { awaitMigration, connectQmp, delay, type Qmp } from "./qmp.ts";

export interface BootOptions {
  /** The overlay that receives the VM's writes (created if missing). */
  overlay: string;
  /** The archive's path as recorded for `snapVm` (default: as it was opened). */
  archivePath?: string;
  /** RAM in MiB (default 512, or the snapshot's). */
  memoryMiB?: number;
  /** Virtual CPUs (default 1, or the snapshot's). */
  cpus?: number;
  kernel?: string;
  initrd?: string;
  append?: string;
  /** Further arguments for QEMU, after hexz's. */
  extra?: string[];
  /** Serve QMP here too (for the user and for `snapVm`). */
  qmp?: string;
  /** Console on stdio without a display (`-nographic`); else QEMU's display and the serial
   * console with its monitor on stdio. */
  nographic?: boolean;
  /** "auto" (default): KVM where it works, else TCG. */
  accel?: Accel | "auto";
  /** Boot the disk even when the archive holds a saved VM state (which is then not loaded). */
  fresh?: boolean;
  /** QEMU's stdio (default "inherit": the console is the caller's terminal). */
  stdio?: "inherit" | "null";
  /** Kill QEMU after this long (default: never). */
  timeoutMs?: number;
  /** Aborting it ends QEMU (SIGTERM, then SIGKILL after 5 s). */
  signal?: AbortSignal;
  /** Told once QEMU runs (and, when resuming, once the saved state is loaded). */
  onStart?: (info: BootInfo) => void;
  /** The QEMU binary (default qemu-system-x86_64). */
  qemu?: string;
  /** How the overlay compacts (default: on open and while the VM writes, when mostly dead;
   * see openOverlay). */
  compact?: OverlayCompactOptions;
}

export interface BootInfo {
  accel: Accel;
  /** Why that accelerator. */
  reason: string;
  /** Whether a saved state was loaded. */
  resumed: boolean;
  pid: number;
  qmp?: string;
}

export interface BootResult extends BootInfo {
  /** QEMU's exit status. */
  code: number;
  /** Whether QEMU was killed for `timeoutMs`. */
  timedOut: boolean;
}

/** A boot's private directory (its NBD socket) is `<tmp>/hexz-boot-<pid>-<random>`. */
const BOOT_DIR_PREFIX = "hexz-boot-";

/**
 * Removes the private directories of boots whose process is gone (killed with SIGKILL, which
 * leaves no chance to clean up: each held a dead socket). Only where /proc tells which
 * processes live; a directory whose pid is alive again (reused) is left.
 */
export async function removeStaleBootDirs(tmp: string): Promise<void> {
  try {
    await Deno.lstat("/proc/self");
  } catch {
    return;
  }
  try {
    for await (const e of Deno.readDir(tmp)) {
      const m = e.isDirectory && e.name.match(/^hexz-boot-(\d+)-/);
      if (!m || Number(m[1]) === Deno.pid) continue;
      const alive = await Deno.lstat(`/proc/${m[1]}`).then(() => true, () => false);
      if (!alive) await Deno.remove(`${tmp}/${e.name}`, { recursive: true }).catch(() => {});
    }
  } catch { /* a temporary directory we cannot list: nothing to tidy */ }
}

/** What `snapVm` needs to know about a VM that `bootVm` started (written beside its QMP). */
export interface VmInfo {
  archive: string;
  overlay: string;
  config: VmConfig;
  pid: number;
}

/** Where `bootVm` describes the VM behind the QMP socket `qmp`. */
export function vmInfoPath(qmp: string): string {
  return `${qmp}.hexz.json`;
}

/** The machine a snapshot (`snapVm`) recorded, or null for an archive that is not one. */
async function savedConfig(archive: Archive): Promise<VmConfig | null> {
  if (archive.size("memory") === 0) return null;
  const meta = await archive.metadata();
  const v = meta && typeof meta === "object" && !Array.isArray(meta)
    ? (meta as Record<string, unknown>)[VM_METADATA_KEY]
    : undefined;
  return v === undefined ? null : checkVmConfig(v, archive.source.name);
}

/** The machine to start: the snapshot's (if any) with the options over it. */
function configFor(saved: VmConfig | null, o: BootOptions): VmConfig {
  return {
    memoryMiB: o.memoryMiB ?? saved?.memoryMiB ?? DEFAULT_MEMORY_MIB,
    cpus: o.cpus ?? saved?.cpus ?? 1,
    machine: saved?.machine ?? DEFAULT_MACHINE,
    kernel: o.kernel ?? saved?.kernel,
    initrd: o.initrd ?? saved?.initrd,
    append: o.append ?? saved?.append,
    extra: o.extra ?? saved?.extra ?? [],
  };
}

/** Refuses to resume saved RAM over an overlay that already changed the disk under it. */
async function checkOverlayFresh(archive: Archive, path: string): Promise<void> {
  try {
    await Deno.lstat(path);
  } catch {
    return;
  }
  const ov = await openOverlay(path, archive, { readOnly: true });
  try {
    if (ov.changed("disk").length > 0) {
      throw new HexzError(
        "exists",
        `${path}: holds disk writes made after the snapshot was taken, which would not match ` +
          "its saved RAM; commit or remove it, or give another --overlay",
      );
    }
  } finally {
    await ov.close();
  }
}

/**
 * Boots `archive` (opened by the caller, who closes it after) in QEMU and resolves with QEMU's
 * exit status once it ends. Everything it started (the NBD server, QEMU, its sockets and
 * files) is stopped and removed whatever happens; the overlay stays, for `commitOverlay`.
 */
export async function bootVm(archive: Archive, o: BootOptions): Promise<BootResult> {
  if (archive.size("disk") === 0) {
    throw new HexzError("usage", `${archive.source.name}: has no disk stream to boot`);
  }
  const saved = await savedConfig(archive);
  const resume = saved !== null && !o.fresh;
  const config = configFor(saved, o);
  if (resume) await checkOverlayFresh(archive, o.overlay);
  const { accel, reason } = o.accel === undefined || o.accel === "auto"
    ? chooseAccel()
    : { accel: o.accel, reason: "as asked" };

  const dir = await Deno.makeTempDir({ prefix: `${BOOT_DIR_PREFIX}${Deno.pid}-` });
  await removeStaleBootDirs(dirOf(dir));
  const cleanups: (() => Promise<void> | void)[] = [
    () => Deno.remove(dir, { recursive: true }).catch(() => {}),
  ];
  const cleanUp = async () => {
    for (const c of cleanups.reverse()) await c();
  };
  // An overlay this boot creates and the VM never writes to is not left behind (QEMU that
  // fails at start, a wrong flag): it would only be an empty file to trip over.
  const hadOverlay = await Deno.lstat(o.overlay).then(() => true, () => false);
  try {
    const server = await serveNbd(archive, {
      socket: `${dir}/nbd.sock`,
      overlay: o.overlay,
      readOnly: false,
      compact: o.compact,
    });
    cleanups.push(async () => {
      await server.close();
      if (!hadOverlay && !await overlayWritten(o.overlay)) {
        await Deno.remove(o.overlay).catch(() => {});
      }
    });
    const ctl = `${dir}/qmp.sock`;
    const qmpSockets = [ctl, ...(o.qmp !== undefined ? [o.qmp] : [])];
    if (o.qmp !== undefined) await removeStaleSocket(o.qmp, "a VM");
    const args = qemuArgs(config, {
      accel,
      drive: server.address,
      qmp: qmpSockets,
      nographic: !!o.nographic,
      incoming: resume,
    });
    const vm = startQemu(args, o);
    const status = vm.status;
    cleanups.push(async () => {
      // Whatever failed, QEMU does not outlive the boot.
      await vm.end();
      if (o.qmp !== undefined) await Deno.remove(o.qmp).catch(() => {});
    });

    const qmp = await connectQmp(ctl, { retry: true, giveUp: status }).catch(async (e) => {
      const s = await Promise.race([status, delay(100).then(() => null)]);
      if (s) throw new HexzError("io", `QEMU exited with status ${s.code} at start`);
      throw e;
    });
    cleanups.push(() => qmp.close());
    if (resume) await loadState(archive, qmp, `${dir}/incoming.sock`, status);
    const info: BootInfo = { accel, reason, resumed: resume, pid: vm.pid, qmp: o.qmp };
    if (o.qmp !== undefined) {
      const described: VmInfo = {
        archive: await Deno.realPath(o.archivePath ?? archive.source.name)
          .catch(() => o.archivePath ?? archive.source.name),
        overlay: await Deno.realPath(o.overlay),
        config,
        pid: vm.pid,
      };
      const path = vmInfoPath(o.qmp);
      const f = await createAtomicFile(path, true);
      try {
        await writeAll(
          f.file,
          new TextEncoder().encode(JSON.stringify(described, null, 2) + "\n"),
          path,
        );
        await f.commit();
      } finally {
        await f.abort();
      }
      cleanups.push(() => Deno.remove(path).catch(() => {}));
    }
    o.onStart?.(info);
    const s = await status;
    return { ...info, code: s.code, timedOut: vm.timedOut() };
  } finally {
    await cleanUp();
  }
}

/** Streams the archive's memory stream (a saved VM state) into QEMU and waits till it runs. */
async function loadState(
  archive: Archive,
  qmp: Qmp,
  socket: string,
  exited: Promise<unknown>,
): Promise<void> {
  await qmp.execute("migrate-incoming", { uri: `unix:${socket}` });
  let conn: Deno.UnixConn | null = null;
  const until = Date.now() + 30_000;
  while (!conn) {
    try {
      conn = await Deno.connect({ transport: "unix", path: socket });
    } catch (e) {
      if (Date.now() > until) {
        throw new HexzError("io", `QEMU does not take the saved state: ${osReason(e)}`);
      }
      await delay(20);
    }
  }
  try {
    const size = archive.size("memory");
    const step = 4 << 20;
    for (let pos = 0; pos < size; pos += step) {
      const bytes = await archive.read("memory", pos, Math.min(step, size - pos));
      let done = 0;
      while (done < bytes.length) done += await conn.write(bytes.subarray(done));
    }
  } catch (e) {
    if (e instanceof HexzError) throw e;
    throw new HexzError("io", `QEMU stopped taking the saved state: ${osReason(e)}`);
  } finally {
    conn.close();
  }
  let gone = false;
  exited.then(() => gone = true);
  const deadline = Date.now() + 120_000;
  await awaitMigration(
    qmp,
    (detail) =>
      new HexzError(
        "io",
        `QEMU could not load the saved state${detail} ` +
          "(was it saved with the same machine: memory, CPUs, kernel, extra arguments?)",
      ),
    () => {
      if (gone) throw new HexzError("io", "QEMU exited while loading the saved state");
      if (Date.now() > deadline) {
        throw new HexzError("io", "QEMU took over 120 s to load the state");
      }
    },
  );
  // A state saved from a stopped VM (as snapVm saves it) loads paused: booting runs it.
  const st = await qmp.execute("query-status") as { running?: boolean };
  if (!st?.running) await qmp.execute("cont");
}
