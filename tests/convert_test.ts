/**
 * `hexz convert` end to end against the real GNU tar, gzip and zstd: trees through tar into
 * archives and back, WebDataset shards, and hostile tars refused with one line and no output.
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { hexz } from "./_cli.ts";
import { needs, pseudoRandom, tempDir } from "./_tools.ts";
import { makeTree, run, snapshot } from "./_tree.ts";
import { encodePax } from "../core/tar/pax.ts";

const PERMS = ["--allow-read", "--allow-write", "--allow-env", "--allow-sys=uid"];
const enc = new TextEncoder();

async function ok(args: string[]) {
  const r = await hexz(args, { perms: PERMS });
  assertEquals(r.code, 0, `hexz ${args.join(" ")}: ${r.err}`);
  return r;
}

/** What `dir` holds besides `keep`: nothing may be left behind, temporaries included. */
function leftovers(dir: string, keep: string[]): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => !keep.includes(n)).sort();
}

for (const format of ["gnu", "pax"]) {
  Deno.test(needs(["tar"], {
    name: `convert: a tree through GNU tar --format=${format} to .hxz extracts to the same tree`,
    fn: async () => {
      const [dir, done] = await tempDir();
      try {
        Deno.mkdirSync(`${dir}/src`);
        makeTree(`${dir}/src`);
        await run("tar", ["-C", `${dir}/src`, `--format=${format}`, "-cf", `${dir}/t.tar`, "."]);
        await ok(["convert", `${dir}/t.tar`, `${dir}/t.hxz`, "--compression", "zstd"]);
        await ok(["extract", `${dir}/t.hxz`, `${dir}/out`]);
        await run("diff", ["-r", "--no-dereference", `${dir}/src`, `${dir}/out`]);
        // The GNU format keeps whole seconds, PAX more.
        const seconds = format === "gnu";
        assertEquals(await snapshot(`${dir}/out`, seconds), await snapshot(`${dir}/src`, seconds));
      } finally {
        await done();
      }
    },
  }));
}

Deno.test(needs(["tar", "gzip", "zstd"], {
  name: "convert: gzip and zstd inputs are found by their bytes, whatever their names",
  fn: async () => {
    const [dir, done] = await tempDir();
    try {
      Deno.mkdirSync(`${dir}/src`);
      makeTree(`${dir}/src`);
      await run("tar", ["-C", `${dir}/src`, "-cf", `${dir}/t.tar`, "."]);
      await run("gzip", ["-k", `${dir}/t.tar`]);
      await run("zstd", ["-q", `${dir}/t.tar`]);
      // Misleading names: a gzip file called .tar, a zstd file called .dat.
      Deno.renameSync(`${dir}/t.tar.gz`, `${dir}/gz.tar`);
      Deno.renameSync(`${dir}/t.tar.zst`, `${dir}/zst.dat`);
      const want = await snapshot(`${dir}/src`, true); // GNU tar's default format: seconds
      for (const input of ["gz.tar", "zst.dat"]) {
        await ok(["convert", `${dir}/${input}`, `${dir}/${input}.hxz`, "--workers", "2"]);
        await ok(["extract", `${dir}/${input}.hxz`, `${dir}/out-${input}`]);
        assertEquals(await snapshot(`${dir}/out-${input}`, true), want, input);
      }
      // xz is refused by name.
      Deno.writeFileSync(`${dir}/x.tar.xz`, new Uint8Array([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0]));
      const r = await hexz(["convert", `${dir}/x.tar.xz`, `${dir}/x.hxz`]);
      assertEquals(r.code, 1);
      assertMatch(r.err, /^hexz: .*x\.tar\.xz: compressed with xz, which convert does not read/);
    } finally {
      await done();
    }
  },
}));

