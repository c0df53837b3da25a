/**
 * The golden vectors in tests/vectors/ read by a parser written here from docs/FORMAT.md alone
 * (BLAKE3 from hash-wasm, not ours), and tests/vectors/README.md's description of them checked
 * line by line against what that parser finds. (tests/format_test.ts regenerates each vector
 * with our writer and requires the committed bytes.)
 */
import { blake3 } from "hash-wasm";
import { assert, assertEquals } from "./_assert.ts";
import { backInput, goldenInput, thinInput, zeroRunInput } from "./_golden.ts";
import { lz4Tool } from "./_lz4frame.ts";
import { needs } from "./_tools.ts";

const VEC = new URL("./vectors/", import.meta.url).pathname;
const dec = new TextDecoder();

const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.length);
const u16 = (b: Uint8Array, o: number) => dv(b).getUint16(o, true);
const u32 = (b: Uint8Array, o: number) => dv(b).getUint32(o, true);
const u64 = (b: Uint8Array, o: number) => Number(dv(b).getBigUint64(o, true));
const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
const zero = (b: Uint8Array) => b.every((x) => x === 0);

async function b3(b: Uint8Array): Promise<string> {
  return await blake3(b);
}

/** The "Layout, as hexz reads it" block of tests/vectors/README.md. */
async function documentedLayout(): Promise<string> {
  const readme = await Deno.readTextFile(`${VEC}README.md`);
  const m = readme.match(/Layout, as `hexz` reads it:\n\n```\n([\s\S]*?)```/);
  assert(m, "README.md has the layout block");
  return m[1];
}

