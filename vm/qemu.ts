/**
 * The QEMU side of a hexz VM: which accelerator works here, the machine a VM is started with
 * (recorded in a snapshot's metadata, since a saved VM state only loads into the same machine),
 * and the qemu-system-x86_64 command line for it.
 *
 * @module
 */
import { HexzError, osReason } from "../core/errors.ts";

/** The machine a VM runs as: what must be the same when a saved state is loaded. */
export interface VmConfig {
  /** RAM in MiB. */
  memoryMiB: number;
  cpus: number;
  /** QEMU machine type. */
  machine: string;
  kernel?: string;
  initrd?: string;
  append?: string;
  /** Further QEMU arguments, as given. */
  extra: string[];
}

export const DEFAULT_MEMORY_MIB = 512;
export const DEFAULT_MACHINE = "q35";

/** The metadata key under which a snapshot records its VmConfig. */
export const VM_METADATA_KEY = "vm";

export type Accel = "kvm" | "tcg";

/**
 * `kvm` when /dev/kvm opens for reading and writing and a hardware KVM module (kvm_intel or
 * kvm_amd) is loaded, else `tcg`, with the reason. A host whose KVM is another flavour opens
 * /dev/kvm all the same: on one with kvm_pvm (2026-12), QEMU reported KVM enabled, but the
 * Debian kernel got no further than "Probing EDD" in 30 s, with or without `-cpu host`.
 */
export function chooseAccel(): { accel: Accel; reason: string } {
  try {
    const f = Deno.openSync("/dev/kvm", { read: true, write: true });
    f.close();
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "no /dev/kvm" : "/dev/kvm cannot be opened";
    return { accel: "tcg", reason: why };
  }
  for (const m of ["kvm_intel", "kvm_amd"]) {
    try {
      Deno.statSync(`/sys/module/${m}`);
      return { accel: "kvm", reason: `/dev/kvm with ${m}` };
    } catch { /* next */ }
  }
  return { accel: "tcg", reason: "/dev/kvm has neither kvm_intel nor kvm_amd behind it" };
}

/** Checks a config read from an archive's metadata before it is trusted; throws if unfit. */
export function checkVmConfig(v: unknown, where: string): VmConfig {
  const bad = (what: string): never => {
    throw new HexzError("corrupt", `${where}: VM metadata: ${what}`);
  };
  if (typeof v !== "object" || v === null || Array.isArray(v)) bad("not an object");
  const o = v as Record<string, unknown>;
  const int = (k: string, max: number) => {
    const n = o[k];
    if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > max) bad(`bad ${k}`);
    return n as number;
  };
  const str = (k: string) => {
    const s = o[k];
    if (s === undefined) return undefined;
    if (typeof s !== "string" || s.includes("\0")) bad(`bad ${k}`);
    return s as string;
  };
  const extra = o.extra ?? [];
  if (!Array.isArray(extra) || !extra.every((a) => typeof a === "string")) bad("bad extra");
  return {
    memoryMiB: int("memoryMiB", 1 << 24),
    cpus: int("cpus", 1024),
    machine: str("machine") ?? bad("no machine"),
    kernel: str("kernel"),
    initrd: str("initrd"),
    append: str("append"),
    extra: extra as string[],
  };
}

export interface QemuArgsOptions {
  accel: Accel;
  /** QEMU reads the disk from here (an NBD URI). */
  drive: string;
  /** Sockets QEMU serves QMP on. */
  qmp: string[];
  nographic: boolean;
  /** Wait for a saved state (`migrate-incoming` over QMP) instead of booting. */
  incoming: boolean;
}

