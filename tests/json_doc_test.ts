/**
 * docs/JSON.md lists the fields of `inspect --json` and `ls --json`: each section's table must
 * name exactly the fields the commands print, over archives that between them show every one
 * (plain, thin, encrypted with either KDF, with a trained dictionary's figures, a directory
 * with --files, and a file that is not an archive).
 */
import { assertEquals } from "./_assert.ts";
import { hexz } from "./_cli.ts";
import { pseudoRandom, tempDir } from "./_tools.ts";
import { open, pack } from "../mod.ts";
import { packBytes } from "./_archive.ts";
import { createZstdDictCodec } from "../core/codec/zstd_dict.ts";
import { openOverlay } from "../core/overlay/overlay.ts";
import { encodeFileTable } from "../core/format/filetable.ts";

const DOC = new URL("../docs/JSON.md", import.meta.url);

/** The fields named in the first column of the table under the heading `## ...title...`. */
async function documented(title: string): Promise<Set<string>> {
  const text = await Deno.readTextFile(DOC);
  const start = text.indexOf(`## \`${title}\``);
  if (start < 0) throw new Error(`docs/JSON.md has no section ${title}`);
  const next = text.indexOf("\n## ", start + 1);
  const section = text.slice(start, next < 0 ? undefined : next);
  const fields = new Set<string>();
  for (const m of section.matchAll(/^\| `([^`]+)` +\|/gm)) fields.add(m[1]);
  return fields;
}

/** Every field path in `v`: `a.b`, `list[]` for an array and `list[].c` for its items' fields;
 * the items of the array `nested` are taken as objects of the top level. */
function paths(v: unknown, prefix = "", out = new Set<string>(), nested?: string): Set<string> {
  if (Array.isArray(v)) {
    for (const item of v) paths(item, `${prefix}[]`, out, nested);
    return out;
  }
  if (v === null || typeof v !== "object") return out;
  for (const [k, x] of Object.entries(v)) {
    // `children` holds nodes like its parent's: their fields are those of the top level.
    if (k === nested) {
      out.add(prefix ? `${prefix}.${k}[]` : `${k}[]`);
      for (const child of x as unknown[]) paths(child, prefix, out, nested);
      continue;
    }
    const p = prefix ? `${prefix}.${k}` : k;
    out.add(Array.isArray(x) ? `${p}[]` : p);
    paths(x, p, out, nested);
  }
  return out;
}

async function json(args: string[]): Promise<unknown> {
  const r = await hexz(args);
  assertEquals(r.code, 0, r.err);
  return JSON.parse(r.out);
}

Deno.test("docs/JSON.md names exactly the fields of inspect --json", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    const data = pseudoRandom(200_000, 71);
    const plain = await packBytes(dir, data, { cdc: true });
    const base = keep(await open(plain));
    const thin = await packBytes(dir, data.map((x, i) => i < 1000 ? x ^ 1 : x), {
      cdc: true,
      base,
    });
    base.close();
    const argon = await packBytes(dir, data, {
      encrypt: {
        password: "pw",
        kdf: { name: "argon2id", memoryKiB: 256, iterations: 1, parallelism: 1 },
      },
    });
    const pbkdf = await packBytes(dir, data, {
      encrypt: {
        password: "pw",
        kdf: { name: "pbkdf2", memoryKiB: 0, iterations: 1000, parallelism: 0 },
      },
    });
    // A dictionary and the figures pack records when it trains one.
    const dictBytes = new TextEncoder().encode("GET /index.html HTTP/1.1 200 ".repeat(64));
    const codec = await createZstdDictCodec(dictBytes, 3);
    const dict = await packBytes(dir, dictBytes, {
      compression: "zstd",
      dictionary: { bytes: dictBytes, codec },
      metadata: { dictionary: { evalBytes: 1000, evalZstd: 400, evalZstdDict: 300 } },
    });
    codec.close?.();
    await Deno.mkdir(`${dir}/tree/sub`, { recursive: true });
    await Deno.writeTextFile(`${dir}/tree/sub/f.txt`, "hello");
    await Deno.symlink("sub/f.txt", `${dir}/tree/link`);
    await Deno.link(`${dir}/tree/sub/f.txt`, `${dir}/tree/hard`);
    let r = await hexz(["build", `${dir}/tree`, `${dir}/tree.hxz`, "-q"]);
    assertEquals(r.code, 0, r.err);
    // Devices and xattrs, without needing root to make them: a table written as it is.
    const node = { mode: 0o600, mtimeMs: 0, uid: 0, gid: 0, size: 0, offset: 0, target: "" };
    await pack({
      output: `${dir}/special.hxz`,
      disk: await write(`${dir}/empty.img`, new Uint8Array(0)),
      fileTable: () =>
        encodeFileTable([
          { ...node, path: "null", type: "chardev", major: 1, minor: 3 },
          {
            ...node,
            path: "f",
            type: "fifo",
            xattrs: [{ name: "user.a", value: data.slice(0, 3) }],
          },
        ]),
    });
    const seen = new Set<string>();
    for (
      const args of [
        [plain],
        [thin],
        [argon],
        [pbkdf],
        [dict],
        [`${dir}/tree.hxz`, "--files"],
        [`${dir}/special.hxz`, "--files"],
      ]
    ) {
      for (const p of paths(await json(["inspect", "--json", ...args]))) seen.add(p);
    }
    r = await hexz(["inspect", `${dir}/tree.hxz`, "--json"]);
    assertEquals(JSON.parse(r.out).files, undefined, "files without --files");
    assertEquals([...seen].sort(), [...await documented("hexz inspect --json")].sort());
  } finally {
    await done();
  }
});

Deno.test("docs/JSON.md names exactly the fields of ls --json", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    const data = pseudoRandom(100_000, 72);
    await pack({ output: `${dir}/v1.hxz`, disk: await write(`${dir}/v1.img`, data) });
    const v1 = keep(await open(`${dir}/v1.hxz`));
    await pack({
      output: `${dir}/v2.hxz`,
      disk: await write(`${dir}/v2.img`, data.map((x, i) => i < 10 ? 0 : x)),
      base: v1,
    });
    v1.close();
    await Deno.writeTextFile(`${dir}/junk.hxz`, "not an archive");
    const seen = new Set<string>();
    for (const root of await json(["ls", "--json", dir]) as unknown[]) {
      paths(root, "", seen, "children");
    }
    assertEquals([...seen].sort(), [...await documented("hexz ls --json")].sort());
  } finally {
    await done();
  }
});

Deno.test("docs/JSON.md names exactly the fields of predict, diff and overlay --json", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    const data = pseudoRandom(200_000, 73);
    await write(`${dir}/v1.img`, data);
    const fields = (v: unknown) => [...paths(v)].sort();
    const doc = async (t: string) => [...await documented(t)].sort();
    assertEquals(
      fields(await json(["predict", `${dir}/v1.img`, "--json"])),
      await doc("hexz predict --json"),
    );
    await pack({ output: `${dir}/v1.hxz`, disk: `${dir}/v1.img` });
    await pack({
      output: `${dir}/v2.hxz`,
      disk: await write(`${dir}/v2.img`, data.map((x, i) => i < 10 ? 0 : x)),
    });
    assertEquals(
      fields(await json(["diff", `${dir}/v1.hxz`, `${dir}/v2.hxz`, "--json"])),
      await doc("hexz diff --json"),
    );
    // An overlay of a directory archive, with its changed ranges and files.
    await Deno.mkdir(`${dir}/tree`);
    await write(`${dir}/tree/f.bin`, data);
    assertEquals((await hexz(["build", `${dir}/tree`, `${dir}/t.hxz`, "-q"])).code, 0);
    const base = keep(await open(`${dir}/t.hxz`));
    const ov = keep(await openOverlay(`${dir}/t.hxo`, base, { create: true }));
    await ov.write("disk", 5000, new Uint8Array([1, 2, 3]));
    await ov.flush();
    ov.close();
    base.close();
    const o = await json([
      "overlay",
      `${dir}/t.hxo`,
      "--base",
      `${dir}/t.hxz`,
      "--blocks",
      "--files",
      "--json",
    ]);
    assertEquals(fields(o), await doc("hexz overlay --json"));
  } finally {
    await done();
  }
});

Deno.test("docs/JSON.md names exactly the fields of doctor and bench --json", async () => {
  const fields = (v: unknown) => [...paths(v)].sort();
  const doc = async (t: string) => [...await documented(t)].sort();
  assertEquals(fields(await json(["doctor", "--json"])), await doc("hexz doctor --json"));
  assertEquals(
    fields(await json(["bench", "--size", "1M", "--runs", "1", "--json"])),
    await doc("hexz bench --json"),
  );
});

async function write(path: string, bytes: Uint8Array): Promise<string> {
  await Deno.writeFile(path, bytes);
  return path;
}
