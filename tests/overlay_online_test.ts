/**
 * Overlays compacting while they are written (openOverlay's `onlineCompact`): reads and writes
 * go on during the copy, blocks written meanwhile end up with their latest content, flushes
 * stay durable, close cancels cleanly, a full disk leaves the old log in use; and end to end,
 * qemu-io rewriting the same range through the NBD server keeps the overlay bounded.
 */
import { assert, assertEquals, assertMatch, assertRejects } from "./_assert.ts";
import { assertBytesEqual } from "./_archive.ts";
import { needs, pseudoRandom, smallTmpfs, tempDir } from "./_tools.ts";
import { Prng } from "./_prng.ts";
import { hexz } from "./_cli.ts";
import { type Archive, open, pack } from "../mod.ts";
import { type CompactEvent, openOverlay, type Overlay } from "../core/overlay/overlay.ts";
import { serveNbd } from "../serve/nbd.ts";

const BLOCK = 4096;
const KiB = 1024;
const MiB = 1024 * 1024;
const PASSWORD = "correct horse";
const KDF = { name: "argon2id" as const, memoryKiB: 256, iterations: 1, parallelism: 1 };

/** A base archive of `size` bytes (random at the start, zero after), plain or encrypted. */
async function makeBase(
  dir: string,
  size: number,
  encrypted: boolean,
): Promise<{ img: Uint8Array; path: string; open: () => Promise<Archive> }> {
  const img = new Uint8Array(size);
  img.set(pseudoRandom(Math.min(size, MiB), 31));
  const path = `${dir}/base.hxz`;
  await Deno.writeFile(`${dir}/base.img`, img);
  await pack({
    output: path,
    disk: `${dir}/base.img`,
    compression: "zstd",
    ...(encrypted ? { encrypt: { password: PASSWORD, kdf: KDF } } : {}),
  });
  return { img, path, open: () => open(path, encrypted ? { password: PASSWORD } : {}) };
}

/** Names in `dir` that start with `prefix` (an overlay and any temporary beside it). */
function named(dir: string, prefix: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.startsWith(prefix)).sort();
}

