import { createZstdDictCodec } from "../core/codec/zstd_dict.ts";
import { zstdCompress } from "../core/codec/zstd.ts";
import { entropy, trainDictionary } from "../core/pack/dict_train.ts";
import { HexzError } from "../core/errors.ts";
import { CODEC } from "../core/format/constants.ts";
import { assert, assertEquals, assertMatch, assertRejects } from "./_assert.ts";
import { packBytes, readAll, withOpen } from "./_archive.ts";
import { hexz } from "./_cli.ts";
import { needs, pseudoRandom, tempDir } from "./_tools.ts";

const WORDS = [
  "kernel:",
  "usb",
  "new",
  "high-speed",
  "device",
  "number",
  "using",
  "xhci_hcd",
  "systemd[1]:",
  "Started",
  "Session",
  "of",
  "user",
  "root.",
  "eth0:",
  "link",
  "up",
  "1000Mbps",
  "full",
  "duplex",
  "EXT4-fs",
  "(sda1):",
  "mounted",
  "filesystem",
  "with",
  "ordered",
  "data",
  "mode.",
  "audit:",
  "type=1400",
  'apparmor="STATUS"',
  'operation="profile_load"',
  "cron[812]:",
  "(root)",
  "CMD",
  "(run-parts",
  "/etc/cron.hourly)",
  "sshd[2201]:",
  "Accepted",
  "publickey",
  "for",
  "deploy",
  "from",
  "10.0.0.5",
  "port",
  "ssh2",
];

/** Log-like text: similar lines with varying numbers, like many small similar files. */
function logText(n: number, seed: number): Uint8Array {
  const r = pseudoRandom(n, seed);
  let s = "";
  let i = 0;
  while (s.length < n) {
    s += `2026-11-${10 + (r[i++ % n] % 20)}T${r[i++ % n] % 24}:${r[i++ % n] % 60}:${
      r[i++ % n] % 60
    } host-${r[i++ % n] % 8} `;
    const words = 4 + (r[i++ % n] % 9);
    for (let w = 0; w < words; w++) s += WORDS[(r[i++ % n] * 7 + w * 13) % WORDS.length] + " ";
    s += `[${r[i++ % n]}${r[i++ % n]}.${r[i++ % n]}]\n`;
  }
  return new TextEncoder().encode(s.slice(0, n));
}

function blocks(data: Uint8Array, size: number): Uint8Array[] {
  const out = [];
  for (let o = 0; o < data.length; o += size) out.push(data.subarray(o, o + size));
  return out;
}

Deno.test("entropy filter: zero and random blocks are skipped, text is used", async () => {
  assertEquals(entropy(new Uint8Array(100)), 0);
  assert(entropy(pseudoRandom(65536)) > 7.9);
  const samples = [
    ...blocks(logText(2 << 20, 1), 4096),
    ...Array.from({ length: 20 }, () => new Uint8Array(4096)),
    ...blocks(pseudoRandom(30 * 4096, 5), 4096),
  ];
  const r = await trainDictionary(samples, { maxSize: 16384 });
  assert(r !== null);
  assertEquals([r.skippedZero, r.skippedEntropy, r.used], [20, 30, 512]);
  assert(r.dictionary.length <= 16384);
  assert(r.evalDict < r.evalPlain * 0.8, `dictionary helps: ${r.evalDict} vs ${r.evalPlain}`);
  // Nothing useful to learn from random data.
  assertEquals(await trainDictionary(blocks(pseudoRandom(1 << 20, 9), 4096)), null);
});

Deno.test("high-entropy samples are kept when their content recurs in other samples", async () => {
  // One compressed file shipped many times (as Debian does with changelogs), once more at
  // another offset, and unique random blocks.
  const shared = pseudoRandom(4096, 77);
  const shifted = new Uint8Array(4096);
  shifted.set(shared.subarray(1000), 0);
  shifted.set(pseudoRandom(1000, 78), 3096);
  const samples = [
    ...blocks(logText(1 << 20, 2), 4096),
    ...Array.from({ length: 12 }, () => shared),
    shifted,
    ...blocks(pseudoRandom(30 * 4096, 6), 4096),
  ];
  const r = await trainDictionary(samples, { maxSize: 32768 });
  assert(r !== null);
  assertEquals([r.skippedZero, r.skippedEntropy, r.used], [0, 30, 256 + 13]);
  const codec = await createZstdDictCodec(r.dictionary, 3);
  try {
    const n = codec.compress(shared).length;
    assert(n < 256, `the recurring block compresses to ${n} bytes with the dictionary`);
  } finally {
    codec.close?.();
  }
});

