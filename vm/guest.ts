/**
 * A tiny test guest for QEMU: the host's Debian kernel, an initramfs of busybox and the
 * modules needed to see a virtio disk and mount ext4 from it, and a root disk image whose
 * /sbin/init prints what it finds and powers off. Booting it proves that a VM really runs
 * from a disk served by hexz (FUSE mount or NBD).
 *
 * Needs: a kernel in /boot with its modules, /bin/busybox (busybox-static), mkfs.ext4.
 *
 * @module
 */
import { type CpioEntry, cpioNewc } from "./cpio.ts";

/** Modules to load, in dependency order (virtio disk, then ext4 with its checksums). */
const MODULES = [
  "drivers/virtio/virtio_ring.ko",
  "drivers/virtio/virtio.ko",
  "drivers/virtio/virtio_pci_legacy_dev.ko",
  "drivers/virtio/virtio_pci_modern_dev.ko",
  "drivers/virtio/virtio_pci.ko",
  "drivers/block/virtio_blk.ko",
  "lib/crc16.ko",
  "crypto/crc32c_generic.ko",
  "fs/mbcache.ko",
  "fs/jbd2/jbd2.ko",
  "fs/ext4/ext4.ko",
];

export interface GuestKernel {
  kernel: string;
  modules: string;
}

/** The newest kernel in /boot that has its modules, or null. */
export function findKernel(): GuestKernel | null {
  const versions: string[] = [];
  try {
    for (const e of Deno.readDirSync("/boot")) {
      const m = /^vmlinuz-(.+)$/.exec(e.name);
      if (m) versions.push(m[1]);
    }
  } catch {
    return null;
  }
  versions.sort().reverse();
  for (const v of versions) {
    try {
      Deno.statSync(`/lib/modules/${v}/kernel/fs/ext4/ext4.ko`);
      return { kernel: `/boot/vmlinuz-${v}`, modules: `/lib/modules/${v}/kernel` };
    } catch { /* next */ }
  }
  return null;
}

/** The start of an initramfs /init: busybox's applets, /proc, /dev, the modules, /dev/vda. */
export const INIT_PRELUDE = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /newroot
mount -t proc proc /proc
mount -t devtmpfs dev /dev
for m in /lib/modules/*.ko; do insmod "$m" || echo "HEXZ-GUEST: insmod $m failed"; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
`;

const INIT = `${INIT_PRELUDE}if ! mount -t ext4 -o ro /dev/vda /newroot; then
  echo "HEXZ-GUEST: cannot mount /dev/vda"
  poweroff -f
fi
umount /proc
exec switch_root /newroot /sbin/init
`;

/**
 * Writes `initrd.gz` into `dir` and returns its path. Its /init (a busybox shell script) loads
 * the modules from /lib/modules/*.ko; the default one then mounts /dev/vda read-only and runs
 * its /sbin/init; `init` replaces it (`INIT_PRELUDE` loads the modules and waits for the disk).
 */
export async function buildInitramfs(
  dir: string,
  k: GuestKernel,
  init: string = INIT,
): Promise<string> {
  const entries: CpioEntry[] = [
    { name: "bin", mode: 0o40755 },
    { name: "lib", mode: 0o40755 },
    { name: "lib/modules", mode: 0o40755 },
    { name: "bin/busybox", mode: 0o100755, data: await Deno.readFile("/bin/busybox") },
    { name: "init", mode: 0o100755, data: new TextEncoder().encode(init) },
  ];
  // Numbered so the shell glob loads them in dependency order.
  for (const [i, m] of MODULES.entries()) {
    const name = `lib/modules/${String(i).padStart(2, "0")}-${m.split("/").pop()}`;
    entries.push({ name, mode: 0o100644, data: await Deno.readFile(`${k.modules}/${m}`) });
  }
  const gz = new Blob([cpioNewc(entries)]).stream()
    .pipeThrough(new CompressionStream("gzip"));
  const path = `${dir}/initrd.gz`;
  await Deno.writeFile(path, gz);
  return path;
}

/**
 * Writes a bootable ext4 root disk image of `sizeMiB` MiB at `path`: busybox, an /sbin/init
 * that prints `HEXZ-GUEST booted <marker>` and the sha256 of /payload.bin, then powers off.
 */
