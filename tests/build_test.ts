import { assert, assertEquals, assertMatch, assertRejects, assertThrows } from "./_assert.ts";
import { HexzError, memorySource, open, pack } from "../mod.ts";
import { build } from "../core/pack/build.ts";
import { extractTree, fileTable, findFile, readFile } from "../core/read/files.ts";
import { decodeFileTable, encodeFileTable, type FileEntry } from "../core/format/filetable.ts";
import { blake3 } from "../core/hash/blake3.ts";
import { hexz } from "./_cli.ts";
import { needs, pseudoRandom, tempDir } from "./_tools.ts";
import { lchownSync, lutimesSync } from "node:fs";

const KDF = { name: "argon2id" as const, memoryKiB: 256, iterations: 1, parallelism: 1 };
const ODD = ["with space.txt", "ünïcødé ✓.bin", "-dash", "quote'\"s", "new\nline"];

async function makeTree(root: string) {
  await Deno.mkdir(`${root}/etc/conf.d`, { recursive: true });
  await Deno.mkdir(`${root}/empty-dir`);
  await Deno.writeFile(`${root}/etc/hostname`, new TextEncoder().encode("hexz\n"));
  await Deno.writeFile(`${root}/etc/conf.d/big.bin`, pseudoRandom(300_000, 71));
  await Deno.writeFile(`${root}/etc/conf.d/copy.bin`, pseudoRandom(300_000, 71)); // duplicate
  await Deno.writeFile(`${root}/empty-file`, new Uint8Array(0));
  for (const n of ODD) await Deno.writeFile(`${root}/${n}`, new TextEncoder().encode(n));
  await Deno.symlink("etc/hostname", `${root}/link-rel`);
  await Deno.symlink("/nonexistent/target", `${root}/link-dangling`);
  // Times of the links themselves (Deno.utime would follow them).
  lutimesSync(`${root}/link-rel`, 1_500_000_000, 1_500_000_000.25);
  lutimesSync(`${root}/link-dangling`, 1_400_000_000, 1_400_000_000);
  await Deno.chmod(`${root}/etc/hostname`, 0o640);
  await Deno.chmod(`${root}/empty-file`, 0o755);
  await Deno.chmod(`${root}/empty-dir`, 0o700);
  await Deno.utime(`${root}/etc/hostname`, 1_600_000_000, 1_600_000_000.5);
}

async function snapshot(root: string, rel = ""): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const names = [];
  for await (const e of Deno.readDir(rel ? `${root}/${rel}` : root)) names.push(e.name);
  for (const n of names.sort()) {
    const p = rel ? `${rel}/${n}` : n;
    const st = await Deno.lstat(`${root}/${p}`);
    const mode = (st.mode! & 0o7777).toString(8);
    if (st.isSymlink) out[p] = `l ${await Deno.readLink(`${root}/${p}`)} ${st.mtime!.getTime()}`;
    else if (st.isDirectory) {
      out[p] = `d ${mode}`;
      Object.assign(out, await snapshot(root, p));
    } else {
      const data = await Deno.readFile(`${root}/${p}`);
      const sum = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", data))).slice(
        0,
        8,
      ).join(",");
      out[p] = `f ${mode} ${data.length} ${sum} ${st.mtime!.getTime()}`;
    }
  }
  return out;
}

Deno.test("build and extractTree round-trip a tree with symlinks, empty files, odd names and modes", async () => {
  const [dir, done] = await tempDir();
  try {
    await Deno.mkdir(`${dir}/src`);
    await makeTree(`${dir}/src`);
    const res = await build({ source: `${dir}/src`, output: `${dir}/t.hxz`, compression: "zstd" });
    assertEquals(res.entries, 3 + 4 + 2 + ODD.length); // dirs, files, symlinks, odd names
    const a = await open(`${dir}/t.hxz`);
    try {
      const t = (await fileTable(a))!;
      assertEquals(t.find((e) => e.path === "link-rel")?.target, "etc/hostname");
      const host = await findFile(a, "/etc/hostname");
      assertEquals(new TextDecoder().decode(await readFile(a, host)), "hexz\n");
      assertEquals(host.mode, 0o640);
      // The duplicate file costs nothing: its blocks dedup.
      assert(
        a.header.streams[0].dedupBlocks >= 4,
        `dedup blocks ${a.header.streams[0].dedupBlocks}`,
      );
      await extractTree(a, `${dir}/out`);
    } finally {
      a.close();
    }
    assertEquals(await snapshot(`${dir}/out`), await snapshot(`${dir}/src`));
  } finally {
    await done();
  }
});

