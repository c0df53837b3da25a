import { relative } from "node:path";
import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { HexzError, inspect, open, pack, type PackOptions } from "../mod.ts";
import type { PageRef } from "../core/format/master.ts";
import { decodeHeader, encodeHeader, formatUuid, newHeader } from "../core/format/header.ts";
import { toHex } from "../core/hash/blake3.ts";
import { decodeFileTable, encodeFileTable, type FileEntry } from "../core/format/filetable.ts";
import { assertBytesEqual } from "./_archive.ts";
import { tempDir } from "./_tools.ts";
import {
  BACK_OPTIONS,
  backInput,
  GOLDEN_OPTIONS,
  goldenInput,
  THIN_OPTIONS,
  thinInput,
  ZERO_RUN_OPTIONS,
  zeroRunInput,
} from "./_golden.ts";

const VEC = new URL("./vectors/", import.meta.url).pathname;

Deno.test("golden vector: packing its input reproduces the committed archive byte for byte", async () => {
  const [dir, done] = await tempDir();
  try {
    const { disk, memory } = goldenInput();
    await Deno.writeFile(`${dir}/disk`, disk);
    await Deno.writeFile(`${dir}/memory`, memory);
    await pack({
      output: `${dir}/v.hxz`,
      disk: `${dir}/disk`,
      memory: `${dir}/memory`,
      ...GOLDEN_OPTIONS,
    });
    const made = await Deno.readFile(`${dir}/v.hxz`);
    if (Deno.env.get("HEXZ_WRITE_VECTORS")) await Deno.writeFile(`${VEC}v1-small.hxz`, made);
    assertBytesEqual(made, await Deno.readFile(`${VEC}v1-small.hxz`), "v1-small.hxz");
  } finally {
    await done();
  }
});

/**
 * Packs `input` with `options`, thin on the last of `chain` (committed vectors, copied beside it
 * as they lie in tests/vectors/, so the recorded parent path is its name), and requires the
 * committed vector `name` byte for byte (HEXZ_WRITE_VECTORS=1 writes it). Then reads the committed
 * vector: its streams are the input and its root hash is the one tests/vectors/README.md gives
 * for it; returns the features `inspect` lists and its page records.
 */
async function reproduceVector(
  name: string,
  input: { disk: Uint8Array; memory?: Uint8Array },
  options: Partial<PackOptions>,
  chain: string[] = [],
): Promise<{ features: string[]; pages: readonly PageRef[] }> {
  const [dir, done] = await tempDir();
  try {
    for (const v of chain) await Deno.copyFile(`${VEC}${v}`, `${dir}/${v}`);
    await Deno.writeFile(`${dir}/disk`, input.disk);
    if (input.memory) await Deno.writeFile(`${dir}/memory`, input.memory);
    const parent = chain.at(-1);
    const base = parent ? await open(`${dir}/${parent}`) : undefined;
    try {
      await pack({
        output: `${dir}/v.hxz`,
        disk: `${dir}/disk`,
        memory: input.memory ? `${dir}/memory` : undefined,
        base,
        // Relative (to the working directory): recorded relative to the child, as its name.
        basePath: parent ? relative(Deno.cwd(), `${dir}/${parent}`) : undefined,
        ...options,
      });
    } finally {
      base?.close();
    }
    const made = await Deno.readFile(`${dir}/v.hxz`);
    if (Deno.env.get("HEXZ_WRITE_VECTORS")) await Deno.writeFile(`${VEC}${name}`, made);
    assertBytesEqual(made, await Deno.readFile(`${VEC}${name}`), name);
  } finally {
    await done();
  }
  const a = await open(`${VEC}${name}`);
  try {
    assertBytesEqual(await a.read("disk", 0, a.size("disk")), input.disk, "disk");
    if (input.memory) {
      assertBytesEqual(await a.read("memory", 0, a.size("memory")), input.memory, "memory");
    }
    const readme = await Deno.readTextFile(`${VEC}README.md`);
    const escaped = name.replaceAll(".", "\\.");
    const expected =
      readme.match(new RegExp(`${escaped}[\\s\\S]*?root hash: \`([0-9a-f]{64})\``))![1];
    assertEquals(toHex(a.header.rootHash), expected);
    return { features: inspect(a).features, pages: a.pages };
  } finally {
    a.close();
  }
}

Deno.test("golden vector: a run of zero blocks reproduces the committed archive with its compressed page", async () => {
  const v = await reproduceVector("v1-zero-run.hxz", { disk: zeroRunInput() }, ZERO_RUN_OPTIONS);
  assertEquals(v.features, ["compressedIndex"]);
  assertEquals(v.pages.map((p) => [p.codec, p.count]), [[1, 300]]);
});

