import { open } from "../mod.ts";
import { extents } from "../core/read/extents.ts";
import { assertEquals } from "./_assert.ts";
import { packBytes } from "./_archive.ts";
import { pseudoRandom, tempDir } from "./_tools.ts";

/** The extents a byte-by-byte scan of whole blocks finds (the reference). */
function reference(data: Uint8Array, block: number, offset: number, length: number) {
  const out: { offset: number; length: number; zero: boolean }[] = [];
  const end = Math.min(offset + length, data.length);
  for (let b = Math.floor(offset / block) * block; b < end; b += block) {
    const zero = data.subarray(b, Math.min(b + block, data.length)).every((x) => x === 0);
    const from = Math.max(b, offset), to = Math.min(b + block, end);
    if (to <= from) continue;
    const last = out[out.length - 1];
    if (last && last.zero === zero) last.length += to - from;
    else out.push({ offset: from, length: to - from, zero });
  }
  return out;
}

Deno.test("extents: zero runs as the index records them, over page boundaries and odd ranges", async () => {
  const [dir, done] = await tempDir();
  try {
    // 1 KiB blocks, 9000 of them: three index pages. Zero runs of varied lengths.
    const data = pseudoRandom(9000 * 1024 + 300, 5);
    const r = pseudoRandom(200, 6);
    for (let i = 0; i < 60; i++) {
      const at = ((r[3 * i] << 8) | r[3 * i + 1]) % 9000;
      data.fill(0, at * 1024, Math.min(data.length, (at + 1 + r[3 * i + 2]) * 1024));
    }
    data.fill(0, 4095 * 1024, 4099 * 1024); // across the first page boundary
    const p = await packBytes(dir, data, { blockSize: 1024 });
    const a = await open(p);
    try {
      for (
        const [o, n] of [
          [0, data.length],
          [1, 5000],
          [4095 * 1024 + 17, 10_000],
          [data.length - 700, 10_000],
          [3_000_000, 1],
          [data.length, 10],
        ]
      ) {
        assertEquals(await extents(a, "disk", o, n), reference(data, 1024, o, n), `${o}+${n}`);
      }
      const some = await extents(a, "disk", 0, data.length, 3);
      assertEquals(some, reference(data, 1024, 0, data.length).slice(0, 3));
    } finally {
      a.close();
    }
  } finally {
    await done();
  }
});