/** Resolves once a compaction's temporary file beside `path` holds more than its header. */
async function copyStarted(dir: string, name: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    for (const n of named(dir, `${name}.tmp-`)) {
      const size = await Deno.stat(`${dir}/${n}`).then((s) => s.size, () => 0);
      // The header (and key record) is written just before the live blocks are picked.
      if (size > BLOCK + 96) return `${dir}/${n}`;
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  throw new Error("no compaction started within 10 s");
}

/** The overlay's whole disk stream as read through it. */
function whole(ov: Overlay): Promise<Uint8Array> {
  return ov.read("disk", 0, ov.size("disk"));
}

async function reopened(path: string, base: Archive): Promise<Uint8Array> {
  const ov = await openOverlay(path, base, { readOnly: true });
  try {
    return await whole(ov);
  } finally {
    await ov.close();
  }
}

for (const encrypted of [false, true]) {
  const kind = encrypted ? "encrypted" : "plain";

  Deno.test(`${kind} overlay compacts itself while written; reads match a model, the log stays bounded`, async () => {
    const [dir, done, keep] = await tempDir();
    try {
      const b = await makeBase(dir, 4 * MiB, encrypted);
      const base = keep(await b.open());
      const model = b.img.slice();
      const events: CompactEvent[] = [];
      const path = `${dir}/o.hxo`;
      const ov = keep(
        await openOverlay(path, base, {
          create: true,
          onlineCompact: 256 * KiB,
          onCompact: (e) => events.push(e),
        }),
      );
      // Everything lands in a hot range of 128 blocks: a VM rewriting its logs and swap.
      const hot = 128 * BLOCK;
      const rnd = new Prng(encrypted ? 72 : 71);
      let written = 0, largest = 0;
      for (let round = 0; round < 40; round++) {
        const pending: Promise<unknown>[] = [];
        for (let k = 0; k < 16; k++) {
          const off = rnd.int(hot - 1);
          const len = Math.min(hot - off, rnd.range(1, 64 * KiB));
          const op = rnd.int(10);
          if (op < 6) {
            const data = pseudoRandom(len, rnd.next());
            model.set(data, off);
            pending.push(ov.write("disk", off, data));
            written += len;
          } else if (op < 7) {
            model.fill(0, off, off + len);
            pending.push(ov.writeZeroes("disk", off, len));
          } else if (op < 8) {
            pending.push(ov.flush());
          } else {
            // A read sees every write issued before it, whatever compaction does meanwhile.
            const want = model.slice(off, off + len);
            pending.push(
              ov.read("disk", off, len).then((got) => {
                assertBytesEqual(got, want, `read of ${len} at ${off}, round ${round}`);
              }),
            );
          }
        }
        await Promise.all(pending);
        largest = Math.max(largest, (await Deno.stat(path)).size);
      }
      // Let a compaction still copying finish, then check everything.
      await ov.compact();
      assert(written > 10 * MiB, `wrote ${written} bytes`);
      const ok = events.filter((e) => e.ok).length;
      assert(ok >= 4, `${ok} compactions: ${JSON.stringify(events)}`);
      assertEquals(events.filter((e) => !e.ok), []);
      // Live data is at most 512 KiB (and tags): the log never grew much past twice that.
      assert(largest < 3 * MiB, `the log reached ${largest} bytes for ${written} written`);
      assertBytesEqual(await whole(ov), model, "after the writes");
      await ov.flush();
      await ov.close();
      assertEquals(named(dir, "o.hxo"), ["o.hxo"]);
      assertBytesEqual(await reopened(path, base), model, "reopened");
    } finally {
      await done();
    }
  });

  Deno.test(`${kind} overlay: blocks written during a compaction's copy keep their latest content; a flush then is durable`, async () => {
    const [dir, done, keep] = await tempDir();
    try {
      const b = await makeBase(dir, 32 * MiB, encrypted);
      const base = keep(await b.open());
      const model = b.img.slice();
      const path = `${dir}/o.hxo`;
      const ov = keep(await openOverlay(path, base, { create: true, onlineCompact: false }));
      // 24 MiB of live blocks, flushed: a copy long enough to write into.
      for (let i = 0; i < 6; i++) {
        const data = pseudoRandom(4 * MiB, 40 + i);
        model.set(data, i * 4 * MiB);
        await ov.write("disk", i * 4 * MiB, data);
      }
      await ov.flush();
      // Until the changes below land while the copy runs (a loaded machine may let it end
      // first: then it is simply tried again, with another compaction).
      let tested = false;
      for (let attempt = 0; attempt < 5 && !tested; attempt++) {
        const compacting = ov.compact();
        await copyStarted(dir, "o.hxo");
        // Issued at once, while it copies: block 100 rewritten three times, a zeroed range,
        // a block never written before, and a flush.
        const changes: Promise<unknown>[] = [];
        for (let i = 0; i < 3; i++) {
          const data = new Uint8Array(BLOCK).fill(0x10 + i + attempt * 3);
          model.set(data, 100 * BLOCK);
          changes.push(ov.write("disk", 100 * BLOCK, data));
        }
        model.fill(0, (200 + attempt) * BLOCK, 300 * BLOCK);
        changes.push(ov.writeZeroes("disk", (200 + attempt) * BLOCK, (100 - attempt) * BLOCK));
        const fresh = pseudoRandom(3 * BLOCK + 5, 49 + attempt);
        model.set(fresh, (28 + attempt) * MiB + 7);
        changes.push(ov.write("disk", (28 + attempt) * MiB + 7, fresh));
        changes.push(
          ov.flush().then(() => {
            // Before anything queued after the flush runs: what a crash now would leave is
            // the old log (the new file is not in place yet), which must hold them.
            tested = named(dir, "o.hxo.tmp-").length > 0;
            Deno.copyFileSync(path, `${dir}/crash.hxo`);
          }),
        );
        await Promise.all(changes);
        const r = await compacting;
        assertBytesEqual(await whole(ov), model, `after compaction ${attempt}`);
        const crashed = await reopened(`${dir}/crash.hxo`, base);
        assertBytesEqual(crashed, model, `flushed before swap ${attempt}`);
        if (!tested) continue;
        // Written during the copy, so copied again: the new log holds two versions of some.
        assertEquals((await Deno.stat(path)).size, r.after);
        assert(ov.stats().compactSize < r.after, `${r.after} ${JSON.stringify(ov.stats())}`);
      }
      assert(tested, "every copy ended before the changes: nothing was tested");
      // Writes go on in the new log, in sequence (a gap would cut the replay short).
      const more = pseudoRandom(10_000, 50);
      model.set(more, 5 * MiB + 1);
      await ov.write("disk", 5 * MiB + 1, more);
      await ov.flush();
      await ov.close();
      assertEquals(named(dir, "o.hxo"), ["o.hxo"]);
      assertBytesEqual(await reopened(path, base), model, "reopened");
    } finally {
      await done();
    }
  });
}

Deno.test("closing an overlay during a compaction cancels it: no temporary left, no write lost", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    const b = await makeBase(dir, 32 * MiB, true);
    const base = keep(await b.open());
    const model = b.img.slice();
    const path = `${dir}/o.hxo`;
    const ov = keep(await openOverlay(path, base, { create: true, onlineCompact: false }));
    for (let i = 0; i < 4; i++) {
      const data = pseudoRandom(4 * MiB, 60 + i);
      model.set(data, i * 4 * MiB);
      await ov.write("disk", i * 4 * MiB, data);
    }
    const compacting = ov.compact();
    await copyStarted(dir, "o.hxo");
    const data = new Uint8Array(BLOCK).fill(7);
    model.set(data, 3 * BLOCK);
    await ov.write("disk", 3 * BLOCK, data);
    await ov.flush();
    await ov.close();
    const e = await assertRejects(() => compacting);
    assertMatch((e as Error).message, /cancelled: the overlay was closed/);
    assertEquals(named(dir, "o.hxo"), ["o.hxo"]);
    assertBytesEqual(await reopened(path, base), model, "reopened");
  } finally {
    await done();
  }
});

