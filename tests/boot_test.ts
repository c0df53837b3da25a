/**
 * `hexz boot`: a real VM (QEMU, TCG) runs from an archive through the in-process NBD server.
 * The guest reads its disk and writes a file; the write lands in the overlay, `hexz commit`
 * turns it into a thin archive whose disk has the file (read back with debugfs), and the
 * original archive is byte for byte what it was.
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { needs, pseudoRandom, tempDir } from "./_tools.ts";
import { hexz, VM_NEEDS } from "./_vm.ts";
import { open, openOverlay } from "../mod.ts";
import { buildInitramfs, buildRootDisk, findKernel, INIT_PRELUDE } from "../vm/guest.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

async function sha256Hex(b: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", b as Uint8Array<ArrayBuffer>));
  return [...d].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/** `hexz boot` of `archive` with the test kernel and an initramfs, on the serial console. */
function writerBoot(archive: string, kernel: string, initrd: string): string[] {
  return [
    "boot",
    archive,
    "--kernel",
    kernel,
    "--initrd",
    initrd,
    "--append",
    "console=ttyS0 quiet panic=-1",
    "--memory",
    "256M",
    "--nographic",
    "--timeout",
    "150",
  ];
}

/** The guest: reads /payload.bin from its disk, writes /guest.txt, unmounts, powers off. */
function writerInit(note: string): string {
  return INIT_PRELUDE + `mount -t ext4 /dev/vda /newroot || echo "HEXZ-GUEST: cannot mount"
echo "HEXZ-READ $(sha256sum /newroot/payload.bin)"
echo "${note}" > /newroot/guest.txt
sync
umount /newroot && echo HEXZ-UNMOUNTED
poweroff -f
`;
}

Deno.test(needs(VM_NEEDS, {
  name: "boot runs a VM from an archive; its writes go to the overlay, commit keeps them",
  async fn() {
    const [dir, done] = await tempDir("hexz-boot-");
    try {
      const k = findKernel()!;
      const payload = pseudoRandom(1 << 20, 7);
      await buildRootDisk(`${dir}/root.img`, "unused", payload, 48);
      const archive = `${dir}/root.hxz`;
      let r = await hexz(["pack", archive, "--disk", `${dir}/root.img`, "--cdc", "-q"]);
      assertEquals(r.code, 0, r.stderr);
      const before = await sha256Hex(await Deno.readFile(archive));
      const note = `written-by-guest-${crypto.randomUUID().slice(0, 8)}`;
      const initrd = await buildInitramfs(dir, k, writerInit(note));
      // The private directory of a boot that was SIGKILLed (no process 4194305: pid_max is at
      // most 2^22): the next boot removes it.
      const stale = `${Deno.env.get("TMPDIR") ?? "/tmp"}/hexz-boot-4194305-stale`;
      await Deno.mkdir(stale, { recursive: true });
      await Deno.writeFile(`${stale}/nbd.sock`, new Uint8Array(0));

      r = await hexz([...writerBoot(archive, k.kernel, initrd), "--", "-no-reboot"]);
      assert(!(await Deno.lstat(stale).then(() => true, () => false)), "the stale boot directory");
      const tail = (r.stdout + r.stderr).slice(-3000);
      assertEquals(r.code, 0, tail);
      assertMatch(r.stdout, new RegExp(`HEXZ-READ ${await sha256Hex(payload)}`), tail);
      assertMatch(r.stdout, /HEXZ-UNMOUNTED/, tail);
      assertMatch(r.stderr, /hexz: booted .* with (tcg|kvm) /, tail);
      // The archive never changes; the overlay holds the guest's writes.
      assertEquals(await sha256Hex(await Deno.readFile(archive)), before);
      // Its overlay is named after it as mount's and serve's are: vm.hxz gives vm.hxo.
      const overlay = archive.replace(/\.hxz$/, ".hxo");
      r = await hexz(["overlay", overlay, "--base", archive]);
      assertEquals(r.code, 0, r.stderr);

      r = await hexz(["commit", archive, overlay, `${dir}/v2.hxz`, "-q"]);
      assertEquals(r.code, 0, r.stderr);
      r = await hexz(["extract", `${dir}/v2.hxz`, `${dir}/v2.img`, "-q"]);
      assertEquals(r.code, 0, r.stderr);
      const cat = await new Deno.Command("debugfs", {
        args: ["-R", "cat /guest.txt", `${dir}/v2.img`],
        stdout: "piped",
        stderr: "null",
      }).output();
      assertEquals(new TextDecoder().decode(cat.stdout).trim(), note);
      const fsck = await new Deno.Command("e2fsck", { args: ["-fn", `${dir}/v2.img`] }).output();
      assertEquals(fsck.code, 0, "the guest's file system is clean");
      r = await hexz(["inspect", `${dir}/v2.hxz`, "--json"]);
      assert(JSON.parse(r.stdout).parent, "the commit is a thin child of the archive");
      assertEquals(await sha256Hex(await Deno.readFile(archive)), before);
    } finally {
      await done();
    }
  },
}));

