/**
 * HDF5 files written by h5py (tests/_hdf5_make.py) read by core/hdf5 and packed by
 * packHdf5: every dataset's bytes against numpy's tobytes(), for h5py's default format
 * (superblock 0, B-tree v1 groups and chunks) and libver 'v108' and 'latest' (superblocks 2
 * and 3, link messages, dense groups, single-chunk and fixed-array indexes); damaged files
 * fail with one-line HexzErrors. Needs python3 with h5py (Debian: python3-h5py).
 */
import { assert, assertEquals, assertMatch, assertRejects, assertThrows } from "./_assert.ts";
import { type Hdf5Metadata, HexzError, listHdf5, memorySource, open, packHdf5 } from "../mod.ts";
import { findFile, readFile } from "../core/read/files.ts";
import { needs, type Requirement, tempDir } from "./_tools.ts";
import { hexz } from "./_cli.ts";
import { Cursor } from "../core/hdf5/cursor.ts";
import { parseDatatype } from "../core/hdf5/datatype.ts";

/** A python3 that imports h5py (Debian's is /usr/bin/python3; PATH may have another). */
function h5python(): string | null {
  for (const py of ["/usr/bin/python3", "python3"]) {
    try {
      const r = new Deno.Command(py, { args: ["-c", "import h5py"], stderr: "null" }).outputSync();
      if (r.success) return py;
    } catch { /* not there */ }
  }
  return null;
}

const PY = h5python();
/** What every test here needs: a python3 that imports h5py, to write the files. */
const H5PY: Requirement = { what: "python3 with h5py (python3-h5py)", met: () => PY !== null };
const LIBVERS = ["earliest", "v108", "latest"] as const;
const SUPERBLOCK = { earliest: 0, v108: 2, latest: 3 };

interface Manifest {
  datasets: Record<
    string,
    { dtype: string; shape: number[]; fields?: { name: string; dtype: string; offset: number }[] }
  >;
  gzip_chunk: { offset: number; size: number };
}