Deno.test("a closed overlay is not compacted: compact() after close() rejects and leaves the file as it was", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    const b = await makeBase(dir, 4 * MiB, false);
    const base = keep(await b.open());
    const path = `${dir}/o.hxo`;
    const ov = keep(await openOverlay(path, base, { create: true, onlineCompact: false }));
    // Zero records only: a compaction of them reads nothing from the closed log.
    await ov.writeZeroes("disk", 0, 2 * BLOCK);
    await ov.writeZeroes("disk", 0, 2 * BLOCK);
    await ov.flush();
    await ov.close();
    const before = await Deno.readFile(path);
    const e = await assertRejects(() => ov.compact());
    assertMatch((e as Error).message, /o\.hxo: the overlay is closed/);
    assertBytesEqual(await Deno.readFile(path), before, "the overlay file");
    assertEquals(named(dir, "o.hxo"), ["o.hxo"]);
  } finally {
    await done();
  }
});

Deno.test("a compaction killed with its process leaves a temporary file; the next writable open removes it", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    const b = await makeBase(dir, 32 * MiB, false);
    const path = `${dir}/o.hxo`;
    // Another process rewrites 16 MiB with byte 1, 2, 3... and compacts at 16 MiB dead.
    const here = (p: string) => new URL(p, import.meta.url).href;
    await Deno.writeTextFile(
      `${dir}/writer.ts`,
      `import { open } from ${JSON.stringify(here("../mod.ts"))};
import { openOverlay } from ${JSON.stringify(here("../core/overlay/overlay.ts"))};
const base = await open(${JSON.stringify(b.path)});
const ov = await openOverlay(${
        JSON.stringify(path)
      }, base, { create: true, onlineCompact: 16 << 20 });
for (let i = 1; ; i++) await ov.write("disk", 0, new Uint8Array(16 << 20).fill(i % 250 + 1));
`,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-q", "--allow-all", `${dir}/writer.ts`],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    try {
      await copyStarted(dir, "o.hxo");
    } finally {
      child.kill("SIGKILL");
    }
    await child.output();
    const left = named(dir, "o.hxo");
    assertEquals(left.length, 2, `the killed compaction's file is there: ${left}`);
    const base = keep(await b.open());
    (await openOverlay(path, base, { readOnly: true })).close();
    assertEquals(named(dir, "o.hxo"), left, "a read-only open leaves it");
    const ov = await openOverlay(path, base, { onlineCompact: false });
    try {
      assertEquals(named(dir, "o.hxo"), ["o.hxo"]);
      const got = await whole(ov);
      // The kill may have torn a 16 MiB write between its records (4 MiB each): the last
      // pass, then the one before it; every block is whole.
      const passes = new Set<number>();
      for (let at = 0; at < 16 * MiB; at += BLOCK) {
        const v = got[at];
        assert(v >= 1 && got.subarray(at, at + BLOCK).every((x) => x === v), `block at ${at}`);
        passes.add(v);
      }
      assert(passes.size <= 2, `bytes of passes ${[...passes]}`);
      assertBytesEqual(got.subarray(16 * MiB), b.img.subarray(16 * MiB), "the rest");
    } finally {
      await ov.close();
    }
    // A temporary that is in use (locked, as a running compaction's is) stays.
    const busy = `${path}.tmp-0123abcd`;
    const held = keep(await Deno.open(busy, { write: true, createNew: true }));
    await held.lock(true);
    (await openOverlay(path, base)).close();
    assertEquals(named(dir, "o.hxo"), ["o.hxo", "o.hxo.tmp-0123abcd"]);
  } finally {
    await done();
  }
});

