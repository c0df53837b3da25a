import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { open, pack } from "../mod.ts";
import { diffArchives } from "../core/history/diff.ts";
import { lineage } from "../core/history/lineage.ts";
import { openOverlay } from "../core/overlay/overlay.ts";
import { hexz } from "./_cli.ts";
import { pseudoRandom, tempDir } from "./_tools.ts";

const B = 64 * 1024;

async function packFile(dir: string, name: string, data: Uint8Array, base?: string) {
  await Deno.writeFile(`${dir}/${name}.img`, data);
  const b = base ? await open(base) : undefined;
  try {
    await pack({
      output: `${dir}/${name}.hxz`,
      disk: `${dir}/${name}.img`,
      base: b,
      basePath: base,
      message: name,
    });
  } finally {
    b?.close();
  }
  return `${dir}/${name}.hxz`;
}

Deno.test("diff figures match known edits", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    const v1 = pseudoRandom(64 * B, 61);
    const v2 = v1.slice();
    for (const i of [3, 10, 11, 40, 63]) v2.set(pseudoRandom(B, 100 + i), i * B); // 5 rewritten
    v2.fill(0, 20 * B, 22 * B); // 2 zeroed
    const a = keep(await open(await packFile(dir, "v1", v1)));
    const b = keep(await open(await packFile(dir, "v2", v2)));
    const r = await diffArchives(a, b);
    assertEquals(r.b.uniqueBlocks, 5);
    assertEquals(r.b.uniqueBytes, 5 * B);
    assertEquals(r.a.uniqueBlocks, 7); // the 5 rewritten and the 2 zeroed blocks
    assertEquals(r.sharedBlocks, 57);
    assertEquals(r.sharedBytes, 57 * B);
    assertEquals(r.b.zeroBytes, 2 * B);
    assertEquals(r.changedFraction, 5 / 62);
    assert(r.sameChunking);
    a.close();
    b.close();
    const cli = await hexz(["diff", `${dir}/v1.hxz`, `${dir}/v2.hxz`, "--json"]);
    assertEquals(cli.code, 0, cli.err);
    assertEquals(JSON.parse(cli.out).sharedBlocks, 57);
    // Against an image of zeros only, the changed share of its data is undefined, not 0%.
    await packFile(dir, "zeros", new Uint8Array(64 * B));
    const z = await hexz(["diff", `${dir}/v1.hxz`, `${dir}/zeros.hxz`]);
    assertEquals(z.code, 0, z.err);
    assertMatch(z.out, /^changed: - \(.*zeros\.hxz holds no data but zeros\)$/m);
    const zj = await hexz(["diff", `${dir}/v1.hxz`, `${dir}/zeros.hxz`, "--json"]);
    assertEquals(JSON.parse(zj.out).changedFraction, null);
  } finally {
    await done();
  }
});

Deno.test("ls shows the lineage tree with external, replaced and missing parents", async () => {
  const [dir, done] = await tempDir();
  try {
    const data = pseudoRandom(8 * B, 62);
    const v1 = await packFile(dir, "v1", data);
    const v2 = await packFile(dir, "v2", data.map((x, i) => (i < B ? x ^ 1 : x)), v1);
    await packFile(dir, "v3", data.map((x, i) => (i < 2 * B ? x ^ 1 : x)), v2);
    await packFile(dir, "other", pseudoRandom(B, 63));
    // A child in a subdirectory whose parent (v1) lives outside it.
    await Deno.mkdir(`${dir}/sub`);
    await packFile(`${dir}/sub`, "ext", data.map((x, i) => (i > 7 * B ? 0 : x)), v1);
    // A child whose parent is replaced by another archive of the same name.
    const p = await packFile(dir, "p", data);
    await packFile(dir, "orphan", data.map((x, i) => (i < 10 ? 7 : x)), p);
    await pack({ output: p, disk: `${dir}/other.img`, force: true });
    const { roots } = await lineage(dir);
    const byName = (n: string) => roots.find((r) => r.path.endsWith(n));
    assertEquals(byName("v1.hxz")!.children.map((c) => c.path.split("/").pop()), ["v2.hxz"]);
    assertEquals(byName("v1.hxz")!.children[0].children[0].path.split("/").pop(), "v3.hxz");
    // p.hxz now holds another archive (another UUID): replaced, not missing.
    assertEquals(byName("orphan.hxz")!.parentStatus, "replaced");
    const sub = await lineage(`${dir}/sub`);
    assertEquals(sub.roots[0].parentStatus, "external");
    const cli = await hexz(["ls", dir]);
    assertEquals(cli.code, 0, cli.err);
    assertMatch(cli.out, /^v1\.hxz .*\n└── v2\.hxz .*\n {4}└── v3\.hxz/m);
    assertMatch(cli.out, /orphan\.hxz .*\[BROKEN: parent .*p\.hxz was replaced\]/);
    // Gone altogether: missing.
    await Deno.remove(p);
    assertMatch((await hexz(["ls", dir])).out, /orphan\.hxz .*\[BROKEN: parent .*p\.hxz missing\]/);
    // Same UUID, other root hash: a replaced parent.
    const q = await packFile(dir, "q", data);
    await packFile(dir, "qchild", data.map((x, i) => (i < 10 ? 9 : x)), q);
    const bytes = await Deno.readFile(q);
    const { decodeHeader, encodeHeader } = await import("../core/format/header.ts");
    const h = decodeHeader(bytes.subarray(0, 4096), bytes.length);
    h.message = "edited";
    bytes.set(encodeHeader(h), 0);
    await Deno.writeFile(q, bytes);
    const again = await lineage(dir);
    assertEquals(again.roots.find((r) => r.path.endsWith("qchild.hxz"))!.parentStatus, "replaced");
  } finally {
    await done();
  }
});