Deno.test(needs(["tar", "gzip", "zstd"], {
  name: "convert: .hxz to tar, tar.gz and tar.zst that GNU tar extracts to the same tree",
  fn: async () => {
    const [dir, done] = await tempDir();
    try {
      Deno.mkdirSync(`${dir}/src`);
      makeTree(`${dir}/src`);
      const want = await snapshot(`${dir}/src`);
      // From an archive `build` made, and from one converted from a PAX tar (which keeps the
      // milliseconds; the tars written carry them in PAX headers).
      await ok(["build", `${dir}/src`, `${dir}/b.hxz`]);
      await run("tar", ["-C", `${dir}/src`, "--format=pax", "-cf", `${dir}/t.tar`, "."]);
      await ok(["convert", `${dir}/t.tar`, `${dir}/t.hxz`]);
      for (const [name, flag] of [["o.tar", ""], ["o.tar.gz", "-z"], ["o.tar.zst", "--zstd"]]) {
        for (const src of ["b.hxz", "t.hxz"]) {
          await ok(["convert", `${dir}/${src}`, `${dir}/${name}`, "--force"]);
          const out = `${dir}/x-${src}-${name}`;
          Deno.mkdirSync(out);
          await run("tar", ["-C", out, ...(flag ? [flag] : []), "-xf", `${dir}/${name}`]);
          assertEquals(await snapshot(out), want, `${src} -> ${name}`);
        }
      }
      // --to decides over the name.
      await ok(["convert", `${dir}/b.hxz`, `${dir}/plain.out`, "--to", "tar.zst"]);
      const magic = Deno.readFileSync(`${dir}/plain.out`).subarray(0, 4);
      assertEquals([...magic], [0x28, 0xb5, 0x2f, 0xfd]);
      // An existing output is not replaced without --force.
      const r = await hexz(["convert", `${dir}/b.hxz`, `${dir}/o.tar`]);
      assertEquals(r.code, 1);
      assertMatch(r.err, /o\.tar: already exists \(use --force/);
    } finally {
      await done();
    }
  },
}));

Deno.test("convert: an archive without a file tree is refused with one line", async () => {
  const [dir, done] = await tempDir();
  try {
    Deno.writeFileSync(`${dir}/disk.img`, pseudoRandom(100_000, 3));
    await ok(["pack", `${dir}/disk.hxz`, "--disk", `${dir}/disk.img`]);
    const r = await hexz(["convert", `${dir}/disk.hxz`, `${dir}/disk.tar`]);
    assertEquals(r.code, 1);
    assertMatch(r.err, /^hexz: .*disk\.hxz: holds no file tree \(a disk image\)/);
    assertEquals(r.err.trim().split("\n").length, 1, r.err);
    assertEquals(leftovers(dir, ["disk.img", "disk.hxz"]), []);
    // Usage mistakes: exit 2.
    for (
      const args of [
        ["convert", `${dir}/disk.hxz`],
        ["convert", `${dir}/disk.hxz`, `${dir}/x.zip`],
        ["convert", `${dir}/disk.hxz`, `${dir}/a.hxz`, `${dir}/x.tar`],
        ["convert", `${dir}/disk.hxz`, `${dir}/x.tar`, "--shard-size", "1M"],
        ["convert", `${dir}/disk.img`, `${dir}/x.hxz`, "--shard-size", "1M"],
        // Flags that would be ignored, and block sizes pack refuses.
        ["convert", `${dir}/disk.img`, `${dir}/x.hxz`, "--dict-size", "64K"],
        ["convert", `${dir}/disk.img`, `${dir}/x.hxz`, "--block-size", "3K"],
        ["convert", `${dir}/disk.img`, `${dir}/x.hxz`, "--cdc", "--block-size", "64K"],
        ["convert", `${dir}/disk.img`, `${dir}/x.hxz`, "--compression", "none", "--level", "3"],
        ["convert", `${dir}/disk.hxz`, `${dir}/x.tar`, "--dict-size", "64K"],
      ]
    ) {
      const u = await hexz(args);
      assertEquals(u.code, 2, `${args.join(" ")}: ${u.err}`);
      assertEquals(u.err.trim().split("\n").length, 1, u.err);
    }
  } finally {
    await done();
  }
});

/** A tar made by hand: the header blocks of `entries` (name, typeflag, content). */
function handTar(entries: { name: string; type?: string; data?: Uint8Array }[]): Uint8Array {
  const blocks: Uint8Array[] = [];
  for (const e of entries) {
    const h = new Uint8Array(512);
    h.set(enc.encode(e.name).subarray(0, 100), 0);
    const data = e.data ?? new Uint8Array(0);
    const oct = (at: number, len: number, v: number) =>
      h.set(enc.encode(v.toString(8).padStart(len - 1, "0")), at);
    oct(100, 8, 0o644);
    oct(108, 8, 0);
    oct(116, 8, 0);
    oct(124, 12, data.length);
    oct(136, 12, 1_600_000_000);
    h[156] = (e.type ?? "0").charCodeAt(0);
    h.set(enc.encode("ustar\u000000"), 257);
    h.fill(0x20, 148, 156);
    const sum = h.reduce((a, b) => a + b, 0);
    h.set(enc.encode(sum.toString(8).padStart(6, "0") + "\u0000 "), 148);
    blocks.push(h, data, new Uint8Array((512 - (data.length % 512)) % 512));
  }
  blocks.push(new Uint8Array(1024));
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of blocks) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

/** Sets a header field of the entry at `at` to `text` and fixes the checksum. */
function patch(tar: Uint8Array, at: number, field: number, text: string, fixSum = true) {
  tar.set(enc.encode(text), at + field);
  if (!fixSum) return;
  const h = tar.subarray(at, at + 512);
  h.fill(0x20, 148, 156);
  const sum = h.reduce((a, b) => a + b, 0);
  h.set(enc.encode(sum.toString(8).padStart(6, "0") + "\u0000 "), 148);
}

Deno.test(needs(["tar"], {
  name: "convert: hostile tars are refused with one line and leave no output behind",
  fn: async () => {
    const [dir, done] = await tempDir();
    try {
      const data = pseudoRandom(5000, 9);
      const good = handTar([{ name: "a.bin", data }, { name: "b.txt", data: enc.encode("b") }]);
      const cases: [string, Uint8Array, RegExp][] = [];
      cases.push(["truncated", good.slice(0, 3000), /truncated in the middle of "a\.bin"/]);
      cases.push(["no-end", good.slice(0, 512 * 13), /truncated: ends at byte 6656 without/]);
      const badSum = good.slice();
      badSum[0] ^= 1;
      cases.push(["checksum", badSum, /header at byte 0: header checksum mismatch/]);
      cases.push(["dotdot", handTar([{ name: "../x", data }]), /"\.\.\/x": member name/]);
      cases.push(["dotdot-mid", handTar([{ name: "a/../../x" }]), /contains '\.\.'/]);
      const badSize = good.slice();
      patch(badSize, 0, 124, "0000001x000\0");
      cases.push(["size", badSize, /size field "0000001x000" is not an octal number/]);
      const pax = new Uint8Array([...enc.encode("99 path=x\n")]);
      cases.push([
        "pax-length",
        handTar([{ name: "PaxHeaders/x", type: "x", data: pax }, { name: "x", data }]),
        /PAX header: bad record length at byte 0/,
      ]);
      // An xattr Linux could not hold (a name over 255 bytes), and a device whose number is
      // not octal.
      const longX = encodePax([[`SCHILY.xattr.user.${"n".repeat(260)}`, "v"]]);
      cases.push([
        "xattr-name",
        handTar([{ name: "PaxHeaders/x", type: "x", data: longX }, { name: "x", data }]),
        /"x": xattr "user\.n+" is larger than Linux keeps/,
      ]);
      const badDev = handTar([{ name: "dev/null", type: "3" }]);
      patch(badDev, 0, 329, "0000x01\0");
      cases.push(["devmajor", badDev, /devmajor field "0000x01" is not an octal number/]);
      // A GNU base-256 device number of 2^32: bad input (exit 1), not a usage mistake.
      const bigDev = handTar([{ name: "dev/big", type: "3" }]);
      bigDev.set([0x80, 0, 0, 1, 0, 0, 0, 0], 337);
      patch(bigDev, 0, 0, "dev/big");
      cases.push(["devminor", bigDev, /"dev\/big": device number does not fit in 32 bits/]);
      cases.push([
        "sparse",
        handTar([{ name: "s", type: "S" }]),
        /"s": a GNU sparse file cannot be converted/,
      ]);
      cases.push([
        "dangling-hard-link",
        handTar([{ name: "l", type: "1" }]),
        /hard link to "", which is not earlier|member name/,
      ]);
      for (const [name, bytes, re] of cases) {
        Deno.writeFileSync(`${dir}/${name}.tar`, bytes);
        const r = await hexz(["convert", `${dir}/${name}.tar`, `${dir}/${name}.hxz`]);
        assertEquals(r.code, 1, `${name}: ${r.err}`);
        assertEquals(r.err.trim().split("\n").length, 1, `${name}: ${r.err}`);
        assertMatch(r.err, /^hexz: /, name);
        assertMatch(r.err, re, name);
        assert(!r.err.includes("internal error"), r.err);
      }
      // GNU tar agrees these are damaged (the truncated ones and the checksum).
      for (const name of ["truncated", "checksum"]) {
        const p = await new Deno.Command("tar", { args: ["-tf", `${dir}/${name}.tar`] }).output();
        assert(!p.success, `tar accepted ${name}`);
      }
      assertEquals(leftovers(dir, cases.map(([n]) => `${n}.tar`)), []);
      // The good one converts.
      Deno.writeFileSync(`${dir}/good.tar`, good);
      await ok(["convert", `${dir}/good.tar`, `${dir}/good.hxz`]);
    } finally {
      await done();
    }
  },
}));

Deno.test(needs(["tar"], {
  name: "convert: leading / is stripped and a later entry wins, as GNU tar extracts",
  fn: async () => {
    const [dir, done] = await tempDir();
    try {
      Deno.mkdirSync(`${dir}/abs`);
      Deno.writeFileSync(`${dir}/abs/f.txt`, enc.encode("first"));
      // -P keeps the leading '/', -r appends a second f.txt.
      await run("tar", ["-cPf", `${dir}/a.tar`, `${dir}/abs/f.txt`]);
      Deno.writeFileSync(`${dir}/abs/f.txt`, enc.encode("second, longer"));
      await run("tar", ["-rPf", `${dir}/a.tar`, `${dir}/abs/f.txt`]);
      const listed = await run("tar", ["-tPf", `${dir}/a.tar`]);
      assertEquals(listed.split("\n").filter((l) => l.startsWith("/")).length, 2);
      await ok(["convert", `${dir}/a.tar`, `${dir}/a.hxz`]);
      await ok(["extract", `${dir}/a.hxz`, `${dir}/out`]);
      Deno.mkdirSync(`${dir}/gnu`);
      await run("tar", ["-C", `${dir}/gnu`, "-xf", `${dir}/a.tar`]);
      const rel = `${dir}/abs/f.txt`.slice(1);
      assertEquals(Deno.readTextFileSync(`${dir}/out/${rel}`), "second, longer");
      // The file as GNU tar extracts it (the directories it creates on the way get the time of
      // extraction from GNU tar; hexz gives them the member's).
      const file = (s: Record<string, string>) => s[rel];
      assertEquals(file(await snapshot(`${dir}/out`)), file(await snapshot(`${dir}/gnu`)));
      assertEquals(
        Object.keys(await snapshot(`${dir}/out`)),
        Object.keys(await snapshot(`${dir}/gnu`)),
      );
    } finally {
      await done();
    }
  },
}));

/** Writes WebDataset shards: samples of 3 files (.jpg, .cls, .json) sharing a key. */
async function makeShards(dir: string, shards: number, perShard: number): Promise<string[]> {
  const names: string[] = [];
  let n = 0;
  for (let s = 0; s < shards; s++) {
    const src = `${dir}/samples-${s}`;
    Deno.mkdirSync(src);
    const members: string[] = [];
    for (let i = 0; i < perShard; i++, n++) {
      const key = `sample${String(n).padStart(5, "0")}`;
      Deno.writeFileSync(`${src}/${key}.jpg`, pseudoRandom(3000 + n * 97, n + 1));
      Deno.writeFileSync(`${src}/${key}.cls`, enc.encode(`${n % 10}\n`));
      Deno.writeFileSync(`${src}/${key}.meta.json`, enc.encode(`{"n":${n}}`));
      members.push(`${key}.jpg`, `${key}.cls`, `${key}.meta.json`);
    }
    // Whole seconds: the GNU format keeps no more.
    for (const m of members) Deno.utimeSync(`${src}/${m}`, 1_700_000_000 + n, 1_700_000_000 + n);
    const name = `${dir}/shard-${String(s).padStart(3, "0")}.tar`;
    await run("tar", ["-C", src, "--format=gnu", "-cf", name, ...members]);
    names.push(name);
  }
  return names;
}

Deno.test(needs(["tar"], {
  name: "convert: WebDataset shards become one tree and come back, samples never split",
  fn: async () => {
    const [dir, done] = await tempDir();
    try {
      const shards = await makeShards(dir, 3, 7);
      await ok(["convert", ...shards, `${dir}/all.hxz`]);
      const ls = await run("deno", [
        "eval",
        `import { open } from "${new URL("../mod.ts", import.meta.url)}";
         const a = await open("${dir}/all.hxz"); console.log(JSON.stringify(await a.metadata()));`,
      ]);
      assertEquals(JSON.parse(ls).tar.inputs, [
        { name: "shard-000.tar", entries: 21 },
        { name: "shard-001.tar", entries: 21 },
        { name: "shard-002.tar", entries: 21 },
      ]);
      // Cut where the shards ended: the same members, in the same order.
      await ok(["convert", `${dir}/all.hxz`, `${dir}/back-%03d.tar`]);
      for (let s = 0; s < 3; s++) {
        const orig = await run("tar", ["-tf", shards[s]]);
        assertEquals(
          await run("tar", ["-tf", `${dir}/back-${String(s).padStart(3, "0")}.tar`]),
          orig,
        );
      }
      // Cut by size (zstd-compressed shards): every sample whole in one shard, none lost.
      await ok(["convert", `${dir}/all.hxz`, `${dir}/cut-%d.tar.zst`, "--shard-size", "20K"]);
      const cut = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.startsWith("cut-"));
      assert(cut.length >= 4, `only ${cut.length} shards`);
      const seen = new Map<string, number>();
      const all: string[] = [];
      for (let s = 0; s < cut.length; s++) {
        const path = `${dir}/cut-${s}.tar.zst`;
        const size = Number(await run("sh", ["-c", `zstd -dc '${path}' | wc -c`]));
        const members = (await run("tar", ["--zstd", "-tf", path])).trim().split("\n");
        const keys = new Set(members.map((m) => m.slice(0, m.indexOf("."))));
        // Over the limit only when one sample alone is bigger.
        assert(size <= 20 * 1024 || keys.size === 1, `shard ${s}: ${size} bytes, ${keys.size}`);
        for (const k of keys) {
          assert(!seen.has(k), `sample ${k} is in shards ${seen.get(k)} and ${s}`);
          seen.set(k, s);
        }
        all.push(...members);
      }
      assertEquals(all.length, 63);
      assertEquals(seen.size, 21);
      // And the contents are the samples': extract them all and compare with the sources.
      Deno.mkdirSync(`${dir}/x`);
      for (let s = 0; s < cut.length; s++) {
        await run("tar", ["-C", `${dir}/x`, "--zstd", "-xf", `${dir}/cut-${s}.tar.zst`]);
      }
      const union: Record<string, string> = {};
      for (let s = 0; s < 3; s++) Object.assign(union, await snapshot(`${dir}/samples-${s}`));
      assertEquals(await snapshot(`${dir}/x`), union);
    } finally {
      await done();
    }
  },
}));

