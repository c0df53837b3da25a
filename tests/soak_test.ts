/**
 * A real VM (QEMU, TCG) rewrites the same region of its disk many times over while it runs
 * from an archive, so that the overlay compacts itself while in use (onlineCompact): the
 * overlay stays bounded by what is live, the committed thin archive holds exactly what the
 * guest wrote last, a boot of it sees that, and rolling back to the base's content is a thin
 * child that refers to its grandparent (ancestors) and stores next to nothing. Then Ctrl-C of
 * `hexz boot` while the guest writes and a compaction may be running: QEMU stops, nothing is
 * left beside the overlay, and the overlay reopens and commits.
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { needs, pseudoRandom, tempDir } from "./_tools.ts";
import { hexz, VM_NEEDS } from "./_vm.ts";
import { type CompactEvent, open } from "../mod.ts";
import { bootVm } from "../vm/boot.ts";
import { buildInitramfs, findKernel, type GuestKernel, INIT_PRELUDE } from "../vm/guest.ts";
import { cpioNewc } from "../vm/cpio.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const MiB = 1024 * 1024;
/** The disk, and the region of it the guest rewrites (both in MiB). */
const DISK_MIB = 32;
const REGION_AT_MIB = 8;
const REGION_MIB = 4;

async function sha256Hex(b: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", b as Uint8Array<ArrayBuffer>));
  return [...d].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * The guest: `passes` times, fills the region with byte 16 + i % 200 (pass i, from 1) straight
 * on /dev/vda (synced each time), then writes /final.bin there (unless `passes` is "forever"), syncs, reports and
 * powers off.
 */
function rewriterInit(passes: number | "forever", regionMiB = REGION_MIB): string {
  const loop = passes === "forever" ? "true" : `[ $i -le ${passes} ]`;
  return INIT_PRELUDE + `[ -b /dev/vda ] || echo "HEXZ-GUEST: no /dev/vda"
i=1
while ${loop}; do
  v=$((16 + i % 200))
  dd if=/dev/zero bs=1M count=${regionMiB} 2>/dev/null | tr '\\000' "\\\\$(printf %o $v)" > /pat
  dd if=/pat of=/dev/vda bs=1M seek=${REGION_AT_MIB} conv=fsync 2>/dev/null || echo "HEXZ-GUEST: dd failed"
  echo "HEXZ-PASS $i"
  i=$((i+1))
done
dd if=/final.bin of=/dev/vda bs=1M seek=${REGION_AT_MIB} conv=fsync 2>/dev/null || echo "HEXZ-GUEST: dd failed"
sync
echo HEXZ-WROTE-FINAL
poweroff -f
`;
}

/** The guest that reports the sha256 of the region as its disk has it. */
const CHECKER_INIT = INIT_PRELUDE +
  `echo "HEXZ-REGION $(dd if=/dev/vda bs=1M skip=${REGION_AT_MIB} count=${REGION_MIB} 2>/dev/null | sha256sum)"
poweroff -f
`;

/** An initramfs whose /init is `init`, with `final` as /final.bin. */
async function initrdWith(dir: string, k: GuestKernel, init: string, final: Uint8Array) {
  const path = await buildInitramfs(dir, k, init);
  // A second cpio archive appended to the first: the kernel unpacks both.
  const extra = cpioNewc([{ name: "final.bin", mode: 0o100644, data: final }]);
  const gz = new Blob([extra]).stream().pipeThrough(new CompressionStream("gzip"));
  const f = await Deno.open(path, { append: true });
  await gz.pipeTo(f.writable); // closes f
  return path;
}

// Encrypted: the overlay is sealed, and each compaction starts a new file key and session.
for (const [encrypted, passes] of [[false, 40], [true, 16]] as const) {
  Deno.test(needs([...VM_NEEDS, "cmp"], {
    name: `a VM rewriting its disk: the overlay compacts while in use, commit, boot, rollback${
      encrypted ? " (encrypted)" : ""
    }`,
    async fn() {
      const [dir, done] = await tempDir("hexz-soak-");
      try {
        const k = findKernel()!;
        const baseImg = pseudoRandom(DISK_MIB * MiB, 41);
        await Deno.writeFile(`${dir}/base.img`, baseImg);
        const password = "soak secret";
        await Deno.writeTextFile(`${dir}/pw`, password + "\n");
        const pw = encrypted ? ["--password-file", `${dir}/pw`] : [];
        let r = await hexz([
          "pack",
          `${dir}/base.hxz`,
          "--disk",
          `${dir}/base.img`,
          "-q",
          ...(encrypted ? ["--encrypt"] : []),
          ...pw,
        ]);
        assertEquals(r.code, 0, r.stderr);
        const final = pseudoRandom(REGION_MIB * MiB, 42);
        const expected = baseImg.slice();
        expected.set(final, REGION_AT_MIB * MiB);
        await Deno.writeFile(`${dir}/expected.img`, expected);

        // 40 passes of 4 MiB: 160 MiB written over 4 MiB live, with compaction at 8 MiB dead.
        const threshold = 8 * MiB;
        const initrd = await initrdWith(dir, k, rewriterInit(passes), final);
        const overlay = `${dir}/base.hxo`;
        const events: CompactEvent[] = [];
        let largest = 0;
        const sampler = setInterval(() => {
          try {
            largest = Math.max(largest, Deno.statSync(overlay).size);
          } catch { /* not there yet, or being swapped */ }
        }, 20);
        const archive = await open(`${dir}/base.hxz`, encrypted ? { password } : {});
        let result;
        const t0 = Date.now();
        try {
          result = await bootVm(archive, {
            overlay,
            kernel: k.kernel,
            initrd,
            append: "console=ttyS0 quiet panic=-1",
            memoryMiB: 256,
            nographic: true,
            accel: "tcg",
            stdio: "null",
            extra: ["-no-reboot", "-serial", `file:${dir}/console.txt`],
            timeoutMs: 150_000,
            compact: { onlineCompact: threshold, onCompact: (e) => events.push(e) },
          });
        } finally {
          clearInterval(sampler);
          archive.close();
        }
        const secs = (Date.now() - t0) / 1000;
        const serial = await Deno.readTextFile(`${dir}/console.txt`);
        const tail = serial.slice(-2000);
        assertEquals(result.code, 0, tail);
        assert(!result.timedOut, tail);
        assertEquals(serial.match(/HEXZ-PASS \d+/g)?.length, passes, tail);
        assertMatch(serial, /HEXZ-WROTE-FINAL/, tail);
        assert(!serial.includes("HEXZ-GUEST:"), tail);
        const failed = events.filter((e) => !e.ok);
        assertEquals(failed, [], "no compaction failed");
        assert(events.length >= 1, "the overlay compacted while the VM wrote");
        // Live: the region (the guest writes nothing else). A compaction starts once dead bytes
        // reach the threshold and outnumber live ones, so the log holds live + max(threshold,
        // live) bytes then; one more threshold is allowed for what the guest writes while the
        // compaction copies (it copies 4 MiB; a pass writes 4 MiB: two passes' worth).
        const live = REGION_MIB * MiB / 4096 * (encrypted ? 4096 + 16 : 4096);
        const bound = 4096 + live + Math.max(threshold, live) + threshold;
        console.log(
          `soak: ${passes} passes in ${secs.toFixed(1)} s, ${events.length} compactions, ` +
            `overlay at most ${(largest / MiB).toFixed(1)} MiB (bound ${
              (bound / MiB).toFixed(1)
            } MiB)`,
        );
        assert(largest > 0, "the overlay was sampled");
        assert(largest <= bound, `overlay grew to ${largest} bytes, over ${bound}`);
        // Each compaction's `before` is exactly how long the log had grown.
        for (const e of events) assert(e.ok && e.before <= bound && e.after < e.before);
        assertEquals(leftovers(dir, "base.hxo"), []);

        // Commit as a thin child of the base: its disk is what the guest wrote last.
        r = await hexz([
          "commit",
          `${dir}/base.hxz`,
          overlay,
          `${dir}/v2.hxz`,
          "--thin",
          "-q",
          ...pw,
        ]);
        assertEquals(r.code, 0, r.stderr);
        r = await hexz(["inspect", `${dir}/v2.hxz`, "--json", ...pw]);
        assertEquals(r.code, 0, r.stderr);
        assert(JSON.parse(r.stdout).parent, "the commit is a thin child of the base");
        r = await hexz(["extract", `${dir}/v2.hxz`, `${dir}/v2.img`, "-q", ...pw]);
        assertEquals(r.code, 0, r.stderr);
        await assertSameFile(`${dir}/v2.img`, `${dir}/expected.img`);

        // A boot of the committed archive sees the final pattern.
        await Deno.mkdir(`${dir}/check`);
        const checker = await buildInitramfs(`${dir}/check`, k, CHECKER_INIT);
        r = await hexz([
          "boot",
          `${dir}/v2.hxz`,
          "--kernel",
          k.kernel,
          "--initrd",
          checker,
          "--append",
          "console=ttyS0 quiet panic=-1",
          "--memory",
          "256M",
          "--nographic",
          "--accel",
          "tcg",
          "--timeout",
          "120",
          ...pw,
          "--",
          "-no-reboot",
        ]);
        assertEquals(r.code, 0, (r.stdout + r.stderr).slice(-2000));
        assertMatch(r.stdout, new RegExp(`HEXZ-REGION ${await sha256Hex(final)}`), r.stdout);

        // Rollback: the base's content again, as a thin child of the commit. The region comes
        // back from the grandparent (ancestors); nothing new is stored but the index.
        r = await hexz([
          "pack",
          `${dir}/v3.hxz`,
          "--disk",
          `${dir}/base.img`,
          "--base",
          `${dir}/v2.hxz`,
          "-q",
          ...pw,
        ]);
        assertEquals(r.code, 0, r.stderr);
        r = await hexz(["inspect", `${dir}/v3.hxz`, "--json", ...pw]);
        assertEquals(r.code, 0, r.stderr);
        const info = JSON.parse(r.stdout);
        assert(info.features.includes("ancestors"), JSON.stringify(info.features));
        const v3Size = (await Deno.stat(`${dir}/v3.hxz`)).size;
        const v2Size = (await Deno.stat(`${dir}/v2.hxz`)).size;
        // The commit stored the region's final content (random: 4 MiB); the rollback stores
        // none of its data: less than 1/16 of that.
        assert(v2Size >= REGION_MIB * MiB, `v2 is ${v2Size} bytes`);
        assert(v3Size < REGION_MIB * MiB / 16, `the rollback stores ${v3Size} bytes`);
        r = await hexz(["extract", `${dir}/v3.hxz`, `${dir}/v3.img`, "-q", ...pw]);
        assertEquals(r.code, 0, r.stderr);
        await assertSameFile(`${dir}/v3.img`, `${dir}/base.img`);
      } finally {
        await done();
      }
    },
  }));
}

/** Files beside `name` in `dir` that a compaction or a server left (temporaries, sockets). */
function leftovers(dir: string, name: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
    n.startsWith(name) && n !== name
  );
}

