/**
 * `hexz install`: QEMU boots a tiny self-made installer ISO (isolinux, the host's kernel, a
 * busybox initramfs) on an empty disk; the "installer" writes to the disk and powers off, and
 * the disk comes out packed. One stopped before it powers off leaves nothing behind.
 */
import { assertEquals, assertMatch } from "./_assert.ts";
import { needs, tempDir } from "./_tools.ts";
import { buildIso, findKernel, INIT_PRELUDE } from "../vm/guest.ts";
import { hexz, VM_NEEDS } from "./_vm.ts";

const INSTALL_NEEDS = [
  ...VM_NEEDS,
  "xorriso",
  "/usr/lib/ISOLINUX/isolinux.bin",
  "/usr/lib/syslinux/modules/bios/ldlinux.c32",
];

/** The installer: a line at 1 MiB and one in the last sector of the disk, then power off. */
function installer(marker: string): string {
  return INIT_PRELUDE + `mount -t sysfs sys /sys
echo "HEXZ-INSTALLED ${marker}" | dd of=/dev/vda bs=512 seek=2048 conv=notrunc,sync 2>/dev/null
last=$(( $(cat /sys/block/vda/size) - 1 ))
echo "HEXZ-END" | dd of=/dev/vda bs=512 seek=$last conv=notrunc,sync 2>/dev/null
sync
echo "HEXZ-WROTE $last"
poweroff -f
`;
}

async function leftovers(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.name.includes(".tmp-")) names.push(e.name);
  return names;
}

Deno.test(needs(INSTALL_NEEDS, {
  name: "install boots an installer ISO on an empty disk and packs the disk it wrote",
  async fn() {
    const [dir, done] = await tempDir("hexz-install-");
    try {
      const marker = crypto.randomUUID().slice(0, 8);
      const iso = await buildIso(dir, findKernel()!, installer(marker));
      const out = `${dir}/installed.hxz`;
      let r = await hexz([
        "install",
        iso,
        out,
        "--size",
        "64M",
        "--memory",
        "256M",
        "--nographic",
        "--compression",
        "zstd",
        "--timeout",
        "150",
      ]);
      const tail = (r.stdout + r.stderr).slice(-3000);
      assertEquals(r.code, 0, tail);
      assertMatch(r.stdout, /HEXZ-WROTE 131071/, tail); // 64 MiB in 512-byte sectors, less one
      assertMatch(r.stderr, /hexz: installing from .* with (tcg|kvm) .* on an empty 64 MiB disk/);
      assertMatch(r.stderr, /installed\.hxz: 64 MiB => /);
      r = await hexz(["inspect", out, "--json"]);
      const report = JSON.parse(r.stdout);
      assertEquals(report.streams[0].logicalSize, 64 << 20);
      assertEquals(report.compression.codec, "zstd");
      r = await hexz(["cat", out, "--offset", "1M", "--length", "512"]);
      assertEquals(r.stdout, `HEXZ-INSTALLED ${marker}\n`.padEnd(512, "\0"));
      r = await hexz(["cat", out, "--offset", String((64 << 20) - 512), "--length", "9"]);
      assertEquals(r.stdout, "HEXZ-END\n");
      assertEquals(await leftovers(dir), []);
    } finally {
      await done();
    }
  },
}));

Deno.test(needs(INSTALL_NEEDS, {
  name: "install stopped before the VM powers off writes nothing and leaves no disk",
  async fn() {
    const [dir, done] = await tempDir("hexz-install-");
    try {
      const iso = await buildIso(dir, findKernel()!, INIT_PRELUDE + "sleep 1000\n");
      const r = await hexz([
        "install",
        iso,
        `${dir}/out.hxz`,
        "--size",
        "16M",
        "--nographic",
        "--timeout",
        "3",
      ]);
      assertEquals(r.code, 1, r.stderr);
      assertMatch(r.stderr, /hexz: the installer was stopped after 3 s\n$/);
      assertEquals(await Deno.stat(`${dir}/out.hxz`).catch(() => null), null);
      assertEquals(await leftovers(dir), []);
      const bad = await hexz(["install", iso, `${dir}/out.hxz`, "--size", "1000"]);
      assertEquals(bad.code, 2);
      assertEquals(bad.stderr, "hexz: --size: '1000' is not a positive multiple of 512\n");
      // Pack options are checked as pack checks them, before any VM starts.
      const cases: [string[], string][] = [
        [
          ["--block-size", "3K"],
          "hexz: --block-size 3K: must be a power of two between 1K and 16M\n",
        ],
        [
          ["--compression", "none", "--level", "3"],
          "hexz: --level: --compression none has no levels\n",
        ],
      ];
      for (const [flags, message] of cases) {
        const u = await hexz(["install", iso, `${dir}/out.hxz`, "--size", "16M", ...flags]);
        assertEquals([u.code, u.stderr], [2, message], flags.join(" "));
      }
      assertEquals(await leftovers(dir), []);
    } finally {
      await done();
    }
  },
}));
