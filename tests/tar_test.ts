/**
 * The tar layer (core/tar/) and the tree rules of core/convert/tar_tree.ts, checked against
 * the real GNU tar: what it writes we read the same, what we write it reads the same.
 */
import { assert, assertEquals, assertMatch, assertRejects, assertThrows } from "./_assert.ts";
import { extractTree, fileTable, HexzError, open, tarToArchive } from "../mod.ts";
import { entryHeader, padded, type TarHeaderInput } from "../core/tar/writer.ts";
import { decodePax, encodePax } from "../core/tar/pax.ts";
import { memberPath, readTar, type TarEntry } from "../core/tar/reader.ts";
import { byteReader } from "../core/tar/byte_reader.ts";
import { tarTree } from "../core/convert/tar_tree.ts";
import { parseNumber } from "../core/tar/header.ts";
import { needs, pseudoRandom, tempDir } from "./_tools.ts";
import { encodeFileTable } from "../core/format/filetable.ts";
import { concatBytes } from "../core/format/bytes.ts";
import { run, snapshot } from "./_tree.ts";

const enc = new TextEncoder();

/** A tar of `entries` (content for files) written with our writer. */
function writeTar(entries: (TarHeaderInput & { data?: Uint8Array })[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const e of entries) {
    parts.push(entryHeader(e));
    if (e.data) parts.push(e.data, new Uint8Array(padded(e.data.length) - e.data.length));
  }
  parts.push(new Uint8Array(1024));
  return concatBytes(...parts);
}

/** Our reading of a tar: each entry without its content reader, plus the content. */
async function readAll(
  bytes: Uint8Array,
): Promise<(Omit<TarEntry, "content"> & { data: number[] })[]> {
  const out = [];
  const chunks = (async function* () {
    // Odd chunk sizes: reads must not depend on where the chunks end.
    for (let i = 0; i < bytes.length; i += 777) yield bytes.subarray(i, i + 777);
  })();
  for await (const e of readTar(byteReader(chunks), "t.tar")) {
    const buf = new Uint8Array(e.size);
    let got = 0;
    while (got < e.size) got += (await e.content.read(buf.subarray(got)))!;
    const { content: _, ...rest } = e;
    out.push({ ...rest, data: [...buf.subarray(0, 8)] });
  }
  return out;
}

const file = (path: string, data: Uint8Array, more: Partial<TarHeaderInput> = {}) => ({
  path,
  type: "file" as const,
  mode: 0o644,
  uid: 0,
  gid: 0,
  mtimeMs: 1_600_000_000_000,
  size: data.length,
  data,
  ...more,
});

Deno.test("PAX records: lengths count themselves; bad lengths are refused", () => {
  const data = encodePax([["path", "x".repeat(95)], ["mtime", "1.5"], ["k", "é"]]);
  assertEquals(new TextDecoder().decode(data).split("\n")[0].split(" ")[0], "105");
  assertEquals([...decodePax(data)], [["path", "x".repeat(95)], ["mtime", "1.5"], ["k", "é"]]);
  for (const bad of ["99 path=x\n", "8 path=x\n", "x path=x\n", "11 pathx=x\n0", "10 path=x!"]) {
    assertThrows(() => decodePax(enc.encode(bad)), HexzError, /PAX header/, bad);
  }
});