Deno.test("golden vector v1-small.hxz: every field as FORMAT.md defines it, and as README.md lists it", async () => {
  const f = await Deno.readFile(`${VEC}v1-small.hxz`);
  const h = f.subarray(0, 4096);
  const lines: string[] = ["header[0..96):"];
  for (let o = 0; o < 96; o += 16) {
    lines.push(
      `${String(o).padStart(6)}: ${
        [...h.subarray(o, o + 16)].map((x) => x.toString(16).padStart(2, "0")).join(" ")
      }`,
    );
  }
  // Header.
  assertEquals(dec.decode(h.subarray(0, 4)), "HEXZ");
  assertEquals([u16(h, 4), u16(h, 6), u32(h, 8), u32(h, 12)], [1, 0, 4096, 0]);
  assert(zero(h.subarray(16, 24)));
  assertEquals(hex(h.subarray(24, 40)), "6f1e3a520b7c4d219a10554433221100");
  assertEquals(new Date(u64(h, 40)).toISOString(), "2026-11-22T12:00:00.000Z");
  const archiveEnd = u64(h, 48);
  assertEquals(archiveEnd, f.length, "no trailers");
  assertEquals([h[56], h[57], h[58], u32(h, 60)], [0, 0, 0, 1024], "fixed 1 KiB, codec none");
  const masterAt = u64(h, 80), masterLen = u64(h, 88);
  const master = f.subarray(masterAt, masterAt + masterLen);
  assertEquals(hex(h.subarray(96, 128)), await b3(master.subarray(0, master.length - 32)));
  assertEquals(hex(h.subarray(96, 128)), hex(master.subarray(master.length - 32)));
  lines.push(`master: offset ${masterAt}, length ${masterLen}`);
  assert(zero(h.subarray(256, 304)), "no dictionary");
  assert(zero(h.subarray(352, 448)), "no file table, reserved section");
  assert(zero(h.subarray(448, 1264)), "no parent, no encryption");
  assertEquals(dec.decode(h.subarray(1264, 1296)).replace(/\0+$/, ""), "hexz golden");
  assertEquals(dec.decode(h.subarray(1298, 1298 + u16(h, 1296))), "golden vector v1");
  assert(zero(h.subarray(2322, 4064)), "reserved 2322..4064");
  assertEquals(hex(h.subarray(4064)), await b3(h.subarray(0, 4064)), "header checksum");
  const readme = await Deno.readTextFile(`${VEC}README.md`);
  assertEquals(readme.match(/root hash: `([0-9a-f]{64})`/)![1], hex(h.subarray(4064)));

  // Master index and pages.
  assertEquals(dec.decode(master.subarray(0, 4)), "HXMI");
  assertEquals(u16(master, 4), 1);
  const n = u32(master, 8);
  assertEquals(master.length, 16 + 72 * n + 32);
  const input = goldenInput();
  const streams = [input.disk, input.memory];
  const blockLines: string[] = [];
  const counts = [[0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]; // blocks, stored, zero, dedup, parent
  for (let i = 0; i < n; i++) {
    const r = master.subarray(16 + 72 * i, 16 + 72 * (i + 1));
    const [stream, count, firstBlock, firstOffset] = [r[0], u32(r, 4), u64(r, 8), u64(r, 16)];
    const pageAt = u64(r, 24), pageLen = u32(r, 32);
    assertEquals(pageLen, 32 + 56 * count + 32);
    const page = f.subarray(pageAt, pageAt + pageLen);
    assertEquals(hex(r.subarray(40, 72)), await b3(page.subarray(0, pageLen - 32)), "page hash");
    assertEquals(hex(r.subarray(40, 72)), hex(page.subarray(pageLen - 32)));
    assertEquals(dec.decode(page.subarray(0, 4)), "HXPG");
    assertEquals([u16(page, 4), page[6], u32(page, 8), u64(page, 16), u64(page, 24)], [
      1,
      stream,
      count,
      firstBlock,
      firstOffset,
    ]);
    lines.push(`page: stream ${stream}, ${count} entries, offset ${pageAt}, length ${pageLen}`);
    let offset = firstOffset;
    for (let e = 0; e < count; e++) {
      const b = page.subarray(32 + 56 * e, 32 + 56 * (e + 1));
      const [location, stored, logical, kind, codec, flags] = [
        u64(b, 0),
        u32(b, 8),
        u32(b, 12),
        b[16],
        b[17],
        b[18],
      ];
      assertEquals([flags, b[19], u32(b, 20)], [0, 0, 0], "flags, parent stream, reserved");
      const want = streams[stream].subarray(offset, offset + logical);
      assertEquals(hex(b.subarray(24, 56)), await b3(want), "block hash of the logical bytes");
      if (kind === 1) {
        assert(zero(want) && location === 0 && stored === 0, "zero block");
      } else {
        assert(kind === 0 || kind === 2, `kind ${kind}`);
        assertEquals(stored, logical, "codec none stores the bytes as they are");
        assertEquals(f.subarray(location, location + stored), want, "payload");
      }
      counts[stream][0]++;
      if (kind === 0) counts[stream][1] += stored;
      if (kind === 1) counts[stream][2]++;
      if (kind === 2) counts[stream][3]++;
      blockLines.push(
        `${["disk", "memory"][stream]} block ${
          firstBlock + e
        }: offset ${offset}, kind ${kind}, codec ${codec}, location ${location}, stored ${stored}, logical ${logical}`,
      );
      offset += logical;
    }
  }
  // Stream descriptors against what the pages hold.
  for (const s of [0, 1]) {
    const d = h.subarray(128 + 64 * s, 192 + 64 * s);
    assertEquals(
      [u64(d, 0), u64(d, 8), u64(d, 16), u64(d, 24), u64(d, 32), u64(d, 40), u64(d, 56)],
      [streams[s].length, ...counts[s], 0],
      `descriptor of stream ${s}`,
    );
  }
  assertEquals([u32(h, 176), u32(h, 180), u32(h, 240), u32(h, 244)], [0, 1, 1, 1], "page runs");
  // The metadata section.
  const metaAt = u64(h, 304), metaLen = u64(h, 312);
  const meta = f.subarray(metaAt, metaAt + metaLen);
  assertEquals(hex(h.subarray(320, 352)), await b3(meta));
  assertEquals(JSON.parse(dec.decode(meta)), { purpose: "docs/FORMAT.md golden vector" });
  lines.push(...blockLines, `metadata: offset ${metaAt}, length ${metaLen}`);
  lines.push(`archive end: ${archiveEnd}`);
  assertEquals(lines.join("\n") + "\n", await documentedLayout());
});

Deno.test(needs(["lz4"], {
  name:
    "golden vector v1-zero-run.hxz: its compressed page as FORMAT.md defines it, decoded by lz4",
  async fn() {
    const f = await Deno.readFile(`${VEC}v1-zero-run.hxz`);
    const h = f.subarray(0, 4096);
    assertEquals(f.length, 5543);
    assertEquals(u32(h, 12), 1 << 4, "required features: compressedIndex only");
    assertEquals(hex(h.subarray(4064)), await b3(h.subarray(0, 4064)), "header checksum");
    const readme = await Deno.readTextFile(`${VEC}README.md`);
    assertEquals(
      readme.match(/v1-zero-run\.hxz[\s\S]*?root hash: `([0-9a-f]{64})`/)![1],
      hex(h.subarray(4064)),
    );
    const masterAt = u64(h, 80), masterLen = u64(h, 88);
    assertEquals([masterAt, masterLen], [5423, 120]);
    const master = f.subarray(masterAt, masterAt + masterLen);
    assertEquals(hex(h.subarray(96, 128)), await b3(master.subarray(0, masterLen - 32)));
    assertEquals(u32(master, 8), 1, "one page");
    const r = master.subarray(16, 88);
    assertEquals([r[0], r[1], u32(r, 4), u64(r, 8), u64(r, 16)], [0, 1, 300, 0, 0]);
    const pageAt = u64(r, 24), pageLen = u32(r, 32);
    assertEquals([pageAt, pageLen], [5185, 238]);
    const page = f.subarray(pageAt, pageAt + pageLen);
    assertEquals(hex(r.subarray(40, 72)), await b3(page.subarray(0, pageLen - 32)), "page hash");
    assertEquals(hex(page.subarray(pageLen - 32)), hex(r.subarray(40, 72)));
    assertEquals(dec.decode(page.subarray(0, 4)), "HXPG");
    assertEquals([u16(page, 4), page[6], u32(page, 8), u64(page, 16), u64(page, 24)], [
      1,
      0,
      300,
      0,
      0,
    ]);
    // The entries: an LZ4 block, decoded by the lz4 tool.
    const entries = await lz4Entries(page, 300);
    const disk = zeroRunInput();
    const zeroHash = await b3(new Uint8Array(1024));
    for (let e = 0; e < 300; e++) {
      const b = entries.subarray(56 * e, 56 * (e + 1));
      const [location, stored, logical, kind, codec] = [
        u64(b, 0),
        u32(b, 8),
        u32(b, 12),
        b[16],
        b[17],
      ];
      assertEquals([b[18], b[19], u32(b, 20), logical, codec], [0, 0, 0, 1024, 0], `entry ${e}`);
      if (e === 0) {
        assertEquals([kind, location, stored], [0, 4096, 1024]);
        assertEquals(f.subarray(4096, 5120), disk.subarray(0, 1024), "payload");
        assertEquals(hex(b.subarray(24)), await b3(disk.subarray(0, 1024)));
      } else {
        assertEquals([kind, location, stored], [1, 0, 0], `entry ${e} is zero`);
        assertEquals(hex(b.subarray(24)), zeroHash);
      }
    }
    // The disk descriptor: 300 blocks, 1,024 stored bytes, 299 zero, one page.
    const d = h.subarray(128, 192);
    assertEquals(
      [
        u64(d, 0),
        u64(d, 8),
        u64(d, 16),
        u64(d, 24),
        u64(d, 32),
        u64(d, 40),
        u32(d, 48),
        u32(d, 52),
      ],
      [300 * 1024, 300, 1024, 299, 0, 0, 0, 1],
    );
  },
}));

/** The entries of an LZ4-compressed page, decoded by the `lz4` tool (not our decoder). */
async function lz4Entries(page: Uint8Array, count: number): Promise<Uint8Array> {
  const entries = await lz4Tool(page.subarray(32, page.length - 32));
  assertEquals(entries.length, 56 * count);
  return entries;
}

/** Master record i of archive f: its page, verified against the record's hash. */
async function pageOf(f: Uint8Array, i: number) {
  const masterAt = u64(f, 80);
  const r = f.subarray(masterAt + 16 + 72 * i, masterAt + 16 + 72 * (i + 1));
  const page = f.subarray(u64(r, 24), u64(r, 24) + u32(r, 32));
  assertEquals(hex(r.subarray(40, 72)), await b3(page.subarray(0, page.length - 32)), "page hash");
  assertEquals(dec.decode(page.subarray(0, 4)), "HXPG");
  return { r, page, at: u64(r, 24), stream: r[0], codec: r[1], count: u32(r, 4) };
}

Deno.test(needs(["lz4"], {
  name:
    "golden vector v1-thin.hxz: a child of v1-small whose parent entries inherit their hashes, as FORMAT.md defines it",
  async fn() {
    const f = await Deno.readFile(`${VEC}v1-thin.hxz`);
    const parent = await Deno.readFile(`${VEC}v1-small.hxz`);
    const h = f.subarray(0, 4096);
    assertEquals(f.length, 5643);
    assertEquals(u32(h, 12), (1 << 1) | (1 << 4) | (1 << 6), "thin, compressedIndex, inherited");
    assertEquals(hex(h.subarray(4064)), await b3(h.subarray(0, 4064)), "header checksum");
    const readme = await Deno.readTextFile(`${VEC}README.md`);
    assertEquals(
      readme.match(/v1-thin\.hxz[\s\S]*?root hash: `([0-9a-f]{64})`/)![1],
      hex(h.subarray(4064)),
    );
    // The parent: v1-small's UUID and root hash, and its name as the path.
    assertEquals(hex(h.subarray(448, 464)), hex(parent.subarray(24, 40)), "parent UUID");
    assertEquals(hex(h.subarray(464, 496)), hex(parent.subarray(4064, 4096)), "parent root");
    assertEquals(dec.decode(h.subarray(498, 498 + u16(h, 496))), "v1-small.hxz");
    const masterAt = u64(h, 80), masterLen = u64(h, 88);
    assertEquals([masterAt, masterLen], [5451, 192]);
    const master = f.subarray(masterAt, masterAt + masterLen);
    assertEquals(hex(h.subarray(96, 128)), await b3(master.subarray(0, masterLen - 32)));
    assertEquals(u32(master, 8), 2, "two pages");
    // The parent's entries, which the child's inherit their hashes from (its pages are plain).
    const parentEntry = async (stream: number, index: number) => {
      const p = await pageOf(parent, stream);
      assertEquals(p.codec, 0);
      return p.page.subarray(32 + 56 * index, 32 + 56 * (index + 1));
    };
    const { disk, memory } = thinInput();
    const small = goldenInput();
    const disks = await pageOf(f, 0);
    assertEquals([disks.stream, disks.codec, disks.count, disks.at, disks.page.length], [
      0,
      1,
      101,
      5196,
      166,
    ]);
    const entries = await lz4Entries(disks.page, 101);
    for (let e = 0; e < 101; e++) {
      const b = entries.subarray(56 * e, 56 * (e + 1));
      const block = disk.subarray(1024 * e, 1024 * (e + 1));
      if (e < 100) {
        // kind 3 (parent), codec 0, flags 2 (inherited), parent stream 0, ancestor 0, no hash.
        const from = e % 2 ? 3 : 0;
        assertEquals(
          [u64(b, 0), u32(b, 8), u32(b, 12), b[16], b[17], b[18], b[19], u32(b, 20)],
          [from, 0, 1024, 3, 0, 2, 0, 0],
          `entry ${e}`,
        );
        assert(zero(b.subarray(24)), `entry ${e}: hash field all zero`);
        // The inherited hash: the parent entry's, which is the block's BLAKE3.
        const pe = await parentEntry(0, from);
        assertEquals(u32(pe, 12), 1024);
        assertEquals(hex(pe.subarray(24)), await b3(block), `entry ${e}: inherited hash`);
        assertEquals(block, small.disk.subarray(1024 * from, 1024 * (from + 1)));
      } else {
        assertEquals(
          [u64(b, 0), u32(b, 8), u32(b, 12), b[16], b[17], b[18], b[19], u32(b, 20)],
          [4096, 1024, 1024, 0, 0, 0, 0, 0],
          "the new block",
        );
        assertEquals(f.subarray(4096, 5120), block, "payload");
        assertEquals(hex(b.subarray(24)), await b3(block));
      }
    }
    const mem = await pageOf(f, 1);
    assertEquals([mem.stream, mem.codec, mem.count, mem.at, mem.page.length], [1, 1, 1, 5362, 89]);
    const m = await lz4Entries(mem.page, 1);
    assertEquals(
      [u64(m, 0), u32(m, 8), u32(m, 12), m[16], m[17], m[18], m[19], u32(m, 20)],
      [0, 0, 105, 3, 0, 2, 1, 0],
      "memory entry",
    );
    assert(zero(m.subarray(24)));
    assertEquals(hex((await parentEntry(1, 0)).subarray(24)), await b3(memory));
    // The metadata, and the disk descriptor: 101 blocks, 1,024 stored bytes, 100 in the parent.
    const metaAt = u64(h, 304), metaLen = u64(h, 312);
    assertEquals([metaAt, metaLen], [5120, 76]);
    const d = h.subarray(128, 192);
    assertEquals([u64(d, 0), u64(d, 8), u64(d, 16), u64(d, 24), u64(d, 32)], [
      101 * 1024,
      101,
      1024,
      0,
      0,
    ]);
  },
}));

Deno.test(needs(["lz4"], {
  name:
    "golden vector v1-back.hxz: a grandchild whose short block names v1-small (ancestor 1), as FORMAT.md defines it",
  async fn() {
    const f = await Deno.readFile(`${VEC}v1-back.hxz`);
    const thin = await Deno.readFile(`${VEC}v1-thin.hxz`);
    const small = await Deno.readFile(`${VEC}v1-small.hxz`);
    const h = f.subarray(0, 4096);
    assertEquals(f.length, 4614);
    assertEquals(u32(h, 12), (1 << 1) | (1 << 4) | (1 << 5) | (1 << 6), "features 1, 4, 5, 6");
    assertEquals(hex(h.subarray(4064)), await b3(h.subarray(0, 4064)), "header checksum");
    const readme = await Deno.readTextFile(`${VEC}README.md`);
    assertEquals(
      readme.match(/v1-back\.hxz[\s\S]*?root hash: `([0-9a-f]{64})`/)![1],
      hex(h.subarray(4064)),
    );
    assertEquals(hex(h.subarray(448, 464)), hex(thin.subarray(24, 40)), "parent UUID");
    assertEquals(hex(h.subarray(464, 496)), hex(thin.subarray(4064, 4096)), "parent root");
    assertEquals(dec.decode(h.subarray(498, 498 + u16(h, 496))), "v1-thin.hxz");
    // v1-thin names v1-small as its parent: the chain is back -> thin -> small.
    assertEquals(hex(thin.subarray(448, 464)), hex(small.subarray(24, 40)));
    const masterAt = u64(h, 80), masterLen = u64(h, 88);
    assertEquals([masterAt, masterLen], [4422, 192]);
    assertEquals(
      hex(h.subarray(96, 128)),
      await b3(f.subarray(masterAt, masterAt + masterLen - 32)),
    );
    /** Entry `index` of `stream` in archive `a`, its page decoded (by lz4 where compressed). */
    const entryOf = async (a: Uint8Array, stream: number, index: number) => {
      const master = a.subarray(u64(a, 80), u64(a, 80) + u64(a, 88));
      for (let i = 0; i < u32(master, 8); i++) {
        const p = await pageOf(a, i);
        const first = u64(p.r, 8);
        if (p.stream !== stream || index < first || index >= first + p.count) continue;
        const entries = p.codec ? await lz4Entries(p.page, p.count) : p.page.subarray(32);
        return entries.subarray(56 * (index - first), 56 * (index - first + 1));
      }
      throw new Error(`no entry ${index} of stream ${stream}`);
    };
    /** The BLAKE3 a parent entry stands for: followed up the chain to an entry with a hash. */
    const chain = [thin, small];
    const resolve = async (b: Uint8Array, up: number): Promise<string> => {
      if (b[16] !== 3) return hex(b.subarray(24, 56));
      assertEquals(b[18], 2, "a parent entry inherits its hash");
      assert(zero(b.subarray(24, 56)), "with its hash field zero");
      const holder = up + b[20];
      return await resolve(await entryOf(chain[holder], b[19], u64(b, 0)), holder + 1);
    };
    const { disk, memory } = backInput();
    const want: [number, number, number, number, number][] = [
      // kind, location, logical length, parent stream, ancestor
      [3, 0, 1024, 0, 0],
      [1, 0, 1024, 0, 0],
      [3, 0, 1024, 0, 0],
      [3, 1, 1024, 0, 0],
      [3, 4, 904, 0, 1],
    ];
    const disks = await pageOf(f, 0);
    assertEquals([disks.stream, disks.codec, disks.count, disks.at, disks.page.length], [
      0,
      1,
      5,
      4168,
      165,
    ]);
    const entries = await lz4Entries(disks.page, 5);
    let offset = 0;
    for (let e = 0; e < 5; e++) {
      const b = entries.subarray(56 * e, 56 * (e + 1));
      assertEquals([b[16], u64(b, 0), u32(b, 12), b[19], b[20]], want[e], `disk entry ${e}`);
      assertEquals([u32(b, 8), b[17], b[21], b[22], b[23]], [0, 0, 0, 0, 0], `disk entry ${e}`);
      const block = disk.subarray(offset, offset + u32(b, 12));
      assertEquals(await resolve(b, 0), await b3(block), `disk entry ${e}: the block's hash`);
      offset += u32(b, 12);
    }
    assertEquals(offset, disk.length);
    // Entry 4 is served by v1-small itself: its disk block 4 holds the 904 bytes.
    const e4 = await entryOf(small, 0, 4);
    assertEquals([e4[16], u32(e4, 8), u32(e4, 12)], [0, 904, 904]);
    assertEquals(small.subarray(u64(e4, 0), u64(e4, 0) + 904), disk.subarray(4096), "payload");
    const mem = await pageOf(f, 1);
    assertEquals([mem.stream, mem.codec, mem.count, mem.at, mem.page.length], [1, 1, 1, 4333, 89]);
    const m = await lz4Entries(mem.page, 1);
    assertEquals([m[16], u64(m, 0), u32(m, 12), m[19], m[20]], [3, 0, 105, 1, 0]);
    assertEquals(await resolve(m, 0), await b3(memory), "memory: the block's hash");
  },
}));

Deno.test("golden vectors filetable-v1/v2/v3.bin: sizes, versions, entries and checksums as documented", async () => {
  for (
    const [name, version, size, count, links] of [
      ["v1", 1, 273, 4, 0],
      ["v2", 2, 445, 7, 2],
      ["v3", 3, 748, 11, 2],
    ] as const
  ) {
    const t = await Deno.readFile(`${VEC}filetable-${name}.bin`);
    assertEquals(t.length, size, `README.md: filetable-${name}.bin is ${size} bytes`);
    assertEquals(dec.decode(t.subarray(0, 4)), "HXFT");
    assertEquals([u16(t, 4), u32(t, 8)], [version, count]);
    assertEquals(hex(t.subarray(t.length - 32)), await b3(t.subarray(0, t.length - 32)));
    const entries: {
      type: number;
      path: string;
      target: string;
      size: number;
      mode: number;
      dev?: string;
      xattrs: string[];
    }[] = [];
    let at = 16;
    for (let i = 0; i < count; i++) {
      const e = t.subarray(at);
      const pathLen = u16(e, 2), targetLen = u16(e, 40);
      // Version 3: byte 1 flags (bit 0: a device number follows), 42..44 the xattr count.
      const flags = e[1], xattrCount = version >= 3 ? u16(e, 42) : 0;
      assert(zero(e.subarray(version >= 3 ? 44 : 42, 48)), "reserved");
      if (version < 3) assertEquals(flags, 0, "reserved byte 1");
      let x = 48 + pathLen + targetLen;
      let dev: string | undefined;
      if (flags & 1) {
        dev = `${u32(e, x)},${u32(e, x + 4)}`;
        x += 8;
      }
      const xattrs: string[] = [];
      for (let k = 0; k < xattrCount; k++) {
        const nameLen = e[x], valueLen = u32(e, x + 1);
        xattrs.push(`${dec.decode(e.subarray(x + 5, x + 5 + nameLen))}:${valueLen}`);
        x += 5 + nameLen + valueLen;
      }
      entries.push({
        type: e[0],
        mode: u32(e, 4),
        size: u64(e, 16),
        path: dec.decode(e.subarray(48, 48 + pathLen)),
        target: dec.decode(e.subarray(48 + pathLen, 48 + pathLen + targetLen)),
        dev,
        xattrs,
      });
      at += x;
    }
    assertEquals(at, t.length - 32, "entries end at the checksum");
    const summary = entries.map((e) => `${e.type} ${e.path}${e.target ? ` -> ${e.target}` : ""}`);
    // README.md: a directory bin, a setuid bin/sh of 1,000 bytes, a symlink bin/sh.old -> sh,
    // données.txt of 24 bytes; v2 adds bin/sh2 and usr/sh, hard links to bin/sh, in usr (0700).
    for (const s of ["2 bin", "1 bin/sh", "3 bin/sh.old -> sh", "1 données.txt"]) {
      assert(summary.includes(s), `${name}: ${s} in ${summary}`);
    }
    const sh = entries.find((e) => e.path === "bin/sh")!;
    assertEquals([sh.size, sh.mode & 0o4000], [1000, 0o4000]);
    assertEquals(entries.find((e) => e.path === "données.txt")!.size, 24);
    const hard = entries.filter((e) => e.type === 4);
    assertEquals(
      hard.map((e) => [e.path, e.target, e.mode, e.size]).sort(),
      links ? [["bin/sh2", "bin/sh", 0, 0], ["usr/sh", "bin/sh", 0, 0]] : [],
    );
    if (links) assertEquals(entries.find((e) => e.path === "usr")!.mode & 0o7777, 0o700);
    // README.md: v3 adds a capability (20 bytes) on bin/sh, not on its links, a comment on bin,
    // and dev/ with a character device 1,3, a block device 8,0 and a FIFO.
    const special = entries.filter((e) => e.dev !== undefined || e.xattrs.length || e.type > 4)
      .map((e) => `${e.type} ${e.path} ${e.dev ?? "-"} ${e.xattrs.join(" ")}`.trim());
    assertEquals(
      special,
      version < 3 ? [] : [
        "2 bin - user.comment:5",
        "1 bin/sh - security.capability:20",
        "5 dev/null 1,3",
        "6 dev/sda 8,0",
        "7 dev/initctl -",
      ],
    );
  }
});