export async function buildRootDisk(
  path: string,
  marker: string,
  payload: Uint8Array,
  sizeMiB = 64,
): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "hexz-guest-" });
  try {
    for (const d of ["bin", "sbin", "proc", "dev", "etc"]) await Deno.mkdir(`${root}/${d}`);
    await Deno.copyFile("/bin/busybox", `${root}/bin/busybox`);
    await Deno.writeFile(`${root}/payload.bin`, payload);
    await Deno.writeTextFile(
      `${root}/sbin/init`,
      `#!/bin/busybox sh\n/bin/busybox echo "HEXZ-GUEST booted ${marker}"\n` +
        `/bin/busybox sha256sum /payload.bin\n/bin/busybox poweroff -f\n`,
    );
    await Deno.chmod(`${root}/sbin/init`, 0o755);
    await Deno.chmod(`${root}/bin/busybox`, 0o755);
    const f = await Deno.open(path, { write: true, create: true, truncate: true });
    await f.truncate(sizeMiB * 1024 * 1024);
    f.close();
    const p = await new Deno.Command("mkfs.ext4", {
      args: ["-q", "-F", "-d", root, "-E", "root_owner=0:0", path],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!p.success) throw new Error(`mkfs.ext4: ${new TextDecoder().decode(p.stderr).trim()}`);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

export interface BootResult {
  /** Everything the guest printed on its serial console. */
  console: string;
  code: number;
}

/** Boots the guest (TCG, no KVM here) with `drive` as its virtio disk; times out. */
export async function bootGuest(
  k: GuestKernel,
  initrd: string,
  drive: string,
  timeoutMs = 120_000,
): Promise<BootResult> {
  const cmd = new Deno.Command("qemu-system-x86_64", {
    args: [
      "-accel",
      "tcg",
      "-M",
      "q35",
      "-m",
      "256",
      "-nographic",
      "-no-reboot",
      "-kernel",
      k.kernel,
      "-initrd",
      initrd,
      "-append",
      "console=ttyS0 quiet panic=-1",
      "-drive",
      drive,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  const child = cmd.spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  try {
    const out = await child.output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    return { console: text, code: out.code };
  } finally {
    clearTimeout(timer);
  }
}

/** Where Debian's isolinux package keeps the boot loader and its library. */
const ISOLINUX = "/usr/lib/ISOLINUX/isolinux.bin";
const LDLINUX = "/usr/lib/syslinux/modules/bios/ldlinux.c32";

/**
 * Writes a BIOS-bootable ISO image `installer.iso` into `dir` (isolinux, then the kernel with
 * an initramfs whose /init is `init`, console on ttyS0) and returns its path: a stand-in for an
 * installer. Needs xorriso and Debian's isolinux and syslinux-common.
 */
export async function buildIso(dir: string, k: GuestKernel, init: string): Promise<string> {
  const root = await Deno.makeTempDir({ dir, prefix: "iso-" });
  try {
    await Deno.mkdir(`${root}/isolinux`);
    await Deno.copyFile(ISOLINUX, `${root}/isolinux/isolinux.bin`);
    await Deno.copyFile(LDLINUX, `${root}/isolinux/ldlinux.c32`);
    await Deno.copyFile(k.kernel, `${root}/vmlinuz`);
    const initrd = await buildInitramfs(root, k, init);
    await Deno.writeTextFile(
      `${root}/isolinux/isolinux.cfg`,
      "SERIAL 0 115200\nDEFAULT install\nPROMPT 0\nTIMEOUT 1\nLABEL install\n" +
        `  KERNEL /vmlinuz\n  APPEND initrd=/${initrd.split("/").pop()} console=ttyS0 ` +
        "quiet panic=-1\n",
    );
    const iso = `${dir}/installer.iso`;
    const p = await new Deno.Command("xorriso", {
      args: [
        "-as",
        "mkisofs",
        "-quiet",
        "-o",
        iso,
        "-b",
        "isolinux/isolinux.bin",
        "-c",
        "isolinux/boot.cat",
        "-no-emul-boot",
        "-boot-load-size",
        "4",
        "-boot-info-table",
        root,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!p.success) throw new Error(`xorriso: ${new TextDecoder().decode(p.stderr).trim()}`);
    return iso;
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}