let made: Promise<{ dir: string; manifest: Record<string, Manifest> }> | null = null;
/** The files, made once for all tests of this module. */
function files() {
  made ??= (async () => {
    const [dir] = await tempDir("hexz-hdf5-");
    globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
    const script = new URL("./_hdf5_make.py", import.meta.url).pathname;
    const r = await new Deno.Command(PY!, { args: [script, dir], stderr: "piped" }).output();
    if (!r.success) throw new Error(`_hdf5_make.py: ${new TextDecoder().decode(r.stderr)}`);
    return { dir, manifest: JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`)) };
  })();
  return made;
}

async function bytesOf(pieces: AsyncGenerator<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of pieces) parts.push(p.slice());
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, (o += p.length) - p.length);
  return out;
}

/** What each file leaves out. */
function expectedSkips(_libver: string): string[] {
  return [
    "skip/again",
    "skip/compound",
    `skip/${"n".repeat(5000)}`,
    "skip/soft",
    "skip/subarray",
    "skip/vlen",
    "types/half",
  ];
}

for (const libver of LIBVERS) {
  Deno.test(needs([H5PY], {
    name: `listHdf5 gives numpy's bytes of every dataset (libver ${libver})`,
    fn: async () => {
      const { dir, manifest } = await files();
      const l = await listHdf5(memorySource(await Deno.readFile(`${dir}/${libver}.h5`)));
      try {
        assertEquals(l.superblock, SUPERBLOCK[libver]);
        const want = manifest[libver].datasets;
        const skipped = expectedSkips(libver);
        assertEquals(l.skipped.map((s) => s.path).sort(), skipped);
        const expected = Object.keys(want).filter((p) => !skipped.includes(p)).sort();
        assertEquals(l.datasets.map((d) => d.path).sort(), expected);
        for (const d of l.datasets) {
          const exp = await Deno.readFile(`${dir}/${libver}/${d.path}.bin`);
          assertEquals([d.path, d.dtype, d.shape, d.fields], [
            d.path,
            want[d.path].dtype,
            want[d.path].shape,
            want[d.path].fields,
          ]);
          assertEquals(d.size, exp.length, d.path);
          const got = await bytesOf(d.read());
          assert(
            got.length === exp.length && got.every((b, i) => b === exp[i]),
            `${d.path} differs`,
          );
        }
        const byPath = Object.fromEntries(l.datasets.map((d) => [d.path, d]));
        assertEquals(byPath["compact"].layout, "compact");
        assertEquals(byPath["floats/f4"].layout, "contiguous");
        assertEquals(byPath["chunked/plain"].chunks, [7, 5]);
        assertEquals(byPath["chunked/gzip"].filters, ["shuffle", "deflate", "fletcher32"]);
        assertEquals(byPath["model/layer1/weight"].attributes, {
          scale: 0.5,
          name: "first layer",
          dims: [16, 8],
          trainable: true,
          tag: "fixed",
        });
        // Twelve attributes: dense storage (a fractal heap) with libver 'latest'.
        assertEquals(
          byPath["model/layer1/bias"].attributes,
          Object.fromEntries(
            Array.from({ length: 12 }, (_, i) => [`a${`${i}`.padStart(2, "0")}`, i * 1.5]),
          ),
        );
        assertEquals(l.groups.find((g) => g.path === "")?.attributes, {
          title: "test file",
          version: 3,
          model_config: JSON.stringify({
            layers: Array.from({ length: 300 }, (_, i) => ({ name: `dense_${i}`, units: i })),
          }).replace(/,/g, ", ").replace(/:/g, ": "),
          weight_names: ["dense/kernel:0", "dense/bias:0"],
        });
        assertEquals(l.groups.find((g) => g.path === "model")?.attributes, { epochs: 12 });
        // Contiguous data is where h5py put it: the bytes at fileOffset are numpy's.
        const f4 = byPath["floats/f4"];
        const raw = (await Deno.readFile(`${dir}/${libver}.h5`)).subarray(
          f4.fileOffset!,
          f4.fileOffset! + f4.size,
        );
        assertEquals(raw, await Deno.readFile(`${dir}/${libver}/floats/f4.bin`));
        assertMatch(
          l.skipped.find((s) => s.path === "skip/compound")!.reason,
          /compound datatype is not supported/,
        );
      } finally {
        l.close();
      }
    },
  }));
}

/** Lists and reads every dataset of `bytes`: "ok", or the HexzError it fails with (any other
 * error fails the test). */
async function readAll(bytes: Uint8Array): Promise<"ok" | HexzError> {
  try {
    const l = await listHdf5(memorySource(bytes, "t.h5"));
    for (const d of l.datasets) {
      let n = 0;
      for await (const p of d.read()) n += p.length;
      assertEquals(n, d.size, d.path);
    }
    return "ok";
  } catch (e) {
    if (e instanceof HexzError) {
      assert(!e.message.includes("\n"), `two lines: ${e.message}`);
      assert(e.message.startsWith("t.h5"), `does not name the file: ${e.message}`);
      return e;
    }
    throw e;
  }
}

Deno.test(needs([H5PY], {
  name: "listHdf5 refuses truncated files with one-line errors",
  fn: async () => {
    const { dir } = await files();
    for (const libver of LIBVERS) {
      const bytes = await Deno.readFile(`${dir}/${libver}.h5`);
      let failed = 0, cuts = 0;
      for (let n = 0; n < bytes.length; n += n < 4096 ? 97 : 1499) {
        cuts++;
        const r = await readAll(bytes.subarray(0, n));
        if (r !== "ok") failed++;
        // The first half holds metadata every listing reads.
        else assert(n > bytes.length / 2, `${libver} cut at ${n} of ${bytes.length} was read`);
      }
      // Only the data of skipped datasets (never read) may be lost without an error.
      assert(failed >= cuts - 2, `${libver}: ${failed} of ${cuts} cuts failed`);
    }
    const e = await readAll(new Uint8Array(5000).fill(7));
    assert(e !== "ok");
    assertMatch(e.message, /^t\.h5: not an HDF5 file/);
  },
}));

