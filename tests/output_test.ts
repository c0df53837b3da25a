import { assertEquals, assertMatch } from "./_assert.ts";
import {
  build,
  commitOverlay,
  extract,
  flatten,
  HexzError,
  open,
  openOverlay,
  pack,
} from "../mod.ts";
import { hexz } from "./_cli.ts";
import { needs, pseudoRandom, smallTmpfs, tempDir } from "./_tools.ts";

/** Runs `fn`, which must fail with a HexzError matching `re`; returns nothing. */
async function refused(fn: () => Promise<unknown>, re: RegExp) {
  try {
    await fn();
  } catch (e) {
    if (!(e instanceof HexzError)) throw e;
    assertMatch(e.message, re);
    return;
  }
  throw new Error(`not refused: ${re}`);
}

Deno.test("an output is never one of its inputs, nor a device, directory or link, even with force", async () => {
  const [dir, done] = await tempDir();
  try {
    const data = pseudoRandom(300_000, 3);
    await Deno.writeFile(`${dir}/img`, data);
    await pack({ output: `${dir}/s.hxz`, disk: `${dir}/img` });
    const s = await Deno.readFile(`${dir}/s.hxz`);
    const base = await open(`${dir}/s.hxz`);
    try {
      await pack({ output: `${dir}/t.hxz`, disk: `${dir}/img`, base, basePath: "s.hxz" });
      // pack onto its own input, and a thin pack onto its base.
      await refused(
        () => pack({ output: `${dir}/img`, disk: `${dir}/img`, force: true }),
        /img: is also an input: write the output elsewhere/,
      );
      await refused(
        () => pack({ output: `${dir}/s.hxz`, disk: `${dir}/img`, base, force: true }),
        /s\.hxz: is also an input/,
      );
      // extract onto the archive, and onto a parent of a thin archive (another name for it).
      await Deno.link(`${dir}/s.hxz`, `${dir}/s-link.hxz`);
      const t = await open(`${dir}/t.hxz`);
      try {
        await refused(
          () => extract(t, `${dir}/s-link.hxz`, { force: true }),
          /s-link\.hxz: is the same file as the input .*s\.hxz/,
        );
      } finally {
        t.close();
      }
      await refused(() => extract(base, `${dir}/s.hxz`, { force: true }), /is also an input/);
      await refused(() => flatten(base, { output: `${dir}/s.hxz`, force: true }), /also an input/);
      // commit onto its overlay or its base.
      const ov = await openOverlay(`${dir}/o.hxo`, base, { create: true });
      try {
        await ov.write("disk", 4096, pseudoRandom(4096, 9));
        await ov.flush();
        for (const [out, mode] of [["o.hxo", "thin"], ["s.hxz", "thin"], ["s.hxz", "flatten"]]) {
          await refused(
            () =>
              commitOverlay(base, ov, {
                output: `${dir}/${out}`,
                force: true,
                mode: mode as "thin" | "flatten",
              }),
            new RegExp(`${out.replace(".", "\\.")}: is also an input`),
          );
        }
      } finally {
        ov.close?.();
      }
    } finally {
      base.close();
    }
    // Nothing was touched, and no temporary file is left.
    assertEquals(await Deno.readFile(`${dir}/img`), data);
    assertEquals(await Deno.readFile(`${dir}/s.hxz`), s);
    assertEquals(
      [...Deno.readDirSync(dir)].filter((e) => e.name.includes(".tmp-")).map((e) => e.name),
      [],
    );

    // Not a regular file: moving a new file into place would replace it, not write into it.
    await Deno.mkdir(`${dir}/d`);
    await Deno.symlink(`${dir}/img`, `${dir}/lnk`);
    const fifo = await new Deno.Command("mkfifo", { args: [`${dir}/ff`] }).output();
    const outs: [string, RegExp][] = [
      ["d", /d: exists and is not a regular file/],
      ["lnk", /lnk: is a symbolic link \(give the file it points to\)/],
    ];
    if (fifo.code === 0) outs.push(["ff", /ff: exists and is not a regular file/]);
    else console.error("NOTE: no mkfifo here: the FIFO case is not tested");
    for (const [name, re] of outs) {
      const r = await hexz(["extract", `${dir}/s.hxz`, `${dir}/${name}`, "--force"]);
      assertEquals(r.code, 1, r.err);
      assertMatch(r.err, re);
    }
    assertEquals(Deno.lstatSync(`${dir}/lnk`).isSymlink, true);
    assertEquals(await Deno.readFile(`${dir}/img`), data);
    // A directory that exists but takes no new file: the reason, not "no such directory".
    const r = await hexz(["pack", "/proc/hexz-test.hxz", "--disk", `${dir}/img`], {
      perms: ["--allow-all"], // Deno asks for all permissions for anything under /proc
    });
    assertEquals(r.code, 1, r.err);
    assertMatch(r.err, /^hexz: \/proc\/hexz-test\.hxz: cannot create: /);
  } finally {
    await done();
  }
});