Deno.test("extractTree gives the same tree by every path: codecs, holes, dictionary, encrypted, thin, remote, --force", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    const src = `${dir}/src`;
    await Deno.mkdir(src);
    await makeTree(src);
    // Many blocks, and zero blocks inside a file (restored as holes).
    await Deno.writeFile(`${src}/etc/many.bin`, pseudoRandom(3_000_000, 72));
    const holey = pseudoRandom(1_000_000, 73);
    holey.fill(0, 100_000, 900_000);
    await Deno.writeFile(`${src}/holey.bin`, holey);
    const want = await snapshot(src);
    const kdf = { name: "argon2id" as const, memoryKiB: 256, iterations: 1, parallelism: 1 };
    const pw = { password: "pw", kdf };
    const variants: [string, Parameters<typeof build>[0]][] = [
      ["lz4", { source: src, output: `${dir}/l.hxz`, compression: "lz4" }],
      ["zstd cdc", { source: src, output: `${dir}/c.hxz`, compression: "zstd", cdc: true }],
      ["dict", {
        source: src,
        output: `${dir}/d.hxz`,
        compression: "zstd",
        blockSize: 4096,
        trainDictionary: true,
      }],
      ["encrypted", { source: src, output: `${dir}/e.hxz`, encrypt: pw }],
    ];
    for (const [name, opts] of variants) {
      await build(opts);
      const a = await open(opts.output, { password: name === "encrypted" ? "pw" : undefined });
      try {
        await extractTree(a, `${dir}/out-${name}`);
        // Three threads from the start: workers write pieces of files this thread opened.
        await extractTree(a, `${dir}/out3-${name}`, { workers: 3 });
      } finally {
        a.close();
      }
      assertEquals(await snapshot(`${dir}/out-${name}`), want, name);
      assertEquals(await snapshot(`${dir}/out3-${name}`), want, `${name}, 3 threads`);
    }
    const st = await Deno.stat(`${dir}/out-lz4/holey.bin`);
    assert(st.blocks! * 512 < 500_000, `holey.bin takes ${st.blocks! * 512} bytes`);
    // Thin: a changed tree on the lz4 one, its unchanged blocks read from the parent.
    await Deno.writeFile(`${src}/etc/hostname`, new TextEncoder().encode("changed\n"));
    await Deno.utime(`${src}/etc/hostname`, 1_600_000_000, 1_600_000_000.5);
    const base = keep(await open(`${dir}/l.hxz`));
    await build({ source: src, output: `${dir}/t.hxz`, base, basePath: `${dir}/l.hxz` });
    base.close();
    const thin = await open(`${dir}/t.hxz`);
    try {
      assert(thin.header.streams[0].parentBlocks > 10, "thin");
      await extractTree(thin, `${dir}/out-thin`, { workers: 2 });
    } finally {
      thin.close();
    }
    const changed = await snapshot(src);
    assertEquals(await snapshot(`${dir}/out-thin`), changed, "thin");
    // From bytes in memory (no local file): read through the archive.
    const mem = await open(memorySource(await Deno.readFile(`${dir}/c.hxz`), "c.hxz"));
    try {
      await extractTree(mem, `${dir}/out-mem`);
    } finally {
      mem.close();
    }
    assertEquals(await snapshot(`${dir}/out-mem`), want, "memory");
    // --force over a tree with things in the way: a symlink where a file goes is replaced, not
    // followed, and a file where a directory goes is replaced.
    await Deno.remove(`${dir}/out-lz4/etc/hostname`);
    await Deno.symlink(`${dir}/victim`, `${dir}/out-lz4/etc/hostname`);
    await Deno.writeTextFile(`${dir}/victim`, "untouched");
    await Deno.remove(`${dir}/out-lz4/empty-dir`);
    await Deno.writeTextFile(`${dir}/out-lz4/empty-dir`, "a file");
    const a = await open(`${dir}/t.hxz`);
    try {
      await assertRejects(() => extractTree(a, `${dir}/out-lz4`), HexzError, /not empty/);
      await extractTree(a, `${dir}/out-lz4`, { force: true });
    } finally {
      a.close();
    }
    assertEquals(await snapshot(`${dir}/out-lz4`), changed, "--force");
    assertEquals(await Deno.readTextFile(`${dir}/victim`), "untouched");
    // The same into a non-empty directory from an encrypted archive (decoded on this thread).
    await Deno.mkdir(`${dir}/out-e-force`);
    await Deno.writeTextFile(`${dir}/out-e-force/unrelated`, "kept");
    const e = await open(`${dir}/e.hxz`, { password: "pw" });
    try {
      await extractTree(e, `${dir}/out-e-force`, { force: true });
    } finally {
      e.close();
    }
    await Deno.remove(`${dir}/out-e-force/unrelated`);
    assertEquals(await snapshot(`${dir}/out-e-force`), want, "encrypted, --force");
  } finally {
    await done();
  }
});