async function assertSameFile(a: string, b: string) {
  const out = await new Deno.Command("cmp", { args: [a, b], stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  assertEquals(out.code, 0, `cmp: ${dec.decode(out.stdout)}${dec.decode(out.stderr)}`);
}

Deno.test(needs(VM_NEEDS, {
  name: "Ctrl-C of boot while the guest rewrites its disk: QEMU stops, the overlay commits",
  async fn() {
    const [dir, done] = await tempDir("hexz-soak-");
    try {
      const k = findKernel()!;
      const baseImg = pseudoRandom(DISK_MIB * MiB, 43);
      await Deno.writeFile(`${dir}/base.img`, baseImg);
      let r = await hexz(["pack", `${dir}/base.hxz`, "--disk", `${dir}/base.img`, "-q"]);
      assertEquals(r.code, 0, r.stderr);
      // 16 MiB rewritten without end: with the CLI's threshold (64 MiB dead) the overlay
      // compacts every 64 MiB or so written, each time copying 16 MiB.
      const regionMiB = 16;
      const initrd = await initrdWith(
        dir,
        k,
        rewriterInit("forever", regionMiB),
        new Uint8Array(0),
      );
      const qmp = `${dir}/vm.qmp`;
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-q",
          "--allow-all",
          CLI,
          "boot",
          `${dir}/base.hxz`,
          "--kernel",
          k.kernel,
          "--initrd",
          initrd,
          "--append",
          "console=ttyS0 quiet panic=-1",
          "--memory",
          "256M",
          "--nographic",
          "--accel",
          "tcg",
          "--qmp",
          qmp,
          "--timeout",
          "150",
          "--",
          "-no-reboot",
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const output = child.output();
      // Interrupt as soon as a compaction's temporary file shows, or else soon after the
      // overlay shrank (a compaction finished) or grew past where one starts.
      let pid = 0;
      let caught = "";
      let largest = 0;
      const t0 = Date.now();
      while (Date.now() - t0 < 90_000) {
        if (!pid) {
          try {
            pid = JSON.parse(await Deno.readTextFile(`${qmp}.hexz.json`)).pid;
          } catch { /* not started yet */ }
        }
        if (leftovers(dir, "base.hxo").some((n) => n.includes(".tmp-"))) {
          caught = "while a compaction ran";
          break;
        }
        const size = await Deno.stat(`${dir}/base.hxo`).then((s) => s.size, () => 0);
        if (size < largest - 16 * MiB) {
          caught = "after a compaction";
          break;
        }
        largest = Math.max(largest, size);
        await new Promise((res) => setTimeout(res, 3));
      }
      console.log(`soak: SIGINT ${caught || "without seeing a compaction"}`);
      assert(pid > 0, "the VM described itself beside its QMP socket");
      child.kill("SIGINT");
      const out = await output;
      const dec = new TextDecoder();
      const stderr = dec.decode(out.stderr);
      const tail = (dec.decode(out.stdout) + stderr).slice(-2000);
      assertEquals(out.code, 130, tail);
      assertMatch(stderr, /hexz: interrupted\n$/, tail);
      assert(!(await processAlive(pid)), `QEMU (pid ${pid}) still runs`);
      assertEquals(leftovers(dir, "base.hxo"), []);
      assertEquals(leftovers(dir, "vm.qmp"), []);
      assert(caught !== "", "a compaction started before the interrupt");

      // The overlay opens again and commits; each block of the region is one pass's pattern.
      r = await hexz(["overlay", `${dir}/base.hxo`, "--base", `${dir}/base.hxz`]);
      assertEquals(r.code, 0, r.stderr);
      r = await hexz(["commit", `${dir}/base.hxz`, `${dir}/base.hxo`, `${dir}/v2.hxz`, "-q"]);
      assertEquals(r.code, 0, r.stderr);
      assertEquals(leftovers(dir, "base.hxo"), []);
      r = await hexz(["extract", `${dir}/v2.hxz`, `${dir}/v2.img`, "-q"]);
      assertEquals(r.code, 0, r.stderr);
      const got = await Deno.readFile(`${dir}/v2.img`);
      assertEquals(got.length, baseImg.length);
      const at = REGION_AT_MIB * MiB, end = at + regionMiB * MiB;
      assertEquals(got.subarray(0, at), baseImg.subarray(0, at));
      assertEquals(got.subarray(end), baseImg.subarray(end));
      const seen = new Set<number>();
      for (let b = at; b < end; b += 4096) {
        const block = got.subarray(b, b + 4096);
        const v = block[0];
        // Pass i fills the region with byte 16 + i % 200.
        assert(v >= 16 && v < 216 && block.every((x) => x === v), `block at ${b} is no pass's`);
        seen.add(v);
      }
      assert(seen.size >= 1);
    } finally {
      await done();
    }
  },
}));

/** Whether process `pid` still runs (a zombie does not). */
async function processAlive(pid: number): Promise<boolean> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}