Deno.test("dictionary codec round-trips and refuses frames of the wrong size", async () => {
  const text = logText(1 << 20, 2);
  const r = (await trainDictionary(blocks(text, 4096)))!;
  const codec = await createZstdDictCodec(r.dictionary, 3);
  const block = logText(4096, 77);
  const c = codec.compress(block);
  assert(c.length < zstdCompress(block, 3).length);
  const back = new Uint8Array(4096);
  codec.decompressInto(c, back);
  assertEquals(back, block);
  try {
    codec.decompressInto(c, new Uint8Array(4095));
    throw new Error("accepted a wrong size");
  } catch (e) {
    assert(e instanceof HexzError && /content size/.test(e.message));
  }
});

Deno.test("pack with a trained dictionary: smaller, round-trips, decodes with the dictionary", async () => {
  const [dir, done] = await tempDir();
  try {
    const text = logText(6 << 20, 3);
    const plain = await packBytes(dir, text, { compression: "zstd", blockSize: 4096 });
    const dict = await packBytes(dir, text, {
      compression: "zstd",
      blockSize: 4096,
      trainDictionary: true,
    });
    const sizeOf = async (p: string) => (await Deno.stat(p)).size;
    assert(await sizeOf(dict) < (await sizeOf(plain)) * 0.85, "dictionary archive is smaller");
    await withOpen(dict, async (a) => {
      assertEquals(await readAll(a, "disk"), text);
      assert(a.header.dictionary.length > 0 && a.header.dictionary.length <= 112640);
      const first = await a.block("disk", 0);
      assertEquals(first.entry.codec, CODEC.zstdDict);
      const meta = await a.metadata() as { dictionary: { evalZstdDict: number } };
      assert(meta.dictionary.evalZstdDict > 0);
    });
    const r = await hexz(["inspect", dict]);
    assertEquals(r.code, 0, r.err);
    assertMatch(r.out, /dictionary: \d+(\.\d+)? KiB/);
    assertMatch(r.out, /dictionary gain: zstd ratio [\d.]+x -> [\d.]+x/);
    const bad = await hexz(["pack", `${dir}/x.hxz`, "--disk", `${dict}.disk`, "--train-dict"]);
    assertEquals(bad.code, 2);
    assertMatch(bad.err, /needs --compression zstd/);
  } finally {
    await done();
  }
});

Deno.test(needs(["zstd"], {
  name:
    "dictionary blocks decode with zstd -D; on synthetic logs our gain stays >= 85% of zstd --train's",
  async fn() {
    const [dir, done] = await tempDir();
    try {
      const samples = blocks(logText(8 << 20, 4), 4096);
      const r = (await trainDictionary(samples, { level: 3 }))!;
      await Deno.writeFile(`${dir}/ours.dict`, r.dictionary);
      const codec = await createZstdDictCodec(r.dictionary, 3);
      const block = logText(4096, 1234);
      await Deno.writeFile(`${dir}/b.zst`, codec.compress(block));
      const d = await new Deno.Command("zstd", {
        args: ["-d", "-q", "-c", "-D", `${dir}/ours.dict`, `${dir}/b.zst`],
      }).output();
      assertEquals(d.code, 0, new TextDecoder().decode(d.stderr));
      assertEquals(d.stdout, block);

      // Same training samples (the ones not held out) for zstd --train, same size limit.
      await Deno.mkdir(`${dir}/s`);
      const held: Uint8Array[] = [];
      samples.forEach((s, i) =>
        i % 8 === 7 ? held.push(s) : Deno.writeFileSync(`${dir}/s/${i}`, s)
      );
      const t = await new Deno.Command("sh", {
        args: ["-c", `zstd -q --train ${dir}/s/* --maxdict=112640 -o ${dir}/zstd.dict`],
      }).output();
      assertEquals(t.code, 0, new TextDecoder().decode(t.stderr));
      const theirs = await createZstdDictCodec(await Deno.readFile(`${dir}/zstd.dict`), 3);
      const ev = held.slice(0, 256);
      const bytes = ev.reduce((n, s) => n + s.length, 0);
      const plain = ev.reduce((n, s) => n + zstdCompress(s, 3).length, 0);
      const ours = ev.reduce((n, s) => n + codec.compress(s).length, 0);
      const ref = ev.reduce((n, s) => n + theirs.compress(s).length, 0);
      const gain = (x: number) => bytes / x - bytes / plain;
      const share = gain(ours) / gain(ref);
      console.log(`dictionary gain vs zstd --train: ${(share * 100).toFixed(1)}%`);
      // A regression guard on synthetic logs (89%). The 90% target is measured on real
      // data by bench/dict.ts (99-151% there); zstd's own dictionaries also carry entropy
      // tables, which our raw-content dictionaries do not, and these short similar lines are
      // where those help most.
      assert(share >= 0.85, `our gain is ${(share * 100).toFixed(1)}% of zstd --train's`);
    } finally {
      await done();
    }
  },
}));