Deno.test("decodeFileTable refuses paths that could escape the extraction directory", () => {
  const base: FileEntry = {
    path: "a",
    type: "file",
    mode: 0o644,
    mtimeMs: 0,
    uid: 0,
    gid: 0,
    size: 0,
    offset: 0,
    target: "",
  };
  for (const path of ["../evil", "/etc/passwd", "a/../../b", "a//b", "./a", "a/./b"]) {
    const bytes = encodeFileTable([{ ...base, path }]);
    assertThrows(() => decodeFileTable(bytes, 0), HexzError, /unsafe path/);
  }
  // On Linux a backslash is part of a name ("a\\..\\b" is one name, in version 4 tables);
  // extraction refuses it where it is a separator (Windows).
  const named = encodeFileTable([{ ...base, path: "a\\..\\b" }]);
  assertEquals(decodeFileTable(named, 0).map((e) => e.path), ["a\\..\\b"]);
  // A file written "through" a symlink: the ancestor must be a directory.
  const viaLink = encodeFileTable([
    { ...base, path: "l", type: "symlink", target: "/etc" },
    { ...base, path: "l/passwd" },
  ]);
  assertThrows(() => decodeFileTable(viaLink, 0), HexzError, /parent is not a directory/);
  const outside = encodeFileTable([{ ...base, size: 10, offset: 5 }]);
  assertThrows(() => decodeFileTable(outside, 12), HexzError, /outside the disk stream/);
});

/** `bytes` (an encoded file table) with `change` applied to the fixed part of entry `index`
 * (or to the table head for -1) and the checksum made right again. */
function patchTable(
  bytes: Uint8Array,
  index: number,
  change: (dv: DataView, at: number) => void,
): Uint8Array {
  const out = bytes.slice();
  const dv = new DataView(out.buffer);
  let at = 16;
  for (let i = 0; i < index; i++) {
    at += 48 + dv.getUint16(at + 2, true) + dv.getUint16(at + 40, true);
  }
  change(dv, index < 0 ? 0 : at);
  out.set(blake3(out.subarray(0, out.length - 32)), out.length - 32);
  return out;
}