Deno.test("numeric fields: octal, GNU base-256, and anything else refused", () => {
  const f = (s: string | number[]) => typeof s === "string" ? enc.encode(s) : new Uint8Array(s);
  assertEquals(parseNumber(f("0000644\0"), 0, 8, "mode"), 0o644);
  assertEquals(parseNumber(f("  644 \0\0"), 0, 8, "mode"), 0o644);
  assertEquals(parseNumber(f([0x80, 0, 0, 0, 0, 0, 0x2d, 0xc6, 0xc0]), 0, 9, "uid"), 3_000_000);
  assertEquals(parseNumber(f([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), 0, 8, "t"), -1);
  assertThrows(() => parseNumber(f("00006a4\0"), 0, 8, "size"), HexzError, /not an octal/);
  assertThrows(() => parseNumber(f("9\0\0\0\0\0\0\0"), 0, 8, "size"), HexzError, /not an octal/);
});

Deno.test("member names: leading / and . dropped, .. refused, as GNU tar extracts", () => {
  assertEquals(memberPath("/etc/passwd", "x"), "etc/passwd");
  assertEquals(memberPath("./a//b/./c/", "x"), "a/b/c");
  assertEquals(memberPath("./", "x"), "");
  assertThrows(() => memberPath("a/../b", "x"), HexzError, /contains '\.\.'/);
  // A backslash is part of a Linux name (systemd's "\\x2d"), not a separator.
  assertEquals(memberPath("a\\x2db/c", "x"), "a\\x2db/c");
});

Deno.test(needs(["tar"], {
  name: "tar reader: a PAX size field overrides the header's, as GNU tar reads it",
  fn: async () => {
    const [dir, done] = await tempDir();
    try {
      const data = pseudoRandom(3000, 5);
      // Header size 0, PAX size 3000: the 3000 bytes that follow are the content.
      const pax = encodePax([["size", "3000"]]);
      const bytes = writeTar([
        { ...file("PaxHeaders/f", pax), type: "file" },
        file("f", data, { size: 0 }),
      ]);
      bytes[156] = "x".charCodeAt(0); // the first entry is the PAX header
      // Its checksum changed with the typeflag: recompute.
      const h = bytes.subarray(0, 512);
      h.fill(0x20, 148, 156);
      const sum = h.reduce((a, b) => a + b, 0);
      h.set(enc.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
      Deno.writeFileSync(`${dir}/p.tar`, bytes);
      const gnu = await new Deno.Command("tar", { args: ["-xOf", `${dir}/p.tar`, "f"] }).output();
      assert(gnu.success);
      assertEquals(gnu.stdout.length, 3000);
      const ours = await readAll(bytes);
      assertEquals(ours.map((e) => [e.path, e.size]), [["f", 3000]]);
      assertEquals(ours[0].data, [...data.subarray(0, 8)]);
    } finally {
      await done();
    }
  },
}));

Deno.test(needs(["tar"], {
  name: "tar reader: GNU base-256 owners and times before 1970 read as GNU tar lists them",
  fn: async () => {
    const [dir, done] = await tempDir();
    try {
      Deno.writeFileSync(`${dir}/f`, enc.encode("x"));
      await run("tar", [
        "-C",
        dir,
        "--format=gnu",
        "--owner=:3000000",
        "--group=:4000000",
        "--mtime=@-100",
        "-cf",
        `${dir}/g.tar`,
        "f",
      ]);
      const listed = await run("tar", ["--numeric-owner", "-tvf", `${dir}/g.tar`]);
      assertMatch(listed, /3000000\/4000000/);
      const [e] = await readAll(Deno.readFileSync(`${dir}/g.tar`));
      assertEquals([e.path, e.uid, e.gid, e.mtimeMs], ["f", 3_000_000, 4_000_000, -100_000]);
    } finally {
      await done();
    }
  },
}));

Deno.test(needs(["tar"], {
  name: "tar writer: PAX where ustar cannot hold a field, and GNU tar reads it all",
  fn: async () => {
    const [dir, done] = await tempDir();
    try {
      const split = `${"p".repeat(120)}/${"n".repeat(90)}`; // fits prefix + name
      const long = `${"q".repeat(200)}/${"m".repeat(120)}`; // needs a PAX path
      const bytes = writeTar([
        { ...file(split, enc.encode("s")), mtimeMs: -1500 },
        { ...file(long, enc.encode("l")), uid: 3_000_000, gid: 7, mtimeMs: 1_600_000_000_250 },
        {
          path: "sym",
          type: "symlink",
          mode: 0o777,
          uid: 0,
          gid: 0,
          mtimeMs: 0,
          size: 0,
          target: "t".repeat(150),
        },
        {
          ...file("hl", new Uint8Array(0)),
          type: "hardlink",
          size: 0,
          target: long,
          data: undefined,
        },
      ]);
      Deno.writeFileSync(`${dir}/w.tar`, bytes);
      const listed = await run("tar", ["--numeric-owner", "--full-time", "-tvf", `${dir}/w.tar`]);
      const lines = listed.trim().split("\n");
      assertEquals(lines.length, 4, listed);
      assertMatch(lines[0], new RegExp(` ${split}$`));
      // (GNU tar lists -1.5 s as 23:59:59.5, but writes it as "-1.5" itself and extracts it
      // right: the extracted time is checked.)
      Deno.mkdirSync(`${dir}/x`);
      await run("tar", ["-C", `${dir}/x`, "-xf", `${dir}/w.tar`]);
      assertEquals(Deno.statSync(`${dir}/x/${split}`).mtime!.getTime(), -1500);
      assertEquals(Deno.statSync(`${dir}/x/${long}`).mtime!.getTime(), 1_600_000_000_250);
      assertMatch(lines[1], new RegExp(`3000000/7 .* 2020-09-13 12:26:40\\.25 ${long}$`));
      assertMatch(lines[2], new RegExp(`sym -> ${"t".repeat(150)}$`));
      assertMatch(lines[3], new RegExp(`hl link to ${long}$`));
      // And our reader agrees.
      const ours = await readAll(bytes);
      assertEquals(
        ours.map((e) => [e.path, e.type, e.uid, e.mtimeMs, e.target]),
        [
          [split, "file", 0, -1500, ""],
          [long, "file", 3_000_000, 1_600_000_000_250, ""],
          ["sym", "symlink", 0, 0, "t".repeat(150)],
          ["hl", "hardlink", 0, 1_600_000_000_000, long],
        ],
      );
    } finally {
      await done();
    }
  },
}));

Deno.test(needs(["tar"], {
  name: "tar tree: duplicates as GNU tar extracts them (a replaced file's hard links keep it)",
  fn: async () => {
    const [dir, done] = await tempDir();
    try {
      const t = { mode: 0o755, uid: 0, gid: 0, size: 0 };
      const bytes = writeTar([
        { ...t, path: "d", type: "dir", mtimeMs: 1_500_000_000_000 },
        file("d/a", enc.encode("first a")),
        { ...file("d/b", new Uint8Array(0)), type: "hardlink", target: "d/a", data: undefined },
        { ...file("c", new Uint8Array(0)), type: "hardlink", target: "d/a", data: undefined },
        file("d/a", enc.encode("second a")), // replaces d/a: b and c keep the first content
        file("x", enc.encode("a file, then a directory")),
        { ...t, path: "x", type: "dir", mtimeMs: 1_500_000_000_000 },
        file("x/y", enc.encode("y")),
        { ...t, path: "d", type: "dir", mode: 0o700, mtimeMs: 1_400_000_000_000 }, // d again
        file("implied/dir/z", enc.encode("z")), // parents created
      ]);
      Deno.writeFileSync(`${dir}/dup.tar`, bytes);
      Deno.mkdirSync(`${dir}/gnu`);
      await run("tar", ["-C", `${dir}/gnu`, "-xf", `${dir}/dup.tar`]);
      await tarToArchive({ inputs: [`${dir}/dup.tar`], output: `${dir}/dup.hxz`, workers: 1 });
      const a = await open(`${dir}/dup.hxz`);
      try {
        await extractTree(a, `${dir}/ours`);
      } finally {
        a.close();
      }
      // GNU tar gives the directories it creates on the way the time of extraction.
      const strip = (s: Record<string, string>) =>
        Object.fromEntries(Object.entries(s).filter(([p]) => !p.startsWith("implied")));
      assertEquals(strip(await snapshot(`${dir}/ours`)), strip(await snapshot(`${dir}/gnu`)));
      assertEquals(Deno.readTextFileSync(`${dir}/ours/c`), "first a");
      assertEquals(Deno.readTextFileSync(`${dir}/ours/d/a`), "second a");
      assertEquals(Deno.statSync(`${dir}/ours/c`).nlink, 2);
      assertEquals(Deno.readTextFileSync(`${dir}/ours/implied/dir/z`), "z");
    } finally {
      await done();
    }
  },
}));

Deno.test("tar tree: a file replacing a directory that is not empty is refused", async () => {
  const [dir, done] = await tempDir();
  try {
    const bytes = writeTar([
      { path: "d", type: "dir", mode: 0o755, uid: 0, gid: 0, size: 0, mtimeMs: 0 },
      file("d/a", enc.encode("a")),
      file("d", enc.encode("now a file")),
    ]);
    Deno.writeFileSync(`${dir}/r.tar`, bytes);
    await assertRejects(
      () => tarToArchive({ inputs: [`${dir}/r.tar`], output: `${dir}/r.hxz`, workers: 1 }),
      HexzError,
      /r\.tar: "d": would replace a directory that is not empty/,
    );
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["r.tar"]);
  } finally {
    await done();
  }
});

Deno.test("tar tree: PAX globals apply to later entries; a hard link to a symlink is a copy", async () => {
  const [dir, done] = await tempDir();
  try {
    const g = encodePax([["uid", "4242"], ["mtime", "1700000000.5"]]);
    const bytes = writeTar([
      { ...file("PaxHeaders/global", g), type: "file" },
      file("a", enc.encode("a")),
      { ...file("s", new Uint8Array(0)), type: "symlink", target: "a", data: undefined },
      { ...file("h", new Uint8Array(0)), type: "hardlink", target: "s", data: undefined },
    ]);
    bytes[156] = "g".charCodeAt(0);
    const h = bytes.subarray(0, 512);
    h.fill(0x20, 148, 156);
    h.set(enc.encode(h.reduce((a, b) => a + b, 0).toString(8).padStart(6, "0") + "\0 "), 148);
    const ours = await readAll(bytes);
    assertEquals(ours.map((e) => [e.path, e.uid, e.mtimeMs]), [
      ["a", 4242, 1_700_000_000_500],
      ["s", 4242, 1_700_000_000_500],
      ["h", 4242, 1_700_000_000_500],
    ]);
    Deno.writeFileSync(`${dir}/g.tar`, bytes);
    await tarToArchive({ inputs: [`${dir}/g.tar`], output: `${dir}/g.hxz`, workers: 1 });
    const a = await open(`${dir}/g.hxz`);
    try {
      const t = await fileTable(a);
      assertEquals(t!.map((e) => [e.path, e.type, e.target, e.uid]), [
        ["a", "file", "", 4242],
        ["s", "symlink", "a", 4242],
        ["h", "symlink", "a", 4242],
      ]);
    } finally {
      a.close();
    }
  } finally {
    await done();
  }
});

Deno.test("tar tree: nothing under a symlink, names that are not UTF-8 refused", async () => {
  const [dir, done] = await tempDir();
  try {
    const under = writeTar([
      { ...file("s", new Uint8Array(0)), type: "symlink", target: "/etc", data: undefined },
      file("s/passwd", enc.encode("x")),
    ]);
    const latin1 = writeTar([file("caf\u00e9", enc.encode("x"))]);
    latin1.set([0x63, 0x61, 0x66, 0xe9, 0], 0); // "café" in Latin-1
    const h = latin1.subarray(0, 512);
    h.fill(0x20, 148, 156);
    h.set(enc.encode(h.reduce((a, b) => a + b, 0).toString(8).padStart(6, "0") + "\0 "), 148);
    for (
      const [name, bytes, re] of [
        ["under", under, /"s\/passwd": lies under "s", which is not a directory/],
        ["latin1", latin1, /name at byte 0 is not valid UTF-8/],
      ] as const
    ) {
      Deno.writeFileSync(`${dir}/${name}.tar`, bytes);
      await assertRejects(
        () => tarToArchive({ inputs: [`${dir}/${name}.tar`], output: `${dir}/o.hxz`, workers: 1 }),
        HexzError,
        re,
      );
    }
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["latin1.tar", "under.tar"]);
  } finally {
    await done();
  }
});