Deno.test("golden vector: a thin child of v1-small reproduces the committed archive, its parent entries inheriting their hashes", async () => {
  const v = await reproduceVector("v1-thin.hxz", thinInput(), THIN_OPTIONS, ["v1-small.hxz"]);
  assertEquals(v.features, ["thin", "compressedIndex", "inheritedHashes"]);
});

Deno.test("golden vector: a grandchild of v1-small that takes a block from it reproduces v1-back.hxz", async () => {
  const v = await reproduceVector("v1-back.hxz", backInput(), BACK_OPTIONS, [
    "v1-small.hxz",
    "v1-thin.hxz",
  ]);
  assert(v.features.includes("ancestors"), v.features.join());
});

Deno.test("golden vector: the committed archive reads back its input and documented fields", async () => {
  const a = await open(`${VEC}v1-small.hxz`);
  try {
    const { disk, memory } = goldenInput();
    assertBytesEqual(await a.read("disk", 0, a.size("disk")), disk, "disk");
    assertBytesEqual(await a.read("memory", 0, a.size("memory")), memory, "memory");
    const r = inspect(a);
    assertEquals(r.uuid, "6f1e3a52-0b7c-4d21-9a10-554433221100");
    assertEquals(r.createdAt, "2026-11-22T12:00:00.000Z");
    assertEquals(r.message, "golden vector v1");
    assertEquals(
      [
        r.streams[0].blocks,
        r.streams[0].dataBlocks,
        r.streams[0].zeroBlocks,
        r.streams[0].dedupBlocks,
      ],
      [5, 3, 1, 1],
    );
    assertEquals(await a.metadata(), { purpose: "docs/FORMAT.md golden vector" });
    // The root hash documented in tests/vectors/README.md.
    const expected =
      (await Deno.readTextFile(`${VEC}README.md`)).match(/root hash: `([0-9a-f]{64})`/)![1];
    assertEquals(toHex(a.header.rootHash), expected);
  } finally {
    a.close();
  }
});

Deno.test("header encode/decode round-trips every field", () => {
  const h = newHeader();
  h.features = 2;
  h.uuid = new Uint8Array(16).fill(9);
  h.createdAtMs = 1_700_000_000_123;
  h.archiveEnd = 8192;
  h.chunking = 1;
  h.cdcMin = 16384;
  h.cdcAvg = 65536;
  h.cdcMax = 131072;
  h.codec = 2;
  h.level = -3;
  h.parent = {
    uuid: new Uint8Array(16).fill(1),
    rootHash: new Uint8Array(32).fill(2),
    path: "../base v1.hxz",
  };
  h.toolVersion = "hexz test";
  h.message = "héllo";
  const bytes = encodeHeader(h);
  const back = decodeHeader(bytes, 8192);
  assertEquals(back, h);
  assertEquals(formatUuid(back.uuid), "09090909-0909-0909-0909-090909090909");
});

Deno.test("header: chunking sizes and codec are checked even when the checksum is right", () => {
  const base = () => {
    const h = newHeader();
    h.archiveEnd = 8192;
    h.blockSize = 65536;
    return h;
  };
  const cases: [string, (h: ReturnType<typeof newHeader>) => void, RegExp][] = [
    ["block size 0", (h) => h.blockSize = 0, /block size 0 is outside/],
    ["block size 4 GiB", (h) => h.blockSize = 0xffffffff, /block size 4294967295 is outside/],
    ["block size 512", (h) => h.blockSize = 512, /outside 1024\.\.16777216/],
    ["CDC zeros", (h) => {
      h.chunking = 1;
      h.cdcMin = h.cdcAvg = h.cdcMax = 0;
    }, /CDC sizes 0\/0\/0 are not valid/],
    ["CDC average not a power of two", (h) => {
      h.chunking = 1;
      [h.cdcMin, h.cdcAvg, h.cdcMax] = [1000, 3000, 9000];
    }, /CDC sizes 1000\/3000\/9000/],
    ["codec 99", (h) => h.codec = 99, /unknown codec 99/],
  ];
  decodeHeader(encodeHeader(base()), 8192); // the base itself is valid
  for (const [what, change, re] of cases) {
    const h = base();
    change(h);
    assertThrows(() => decodeHeader(encodeHeader(h), 8192), HexzError, re, what);
  }
});

/** The entries of the file-table vector: a directory, a setuid file, a symlink with a time
 * before the epoch, a non-ASCII name; 1,024 bytes of content in the disk stream. */
const TABLE_ENTRIES: FileEntry[] = [
  {
    path: "bin",
    type: "dir",
    mode: 0o755,
    mtimeMs: 1_700_000_000_000,
    uid: 0,
    gid: 0,
    size: 0,
    offset: 0,
    target: "",
  },
  {
    path: "bin/sh",
    type: "file",
    mode: 0o4755,
    mtimeMs: 1_700_000_000_123,
    uid: 0,
    gid: 0,
    size: 1000,
    offset: 0,
    target: "",
  },
  {
    path: "bin/sh.old",
    type: "symlink",
    mode: 0o777,
    mtimeMs: -1000,
    uid: 1000,
    gid: 100,
    size: 0,
    offset: 0,
    target: "sh",
  },
  {
    path: "données.txt",
    type: "file",
    mode: 0o644,
    mtimeMs: 1_600_000_000_500,
    uid: 1000,
    gid: 1000,
    size: 24,
    offset: 1000,
    target: "",
  },
];