Deno.test("decodeFileTable refuses hard links that are not another name of an earlier regular file", () => {
  const base: FileEntry = {
    path: "a",
    type: "file",
    mode: 0o644,
    mtimeMs: 0,
    uid: 0,
    gid: 0,
    size: 3,
    offset: 0,
    target: "",
  };
  const dir = { ...base, path: "d", type: "dir" as const, size: 0 };
  const sym: FileEntry = { ...base, path: "s", type: "symlink", size: 0, target: "a" };
  const good = [dir, { ...base, path: "d/a" }, { ...base, path: "d/b", hardLinkTo: "d/a" }];
  assertEquals(decodeFileTable(encodeFileTable(good), 3)[2], good[2]);
  const cases: [string, FileEntry[], RegExp][] = [
    [
      "to a later file",
      [{ ...base, path: "b", hardLinkTo: "c" }, { ...base, path: "c" }],
      /b: hard link to "c", not an earlier regular file/,
    ],
    ["to itself", [{ ...base, path: "b", hardLinkTo: "b" }], /b: hard link to "b", not an earlier/],
    ["to nothing", [base, { ...base, path: "b", hardLinkTo: "x" }], /hard link to "x"/],
    ["to a directory", [dir, { ...base, path: "b", hardLinkTo: "d" }], /hard link to "d"/],
    ["to a symlink", [sym, { ...base, path: "t", hardLinkTo: "s" }], /hard link to "s"/],
    [
      "to a hard link",
      [base, { ...base, path: "b", hardLinkTo: "a" }, { ...base, path: "c", hardLinkTo: "b" }],
      /c: hard link to "b", not an earlier regular file/,
    ],
    ["escaping", [base, { ...base, path: "b", hardLinkTo: "../a" }], /hard link to "\.\.\/a"/],
  ];
  for (const [what, entries, re] of cases) {
    assertThrows(() => decodeFileTable(encodeFileTable(entries), 3), HexzError, re, what);
  }
  // Fields the encoder never writes for a link, set by hand.
  const linked = encodeFileTable([base, { ...base, path: "b", hardLinkTo: "a" }]);
  const bad: [string, (dv: DataView, at: number) => void, RegExp][] = [
    ["a mode", (dv, at) => dv.setUint32(at + 4, 0o644, true), /b: a hard link has attributes/],
    ["a time", (dv, at) => dv.setBigInt64(at + 8, 1n, true), /b: a hard link has attributes/],
    ["an owner", (dv, at) => dv.setUint32(at + 32, 1, true), /b: a hard link has attributes/],
    ["content", (dv, at) => dv.setUint32(at + 16, 1, true), /b: only files have content/],
    ["an offset", (dv, at) => dv.setUint32(at + 24, 1, true), /b: only files have content/],
  ];
  for (const [what, change, re] of bad) {
    assertThrows(() => decodeFileTable(patchTable(linked, 1, change), 3), HexzError, re, what);
  }
  // A link record with no target (its byte counted into the path instead, "ba").
  const noTarget = patchTable(linked, 1, (dv, at) => {
    dv.setUint16(at + 2, 2, true);
    dv.setUint16(at + 40, 0, true);
  });
  assertThrows(() => decodeFileTable(noTarget, 3), HexzError, /ba: hard link target mismatch/);
  // Type 4 belongs to version 2: in a version 1 table it is unknown; versions past 4 are refused
  // by name.
  const v1 = patchTable(linked, -1, (dv) => dv.setUint16(4, 1, true));
  assertThrows(() => decodeFileTable(v1, 3), HexzError, /entry 1 has an unknown type/);
  const v5 = patchTable(linked, -1, (dv) => dv.setUint16(4, 5, true));
  const e = assertThrows(
    () => decodeFileTable(v5, 3),
    HexzError,
    /^file table: unsupported version 5 \(this hexz reads versions 1 to 4\)$/,
  );
  assertEquals((e as HexzError).code, "format");
});

/** A tree with two hard-link groups and a file whose other link lies outside it. */
async function makeLinkedTree(dir: string): Promise<string> {
  const src = `${dir}/src`;
  await Deno.mkdir(`${src}/a`, { recursive: true });
  await Deno.mkdir(`${src}/b/deep`, { recursive: true });
  await Deno.writeFile(`${src}/a/data.bin`, pseudoRandom(200_000, 81));
  await Deno.chmod(`${src}/a/data.bin`, 0o640);
  await Deno.utime(`${src}/a/data.bin`, 1_600_000_000, 1_600_000_000.75);
  await Deno.link(`${src}/a/data.bin`, `${src}/b/deep/copy.bin`); // in another directory
  await Deno.writeFile(`${src}/a/x-empty`, new Uint8Array(0));
  await Deno.link(`${src}/a/x-empty`, `${src}/a/y-empty`); // beside it
  await Deno.writeTextFile(`${src}/solo.txt`, "one name in the tree\n");
  await Deno.link(`${src}/solo.txt`, `${dir}/outside.txt`); // the other name is not packed
  return src;
}