Deno.test(needs(VM_NEEDS, {
  name: "boot of an encrypted archive: the guest's writes are kept encrypted, commit has them",
  async fn() {
    const [dir, done] = await tempDir("hexz-boot-");
    try {
      const k = findKernel()!;
      const payload = pseudoRandom(1 << 20, 8);
      await buildRootDisk(`${dir}/root.img`, "unused", payload, 48);
      await Deno.writeTextFile(`${dir}/pw`, "boot secret\n");
      const pw = ["--password-file", `${dir}/pw`];
      const archive = `${dir}/root.hxz`;
      let r = await hexz(["pack", archive, "--disk", `${dir}/root.img`, "--encrypt", ...pw, "-q"]);
      assertEquals(r.code, 0, r.stderr);
      const note = `secret-of-guest-${crypto.randomUUID().slice(0, 8)}`;
      const initrd = await buildInitramfs(dir, k, writerInit(note));
      const boot = writerBoot(archive, k.kernel, initrd);
      // Without the password: one line, no VM, no overlay.
      r = await hexz(boot);
      assertEquals(r.code, 1, r.stderr);
      assertMatch(r.stderr, /^hexz: .*root\.hxz: archive is encrypted: give the password.*\n$/);
      r = await hexz([...boot, ...pw, "--", "-no-reboot"]);
      const tail = (r.stdout + r.stderr).slice(-3000);
      assertEquals(r.code, 0, tail);
      assertMatch(r.stdout, new RegExp(`HEXZ-READ ${await sha256Hex(payload)}`), tail);
      assertMatch(r.stdout, /HEXZ-UNMOUNTED/, tail);
      const overlay = `${dir}/root.hxo`;
      const ov = await Deno.readFile(overlay);
      assertEquals(new DataView(ov.buffer).getUint16(4, true), 2, "an encrypted overlay");
      assert(!new TextDecoder("latin1").decode(ov).includes(note), "the guest's note in the clear");

      r = await hexz(["commit", archive, overlay, `${dir}/v2.hxz`, "-q", ...pw]);
      assertEquals(r.code, 0, r.stderr);
      assert(
        !new TextDecoder("latin1").decode(await Deno.readFile(`${dir}/v2.hxz`)).includes(note),
      );
      r = await hexz(["extract", `${dir}/v2.hxz`, `${dir}/v2.img`, "-q", ...pw]);
      assertEquals(r.code, 0, r.stderr);
      const cat = await new Deno.Command("debugfs", {
        args: ["-R", "cat /guest.txt", `${dir}/v2.img`],
        stdout: "piped",
        stderr: "null",
      }).output();
      assertEquals(new TextDecoder().decode(cat.stdout).trim(), note);
    } finally {
      await done();
    }
  },
}));

