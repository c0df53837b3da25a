/**
 * Reads for servers that never wait for the disk on the event loop: a file source given a
 * page-cache-only read (`cachedRead`) takes what it returns and reads the rest asynchronously;
 * the real one (preadv2 with RWF_NOWAIT through FFI) returns cached bytes and nothing of a
 * file whose pages were dropped.
 */
import { type CachedRead, fileSource, open } from "../mod.ts";
import { missPolicy } from "../core/io/source.ts";
import { cachedReader } from "../ffi/cached_read.ts";
import { cString, libc, O_RDONLY, POSIX_FADV_DONTNEED } from "../ffi/libc.ts";
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { packBytes } from "./_archive.ts";
import { needs, pseudoRandom, tempDir } from "./_tools.ts";
import { HexzError } from "../core/errors.ts";

Deno.test("a file source reads what cachedRead has not, asynchronously, at the right place", async () => {
  const [dir, done] = await tempDir();
  try {
    const data = pseudoRandom(200_000, 3);
    await Deno.writeFile(`${dir}/f`, data);
    for (const share of [0, 0.5, 1]) {
      const calls: number[] = [];
      // Reads the first `share` of what is asked for (0: "would wait for the disk").
      const partial: CachedRead = (fd, buf, offset) => {
        calls.push(offset);
        const n = Math.floor(buf.length * share);
        const r = new Uint8Array(n);
        let got = 0;
        // Fill from the real file, as the page cache would.
        const f = Deno.openSync(`${dir}/f`);
        f.seekSync(offset, Deno.SeekMode.Start);
        while (got < n) got += f.readSync(r.subarray(got))!;
        f.close();
        buf.set(r);
        assert(fd >= 0);
        return n;
      };
      // Misses read here (the default, while the disk is fast) and on the I/O threads.
      for (const blockAtMostMs of [undefined, 0]) {
        calls.length = 0;
        const src = await fileSource(`${dir}/f`, { cachedRead: partial, blockAtMostMs });
        try {
          assertEquals(await src.read(12_345, 100_001), data.subarray(12_345, 112_346));
          assertEquals(await src.read(0, 0), new Uint8Array(0));
          // Reads at once, several of them waiting together.
          const many = await Promise.all(
            [0, 50_000, 150_000, 199_999].map((o) => src.read(o, 1)),
          );
          assertEquals(many.map((b) => b[0]), [
            data[0],
            data[50_000],
            data[150_000],
            data[199_999],
          ]);
          assertEquals(calls, [12_345, 0, 50_000, 150_000, 199_999]);
          await assertRejects(() => src.read(199_000, 2000), HexzError, /outside the file/);
        } finally {
          src.close();
        }
      }
    }
  } finally {
    await done();
  }
});

Deno.test("misses are read here while the disk is fast, on the I/O threads once it is slow", () => {
  const p = missPolicy(1);
  assert(p.here(), "nothing measured yet");
  for (let i = 0; i < 50; i++) p.took(0.2);
  assert(p.here(), "0.2 ms disk");
  p.took(20); // one slow read: the average passes 1 ms
  assert(!p.here(), "after a 20 ms read");
  let n = 0;
  while (!p.here()) p.took(0.1), n++;
  assertEquals(n, 8); // fast again after a few reads (each off the event loop)
  const never = missPolicy(0);
  never.took(0);
  assert(!never.here(), "0: always on the I/O threads");
});

Deno.test("an archive opened with cachedRead reads, verifies and follows parents the same", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    const v1 = pseudoRandom(1_000_000, 8);
    const v2 = v1.slice();
    v2.set(pseudoRandom(50_000, 9), 400_000);
    const p1 = await packBytes(dir, v1, { compression: "zstd" });
    const b = keep(await open(p1));
    const p2 = await packBytes(dir, v2, { base: b, basePath: p1 });
    b.close();
    let calls = 0;
    const never: CachedRead = () => (calls++, 0); // nothing is ever in the cache
    for (const blockAtMostMs of [undefined, 0]) {
      calls = 0;
      const a = await open(p2, { cachedRead: never, blockAtMostMs });
      try {
        assertEquals(await a.read("disk", 0, v2.length), v2);
      } finally {
        a.close();
      }
      assert(calls > 16, `${calls} reads went through cachedRead`);
    }
  } finally {
    await done();
  }
});

/**
 * preadv2 through FFI (Linux, --allow-ffi), on a file system that serves RWF_NOWAIT reads from
 * its cache: a page just read comes back without waiting.
 */
function nowaitWorks(): boolean {
  const read = cachedReader();
  if (!read) return false;
  const path = Deno.makeTempFileSync({ prefix: "hexz-probe-" });
  try {
    Deno.writeFileSync(path, new Uint8Array(8192).fill(1));
    Deno.readFileSync(path);
    const lib = libc();
    const fd = lib.open(cString(path), O_RDONLY, 0);
    if (fd < 0) return false;
    try {
      return read(fd, new Uint8Array(new ArrayBuffer(4096)), 0) === 4096;
    } finally {
      lib.close(fd);
    }
  } finally {
    Deno.removeSync(path);
  }
}

Deno.test(needs([{ what: "preadv2 RWF_NOWAIT served from the page cache", met: nowaitWorks }], {
  name: "preadv2 RWF_NOWAIT: cached pages are read at once, dropped ones are not",
  fn: async () => {
    const read = cachedReader()!;
    const [dir, done] = await tempDir();
    try {
      const data = pseudoRandom(1 << 20, 4);
      const path = `${dir}/f`;
      const f = await Deno.open(path, { write: true, create: true });
      await f.write(data);
      await f.sync(); // clean pages can be dropped
      f.close();
      const lib = libc();
      const fd = lib.open(cString(path), O_RDONLY, 0);
      assert(fd >= 0);
      try {
        const buf = new Uint8Array(new ArrayBuffer(65536));
        // The page cache is shared with whatever else runs (the other tests; this host also
        // reclaims idle pages), so each state is set up again a few times before it counts.
        let n = -1;
        for (let i = 0; i < 5 && n !== 65536; i++) {
          await Deno.readFile(path); // cached
          n = read(fd, buf, 65536);
        }
        assertEquals(n, 65536);
        assertEquals(buf, data.subarray(65536, 131072));
        let dropped = -1;
        for (let i = 0; i < 5 && dropped !== 0; i++) {
          assertEquals(lib.posix_fadvise!(fd, 0n, 0n, POSIX_FADV_DONTNEED), 0);
          buf.fill(0);
          dropped = read(fd, buf, 65536);
          if (dropped !== 0) await new Promise((r) => setTimeout(r, 20));
        }
        assertEquals(dropped, 0, "read a dropped page without waiting?");
        // Through a file source the same read still returns the bytes, from the disk.
        const src = await fileSource(path, { cachedRead: read });
        try {
          assertEquals(await src.read(65536, 65536), data.subarray(65536, 131072));
          assertEquals(read(fd, buf, 65536), 65536); // now cached again
        } finally {
          src.close();
        }
      } finally {
        lib.close(fd);
      }
    } finally {
      await done();
    }
  },
}));