Deno.test("build packs a hard-linked file once and extractTree restores the links", async () => {
  const [dir, done] = await tempDir();
  try {
    const src = await makeLinkedTree(dir);
    const want = await snapshot(src);
    await build({ source: src, output: `${dir}/t.hxz` });
    await build({ source: src, output: `${dir}/e.hxz`, encrypt: { password: "pw", kdf: KDF } });
    const a = await open(`${dir}/t.hxz`);
    try {
      const t = (await fileTable(a))!;
      assertEquals(
        t.map((e) => [e.path, e.hardLinkTo ?? ""]),
        [
          ["a", ""],
          ["a/data.bin", ""],
          ["a/x-empty", ""],
          ["a/y-empty", "a/x-empty"],
          ["b", ""],
          ["b/deep", ""],
          ["b/deep/copy.bin", "a/data.bin"],
          ["solo.txt", ""],
        ],
      );
      // A link reads as its file; the content is in the disk stream once.
      const link = await findFile(a, "b/deep/copy.bin");
      assertEquals([link.size, link.mode, link.mtimeMs], [200_000, 0o640, 1_600_000_000_750]);
      assertEquals(await readFile(a, link), pseudoRandom(200_000, 81));
      assertEquals(a.size("disk"), 200_000 + 21);
      assertEquals((await a.section("fileTable"))![4], 2, "table version");
      await extractTree(a, `${dir}/out`, { workers: 2 });
      await extractTree(a, `${dir}/out1`, { workers: 1 });
    } finally {
      a.close();
    }
    // Read through the archive (not from a local file): the other way files are written.
    const e = await open(`${dir}/e.hxz`, { password: "pw" });
    try {
      await extractTree(e, `${dir}/out-e`);
    } finally {
      e.close();
    }
    for (const out of ["out", "out1", "out-e"]) {
      assertEquals(await snapshot(`${dir}/${out}`), want, out);
      const data = await Deno.stat(`${dir}/${out}/a/data.bin`);
      const copy = await Deno.stat(`${dir}/${out}/b/deep/copy.bin`);
      assertEquals([data.ino, data.nlink], [copy.ino, 2], `${out}: data.bin and copy.bin`);
      const x = await Deno.stat(`${dir}/${out}/a/x-empty`);
      const y = await Deno.stat(`${dir}/${out}/a/y-empty`);
      assertEquals([x.ino, x.nlink], [y.ino, 2], `${out}: x-empty and y-empty`);
      assert(x.ino !== data.ino, `${out}: two groups, two inodes`);
      assertEquals((await Deno.stat(`${dir}/${out}/solo.txt`)).nlink, 1, `${out}: solo.txt`);
    }
    // --force over a tree where a symlink stands at a link's path: replaced, not followed.
    await Deno.remove(`${dir}/out/b/deep/copy.bin`);
    await Deno.writeTextFile(`${dir}/victim`, "untouched");
    await Deno.symlink(`${dir}/victim`, `${dir}/out/b/deep/copy.bin`);
    const again = await open(`${dir}/t.hxz`);
    try {
      await extractTree(again, `${dir}/out`, { force: true });
    } finally {
      again.close();
    }
    assertEquals(await snapshot(`${dir}/out`), want, "--force");
    assertEquals(await Deno.readTextFile(`${dir}/victim`), "untouched");
    const [d, c] = await Promise.all(
      ["a/data.bin", "b/deep/copy.bin"].map((p) => Deno.stat(`${dir}/out/${p}`)),
    );
    assertEquals([d.ino, d.nlink], [c.ino, 2], "--force: data.bin and copy.bin");
  } finally {
    await done();
  }
});

Deno.test("a tree without hard links still gives a version 1 file table", async () => {
  const [dir, done] = await tempDir();
  try {
    await Deno.mkdir(`${dir}/src`);
    await makeTree(`${dir}/src`);
    await build({ source: `${dir}/src`, output: `${dir}/t.hxz` });
    const a = await open(`${dir}/t.hxz`);
    try {
      assertEquals((await a.section("fileTable"))![4], 1);
    } finally {
      a.close();
    }
  } finally {
    await done();
  }
});