Deno.test(needs(["tmpfs"], {
  name: "a compaction that fills the disk leaves the old log in use, is reported once, backs off",
  async fn() {
    const [dir, done, keep] = await tempDir();
    const [small, unmount] = await smallTmpfs(dir, "1800k").catch(async (e) => {
      await done();
      throw e;
    });
    try {
      const b = await makeBase(dir, 4 * MiB, false);
      const base = keep(await b.open());
      const model = b.img.slice();
      const events: CompactEvent[] = [];
      const path = `${small}/o.hxo`;
      const ov = keep(
        await openOverlay(path, base, {
          create: true,
          onlineCompact: 256 * KiB,
          onCompact: (e) => events.push(e),
        }),
      );
      // 512 KiB live, rewritten until dead bytes pass the live ones (twice): the copy of
      // 512 KiB does not fit beside the 1.5 MiB log.
      for (let i = 0; events.length === 0; i++) {
        assert(i < 4, `no compaction after ${i} writes: ${JSON.stringify(ov.stats())}`);
        const data = pseudoRandom(512 * KiB, 71 + i);
        model.set(data, 0);
        await ov.write("disk", 0, data);
        // The compaction runs beside the writes: wait for its end before writing again.
        const until = Date.now() + 500;
        while (events.length === 0 && Date.now() < until) {
          await new Promise((r) => setTimeout(r, 5));
        }
      }
      assertEquals(events.length, 1);
      const e = events[0];
      assert(!e.ok);
      assertMatch(e.error.message, /o\.hxo.*no space left/);
      assertEquals(named(small, "o.hxo"), ["o.hxo"]);
      // The old log is still the overlay: it takes writes and reads them back, and does not
      // try again on every write.
      for (let i = 0; i < 4; i++) {
        const data = new Uint8Array(BLOCK).fill(i + 1);
        model.set(data, (200 + i) * BLOCK);
        await ov.write("disk", (200 + i) * BLOCK, data);
      }
      await ov.flush();
      await new Promise((r) => setTimeout(r, 50));
      assertEquals(events.length, 1);
      assertBytesEqual(await whole(ov), model, "after the failure");
      await ov.close();
      assertBytesEqual(await reopened(path, base), model, "reopened");
    } finally {
      await unmount();
      await done();
    }
  },
}));