Deno.test("convert: shards interrupted by SIGINT leave neither temporaries nor finished shards", async () => {
  const [dir, done] = await tempDir();
  try {
    Deno.mkdirSync(`${dir}/src`);
    for (let i = 0; i < 24; i++) {
      // Varied but compressible bytes: gzip -9 takes its time over them.
      const b = pseudoRandom(2 << 20, i + 1).map((x) => x & 0x3f);
      Deno.writeFileSync(`${dir}/src/f${String(i).padStart(2, "0")}.bin`, b);
    }
    await ok(["build", `${dir}/src`, `${dir}/a.hxz`]);
    Deno.mkdirSync(`${dir}/out`);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-q",
        ...PERMS,
        new URL("../cli.ts", import.meta.url).pathname,
        "convert",
        `${dir}/a.hxz`,
        `${dir}/out/cut-%d.tar.gz`,
        "--shard-size",
        "3M",
        "--level",
        "9",
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const err = new Response(child.stderr).text();
    // Two shards finished, the third being written: then interrupt.
    for (let i = 0; i < 3000; i++) {
      if (Deno.readDirSync(`${dir}/out`).some((e) => e.name.startsWith("cut-2."))) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    assert(Deno.readDirSync(`${dir}/out`).some((e) => e.name === "cut-0.tar.gz"));
    child.kill("SIGINT");
    const status = await child.status;
    assertEquals(status.code, 130, await err);
    assertMatch(await err, /hexz: interrupted/);
    assertEquals(leftovers(`${dir}/out`, []), []);
  } finally {
    await done();
  }
});

Deno.test(needs(["tar", "zstd", "gzip", "sh"], {
  name: "convert: a tar from a pipe, and a tar to a pipe, as tar and zstd pipe them",
  fn: async () => {
    const [dir, done] = await tempDir();
    try {
      Deno.mkdirSync(`${dir}/src`);
      makeTree(`${dir}/src`);
      const cli = `'${Deno.execPath()}' run -q ${PERMS.join(" ")} '${
        new URL("../cli.ts", import.meta.url).pathname
      }'`;
      await run("sh", [
        "-c",
        `tar -C '${dir}/src' --format=pax -cf - . | zstd -c | ${cli} convert - '${dir}/p.hxz'`,
      ]);
      await ok(["extract", `${dir}/p.hxz`, `${dir}/out`]);
      const want = await snapshot(`${dir}/src`);
      assertEquals(await snapshot(`${dir}/out`), want);
      Deno.mkdirSync(`${dir}/x`);
      await run("sh", [
        "-c",
        `${cli} convert '${dir}/p.hxz' - --to tar.zst | tar --zstd -x -C '${dir}/x'`,
      ]);
      assertEquals(await snapshot(`${dir}/x`), want);
      // The compression is found even when the pipe hands over its first byte alone (after
      // the CLI has started: the pause is longer than its start-up).
      await run("sh", ["-c", `tar -C '${dir}/src' -cf - . | gzip -c > '${dir}/g.tgz'`]);
      await run("sh", [
        "-c",
        `(head -c 1 '${dir}/g.tgz'; sleep 2; tail -c +2 '${dir}/g.tgz') | ${cli} convert - '${dir}/g.hxz'`,
      ]);
      await ok(["extract", `${dir}/g.hxz`, `${dir}/g-out`]);
      assertEquals(await snapshot(`${dir}/g-out`, true), await snapshot(`${dir}/src`, true));
      // The metadata names the input "stdin".
      const meta = await run("deno", [
        "eval",
        `import { open } from "${new URL("../mod.ts", import.meta.url)}";
         const a = await open("${dir}/p.hxz"); console.log(JSON.stringify(await a.metadata()));`,
      ]);
      assertEquals(JSON.parse(meta).tar.inputs[0].name, "stdin");
      // An archive is not written to a pipe.
      const r = await hexz(["convert", `${dir}/p.tar`, "-", "--to", "hxz"]);
      assertEquals(r.code, 2);
      assertMatch(r.err, /cannot write to standard output: an archive is read at random/);
    } finally {
      await done();
    }
  },
}));

Deno.test(needs(["tar", "gzip", "zstd"], {
  name: "convert: damaged gzip and zstd inputs are refused by their checksums, with one line",
  fn: async () => {
    const [dir, done] = await tempDir();
    try {
      Deno.mkdirSync(`${dir}/src`);
      Deno.writeFileSync(`${dir}/src/a.bin`, pseudoRandom(200_000, 4));
      await run("tar", ["-C", `${dir}/src`, "-cf", `${dir}/t.tar`, "."]);
      await run("gzip", ["-k", `${dir}/t.tar`]);
      await run("zstd", ["-q", `${dir}/t.tar`]);
      // gzip: the CRC in the last 8 bytes, read only after the tar's end-of-archive marker.
      const gz = Deno.readFileSync(`${dir}/t.tar.gz`);
      gz[gz.length - 6] ^= 0xff;
      Deno.writeFileSync(`${dir}/crc.tar.gz`, gz);
      // zstd: a byte in the middle of the frame.
      const zs = Deno.readFileSync(`${dir}/t.tar.zst`);
      zs[zs.length >> 1] ^= 0xff;
      Deno.writeFileSync(`${dir}/mid.tar.zst`, zs);
      for (const [name, re] of [["crc.tar.gz", /gzip data is damaged/], ["mid.tar.zst", /zstd/]]) {
        const gnu = await new Deno.Command("tar", { args: ["-tf", `${dir}/${name}`] }).output();
        assert(!gnu.success, `GNU tar accepts ${name}`);
        const r = await hexz(["convert", `${dir}/${name}`, `${dir}/out.hxz`]);
        assertEquals(r.code, 1, `${name}: ${r.err}`);
        assertEquals(r.err.trim().split("\n").length, 1, `${name}: ${r.err}`);
        assertMatch(r.err, /^hexz: /);
        assertMatch(r.err, re as RegExp);
      }
      assertEquals(
        leftovers(dir, ["src", "t.tar", "t.tar.gz", "t.tar.zst", "crc.tar.gz", "mid.tar.zst"]),
        [],
      );
    } finally {
      await done();
    }
  },
}));

Deno.test(needs(["tar"], {
  name: "convert: a thin archive of a newer tar (--base) and an encrypted one (--encrypt)",
  fn: async () => {
    const [dir, done] = await tempDir();
    try {
      Deno.mkdirSync(`${dir}/src`);
      Deno.writeFileSync(`${dir}/src/big.bin`, pseudoRandom(2_000_000, 41));
      Deno.writeFileSync(`${dir}/src/small.txt`, enc.encode("version 1\n"));
      // Whole seconds: what a GNU-format tar keeps.
      for (const f of ["big.bin", "small.txt"]) Deno.utimeSync(`${dir}/src/${f}`, 1.7e9, 1.7e9);
      await run("tar", ["-cf", `${dir}/v1.tar`, "-C", `${dir}/src`, "."]);
      Deno.writeFileSync(`${dir}/src/small.txt`, enc.encode("version 2\n"));
      Deno.utimeSync(`${dir}/src/small.txt`, 1.8e9, 1.8e9);
      await run("tar", ["-cf", `${dir}/v2.tar`, "-C", `${dir}/src`, "."]);
      const want = await snapshot(`${dir}/src`);
      await ok(["convert", `${dir}/v1.tar`, `${dir}/v1.hxz`, "-q"]);
      await ok(["convert", `${dir}/v2.tar`, `${dir}/v2.hxz`, "--base", `${dir}/v1.hxz`, "-q"]);
      // Thin: the 2 MB file is its parent's; only the changed bytes and the table are stored.
      assert(Deno.statSync(`${dir}/v2.hxz`).size < 200_000, "v2 is not thin");
      const j = JSON.parse((await ok(["inspect", `${dir}/v2.hxz`, "--json"])).out);
      assert(j.streams[0].parentBlocks > 0, "no block refers to v1");
      await ok(["extract", `${dir}/v2.hxz`, `${dir}/out2`, "-q"]);
      assertEquals(await snapshot(`${dir}/out2`), want);
      // Encrypted: nothing of the tree in the clear, and it extracts with the password.
      const env = { HEXZ_PASSWORD: "convert-pw" };
      let r = await hexz([
        "convert",
        `${dir}/v2.tar`,
        `${dir}/e.hxz`,
        "--encrypt",
        "--kdf",
        "pbkdf2",
        "-q",
      ], {
        perms: PERMS,
        env,
      });
      assertEquals(r.code, 0, r.err);
      const sealed = Deno.readFileSync(`${dir}/e.hxz`);
      assert(
        !new TextDecoder("latin1").decode(sealed).includes("small.txt"),
        "a name in the clear",
      );
      r = await hexz(["extract", `${dir}/e.hxz`, `${dir}/out-e`, "-q"], { perms: PERMS });
      assertEquals(r.code, 1);
      r = await hexz(["extract", `${dir}/e.hxz`, `${dir}/out-e`, "-q"], { perms: PERMS, env });
      assertEquals(r.code, 0, r.err);
      assertEquals(await snapshot(`${dir}/out-e`), want);
      // To tar they mean nothing: refused.
      for (const flag of [["--encrypt"], ["--base", `${dir}/v1.hxz`]]) {
        r = await hexz(["convert", `${dir}/v2.hxz`, `${dir}/x.tar`, ...flag], { perms: PERMS });
        assertEquals(r.code, 2, r.err);
        assertMatch(r.err, /applies to \.hxz output/);
      }
    } finally {
      await done();
    }
  },
}));