Deno.test("a damaged dictionary section is caught before any block decodes", async () => {
  const [dir, done] = await tempDir();
  try {
    const text = logText(1 << 20, 6);
    // A small dictionary, which 1 MiB of text repays (a 110 KiB one it would not).
    const p = await packBytes(dir, text, {
      compression: "zstd",
      blockSize: 4096,
      trainDictionary: { maxSize: 16 * 1024 },
    });
    const bytes = await Deno.readFile(p);
    await withOpen(p, (a) => {
      bytes[a.header.dictionary.offset + 10] ^= 0xff;
      return Promise.resolve();
    });
    await Deno.writeFile(p, bytes);
    await withOpen(p, async (a) => {
      await assertRejects(() => a.read("disk", 0, 100), HexzError, /dictionary/);
    });
  } finally {
    await done();
  }
});

Deno.test("reading a dictionary archive loads its dictionary once, however many reads need it", async () => {
  const [dir, done] = await tempDir();
  try {
    // Many 4 KiB blocks read concurrently by one read(): each once loaded a dictionary codec of
    // its own, and only one was freed; 15 rounds ran zstd-codec out of memory.
    const img = logText(2 << 20, 77);
    const path = await packBytes(dir, img, {
      compression: "zstd",
      blockSize: 4096,
      trainDictionary: true,
    });
    for (let round = 0; round < 30; round++) {
      await withOpen(path, async (a) => {
        assertEquals(a.header.dictionary.length > 0, true);
        const got = await a.read("disk", 0, img.length);
        assertEquals(got.length, img.length);
        if (round === 0) assertEquals(got, img);
      });
    }
  } finally {
    await done();
  }
});

Deno.test("pack --train-dict says so when it stores no dictionary", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/rnd.img`, pseudoRandom(2 << 20, 77));
    const args = ["pack", `${dir}/a.hxz`, "--disk", `${dir}/rnd.img`, "--compression", "zstd"];
    const r = await hexz([...args, "--train-dict"]);
    assertEquals(r.code, 0, r.err);
    assertMatch(r.err, /^hexz: note: --train-dict stored no dictionary/);
    const q = await hexz([...args, "--train-dict", "-q", "-f"]);
    assertEquals([q.code, q.err], [0, ""]);
    // Text that a dictionary helps: one is stored, and nothing is said about it.
    const lines = Array.from(
      { length: 60_000 },
      (_, i) => `GET /item/${i % 503} 200 ${i % 97}ms\n`,
    );
    await Deno.writeTextFile(`${dir}/log.img`, lines.join(""));
    const t = await hexz([
      "pack",
      `${dir}/t.hxz`,
      "--disk",
      `${dir}/log.img`,
      "--compression",
      "zstd",
      "--block-size",
      "4K",
      "--train-dict",
    ]);
    assertEquals(t.code, 0, t.err);
    assert(!t.err.includes("note"), t.err);
    await withOpen(`${dir}/t.hxz`, (a) => Promise.resolve(assert(a.header.dictionary.length > 0)));
    // 1 MiB of text whose held-out samples a 110 KiB dictionary makes about 14% smaller: that
    // saves less than the dictionary costs, so none is stored (the archive would grow).
    await Deno.writeFile(`${dir}/small.img`, logText(1 << 20, 6));
    const small = ["pack", "--disk", `${dir}/small.img`, "--compression", "zstd", "--block-size"];
    const s = await hexz([...small, "4K", `${dir}/s.hxz`, "--train-dict"]);
    assertEquals(s.code, 0, s.err);
    assertMatch(s.err, /^hexz: note: --train-dict stored no dictionary/);
    await withOpen(
      `${dir}/s.hxz`,
      (a) => Promise.resolve(assertEquals(a.header.dictionary.length, 0)),
    );
    const plain = await hexz([...small, "4K", `${dir}/p.hxz`, "-q"]);
    assertEquals(plain.code, 0, plain.err);
    assertEquals((await Deno.stat(`${dir}/s.hxz`)).size, (await Deno.stat(`${dir}/p.hxz`)).size);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