Deno.test("golden vector: a version 1 file table encodes and decodes byte for byte", async () => {
  const made = encodeFileTable(TABLE_ENTRIES);
  if (Deno.env.get("HEXZ_WRITE_VECTORS")) await Deno.writeFile(`${VEC}filetable-v1.bin`, made);
  const committed = await Deno.readFile(`${VEC}filetable-v1.bin`);
  assertBytesEqual(made, committed, "filetable-v1.bin");
  assertEquals(decodeFileTable(committed, 1024), TABLE_ENTRIES);
});

/** The entries of the version 2 vector: those of version 1, and two hard links to `bin/sh`,
 * one beside it and one in another directory. */
const TABLE_LINKS: FileEntry[] = [
  ...TABLE_ENTRIES.slice(0, 3),
  { ...TABLE_ENTRIES[1], path: "bin/sh2", hardLinkTo: "bin/sh" },
  TABLE_ENTRIES[3],
  { ...TABLE_ENTRIES[0], path: "usr", mode: 0o700 },
  { ...TABLE_ENTRIES[1], path: "usr/sh", hardLinkTo: "bin/sh" },
];

Deno.test("golden vector: a version 2 file table (hard links) encodes and decodes byte for byte", async () => {
  // The encoder stores a link's path alone, whatever else its entry says.
  const made = encodeFileTable(
    TABLE_LINKS.map((e) => e.hardLinkTo ? { ...e, mode: 0o600, size: 5, mtimeMs: 9 } : e),
  );
  if (Deno.env.get("HEXZ_WRITE_VECTORS")) await Deno.writeFile(`${VEC}filetable-v2.bin`, made);
  const committed = await Deno.readFile(`${VEC}filetable-v2.bin`);
  assertBytesEqual(made, committed, "filetable-v2.bin");
  assertEquals(decodeFileTable(committed, 1024), TABLE_LINKS);
  // Without its links the same tree is a version 1 table again.
  assertEquals(new DataView(made.buffer).getUint16(4, true), 2);
  const plain = encodeFileTable(TABLE_LINKS.filter((e) => !e.hardLinkTo));
  assertEquals(new DataView(plain.buffer).getUint16(4, true), 1);
});

/** The entries of the version 3 vector: those of version 2, with a file capability on
 * `bin/sh` (which its hard links share) and a comment on `bin`, and a directory `dev` holding
 * a character device, a block device and a FIFO. */
const CAPABILITY = new Uint8Array([1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
const TABLE_META: FileEntry[] = (() => {
  const xsh = [{ name: "security.capability", value: CAPABILITY }];
  const t = TABLE_LINKS.map((e): FileEntry =>
    e.path === "bin"
      ? { ...e, xattrs: [{ name: "user.comment", value: new TextEncoder().encode("tools") }] }
      : e.path === "bin/sh" || e.hardLinkTo
      ? { ...e, xattrs: xsh }
      : e
  );
  const node = { ...TABLE_ENTRIES[0], mtimeMs: 1_700_000_000_000 };
  return [
    ...t,
    { ...node, path: "dev" },
    { ...node, path: "dev/null", type: "chardev", mode: 0o666, major: 1, minor: 3 },
    { ...node, path: "dev/sda", type: "blockdev", mode: 0o660, gid: 6, major: 8, minor: 0 },
    { ...node, path: "dev/initctl", type: "fifo", mode: 0o600 },
  ];
})();

Deno.test("golden vector: a version 3 file table (devices, FIFOs, xattrs) encodes and decodes byte for byte", async () => {
  const made = encodeFileTable(TABLE_META);
  if (Deno.env.get("HEXZ_WRITE_VECTORS")) await Deno.writeFile(`${VEC}filetable-v3.bin`, made);
  const committed = await Deno.readFile(`${VEC}filetable-v3.bin`);
  assertBytesEqual(made, committed, "filetable-v3.bin");
  assertEquals(decodeFileTable(committed, 1024), TABLE_META);
  assertEquals(new DataView(made.buffer).getUint16(4, true), 3);
  // Without devices, FIFOs and xattrs the same tree is a version 2 table again.
  const plain = encodeFileTable(
    TABLE_META.filter((e) => !e.path.startsWith("dev")).map(({ xattrs: _, ...e }) => e),
  );
  assertBytesEqual(plain, await Deno.readFile(`${VEC}filetable-v2.bin`), "v2 again");
});