Deno.test(needs(["tmpfs"], {
  name: "a full disk is one line naming the output, and leaves nothing behind",
  fn: async () => {
    const [dir, done] = await tempDir();
    const [small, unmount] = await smallTmpfs(dir, "1m").catch(async (e) => {
      await done();
      throw e;
    });
    try {
      await Deno.writeFile(`${dir}/img`, pseudoRandom(3_000_000, 5));
      await pack({ output: `${dir}/s.hxz`, disk: `${dir}/img`, compression: "none" });
      for (
        const [args, name] of [
          [["pack", `${small}/x.hxz`, "--disk", `${dir}/img`, "--compression", "none"], "x.hxz"],
          [["extract", `${dir}/s.hxz`, `${small}/x.img`], "x.img"],
          [["extract", `${dir}/s.hxz`, `${small}/y.img`, "--workers", "2"], "y.img"],
        ] as const
      ) {
        const r = await hexz([...args]);
        assertEquals(r.code, 1, r.err);
        assertEquals(r.err, `hexz: ${small}/${name}: cannot write: no space left on device\n`);
        assertEquals([...Deno.readDirSync(small)].map((e) => e.name), [], args.join(" "));
      }
      // A directory tree that does not fit: no half tree, into a new directory or into the
      // (empty) mount point itself; one that fits lands in the mount point.
      await Deno.mkdir(`${dir}/tree/sub`, { recursive: true });
      await Deno.writeFile(`${dir}/tree/a.txt`, new TextEncoder().encode("a\n"));
      await Deno.writeFile(`${dir}/tree/sub/big`, pseudoRandom(2_000_000, 6));
      await build({ source: `${dir}/tree`, output: `${dir}/t.hxz`, compression: "none" });
      for (const out of [`${small}/t`, small]) {
        const r = await hexz(["extract", `${dir}/t.hxz`, out]);
        assertEquals(r.code, 1, r.err);
        assertMatch(r.err, /^hexz: .*: no space left on device\n$/);
        assertEquals([...Deno.readDirSync(small)].map((e) => e.name), [], out);
      }
      await Deno.remove(`${dir}/tree/sub/big`);
      await build({ source: `${dir}/tree`, output: `${dir}/t.hxz`, force: true });
      const r = await hexz(["extract", `${dir}/t.hxz`, small, "-q"]);
      assertEquals([r.code, r.err], [0, ""]);
      assertEquals([...Deno.readDirSync(small)].map((e) => e.name).sort(), ["a.txt", "sub"]);
      assertEquals(await Deno.readTextFile(`${small}/a.txt`), "a\n");
    } finally {
      await unmount();
      await done();
    }
  },
}));

Deno.test("pack refuses inputs that are neither regular files nor block devices, without waiting", async () => {
  const [dir, done] = await tempDir();
  try {
    const cases: [string, RegExp][] = [
      ["/dev/zero", /\/dev\/zero: not a regular file or a block device/],
      ["/proc/self/status", /reports 0 bytes but has data/],
    ];
    const fifo = await new Deno.Command("mkfifo", { args: [`${dir}/fifo`] }).output();
    assertEquals(fifo.code, 0, "mkfifo");
    cases.push([`${dir}/fifo`, /fifo: not a regular file or a block device/]);
    for (const [input, re] of cases) {
      // A FIFO with no writer would block an open: the check comes before it (no hang).
      const r = await hexz(["pack", `${dir}/x.hxz`, "--disk", input], { perms: ["--allow-all"] });
      assertEquals(r.code, 2, r.err);
      assertMatch(r.err, re);
    }
  } finally {
    await done();
  }
});

Deno.test(needs(["loop"], {
  name: "pack takes a block device (a loop device over a file)",
  fn: async () => {
    const [dir, done] = await tempDir();
    try {
      await Deno.writeFile(`${dir}/backing`, pseudoRandom(3 << 20, 8));
      const lo = await new Deno.Command("losetup", {
        args: ["-f", "--show", `${dir}/backing`],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assertEquals(lo.code, 0, new TextDecoder().decode(lo.stderr));
      const dev = new TextDecoder().decode(lo.stdout).trim();
      try {
        let r = await hexz(["pack", `${dir}/b.hxz`, "--disk", dev], { perms: ["--allow-all"] });
        assertEquals(r.code, 0, r.err);
        r = await hexz(["extract", `${dir}/b.hxz`, `${dir}/b.raw`, "-q"]);
        assertEquals(r.code, 0, r.err);
        assertEquals(await Deno.readFile(`${dir}/b.raw`), await Deno.readFile(`${dir}/backing`));
      } finally {
        await new Deno.Command("losetup", { args: ["-d", dev] }).output();
      }
    } finally {
      await done();
    }
  },
}));