Deno.test("ls --json gives null, not empty or zero values, for a file that is not an archive", async () => {
  const [dir, done] = await tempDir();
  try {
    await packFile(dir, "good", pseudoRandom(2 * B, 65));
    await Deno.writeFile(`${dir}/junk.hxz`, new TextEncoder().encode("not an archive\n"));
    const text = await hexz(["ls", dir]);
    assertEquals(text.code, 0, text.err);
    assertMatch(text.out, /^junk\.hxz {2}\[unreadable: .*junk\.hxz: not a hexz archive\]$/m);
    const r = await hexz(["ls", dir, "--json"]);
    assertEquals(r.code, 0, r.err);
    const roots = JSON.parse(r.out);
    const junk = roots.find((n: { path: string }) => n.path.endsWith("junk.hxz"));
    assertEquals(junk, {
      path: `${dir}/junk.hxz`,
      uuid: null,
      rootHash: null,
      createdAt: null,
      message: null,
      logicalSize: null,
      fileSize: null,
      parentStatus: null,
      parentPath: null,
      parentUuid: null,
      children: [],
      error: `${dir}/junk.hxz: not a hexz archive`,
    });
    // A readable archive keeps its values (an empty message is a real one) and has no error.
    const good = roots.find((n: { path: string }) => n.path.endsWith("good.hxz"));
    assertEquals([good.message, good.logicalSize, good.parentStatus], ["good", 2 * B, "none"]);
    assertEquals(typeof good.uuid, "string");
    assert(good.fileSize > 0);
    assertEquals("error" in good, false);
  } finally {
    await done();
  }
});

Deno.test("cli commit turns an overlay into a thin archive; overlay --blocks lists changes", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    const data = pseudoRandom(16 * B, 64);
    const base = await packFile(dir, "base", data);
    const a = keep(await open(base));
    const ov = keep(await openOverlay(`${dir}/w.hxo`, a, { create: true }));
    await ov.write("disk", 5 * 4096 + 1, new Uint8Array(3 * 4096).fill(0xee));
    await ov.flush();
    ov.close();
    a.close();
    let r = await hexz(["overlay", `${dir}/w.hxo`, "--base", base, "--blocks"]);
    assertEquals(r.code, 0, r.err);
    assertMatch(r.out, /disk: 4 blocks changed \(16 KiB\)/);
    assertMatch(r.out, /blocks 5-8 {2}bytes 20480-36863/);
    r = await hexz(["commit", base, `${dir}/w.hxo`, `${dir}/v2.hxz`, "-m", "edited", "-q"]);
    assertEquals([r.code, r.err], [0, ""]);
    // The overlay is gone after a successful commit; the result reads the edited image.
    assertEquals(await Deno.stat(`${dir}/w.hxo`).then(() => true, () => false), false);
    const expected = data.slice();
    expected.fill(0xee, 5 * 4096 + 1, 8 * 4096 + 1);
    r = await hexz(["cat", `${dir}/v2.hxz`]);
    assertEquals(r.stdout.length, expected.length);
    assert(r.stdout.every((x, i) => x === expected[i]), "committed bytes differ");
    r = await hexz(["inspect", `${dir}/v2.hxz`, "--json"]);
    const info = JSON.parse(r.out);
    assertEquals(info.message, "edited");
    assertEquals(info.streams[0].parentBlocks, 15);
  } finally {
    await done();
  }
});

Deno.test("ls of a URL says it reads local directories, in one line (exit 2)", async () => {
  const url = "http://127.0.0.1:9/images/";
  const r = await hexz(["ls", url], {
    perms: ["--allow-read", "--allow-write", "--allow-env", "--allow-net"],
  });
  assertEquals([r.code, r.err], [2, `hexz: ${url}: ls reads a local directory, not a URL\n`]);
});