Deno.test("cli: hard links in inspect --files, cat --file and extract; a bad link is refused in one line", async () => {
  const [dir, done] = await tempDir();
  try {
    const src = await makeLinkedTree(dir);
    let r = await hexz(["build", src, `${dir}/t.hxz`, "-q"]);
    assertEquals([r.code, r.err], [0, ""]);
    r = await hexz(["inspect", `${dir}/t.hxz`, "--files"]);
    assertMatch(r.out, /\n {2}-0640 +200000 2020-09-13 12:26:40 a\/data\.bin\n/);
    assertMatch(
      r.out,
      /\n {2}h0640 +200000 2020-09-13 12:26:40 b\/deep\/copy\.bin link to a\/data\.bin\n/,
    );
    r = await hexz(["cat", `${dir}/t.hxz`, "--file", "b/deep/copy.bin"]);
    assertEquals(r.stdout, pseudoRandom(200_000, 81));
    r = await hexz(["extract", `${dir}/t.hxz`, `${dir}/out`]);
    assertEquals(r.code, 0, r.err);
    assertMatch(r.err, /out: 8 entries, 195 KiB restored/);
    assertEquals(await snapshot(`${dir}/out`), await snapshot(src));
    const [d, c] = await Promise.all(
      ["a/data.bin", "b/deep/copy.bin"].map((p) => Deno.stat(`${dir}/out/${p}`)),
    );
    assertEquals([d.ino, d.nlink], [c.ino, 2]);

    // A hand-made table whose link names a symlink: every command that reads the table
    // refuses it in one line naming the archive, and extract leaves nothing behind.
    const base: FileEntry = {
      path: "f",
      type: "file",
      mode: 0o644,
      mtimeMs: 0,
      uid: 0,
      gid: 0,
      size: 4,
      offset: 0,
      target: "",
    };
    const table = encodeFileTable([
      base,
      { ...base, path: "s", type: "symlink", size: 0, target: "f" },
      { ...base, path: "t", hardLinkTo: "s" },
    ]);
    await Deno.writeTextFile(`${dir}/disk`, "data");
    await pack({ output: `${dir}/bad.hxz`, disk: `${dir}/disk`, fileTable: () => table });
    for (
      const args of [["extract", `${dir}/bad.hxz`, `${dir}/bad-out`], [
        "inspect",
        `${dir}/bad.hxz`,
        "--files",
      ], ["cat", `${dir}/bad.hxz`, "--file", "t"]]
    ) {
      r = await hexz(args);
      assertEquals([r.code, r.out], [1, ""], args[0]);
      assertMatch(
        r.err,
        /^hexz: .*bad\.hxz: file table: t: hard link to "s", not an earlier regular file\n$/,
        args[0],
      );
    }
    assertEquals(
      [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.startsWith("bad-out")),
      [],
    );
  } finally {
    await done();
  }
});