Deno.test("archiveToTar and tarToArchive: wrong values are usage errors naming them", async () => {
  const [dir, done] = await tempDir();
  try {
    Deno.mkdirSync(`${dir}/src`);
    Deno.writeFileSync(`${dir}/src/f`, enc.encode("f"));
    const { build, archiveToTar } = await import("../mod.ts");
    await build({ source: `${dir}/src`, output: `${dir}/a.hxz`, workers: 1 });
    const a = await open(`${dir}/a.hxz`);
    try {
      await assertRejects(
        // deno-lint-ignore no-explicit-any
        () => archiveToTar(a, { output: `${dir}/x.tar`, compression: "bz2" as any }),
        HexzError,
        /compression "bz2" is not none, gzip or zstd/,
      );
      await assertRejects(
        () => archiveToTar(a, { output: `${dir}/x.tar`, shardSize: 1000 }),
        HexzError,
        /shards need an output pattern with one %d/,
      );
    } finally {
      a.close();
    }
    await assertRejects(
      // deno-lint-ignore no-explicit-any
      () => tarToArchive({ inputs: "x.tar" as any, output: `${dir}/b.hxz` }),
      HexzError,
      /inputs must be a non-empty list of paths/,
    );
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["a.hxz", "src"]);
  } finally {
    await done();
  }
});