Deno.test(needs([H5PY], {
  name: "listHdf5 checks fletcher32, the superblock and fractal heap checksums",
  fn: async () => {
    const { dir, manifest } = await files();
    for (const libver of LIBVERS) {
      const bytes = await Deno.readFile(`${dir}/${libver}.h5`);
      const { offset, size } = manifest[libver].gzip_chunk;
      bytes[offset + size - 10] ^= 0x40;
      const e = await readAll(bytes);
      assert(e !== "ok", libver);
      assertMatch(e.message, /'\/chunked\/gzip': chunk at \[0,0\]: fletcher32 checksum mismatch$/);
    }
    // A link in the root group's fractal heap (dense storage): its direct block's checksum.
    const heap = await Deno.readFile(`${dir}/latest.h5`);
    const fhdb = new TextDecoder("latin1").decode(heap).indexOf("FHDB");
    assert(fhdb > 0, "no fractal heap direct block in latest.h5");
    heap[fhdb + 40] ^= 0x20;
    const h = await readAll(heap);
    assert(h !== "ok");
    assertMatch(h.message, /fractal heap: direct block at \d+: checksum mismatch$/);
    const latest = await Deno.readFile(`${dir}/latest.h5`);
    latest[20] ^= 1;
    const e = await readAll(latest);
    assert(e !== "ok");
    assertEquals(e.message, "t.h5: superblock: checksum mismatch");
  },
}));

Deno.test(needs([H5PY], {
  name: "listHdf5 survives corrupted bytes: a HexzError or the data, never a crash or a hang",
  fn: async () => {
    const { dir } = await files();
    let x = 12345;
    const rand = () => ((x = (x * 1103515245 + 12345) >>> 0) >>> 8);
    for (const libver of LIBVERS) {
      const clean = await Deno.readFile(`${dir}/${libver}.h5`);
      let errors = 0;
      for (let i = 0; i < 150; i++) {
        const bytes = clean.slice();
        // Mostly the metadata at the start, where one byte changes the most.
        for (let k = 0; k < 3; k++) {
          const at = rand() % (i % 2 ? bytes.length : Math.min(bytes.length, 8192));
          bytes[at] = rand() & 0xff;
        }
        if ((await readAll(bytes)) !== "ok") errors++;
      }
      assert(errors > 0, `${libver}: no corruption was noticed`);
    }
  },
}));

