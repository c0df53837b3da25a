/** `hexz bench` measures every kernel and the end-to-end round trip, and checks its input. */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { hexz } from "./_cli.ts";
import type { BenchReport } from "../diag/bench.ts";
import { benchSample } from "../diag/bench.ts";

const PERMS = ["--allow-read", "--allow-write", "--allow-env"];

Deno.test("bench reports every measurement with sensible values", async () => {
  const r = await hexz(["bench", "--size", "2M", "--runs", "1", "--json"], { perms: PERMS });
  assertEquals(r.code, 0, r.err);
  const rep = JSON.parse(r.out) as BenchReport;
  assertEquals(rep.bytes, 2 << 20);
  const names = rep.rows.map((x) => x.name);
  assertEquals(names.slice(0, 7), [
    "blake3",
    "fastcdc",
    "lz4 compress",
    "lz4 decompress",
    "zstd compress",
    "zstd decompress",
    "pack (1 thread)",
  ]);
  assertEquals(names[names.length - 1], "extract");
  for (const x of rep.rows) assert(Number.isFinite(x.mbps) && x.mbps > 0, `${x.name}: ${x.mbps}`);
  const ratio = (n: string) => rep.rows.find((x) => x.name === n)!.ratio!;
  // The sample is a quarter zeros and a quarter random: it shrinks, but by less than 4x.
  for (const n of ["lz4 compress", "zstd compress", "pack (1 thread)"]) {
    assert(ratio(n) > 1.3 && ratio(n) < 4, `${n}: ${ratio(n)}`);
  }
  assert(ratio("zstd compress") > ratio("lz4 compress"));
});

Deno.test("bench on a file measures its first --size bytes; bad input is one line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/in.img`, benchSample(3 << 20));
    const ok = await hexz(["bench", `${dir}/in.img`, "--size", "2M", "--runs", "1"], {
      perms: PERMS,
    });
    assertEquals(ok.code, 0, ok.err);
    assertMatch(ok.out, new RegExp(`^input: ${dir}/in.img, 2 MiB; `));
    assertMatch(ok.out, /^extract +\d+ MB\/s$/m);
    await Deno.writeFile(`${dir}/small`, new Uint8Array(1000));
    for (
      const [args, code, re] of [
        [[`${dir}/small`], 2, /small: 1000 bytes: bench needs at least 1 MiB/],
        [[`${dir}/missing`], 1, /missing: no such file/],
        [["--size", "100K"], 2, /--size 100K: must be between 1M and 1G/],
        [["--runs", "0"], 2, /--runs 0: must be 1..100/],
        [[dir], 2, /not a regular file/],
      ] as const
    ) {
      const r = await hexz(["bench", ...args], { perms: PERMS });
      assertEquals(r.code, code, r.err);
      assertMatch(r.err, new RegExp(`^hexz: .*${re.source}`));
      assertEquals(r.err.split("\n").length, 2, r.err);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