Deno.test(needs(["tar"], {
  name: "tar reader: mutated GNU and PAX tars end in HexzError or entries, never another error",
  fn: async () => {
    const [dir, done] = await tempDir();
    try {
      Deno.mkdirSync(`${dir}/src/d`, { recursive: true });
      Deno.writeFileSync(`${dir}/src/d/${"n".repeat(120)}`, pseudoRandom(3000, 2));
      Deno.symlinkSync("d", `${dir}/src/s`);
      Deno.linkSync(`${dir}/src/d/${"n".repeat(120)}`, `${dir}/src/h`);
      let x = 2463534242;
      const rnd = (n: number) => {
        x ^= x << 13;
        x >>>= 0;
        x ^= x >>> 17;
        x ^= x << 5;
        x >>>= 0;
        return x % n;
      };
      const outcomes = new Map<string, number>();
      for (const format of ["gnu", "pax"]) {
        await run("tar", ["-C", `${dir}/src`, `--format=${format}`, "-cf", `${dir}/t.tar`, "."]);
        const orig = Deno.readFileSync(`${dir}/t.tar`);
        for (let i = 0; i < 1500; i++) {
          const b = orig.slice(0, rnd(4) === 0 ? rnd(orig.length) : orig.length);
          for (let k = 1 + rnd(6); k > 0; k--) b[rnd(Math.min(b.length, 5120)) || 0] = rnd(256);
          let outcome = "ok";
          try {
            const tree = tarTree();
            const chunks = (async function* () {
              yield b;
            })();
            for await (const e of readTar(byteReader(chunks), "m.tar")) {
              if (tree.add(e, 0, e.name)) {
                const buf = new Uint8Array(4096);
                while ((await e.content.read(buf)) !== null) { /* read it all */ }
              }
            }
            tree.finish(1);
          } catch (e) {
            if (!(e instanceof HexzError)) throw new Error(`case ${format} ${i}: ${e}`);
            outcome = e.code;
          }
          outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        }
      }
      // Both kinds of ending happened: the mutations reached the headers and spared some.
      assert(
        (outcomes.get("corrupt") ?? 0) > 100 && (outcomes.get("ok") ?? 0) > 100,
        [
          ...outcomes,
        ].join(),
      );
    } finally {
      await done();
    }
  },
}));