Deno.test(needs(["qemu-system-x86_64"], {
  name: "boot refuses bad input with one line and the usage exit code",
  async fn() {
    const [dir, done] = await tempDir("hexz-boot-");
    try {
      let r = await hexz(["boot", `${dir}/missing.hxz`]);
      assertEquals(r.code, 1);
      assertMatch(r.stderr, /^hexz: .*missing\.hxz.*\n$/);
      r = await hexz(["boot", `${dir}/x.hxz`, "--initrd", "i.gz"]);
      assertEquals(r.code, 2);
      assertEquals(r.stderr, "hexz: --initrd only applies with --kernel\n");
      r = await hexz(["boot", `${dir}/x.hxz`, "--memory", "lots"]);
      assertEquals(r.code, 2);
      assertMatch(r.stderr, /^hexz: --memory: 'lots' is not a size/);
      // QEMU that fails at start (an option it does not know): the error, and no empty
      // overlay left behind; an overlay that was there before stays.
      await Deno.writeFile(`${dir}/d.img`, pseudoRandom(200_000, 3));
      r = await hexz(["pack", `${dir}/d.hxz`, "--disk", `${dir}/d.img`, "-q"]);
      assertEquals(r.code, 0, r.stderr);
      const bad = ["boot", `${dir}/d.hxz`, "--nographic", "--", "-no-such-option"];
      r = await hexz(bad);
      assert(r.code !== 0, r.stderr);
      assertMatch(r.stderr, /QEMU exited with status \d+ at start/);
      const names = () => [...Deno.readDirSync(dir)].map((e) => e.name).sort();
      assertEquals(names(), ["d.hxz", "d.img"]);
      const base = await open(`${dir}/d.hxz`);
      try {
        (await openOverlay(`${dir}/kept.hxo`, base, { create: true })).close();
      } finally {
        base.close();
      }
      r = await hexz([...bad.slice(0, 3), "--overlay", `${dir}/kept.hxo`, ...bad.slice(3)]);
      assert(r.code !== 0, r.stderr);
      assertEquals(names(), ["d.hxz", "d.img", "kept.hxo"]);
    } finally {
      await done();
    }
  },
}));

Deno.test(needs(["qemu-system-x86_64", "setpriv"], {
  name: "boot killed with SIGKILL: its QEMU does not run on alone",
  async fn() {
    const [dir, done] = await tempDir("hexz-boot-");
    try {
      // An empty disk: the firmware finds nothing to boot and waits for ever.
      await Deno.writeFile(`${dir}/d.img`, new Uint8Array(1 << 20));
      const r = await hexz(["pack", `${dir}/d.hxz`, "--disk", `${dir}/d.img`, "-q"]);
      assertEquals(r.code, 0, r.stderr);
      const qmp = `${dir}/vm.qmp`;
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-q", "--allow-all", CLI, "boot", `${dir}/d.hxz`, "--nographic", "--accel"]
          .concat(["tcg", "--qmp", qmp, "--timeout", "120"]),
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      let pid = 0;
      try {
        for (let i = 0; i < 600 && !pid; i++) {
          pid = await Deno.readTextFile(`${qmp}.hexz.json`).then((t) => JSON.parse(t).pid, () => 0);
          if (!pid) await new Promise((res) => setTimeout(res, 50));
        }
      } finally {
        child.kill("SIGKILL");
        await child.status;
      }
      assert(pid > 0, "the VM described itself beside its QMP socket");
      const end = Date.now() + 10_000;
      while (running(pid) && Date.now() < end) await new Promise((res) => setTimeout(res, 50));
      const still = running(pid);
      if (still) Deno.kill(pid, "SIGKILL");
      assert(!still, `QEMU (pid ${pid}) ran on after boot was killed`);
    } finally {
      await done();
    }
  },
}));

/** Whether process `pid` runs (a zombie, left for a parent that is gone, does not). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return false;
  }
}