Deno.test(needs(["qemu-io", "cmp"], {
  name: "NBD --rw: qemu-io rewriting one range keeps the overlay bounded; commit has the latest",
  async fn() {
    const [dir, done, keep] = await tempDir();
    try {
      const b = await makeBase(dir, 8 * MiB, false);
      const base = keep(await b.open());
      const overlay = `${dir}/vm.hxo`;
      const events: CompactEvent[] = [];
      const server = await serveNbd(base, {
        socket: `${dir}/nbd.sock`,
        overlay,
        readOnly: false,
        compact: { onlineCompact: MiB, onCompact: (e) => events.push(e) },
      });
      keep(server);
      // 40 rewrites of the first MiB with a zeroed range among them, then read back.
      const cmds: string[] = [];
      for (let i = 1; i <= 40; i++) {
        cmds.push(`write -P ${i} 0 1M`);
        if (i === 20) cmds.push("write -z 2M 512k");
      }
      cmds.push("read -P 40 0 1M", "read -P 0 2M 512k");
      const p = await new Deno.Command("qemu-io", {
        args: ["-f", "raw", server.address, ...cmds.flatMap((c) => ["-c", c])],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const out = new TextDecoder().decode(p.stdout) + new TextDecoder().decode(p.stderr);
      assert(p.code === 0 && !/fail|error|mismatch/i.test(out), out);
      const size = (await Deno.stat(overlay)).size;
      await server.close();
      const ok = events.filter((e) => e.ok).length;
      assert(ok >= 3, `${ok} compactions: ${JSON.stringify(events)}`);
      assert(size < 5 * MiB, `overlay of ${size} bytes after 40 MiB written`);
      assertEquals(named(dir, "vm.hxo"), ["vm.hxo"]);
      // What qemu-io wrote, committed and extracted, compared by cmp.
      const want = b.img.slice();
      want.fill(40, 0, MiB);
      want.fill(0, 2 * MiB, 2 * MiB + 512 * KiB);
      await Deno.writeFile(`${dir}/want.img`, want);
      let r = await hexz(["commit", b.path, overlay, `${dir}/v2.hxz`, "--silent"]);
      assertEquals(r.code, 0, r.err);
      r = await hexz(["extract", `${dir}/v2.hxz`, `${dir}/v2.img`, "--silent"]);
      assertEquals(r.code, 0, r.err);
      const c = await new Deno.Command("cmp", { args: [`${dir}/want.img`, `${dir}/v2.img`] })
        .output();
      assertEquals(c.code, 0, new TextDecoder().decode(c.stdout));
    } finally {
      await done();
    }
  },
}));

/** `hexz serve --nbd --rw` in a child process, until `stop()` sends SIGINT. */
async function cliServer(archive: string, socket: string, flags: string[] = []) {
  const cli = new URL("../cli.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-q", "--allow-all", cli, "serve", archive, "--nbd", "--rw", "--socket", socket]
      .concat(flags),
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let err = "";
  while (!err.includes("\n")) {
    const r = await reader.read();
    if (r.done) break;
    err += r.value;
  }
  assertMatch(err, /^hexz: serving /);
  return {
    async stop(): Promise<{ code: number; err: string }> {
      child.kill("SIGINT");
      for (;;) {
        const r = await reader.read();
        if (r.done) break;
        err += r.value;
      }
      return { code: (await child.status).code, err };
    },
  };
}

Deno.test(needs(["qemu-io"], {
  name: "hexz serve --nbd --rw compacts its overlay as qemu-io rewrites it (not with --no-compact)",
  async fn() {
    const [dir, done] = await tempDir();
    try {
      const b = await makeBase(dir, 8 * MiB, false);
      // 70 rewrites of one MiB: past the default 64 MiB of dead versions.
      const cmds = Array.from({ length: 70 }, (_, i) => ["-c", `write -P ${i + 1} 1M 1M`]).flat();
      for (const noCompact of [false, true]) {
        const overlay = `${dir}/vm.hxo`;
        const server = await cliServer(b.path, `${dir}/nbd.sock`, [
          "--overlay",
          overlay,
          ...(noCompact ? ["--no-compact"] : []),
        ]);
        const uri = `nbd+unix:///?socket=${dir}/nbd.sock`;
        const p = await new Deno.Command("qemu-io", {
          args: ["-f", "raw", uri, ...cmds, "-c", "read -P 70 1M 1M"],
          stdout: "piped",
          stderr: "piped",
        }).output();
        const out = new TextDecoder().decode(p.stdout) + new TextDecoder().decode(p.stderr);
        assert(p.code === 0 && !/fail|error|mismatch/i.test(out), out);
        const { code, err } = await server.stop();
        assertEquals(code, 0, err);
        const size = (await Deno.stat(overlay)).size;
        if (noCompact) {
          assert(size > 70 * MiB, `--no-compact: ${size} bytes`);
          assert(!/compacted/.test(err), err);
        } else {
          assertMatch(err, /^hexz: compacted .*vm\.hxo: 6\d(\.\d+)? MiB -> \d(\.\d+)? MiB$/m);
          assert(size < 16 * MiB, `overlay of ${size} bytes after 70 MiB written`);
        }
        assertEquals(named(dir, "vm.hxo"), ["vm.hxo"]);
        const base = await b.open();
        try {
          const want = b.img.slice();
          want.fill(70, MiB, 2 * MiB);
          assertBytesEqual(await reopened(overlay, base), want, `noCompact ${noCompact}`);
        } finally {
          base.close();
        }
        await Deno.remove(overlay);
      }
    } finally {
      await done();
    }
  },
}));

Deno.test(needs(["fuse", "dd", "sh"], {
  name: "hexz mount --rw compacts its overlay as dd rewrites the disk",
  async fn() {
    const [tmp, done] = await tempDir();
    const dir = await Deno.realPath(tmp);
    const mnt = `${dir}/mnt`;
    await Deno.mkdir(mnt);
    const cli = new URL("../cli.ts", import.meta.url).pathname;
    let child: Deno.ChildProcess | null = null;
    try {
      const b = await makeBase(dir, 8 * MiB, false);
      const overlay = `${dir}/vm.hxo`;
      child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-q", "--allow-all", cli, "mount", b.path, mnt, "--rw", "--overlay", overlay],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      const stderr = new Response(child.stderr).text();
      const until = Date.now() + 20_000;
      while (!(await Deno.readTextFile("/proc/self/mounts")).includes(` ${mnt} `)) {
        assert(Date.now() < until, `no mount: ${await Promise.race([stderr, "(running)"])}`);
        await new Promise((r) => setTimeout(r, 25));
      }
      await Deno.stat(`${mnt}/disk`);
      // 70 rewrites of the second MiB (past the default 64 MiB of dead versions), each by a dd
      // of its own; the last one differs.
      await Deno.writeFile(`${dir}/a.bin`, pseudoRandom(MiB, 90));
      const last = pseudoRandom(MiB, 91);
      await Deno.writeFile(`${dir}/last.bin`, last);
      const dd = (src: string) =>
        `dd if=${dir}/${src} of=${mnt}/disk bs=1M seek=1 count=1 conv=notrunc,fsync status=none`;
      const w = await new Deno.Command("sh", {
        args: ["-c", `for i in $(seq 69); do ${dd("a.bin")} || exit 1; done; ${dd("last.bin")}`],
        stderr: "piped",
      }).output();
      assertEquals(w.code, 0, new TextDecoder().decode(w.stderr));
      child.kill("SIGTERM");
      assertEquals((await child.status).code, 0, await stderr);
      child = null;
      const err = await stderr;
      assertMatch(err, /^hexz: compacted .*vm\.hxo: 6\d(\.\d+)? MiB -> \d(\.\d+)? MiB$/m);
      const size = (await Deno.stat(overlay)).size;
      assert(size < 16 * MiB, `overlay of ${size} bytes after 70 MiB written`);
      assertEquals(named(dir, "vm.hxo"), ["vm.hxo"]);
      const base = await b.open();
      try {
        const want = b.img.slice();
        want.set(last, MiB);
        assertBytesEqual(await reopened(overlay, base), want, "the mount's writes");
      } finally {
        base.close();
      }
    } finally {
      if (child) {
        child.kill("SIGKILL");
        await child.status;
      }
      await new Deno.Command("fusermount3", { args: ["-uz", mnt], stderr: "null" }).output()
        .catch(() => {});
      await done();
    }
  },
}));

Deno.test(needs(["qemu-io"], {
  name: "Ctrl-C of hexz serve during a compaction removes its temporary file and keeps the log",
  async fn() {
    const [dir, done] = await tempDir();
    try {
      const b = await makeBase(dir, 48 * MiB, true);
      await Deno.writeTextFile(`${dir}/pw`, PASSWORD);
      const overlay = `${dir}/vm.hxo`;
      const model = b.img.slice();
      // 40 MiB live and just under 64 MiB dead, so the next rewrite starts a compaction
      // whose copy (sealed blocks opened and sealed again) takes a while.
      const base = await b.open();
      try {
        const ov = await openOverlay(overlay, base, { create: true, onlineCompact: false });
        for (let i = 0; i < 10; i++) {
          const data = pseudoRandom(4 * MiB, 100 + i);
          model.set(data, i * 4 * MiB);
          await ov.write("disk", i * 4 * MiB, data);
        }
        for (let i = 0; i < 63; i++) await ov.write("disk", 0, model.subarray(0, MiB));
        await ov.flush();
        const st = ov.stats();
        const dead = st.fileSize - st.compactSize;
        assert(dead > 62 * MiB && dead < 64 * MiB, `${dead} dead bytes`);
        await ov.close();
      } finally {
        base.close();
      }
      const server = await cliServer(b.path, `${dir}/nbd.sock`, [
        "--overlay",
        overlay,
        "--password-file",
        `${dir}/pw`,
      ]);
      model.fill(0x77, 0, 2 * MiB);
      const p = await new Deno.Command("qemu-io", {
        args: ["-f", "raw", `nbd+unix:///?socket=${dir}/nbd.sock`, "-c", "write -P 0x77 0 2M"],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assertEquals(p.code, 0, new TextDecoder().decode(p.stderr));
      await copyStarted(dir, "vm.hxo");
      const { code, err } = await server.stop();
      assertEquals(code, 0, err);
      assert(!/compacted/.test(err), `the compaction ended before the signal: ${err}`);
      assertEquals(named(dir, "vm.hxo"), ["vm.hxo"]);
      const again = await b.open();
      try {
        assertBytesEqual(await reopened(overlay, again), model, "the log after Ctrl-C");
      } finally {
        again.close();
      }
    } finally {
      await done();
    }
  },
}));
