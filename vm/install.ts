/**
 * Runs an installer: QEMU boots an ISO image (BIOS, from its CD drive) with an empty virtio
 * disk of the size asked for, and once the VM powers off the disk is packed into an archive.
 * The disk is a sparse temporary file beside the output (its holes are not read by the pack
 * where SEEK_DATA/SEEK_HOLE are at hand), removed whatever happens.
 *
 * @module
 */
import { HexzError, osReason } from "../core/errors.ts";
import { randomSuffix } from "../core/io/atomic.ts";
import { trackTemporary } from "../core/io/temporaries.ts";
import { pack, type PackOptions, type PackResult } from "../core/pack/pack.ts";
import { findDataRanges } from "../ffi/sparse.ts";
import { expectOptions, expectString } from "../core/args.ts";
import {
  type Accel,
  chooseAccel,
  DEFAULT_MACHINE,
  DEFAULT_MEMORY_MIB,
  qemuArgs,
  startQemu,
} from "./qemu.ts";

export interface InstallOptions {
  /** Size of the empty disk, in bytes (a multiple of 512). */
  size: number;
  /** How the disk is packed once the VM is off: `output` and the other `pack` options. */
  pack: Omit<PackOptions, "disk" | "memory">;
  memoryMiB?: number;
  cpus?: number;
  /** Further QEMU arguments. */
  extra?: string[];
  nographic?: boolean;
  accel?: Accel | "auto";
  stdio?: "inherit" | "null";
  /** Stop the installer after this long: then nothing is packed (default: never). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Told once QEMU runs. */
  onStart?: (info: { accel: Accel; reason: string; pid: number }) => void;
  /** Told once the VM has powered off, before the pack. */
  onPoweredOff?: () => void;
  qemu?: string;
}

/** QEMU's `-drive` values take a comma as `,,`. */
function driveValue(path: string): string {
  return path.replaceAll(",", ",,");
}

/**
 * Boots `iso` with an empty disk of `opts.size` bytes and packs the disk into `opts.pack.output`
 * once the VM powers off (or reboots: QEMU runs with -no-reboot). A VM that ends with a
 * non-zero status, is stopped by `signal` or by `timeoutMs` leaves no output.
 */
export async function installVm(iso: string, opts: InstallOptions): Promise<PackResult> {
  expectOptions(opts, "installVm: options", true);
  expectOptions(opts.pack, "installVm: pack", true);
  expectString(opts.pack.output, "installVm: pack.output");
  if (!Number.isSafeInteger(opts.size) || opts.size <= 0 || opts.size % 512 !== 0) {
    throw new HexzError("usage", `disk size must be a positive multiple of 512, got ${opts.size}`);
  }
  try {
    const st = await Deno.stat(iso);
    if (!st.isFile) throw new HexzError("usage", `${iso}: not a file`);
  } catch (e) {
    if (e instanceof HexzError) throw e;
    throw new HexzError(
      e instanceof Deno.errors.NotFound ? "not-found" : "io",
      `${iso}: ${osReason(e)}`,
    );
  }
  // The disk is written where the output goes: it can be as large as the archive's input.
  const disk = `${opts.pack.output}.tmp-disk-${randomSuffix()}`;
  const untrack = trackTemporary(disk, "file");
  try {
    try {
      const f = await Deno.open(disk, { write: true, createNew: true, mode: 0o600 });
      try {
        await f.truncate(opts.size);
      } finally {
        f.close();
      }
    } catch (e) {
      throw new HexzError("io", `${disk}: cannot create the disk: ${osReason(e)}`);
    }
    const { accel, reason } = opts.accel === undefined || opts.accel === "auto"
      ? chooseAccel()
      : { accel: opts.accel, reason: "as asked" };
    const args = qemuArgs({
      memoryMiB: opts.memoryMiB ?? DEFAULT_MEMORY_MIB,
      cpus: opts.cpus ?? 1,
      machine: DEFAULT_MACHINE,
      extra: [
        "-drive",
        `file=${driveValue(iso)},media=cdrom,readonly=on`,
        "-boot",
        "d",
        "-no-reboot",
        ...(opts.extra ?? []),
      ],
    }, { accel, drive: driveValue(disk), qmp: [], nographic: !!opts.nographic, incoming: false });
    const vm = startQemu(args, opts);
    let code: number;
    try {
      opts.onStart?.({ accel, reason, pid: vm.pid });
      code = (await vm.status).code;
    } finally {
      await vm.end();
    }
    if (vm.timedOut()) {
      throw new HexzError("io", `the installer was stopped after ${opts.timeoutMs! / 1000} s`);
    }
    if (opts.signal?.aborted) throw new HexzError("io", "the installer was stopped");
    if (code !== 0) throw new HexzError("io", `QEMU exited with status ${code}: nothing packed`);
    opts.onPoweredOff?.();
    const p = opts.pack;
    return await pack({
      ...p,
      disk,
      readsFrom: [...(p.readsFrom ?? []), iso],
      findDataRanges: p.findDataRanges ?? findDataRanges,
    });
  } finally {
    await Deno.remove(disk).catch(() => {});
    untrack();
  }
}