/** The qemu-system-x86_64 arguments for `c`. */
export function qemuArgs(c: VmConfig, o: QemuArgsOptions): string[] {
  const args = [
    "-accel",
    o.accel,
    "-M",
    c.machine,
    "-m",
    String(c.memoryMiB),
    "-smp",
    String(c.cpus),
    "-drive",
    `file=${o.drive},format=raw,if=virtio,cache=writeback`,
  ];
  for (const q of o.qmp) args.push("-qmp", `unix:${q},server=on,wait=off`);
  if (c.kernel !== undefined) args.push("-kernel", c.kernel);
  if (c.initrd !== undefined) args.push("-initrd", c.initrd);
  if (c.append !== undefined) args.push("-append", c.append);
  if (o.nographic) args.push("-nographic");
  else args.push("-serial", "mon:stdio");
  if (o.incoming) args.push("-incoming", "defer");
  return [...args, ...c.extra];
}

export interface StartQemuOptions {
  /** The QEMU binary (default qemu-system-x86_64). */
  qemu?: string;
  /** QEMU's stdin and stdout (default "inherit": the caller's terminal); stderr is inherited. */
  stdio?: "inherit" | "null";
  /** Stop QEMU after this long (default: never). */
  timeoutMs?: number;
  /** Aborting it stops QEMU. */
  signal?: AbortSignal;
}

/** A QEMU process. */
export interface RunningQemu {
  pid: number;
  /** Settles with QEMU's exit status once it has ended. */
  status: Promise<Deno.CommandStatus>;
  /** Whether it was stopped because `timeoutMs` passed. */
  timedOut(): boolean;
  /** Stops QEMU if it still runs and resolves once it is gone; drops the timer and listener. */
  end(): Promise<void>;
}

/** The executable `name` would run: itself if it has a slash, else the first on PATH. */
function onPath(name: string): string | null {
  const dirs = name.includes("/") ? [""] : (Deno.env.get("PATH") ?? "").split(":");
  for (const d of dirs) {
    const p = d === "" ? name : `${d}/${name}`;
    try {
      const st = Deno.statSync(p);
      if (st.isFile && ((st.mode ?? 0o111) & 0o111)) return p;
    } catch { /* next */ }
  }
  return null;
}

/**
 * Starts QEMU with `args`. Stopping it (timeout, abort, `end`) sends SIGTERM, on which QEMU
 * ends cleanly, and SIGKILL if it is still there 5 s later. Where util-linux's setpriv is
 * there (Debian always has it), QEMU is started through it with a parent-death signal: it
 * gets SIGTERM when the thread that started it ends, so this process killed without stopping
 * it (kill -9, a crash) does not leave QEMU running on alone with its disk gone.
 */
export function startQemu(args: string[], o: StartQemuOptions = {}): RunningQemu {
  const bin = o.qemu ?? "qemu-system-x86_64";
  const qemu = onPath(bin);
  const setpriv = qemu === null ? null : onPath("setpriv");
  let child: Deno.ChildProcess;
  try {
    // setpriv execs QEMU in its place (same pid). A missing QEMU is started directly, for
    // the runtime's own "not found".
    child = new Deno.Command(setpriv ?? bin, {
      args: setpriv ? ["--pdeathsig", "TERM", "--", qemu!, ...args] : args,
      stdin: o.stdio === "null" ? "null" : "inherit",
      stdout: o.stdio === "null" ? "null" : "inherit",
      stderr: "inherit",
    }).spawn();
  } catch (e) {
    const missing = e instanceof Deno.errors.NotFound;
    throw new HexzError(
      missing ? "not-found" : "io",
      `cannot start ${bin}: ${osReason(e)}` + (missing ? " (apt install qemu-system-x86)" : ""),
    );
  }
  let exited = false;
  let timedOut = false;
  const status = child.status.finally(() => exited = true);
  const stop = () => {
    if (exited) return;
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    const t = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 5000);
    status.finally(() => clearTimeout(t));
  };
  const timer = o.timeoutMs !== undefined
    ? setTimeout(() => {
      timedOut = true;
      stop();
    }, o.timeoutMs)
    : undefined;
  o.signal?.addEventListener("abort", stop);
  if (o.signal?.aborted) stop();
  return {
    pid: child.pid,
    status,
    timedOut: () => timedOut,
    async end() {
      stop();
      await status;
      clearTimeout(timer);
      o.signal?.removeEventListener("abort", stop);
    },
  };
}