Deno.test(needs(["tar"], {
  name: "shards by size: PAX headers and hard-link copies count, every shard within the limit",
  fn: async () => {
    const [dir, done] = await tempDir();
    try {
      Deno.mkdirSync(`${dir}/src`);
      for (let i = 0; i < 12; i++) {
        // One component of 150 bytes: no prefix split fits, so each needs a PAX header.
        const name = `${String(i).padStart(2, "0")}${"x".repeat(148)}`;
        Deno.writeFileSync(`${dir}/src/${name}.bin`, pseudoRandom(1500 + 300 * i, i + 1));
        Deno.writeFileSync(`${dir}/src/${name}.txt`, enc.encode(`${i}`));
        if (i % 3 === 2) Deno.linkSync(`${dir}/src/${name}.bin`, `${dir}/src/${name}.zlink`);
      }
      const { build, archiveToTar } = await import("../mod.ts");
      await build({ source: `${dir}/src`, output: `${dir}/a.hxz`, workers: 1 });
      const a = await open(`${dir}/a.hxz`);
      let outputs: string[];
      try {
        ({ outputs } = await archiveToTar(a, { output: `${dir}/s-%02d.tar`, shardSize: 9000 }));
      } finally {
        a.close();
      }
      assert(outputs.length >= 4, `${outputs.length} shards`);
      Deno.mkdirSync(`${dir}/x`);
      for (const o of outputs) {
        const size = Deno.statSync(o).size;
        const keys = new Set(
          (await run("tar", ["-tf", o])).trim().split("\n").map((m) => m.slice(0, m.indexOf("."))),
        );
        assert(size <= 9000 || keys.size === 1, `${o}: ${size} bytes, ${keys.size} samples`);
        await run("tar", ["-C", `${dir}/x`, "-xf", o]);
      }
      // Every file is there with its content (links across shards are copies).
      const content = async (root: string) => {
        const s = await snapshot(root);
        return Object.fromEntries(
          Object.entries(s).map(([p, v]) => [p, v.split(" ").slice(3, 5).join(" ")]),
        );
      };
      assertEquals(await content(`${dir}/x`), await content(`${dir}/src`));
    } finally {
      await done();
    }
  },
}));

