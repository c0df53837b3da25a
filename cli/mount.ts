/**
 * `hexz mount` and `hexz unmount`: serve an archive as a FUSE file system, and take it down.
 * Mounting needs root and the permissions --allow-read --allow-write --allow-env --allow-ffi
 * (and --allow-run for --daemon).
 *
 * @module
 */
import { Command } from "./command.ts";
import { HexzError } from "../core/errors.ts";
import { mountAt, unmountFuse } from "../ffi/fuse_session.ts";
import { checkMountpoint, defaultOverlayPath, mountArchive } from "../serve/mount.ts";
import { overlayWritten } from "../core/overlay/overlay.ts";
import { compactOptions, NO_COMPACT_HELP } from "./compaction.ts";
import { checkDaemonPermission, info, out } from "./common.ts";
import { parseCount, parseSize } from "./units.ts";
import { passwordFileOption, passwordFor } from "./password.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const FS_TYPE = "fuse.hexz";

interface MountFlags {
  rw?: boolean;
  noCompact?: boolean;
  overlay?: string;
  cacheSize?: string;
  uid?: string;
  gid?: string;
  daemon?: boolean;
  passwordFile?: string;
}

export function mountCommand(): Command {
  return new Command("mount")
    .description("serve an archive as a file system: disk, memory and files/ (needs root)")
    .argument("<archive>", "archive (.hxz)")
    .argument("<mountpoint>", "an existing directory")
    .option("--rw", "accept writes to disk and memory, kept in an overlay")
    .option("--overlay <file>", "overlay file (default: the archive's name with .hxo)")
    .option("--no-compact", `--rw: ${NO_COMPACT_HELP}`)
    .option("--cache-size <size>", "decompressed-block cache", "64M")
    .option("--uid <n>", "owner of every file")
    .option("--gid <n>", "group of every file")
    .option("--daemon", "serve in the background; return once the mount is live")
    .addOption(passwordFileOption())
    .addHelpText(
      "after",
      "\nExample:\n  hexz mount vm.hxz /mnt/vm --daemon && cmp /mnt/vm/disk vm.img && hexz unmount /mnt/vm",
    )
    .action(async (file: string, mountpoint: string, o: MountFlags) => {
      if (o.noCompact && !o.rw) {
        throw new HexzError("usage", "--no-compact only applies with --rw");
      }
      const opts = {
        mountpoint,
        readWrite: !!o.rw,
        overlay: o.overlay,
        cacheBytes: parseSize(o.cacheSize ?? "64M", "--cache-size"),
        uid: o.uid !== undefined ? parseCount(o.uid, "--uid") : undefined,
        gid: o.gid !== undefined ? parseCount(o.gid, "--gid") : undefined,
      };
      if (o.daemon) checkDaemonPermission();
      const password = await passwordFor(file, o.passwordFile) ?? undefined;
      if (o.daemon) return await daemonize(file, mountpoint, o, password);
      const overlay = o.rw ? o.overlay ?? defaultOverlayPath(file) : undefined;
      const hadOverlay = overlay !== undefined &&
        await Deno.lstat(overlay).then(() => true, () => false);
      const m = await mountArchive(file, {
        ...opts,
        password,
        onError: (e) => report(`hexz: ${mountpoint}: ${(e as Error).message}`),
        compact: o.rw
          ? compactOptions(o.overlay ?? defaultOverlayPath(file), !!o.noCompact, false)
          : undefined,
      });
      const stop = () => void m.close().catch(() => {});
      Deno.addSignalListener("SIGINT", stop);
      Deno.addSignalListener("SIGTERM", stop);
      out(`mounted ${file} at ${m.mountpoint} (${describe(o)})`);
      try {
        await m.done;
      } finally {
        Deno.removeSignalListener("SIGINT", stop);
        Deno.removeSignalListener("SIGTERM", stop);
      }
      // An overlay this mount created and nothing wrote to is not left behind.
      if (overlay !== undefined && !hadOverlay && !await overlayWritten(overlay)) {
        await Deno.remove(overlay).catch(() => {});
      }
    });
}

export function unmountCommand(): Command {
  return new Command("unmount")
    .description("unmount a hexz (or any FUSE) mount; detaches dead ones")
    .argument("<mountpoint>", "where it is mounted")
    .option("--lazy", "detach now even if busy; the mount goes away when no longer used")
    .addHelpText(
      "after",
      "\nExample:\n  hexz mount vm.hxz /mnt/vm --daemon && cmp /mnt/vm/disk vm.img; hexz unmount /mnt/vm",
    )
    .action(async (mountpoint: string, o: { lazy?: boolean }) => {
      const { stale } = await unmountFuse(mountpoint, !!o.lazy);
      if (stale) info(`hexz: ${mountpoint}: stale FUSE mount (its server is gone): detached`);
    });
}

function describe(o: MountFlags): string {
  return o.rw ? "read-write" : "read-only";
}

/** Writes a line to stderr; a daemon's stderr may be closed, which must not stop serving. */
function report(line: string) {
  try {
    info(line);
  } catch { /* nobody is listening */ }
}

/**
 * Starts the same mount as a detached process and returns once the mount is live, or fails
 * with the child's own error line if it exits first.
 */
async function daemonize(
  file: string,
  mountpoint: string,
  o: MountFlags,
  password?: string,
): Promise<void> {
  const abs = await checkMountpoint(mountpoint);
  const flags = [
    ...(o.rw ? ["--rw"] : []),
    ...(o.noCompact ? ["--no-compact"] : []),
    ...(o.overlay ? ["--overlay", o.overlay] : []),
    ...(o.cacheSize ? ["--cache-size", o.cacheSize] : []),
    ...(o.uid !== undefined ? ["--uid", o.uid] : []),
    ...(o.gid !== undefined ? ["--gid", o.gid] : []),
    ...(o.passwordFile !== undefined ? ["--password-file", o.passwordFile] : []),
  ];
  // The detached server has no terminal: a password asked for here goes to it in its
  // environment, as HEXZ_PASSWORD would.
  const env: Record<string, string> = password !== undefined && o.passwordFile === undefined
    ? { HEXZ_PASSWORD: password }
    : {};
  const perms = ["--allow-read", "--allow-write", "--allow-env", "--allow-ffi", "--allow-net"];
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-q", ...perms, CLI, "mount", file, abs, ...flags],
    env,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    detached: true,
  }).spawn();
  const errText = new Response(child.stderr).text();
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = Date.now() + 30_000;
  while (mountAt(abs)?.type !== FS_TYPE) {
    if (exited) {
      const line = (await errText).trim().split("\n")[0].replace(/^hexz: /, "");
      throw new HexzError("io", line || `mount process exited with ${(await child.status).code}`);
    }
    if (Date.now() > deadline) {
      child.kill("SIGTERM");
      throw new HexzError("io", `${mountpoint}: the mount did not come up within 30 s`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  await Deno.stat(abs); // answered only once the server has finished INIT
  child.unref();
  out(`mounted ${file} at ${abs} (${describe(o)}, pid ${child.pid})`);
}