Deno.test("cli build, inspect --files, cat --file and extract of a directory archive", async () => {
  const [dir, done] = await tempDir();
  try {
    await Deno.mkdir(`${dir}/src`);
    await makeTree(`${dir}/src`);
    let r = await hexz(["build", `${dir}/src`, `${dir}/t.hxz`, "--profile", "embedded"]);
    assertEquals(r.code, 0, r.err);
    assertMatch(r.err, /t\.hxz: 14 entries/);
    r = await hexz(["inspect", `${dir}/t.hxz`, "--files"]);
    assertMatch(r.out, /chunking: fixed 16 KiB blocks/);
    assertMatch(r.out, /-0640 +5 2020-09-13 12:26:40 etc\/hostname/);
    assertMatch(r.out, /l0777 +0 .* link-rel -> etc\/hostname/);
    r = await hexz(["cat", `${dir}/t.hxz`, "--file", "etc/hostname"]);
    assertEquals(r.out, "hexz\n");
    r = await hexz(["cat", `${dir}/t.hxz`, "--file", "etc/nope"]);
    assertEquals(r.code, 1);
    assertMatch(r.err, /no file 'etc\/nope'/);
    for (
      const [args, re] of [
        [["--file", "etc"], /etc: is a directory, not a file/],
        [["--file", "link-rel"], /link-rel: is a symlink, not a file/],
        [["--file", "etc/hostname", "--memory"], /--file .* takes no --memory/],
        [["--file", "etc/hostname", "--offset", "3", "--length", "9"], /outside etc\/hostname/],
      ] as const
    ) {
      r = await hexz(["cat", `${dir}/t.hxz`, ...args]);
      assertEquals([r.code, r.out], [2, ""], r.err);
      assertMatch(r.err, re);
    }
    r = await hexz(["extract", `${dir}/t.hxz`, `${dir}/out`, "-q"]);
    assertEquals([r.code, r.err], [0, ""]);
    assertEquals(await snapshot(`${dir}/out`), await snapshot(`${dir}/src`));
    r = await hexz(["extract", `${dir}/t.hxz`, `${dir}/out`]);
    assertEquals(r.code, 1);
    assertMatch(r.err, /not empty \(use --force/);
    r = await hexz(["build", `${dir}/src`, `${dir}/u.hxz`, "--profile", "bogus"]);
    assertEquals(r.code, 2);
    // A thin build on t.hxz stores what changed; one worker or two, the same archive.
    await Deno.writeFile(`${dir}/src/etc/conf.d/big.bin`, pseudoRandom(300_000, 99));
    for (const workers of ["1", "2"]) {
      r = await hexz([
        "build",
        `${dir}/src`,
        `${dir}/v2-${workers}.hxz`,
        "--profile",
        "embedded",
        "--base",
        `${dir}/t.hxz`,
        "--workers",
        workers,
        "-q",
      ]);
      assertEquals([r.code, r.err], [0, ""]);
    }
    const one = await Deno.readFile(`${dir}/v2-1.hxz`);
    const two = await Deno.readFile(`${dir}/v2-2.hxz`);
    // Everything after the header (which has a UUID and a time of its own) is the same.
    assertEquals(one.subarray(4096), two.subarray(4096));
    const v2 = await open(`${dir}/v2-2.hxz`);
    try {
      const s = v2.header.streams[0];
      assert(s.parentBlocks > 0 && s.storedBytes < 400_000, JSON.stringify(s));
    } finally {
      v2.close();
    }
    r = await hexz(["extract", `${dir}/v2-2.hxz`, `${dir}/out2`, "-q"]);
    assertEquals([r.code, r.err], [0, ""]);
    assertEquals(await snapshot(`${dir}/out2`), await snapshot(`${dir}/src`));
  } finally {
    await done();
  }
});

Deno.test("build reads a tree of thousands of small files with few descriptors allowed", async () => {
  const [dir, done] = await tempDir();
  try {
    // 3,000 files of 100 bytes make one range message: its worker must not open them all at
    // once (it did, and failed under `ulimit -n 1024` with EMFILE).
    await Deno.mkdir(`${dir}/src`);
    for (let i = 0; i < 3000; i++) {
      await Deno.writeFile(`${dir}/src/f${i}`, pseudoRandom(100, i + 1));
    }
    const cli = new URL("../cli.ts", import.meta.url).pathname;
    const r = await new Deno.Command("sh", {
      args: [
        "-c",
        `ulimit -n 256 && exec "$0" run -q -A "$1" build "$2/src" "$2/t.hxz" --workers 2 -q`,
        Deno.execPath(),
        cli,
        dir,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(r.code, 0, new TextDecoder().decode(r.stderr));
    const a = await open(`${dir}/t.hxz`);
    try {
      assertEquals((await fileTable(a))!.filter((e) => e.type === "file").length, 3000);
      const e = (await findFile(a, "f2999"))!;
      assertEquals(await readFile(a, e), pseudoRandom(100, 3000));
    } finally {
      a.close();
    }
  } finally {
    await done();
  }
});

Deno.test(needs(["root"], {
  name: "setuid and setgid bits and symlink owners survive an extract as root",
  fn: async () => {
    const [dir, done] = await tempDir();
    try {
      await Deno.mkdir(`${dir}/src`);
      await Deno.writeTextFile(`${dir}/src/su`, "#!/bin/sh\n");
      await Deno.chmod(`${dir}/src/su`, 0o4755);
      await Deno.writeTextFile(`${dir}/src/sg`, "x");
      await Deno.chown(`${dir}/src/sg`, 1, 1); // first: chown clears the bit
      await Deno.chmod(`${dir}/src/sg`, 0o2755);
      await Deno.symlink("su", `${dir}/src/ln`);
      lchownSync(`${dir}/src/ln`, 2, 3); // the link's own owner (Deno.chown would follow it)
      await build({ source: `${dir}/src`, output: `${dir}/t.hxz` });
      const a = await open(`${dir}/t.hxz`);
      try {
        await extractTree(a, `${dir}/out`);
      } finally {
        a.close();
      }
      assertEquals((await Deno.stat(`${dir}/out/su`)).mode! & 0o7777, 0o4755);
      const sg = await Deno.stat(`${dir}/out/sg`);
      assertEquals([sg.mode! & 0o7777, sg.uid, sg.gid], [0o2755, 1, 1]);
      const ln = await Deno.lstat(`${dir}/out/ln`);
      assertEquals([ln.uid, ln.gid], [2, 3]);
    } finally {
      await done();
    }
  },
}));

Deno.test(needs(["tar"], {
  name: "names with a backslash (systemd's \\x2d) go through build, extract, cat --file and tar",
  fn: async () => {
    const [dir, done] = await tempDir();
    try {
      const unit = "system-systemd\\x2dcryptsetup.slice";
      await Deno.mkdir(`${dir}/src/lib\\x2dsystemd`, { recursive: true });
      await Deno.writeTextFile(`${dir}/src/lib\\x2dsystemd/${unit}`, "[Unit]\nDescription=x\n");
      await Deno.writeTextFile(`${dir}/src/plain.txt`, "plain\n");
      let r = await hexz(["build", `${dir}/src`, `${dir}/t.hxz`, "-q"]);
      assertEquals([r.code, r.err], [0, ""]);
      r = await hexz(["extract", `${dir}/t.hxz`, `${dir}/out`, "-q"]);
      assertEquals([r.code, r.err], [0, ""]);
      const diff = await new Deno.Command("diff", { args: ["-r", `${dir}/src`, `${dir}/out`] })
        .output();
      assert(diff.success, new TextDecoder().decode(diff.stdout));
      r = await hexz(["cat", `${dir}/t.hxz`, "--file", `lib\\x2dsystemd/${unit}`]);
      assertEquals(r.out, "[Unit]\nDescription=x\n");
      // Only tables that hold such a name need version 4: older hexz refuse it as a version.
      const a = await open(`${dir}/t.hxz`);
      const t = (await a.section("fileTable"))!.slice();
      a.close();
      assertEquals(new DataView(t.buffer).getUint16(4, true), 4);
      // The same table called version 3 is refused: there a backslash is not allowed.
      new DataView(t.buffer).setUint16(4, 3, true);
      t.set(blake3(t.subarray(0, t.length - 32)), t.length - 32);
      assertThrows(() => decodeFileTable(t, 1 << 20), HexzError, /unsafe path/);
      // GNU tar reads the converted tar back to the same tree, and a tar of it converts.
      r = await hexz(["convert", `${dir}/t.hxz`, `${dir}/t.tar`]);
      assertEquals(r.code, 0, r.err);
      await Deno.mkdir(`${dir}/untar`);
      const x = await new Deno.Command("tar", {
        args: ["-xf", `${dir}/t.tar`, "-C", `${dir}/untar`],
      })
        .output();
      assert(x.success, new TextDecoder().decode(x.stderr));
      assertEquals(
        await Deno.readTextFile(`${dir}/untar/lib\\x2dsystemd/${unit}`),
        "[Unit]\nDescription=x\n",
      );
      r = await hexz(["convert", `${dir}/t.tar`, `${dir}/t2.hxz`]);
      assertEquals(r.code, 0, r.err);
      r = await hexz(["cat", `${dir}/t2.hxz`, "--file", `lib\\x2dsystemd/${unit}`]);
      assertEquals(r.out, "[Unit]\nDescription=x\n");
    } finally {
      await done();
    }
  },
}));
