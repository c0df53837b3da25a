/**
 * A real VM boots from a disk that hexz serves: QEMU (TCG) with the host's Debian kernel and a
 * busybox initramfs mounts an ext4 root file system from its virtio disk and runs /sbin/init
 * from it. The disk is an archive, reached through `hexz mount` (FUSE) and through the NBD
 * server. The guest prints a marker and the sha256 of a file on that disk.
 */
import { assertEquals, assertMatch } from "./_assert.ts";
import { packBytes } from "./_archive.ts";
import { needs, pseudoRandom, tempDir } from "./_tools.ts";
import { bootGuest, buildInitramfs, buildRootDisk, findKernel } from "../vm/guest.ts";
import { open } from "../mod.ts";
import { serveNbd } from "../serve/nbd.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

/** QEMU, the tools that build the guest, and a kernel with its modules (linux-image-amd64). */
const GUEST = [
  "qemu-system-x86_64",
  "mkfs.ext4",
  "/bin/busybox",
  { what: "a kernel with modules in /boot", met: () => findKernel() !== null },
];

async function sha256Hex(b: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", b as Uint8Array<ArrayBuffer>));
  return [...d].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/** An archive of a bootable root disk, the initramfs, and what the guest should print. */
async function prepare(dir: string) {
  const k = findKernel()!;
  const payload = pseudoRandom(3 << 20, 99);
  const marker = `hexz-${crypto.randomUUID().slice(0, 8)}`;
  await buildRootDisk(`${dir}/root.img`, marker, payload, 48);
  const archive = await packBytes(dir, await Deno.readFile(`${dir}/root.img`), {
    compression: "zstd",
    cdc: true,
  });
  const initrd = await buildInitramfs(dir, k);
  return { k, archive, initrd, marker, sum: await sha256Hex(payload) };
}

function assertBooted(console: string, marker: string, sum: string) {
  assertMatch(console, new RegExp(`HEXZ-GUEST booted ${marker}`), console.slice(-2000));
  assertMatch(console, new RegExp(`${sum}\\s+/payload.bin`), console.slice(-2000));
}

Deno.test(needs(GUEST, {
  name: "a VM boots from a disk served by the hexz NBD server",
  async fn() {
    const [dir, done] = await tempDir("hexz-vm-");
    try {
      const p = await prepare(dir);
      const a = await open(p.archive);
      const server = await serveNbd(a, { socket: `${dir}/nbd.sock`, readOnly: true });
      try {
        const r = await bootGuest(
          p.k,
          p.initrd,
          `file=${server.address},format=raw,if=virtio,readonly=on`,
        );
        assertBooted(r.console, p.marker, p.sum);
      } finally {
        await server.close();
        a.close();
      }
    } finally {
      await done();
    }
  },
}));

Deno.test(needs([...GUEST, "fuse"], {
  name: "a VM boots from the disk file of a hexz FUSE mount",
  async fn() {
    const [dir, done] = await tempDir("hexz-vm-");
    const mnt = `${dir}/mnt`;
    await Deno.mkdir(mnt);
    let child: Deno.ChildProcess | null = null;
    try {
      const p = await prepare(dir);
      child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-q", "--allow-all", CLI, "mount", p.archive, mnt],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      // Wait until the mount serves the disk (stat from this process is safe: it is answered
      // by the subprocess).
      const until = Date.now() + 20_000;
      for (;;) {
        try {
          if ((await Deno.stat(`${mnt}/disk`)).size > 0) break;
        } catch { /* not yet */ }
        if (Date.now() > until) throw new Error("mount did not come up");
        await new Promise((r) => setTimeout(r, 50));
      }
      const r = await bootGuest(
        p.k,
        p.initrd,
        `file=${mnt}/disk,format=raw,if=virtio,readonly=on,file.locking=off`,
      );
      assertBooted(r.console, p.marker, p.sum);
      child.kill("SIGTERM");
      assertEquals((await child.status).code, 0);
      child = null;
    } finally {
      if (child) {
        child.kill("SIGKILL");
        await child.status;
      }
      await new Deno.Command("fusermount3", { args: ["-uz", mnt], stderr: "null" }).output();
      await done();
    }
  },
}));
