import { assertEquals, assertMatch, assertRejects, assertThrows } from "./_assert.ts";
import { build, extractTree, fileTable, HexzError, open, selectEntries } from "../mod.ts";
import { pseudoRandom, tempDir } from "./_tools.ts";
import { hexz } from "./_cli.ts";

/** path -> "d MODE" | "f MODE SIZE FIRSTBYTES NLINK" | "l TARGET", for every entry under root. */
async function snapshot(root: string, rel = ""): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const names: string[] = [];
  for await (const e of Deno.readDir(rel ? `${root}/${rel}` : root)) names.push(e.name);
  for (const n of names.sort()) {
    const p = rel ? `${rel}/${n}` : n;
    const st = await Deno.lstat(`${root}/${p}`);
    const mode = (st.mode! & 0o7777).toString(8);
    if (st.isSymlink) out[p] = `l ${await Deno.readLink(`${root}/${p}`)}`;
    else if (st.isDirectory) {
      out[p] = `d ${mode}`;
      Object.assign(out, await snapshot(root, p));
    } else {
      const data = await Deno.readFile(`${root}/${p}`);
      out[p] = `f ${mode} ${data.length} ${data.subarray(0, 8).join(",")} ${st.nlink}`;
    }
  }
  return out;
}

/** A tree with nested directories, a symlink and a file with three names in two places. */
async function makeTree(dir: string): Promise<string> {
  const src = `${dir}/src`;
  await Deno.mkdir(`${src}/etc/conf.d`, { recursive: true });
  await Deno.mkdir(`${src}/usr/bin`, { recursive: true });
  await Deno.mkdir(`${src}/usr/lib`, { recursive: true });
  await Deno.chmod(`${src}/usr/lib`, 0o711);
  await Deno.writeTextFile(`${src}/etc/hostname`, "hexz\n");
  await Deno.writeFile(`${src}/etc/conf.d/big.bin`, pseudoRandom(300_000, 91));
  await Deno.writeFile(`${src}/usr/bin/tool`, pseudoRandom(100_000, 92));
  await Deno.chmod(`${src}/usr/bin/tool`, 0o755);
  await Deno.link(`${src}/usr/bin/tool`, `${src}/usr/bin/tool-alias`);
  await Deno.link(`${src}/usr/bin/tool`, `${src}/usr/lib/tool.so`);
  await Deno.symlink("../bin/tool", `${src}/usr/lib/tool-link`);
  return src;
}

/** The entries of a snapshot under any of the prefixes, with nlink as given. */
function part(all: Record<string, string>, keep: string[], nlink: Record<string, number> = {}) {
  const out: Record<string, string> = {};
  for (const [p, v] of Object.entries(all)) {
    if (!keep.some((k) => p === k || p.startsWith(`${k}/`))) continue;
    out[p] = p in nlink ? v.replace(/ \d+$/, ` ${nlink[p]}`) : v;
  }
  return out;
}

Deno.test("extractTree of chosen paths: their subtrees, their ancestors, hard links kept whole", async () => {
  const [dir, done] = await tempDir();
  try {
    const src = await makeTree(dir);
    const all = await snapshot(src);
    await build({ source: src, output: `${dir}/t.hxz` });
    const a = await open(`${dir}/t.hxz`);
    try {
      const cases: [string[], string[], Record<string, number>][] = [
        // A subtree: its parent comes along, and the file it links to does not.
        [["usr/lib"], ["usr", "usr/lib"], { "usr/lib/tool.so": 1 }],
        // Two names of one file without the first: they become one file with two names.
        [
          ["usr/bin/tool-alias", "./usr/lib/tool.so"],
          ["usr", "usr/bin", "usr/lib", "usr/bin/tool-alias", "usr/lib/tool.so"],
          { "usr/bin/tool-alias": 2, "usr/lib/tool.so": 2 },
        ],
        [
          ["/etc/conf.d/", "usr/bin/tool"],
          ["etc", "etc/conf.d", "usr", "usr/bin", "usr/bin/tool"],
          {
            "usr/bin/tool": 1,
          },
        ],
        [["."], Object.keys(all), {}],
      ];
      for (const [paths, keep, nlink] of cases) {
        for (const workers of [1, 2]) {
          const out = `${dir}/out-${crypto.randomUUID()}`;
          const r = await extractTree(a, out, { paths, workers });
          let want = part(all, keep, nlink);
          // Ancestors come alone, not with their other contents.
          want = Object.fromEntries(
            Object.entries(want).filter(([p]) =>
              paths.some((q) => {
                const n = q.replace(/^\.?\/+/, "").replace(/\/+$/, "");
                return n === "." || n === "" || p === n || p.startsWith(`${n}/`) ||
                  n.startsWith(`${p}/`);
              })
            ),
          );
          assertEquals(await snapshot(out), want, `${paths.join(" ")} (${workers} workers)`);
          assertEquals(r.entries, Object.keys(want).length);
        }
      }
      // A name not in the tree: an error naming it, and nothing written.
      const e = await assertRejects(
        () => extractTree(a, `${dir}/none`, { paths: ["etc", "etc/nope"] }),
        HexzError,
      );
      assertEquals((e as HexzError).code, "not-found");
      assertEquals(e.message, "etc/nope: not in the archive");
      await assertRejects(() => Deno.lstat(`${dir}/none`), Deno.errors.NotFound);
      // A prefix of a name is not a directory of it.
      assertThrows(() => selectEntries([], ["x"]), HexzError, /^x: not in the archive$/);
      const t = (await fileTable(a))!;
      assertThrows(() => selectEntries(t, ["usr/bi"]), HexzError, /^usr\/bi: not in the archive$/);
    } finally {
      a.close();
    }
    // The command line: paths after the output directory.
    let r = await hexz(["extract", `${dir}/t.hxz`, `${dir}/cli`, "usr/lib", "etc/hostname"]);
    assertEquals(r.code, 0, r.err);
    assertEquals(
      Object.keys(await snapshot(`${dir}/cli`)),
      ["etc", "etc/hostname", "usr", "usr/lib", "usr/lib/tool-link", "usr/lib/tool.so"],
    );
    r = await hexz(["extract", `${dir}/t.hxz`, `${dir}/cli2`, "usr/nothing"]);
    assertEquals(r.code, 1);
    assertEquals(r.err, "hexz: usr/nothing: not in the archive\n");
    r = await hexz(["extract", `${dir}/t.hxz`, `${dir}/cli3`, "--raw", "usr"]);
    assertEquals(r.code, 2);
    assertMatch(r.err, /^hexz: .*paths.*--raw/);
    // An image archive has no tree to choose from.
    await Deno.writeFile(`${dir}/disk.img`, pseudoRandom(100_000, 93));
    r = await hexz(["pack", `${dir}/img.hxz`, "--disk", `${dir}/disk.img`, "-q"]);
    assertEquals(r.code, 0, r.err);
    r = await hexz(["extract", `${dir}/img.hxz`, `${dir}/img-out`, "etc"]);
    assertEquals(r.code, 2);
    assertMatch(r.err, /^hexz: .*img\.hxz: not a directory archive: paths cannot be chosen/);
    await assertRejects(() => Deno.lstat(`${dir}/img-out`), Deno.errors.NotFound);
  } finally {
    await done();
  }
});