Deno.test(needs([H5PY], {
  name: "packHdf5 stores each dataset as a file at its group path, with the dtypes in metadata",
  fn: async () => {
    const { dir, manifest } = await files();
    const [out, cleanup] = await tempDir();
    try {
      for (const libver of LIBVERS) {
        const output = `${out}/${libver}.hxz`;
        const warnings: string[] = [];
        const res = await packHdf5({
          source: `${dir}/${libver}.h5`,
          output,
          compression: "zstd",
          blockSize: 4096,
          onWarning: (m) => warnings.push(m),
        });
        const skipped = expectedSkips(libver);
        assertEquals(res.skipped, skipped.length);
        assertEquals(warnings.length, skipped.length);
        assertMatch(warnings.find((w) => w.startsWith("skip/vlen"))!, /^skip\/vlen: skipped \(/);
        const a = await open(output);
        try {
          const meta = (await a.metadata()) as { hdf5: Hdf5Metadata };
          const want = manifest[libver].datasets;
          const paths = Object.keys(want).filter((p) => !skipped.includes(p)).sort();
          assertEquals(Object.keys(meta.hdf5.datasets).sort(), paths);
          assertEquals(res.datasets, paths.length);
          assertEquals(meta.hdf5.superblock, SUPERBLOCK[libver]);
          assertEquals(meta.hdf5.source, `${libver}.h5`);
          assertEquals(meta.hdf5.groups[""].title, "test file");
          assertEquals(meta.hdf5.skipped.map((s) => s.path).sort(), skipped);
          for (const p of paths) {
            assertEquals(
              [
                meta.hdf5.datasets[p].dtype,
                meta.hdf5.datasets[p].shape,
                meta.hdf5.datasets[p].fields,
              ],
              [want[p].dtype, want[p].shape, want[p].fields],
            );
            const exp = await Deno.readFile(`${dir}/${libver}/${p}.bin`);
            const entry = await findFile(a, p);
            assertEquals([entry.type, entry.size], ["file", exp.length]);
            assertEquals(await readFile(a, entry, 0, exp.length), exp, p);
            if (exp.length > 10) {
              // At random: a range in the middle.
              const at = Math.floor(exp.length / 3);
              assertEquals(await readFile(a, entry, at, 7), exp.subarray(at, at + 7), p);
            }
          }
          assertEquals((await findFile(a, "model/layer1")).type, "dir");
          assertEquals(meta.hdf5.datasets["model/layer1/weight"].attributes.name, "first layer");
          assertEquals(meta.hdf5.datasets["chunked/gzip"].filters, [
            "shuffle",
            "deflate",
            "fletcher32",
          ]);
        } finally {
          a.close();
        }
      }
      await assertRejects(
        () => packHdf5({ source: `${dir}/latest.h5`, output: `${out}/x.hxz`, metadata: "note" }),
        HexzError,
        /metadata must be an object/,
      );
      await assertRejects(
        () => packHdf5({ source: `${out}/earliest.hxz`, output: `${out}/x.hxz` }),
        HexzError,
        /earliest\.hxz: not an HDF5 file/,
      );
    } finally {
      await cleanup();
    }
  },
}));

Deno.test(needs([H5PY, "h5ls"], {
  name: "listHdf5 finds the groups and datasets h5ls finds, with the same shapes",
  fn: async () => {
    const { dir } = await files();
    for (const libver of LIBVERS) {
      const r = await new Deno.Command("h5ls", { args: ["-r", `${dir}/${libver}.h5`] }).output();
      assert(r.success, "h5ls failed");
      const theirs: string[] = [];
      for (const line of new TextDecoder().decode(r.stdout).trim().split("\n")) {
        // A group met again is listed by h5ls as "Group, same as /first" and skipped by us.
        if (/^\S+\s+Group, same as /.test(line)) continue;
        const m = /^\/(\S*)\s+(Group|Type|Dataset \{(.*)\}|Soft Link .*)$/.exec(line);
        assert(m, `h5ls line ${line}`);
        if (m[2] === "Group" && m[1]) theirs.push(`${m[1]}/`);
        if (m[3] !== undefined) {
          const shape = m[3] === "SCALAR" ? "" : m[3].replace(/\/[^,]+/g, "").replace(/ /g, "");
          theirs.push(`${m[1]} ${shape}`);
        }
      }
      const l = await listHdf5(memorySource(await Deno.readFile(`${dir}/${libver}.h5`)));
      l.close();
      const ours = [
        ...l.groups.filter((g) => g.path).map((g) => `${g.path}/`),
        ...l.datasets.map((d) => `${d.path} ${d.shape.join(",")}`),
      ];
      const skipped = l.skipped.map((s) => s.path);
      assertEquals(
        ours.sort(),
        theirs.filter((t) => !skipped.includes(t.split(" ")[0])).sort(),
        libver,
      );
    }
  },
}));

Deno.test(needs([H5PY], {
  name: "hexz convert model.h5 out.hxz, then hexz cat --file gives numpy's bytes",
  fn: async () => {
    const { dir } = await files();
    const [out, cleanup] = await tempDir();
    try {
      const r = await hexz([
        "convert",
        `${dir}/latest.h5`,
        `${out}/m.hxz`,
        "--compression",
        "zstd",
      ]);
      assertEquals(r.code, 0, r.err);
      assertMatch(r.err, /hexz: warning: skip\/compound: skipped \(the compound datatype/);
      assertMatch(r.err, /m\.hxz: 34 datasets \(7 skipped\), /);
      for (const p of ["chunked/gzip", "chunked/missing", "model/layer1/weight", "compact"]) {
        const c = await hexz(["cat", `${out}/m.hxz`, "--file", p]);
        assertEquals(c.code, 0, c.err);
        assertEquals(c.stdout, await Deno.readFile(`${dir}/latest/${p}.bin`), p);
      }
      const c = await hexz([
        "cat",
        `${out}/m.hxz`,
        "--file",
        "floats/f8",
        "--offset",
        "8",
        "--length",
        "16",
      ]);
      assertEquals(c.stdout, (await Deno.readFile(`${dir}/latest/floats/f8.bin`)).subarray(8, 24));
      // A damaged file: one line, exit 1, nothing left behind.
      const bytes = await Deno.readFile(`${dir}/earliest.h5`);
      await Deno.writeFile(`${out}/cut.h5`, bytes.subarray(0, 20000));
      const bad = await hexz(["convert", `${out}/cut.h5`, `${out}/cut.hxz`]);
      assertEquals(bad.code, 1);
      assertMatch(bad.err, /^hexz: \S*cut\.h5: .*lie outside the file \(20000 bytes\)\n$/);
      assertEquals([...Deno.readDirSync(out)].map((e) => e.name).sort(), ["cut.h5", "m.hxz"]);
      const two = await hexz(["convert", `${dir}/latest.h5`, `${dir}/v108.h5`, `${out}/x.hxz`]);
      assertEquals([two.code, two.err], [
        2,
        "hexz: an HDF5 file converts on its own: got 2 inputs\n",
      ]);
      const dict = await hexz(["convert", `${dir}/latest.h5`, `${out}/x.hxz`, "--train-dict"]);
      assertEquals([dict.code, dict.err], [2, "hexz: --train-dict applies to tar inputs\n"]);
    } finally {
      await cleanup();
    }
  },
}));

Deno.test(needs([H5PY], {
  name: "listHdf5 finds the superblock after a user block",
  fn: async () => {
    const { dir } = await files();
    for (const libver of ["earliest", "latest"]) {
      const l = await listHdf5(memorySource(await Deno.readFile(`${dir}/userblock-${libver}.h5`)));
      try {
        assertEquals(l.datasets.map((d) => d.path), ["a/x", "a/y"]);
        const x = new Int32Array(Array.from({ length: 300 }, (_, i) => i));
        const y = new Float64Array(Array.from({ length: 300 }, (_, i) => i));
        assertEquals(await bytesOf(l.datasets[0].read()), new Uint8Array(x.buffer));
        assertEquals(await bytesOf(l.datasets[1].read()), new Uint8Array(y.buffer));
      } finally {
        l.close();
      }
    }
  },
}));

Deno.test("parseDatatype refuses types nested past its limit instead of exhausting the stack", () => {
  // An array type (class 10, version 3) of one dimension of 1, whose base is another, 10,000
  // times over: 13 bytes each.
  const one = [0x3a, 0, 0, 0, 4, 0, 0, 0, 1, 1, 0, 0, 0];
  const bytes = new Uint8Array(one.length * 10000);
  for (let i = 0; i < 10000; i++) bytes.set(one, i * one.length);
  const c = new Cursor(bytes, "t.h5: '/x': datatype");
  assertThrows(() => parseDatatype(c), HexzError, /datatypes nested more than 32 deep/);
});

Deno.test(needs([H5PY], {
  name: "listHdf5 reads a group of 30,000 links (nested fractal heap indirect blocks)",
  fn: async () => {
    const { dir } = await files();
    const l = await listHdf5(memorySource(await Deno.readFile(`${dir}/biggroup.h5`)));
    try {
      assertEquals(l.skipped.length, 30000);
      assertEquals(l.skipped[29999], {
        path: "many/link_029999",
        reason: "a soft link, not followed",
      });
      assertEquals(l.datasets.map((d) => d.path), [
        "many/z0",
        "many/z1",
        "many/z2",
        "many/z3",
        "many/z4",
        "x",
      ]);
      for (let i = 0; i < 5; i++) {
        assertEquals(
          await bytesOf(l.datasets[i].read()),
          new Uint8Array(new Int16Array(4).fill(i).buffer),
        );
      }
    } finally {
      l.close();
    }
  },
}));
