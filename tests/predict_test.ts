import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { hexz } from "./_cli.ts";
import { inspect, open, pack } from "../mod.ts";
import { predict } from "../core/pack/predict.ts";
import { pseudoRandom, tempDir } from "./_tools.ts";

Deno.test("predict estimates close to what pack achieves, from a sample", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    const MiB = 1024 * 1024;
    const img = new Uint8Array(96 * MiB); // larger than the sample: really sampled
    const text = new TextEncoder().encode("GET /index.html 200 1234 mozilla\n".repeat(40000));
    for (let off = 0; off < 48 * MiB; off += 4 * MiB) {
      img.set(pseudoRandom(MiB, off), off);
      img.set(text.subarray(0, MiB), off + MiB);
    }
    await Deno.writeFile(`${dir}/img`, img);
    const r = await predict(`${dir}/img`, { sampleBytes: 16 * MiB });
    assertEquals(r.inputBytes, img.length);
    assert(r.sampledBytes <= 16 * MiB, `sampled ${r.sampledBytes}`);
    // Three quarters of the image are zeros (2 of every 4 MiB, then the whole second half).
    assert(Math.abs(r.zeroFraction! - 0.75) < 0.1, `zero fraction ${r.zeroFraction}`);
    await pack({ output: `${dir}/img.hxz`, disk: `${dir}/img`, compression: "zstd" });
    const a = keep(await open(`${dir}/img.hxz`));
    const actual = inspect(a).fileSize;
    a.close();
    const err = Math.abs(r.zstd.bytes - actual) / actual;
    assert(
      err < 0.35,
      `zstd estimate ${r.zstd.bytes} vs actual ${actual} (${(err * 100).toFixed(0)}% off)`,
    );
    assert(r.zstd.bytes < r.lz4.bytes, "zstd should be estimated smaller than lz4 on this input");
  } finally {
    await done();
  }
});

Deno.test("predict refuses what it cannot sample: devices and samples below one window", async () => {
  let r = await hexz(["predict", "/dev/null"]);
  assertEquals(r.code, 2, r.err);
  assertEquals(r.err, "hexz: /dev/null: not a regular file or a directory\n");
  const [dir, done] = await tempDir();
  try {
    await Deno.writeFile(`${dir}/img`, new Uint8Array(3 << 20));
    r = await hexz(["predict", `${dir}/img`, "--sample", "0"]);
    assertEquals(r.code, 2, r.err);
    assertEquals(r.err, "hexz: --sample 0: must be at least 1M (one sampling window)\n");
    r = await hexz(["predict", `${dir}/img`]);
    assertEquals(r.code, 0, r.err);
    assertMatch(r.out, /: 3 MiB in 1 file, sampled /);
  } finally {
    await done();
  }
});

Deno.test("predict of an empty input gives no ratio: null in JSON, - in text", async () => {
  const [dir, done] = await tempDir();
  try {
    await Deno.writeFile(`${dir}/empty.img`, new Uint8Array(0));
    await Deno.mkdir(`${dir}/none`);
    for (const path of [`${dir}/empty.img`, `${dir}/none`]) {
      const r = await predict(path);
      assertEquals(r.inputBytes, 0);
      assertEquals([r.lz4.ratio, r.zstd.ratio], [null, null]);
      assertEquals([r.zeroFraction, r.dedupFraction], [null, null]);
      let cli = await hexz(["predict", path, "--json"]);
      assertEquals(cli.code, 0, cli.err);
      const json = JSON.parse(cli.out);
      assertEquals([json.lz4.ratio, json.zstd.ratio], [null, null]);
      assertEquals([json.zeroFraction, json.dedupFraction], [null, null]);
      cli = await hexz(["predict", path]);
      assertEquals(cli.code, 0, cli.err);
      assertMatch(cli.out, /^zero: -, duplicate \(within the sample\): -$/m);
      assertMatch(cli.out, /^lz4: {2}about .* \(-\)$/m);
      assertMatch(cli.out, /^zstd: about .* \(-\)$/m);
      assert(!/0\.00x|0\.0%/.test(cli.out), cli.out);
    }
  } finally {
    await done();
  }
});