Deno.test(needs(["tar"], {
  name: "tar reader: GNU tar's v7, oldgnu and ustar formats convert too",
  fn: async () => {
    const [dir, done] = await tempDir();
    try {
      Deno.mkdirSync(`${dir}/src/d`, { recursive: true });
      Deno.writeFileSync(`${dir}/src/d/a`, pseudoRandom(70_000, 8));
      Deno.symlinkSync("d/a", `${dir}/src/s`);
      Deno.linkSync(`${dir}/src/d/a`, `${dir}/src/h`);
      Deno.chmodSync(`${dir}/src/d/a`, 0o600);
      const want = await snapshot(`${dir}/src`, true);
      const { check } = await import("../mod.ts");
      for (const format of ["v7", "oldgnu", "ustar"]) {
        await run("tar", [
          "-C",
          `${dir}/src`,
          `--format=${format}`,
          "-cf",
          `${dir}/${format}.tar`,
          ".",
        ]);
        const out = `${dir}/${format}.hxz`;
        await tarToArchive({ inputs: [`${dir}/${format}.tar`], output: out, workers: 1 });
        const a = await open(out);
        try {
          const r = await check(a); // throws on any damage
          assertEquals([r.sections, r.bytes], [2, 70_000]); // file table and metadata
          await extractTree(a, `${dir}/out-${format}`);
        } finally {
          a.close();
        }
        assertEquals(await snapshot(`${dir}/out-${format}`, true), want, format);
      }
    } finally {
      await done();
    }
  },
}));

Deno.test("names and owners a file table cannot hold are refused by name, in a short line", async () => {
  const [dir, done] = await tempDir();
  try {
    const base = { type: "file" as const, mode: 0o644, uid: 0, gid: 0, mtimeMs: 0, size: 3 };
    const data = enc.encode("abc");
    const long = Array.from({ length: 22_000 }, () => "abc").join("/"); // 87,999 bytes
    const cases: [string, (TarHeaderInput & { data?: Uint8Array })[], RegExp][] = [
      [
        "long path",
        [{ ...base, path: long, data }],
        /"(abc\/){49}a\.\.\.": a name longer than 4096 bytes$/,
      ],
      [
        "big uid",
        [{ ...base, path: "f", uid: 2 ** 33, data }],
        /"f": uid or gid does not fit in 32 bits$/,
      ],
    ];
    for (const [what, entries, message] of cases) {
      const input = `${dir}/in.tar`;
      await Deno.writeFile(input, writeTar(entries));
      const e = await assertRejects(
        () => tarToArchive({ inputs: [input], output: `${dir}/out.hxz` }),
        HexzError,
      );
      assertMatch(e.message, message, `${what}: ${e.message.slice(-300)}`);
      assert(e.message.length < 400, `${what}: ${e.message.length} characters`);
      assertEquals([...Deno.readDirSync(dir)].map((x) => x.name), ["in.tar"], what);
    }
    // The table's encoder itself refuses what its fields cannot hold (other callers).
    const entry = { ...base, path: "f", offset: 0, target: "" };
    assertThrows(
      () => encodeFileTable([{ ...entry, path: long }]),
      HexzError,
      /path longer than 65535 bytes$/,
    );
    assertThrows(
      () => encodeFileTable([{ ...entry, gid: -1 }]),
      HexzError,
      /^f: gid -1 does not fit in 32 bits$/,
    );
  } finally {
    await done();
  }
});
