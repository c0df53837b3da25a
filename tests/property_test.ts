/**
 * Property tests with a seeded PRNG (HEXZ_TEST_SEED=N to replay or vary; every message names
 * the seed and the case). Random inputs and options go through pack, random-offset reads,
 * extract and check; random edit chains through thin packs; and diff's figures are compared
 * with what the inputs' chunks say, computed here without our code (fixed slices, or FastCDC as
 * docs/CHUNKING.md defines it in tests/_fastcdc_spec.ts); random overlay writes against a plain
 * buffer, through reopens and both kinds of commit; random HTTP ranges and `hexz cat` ranges.
 */
import {
  type CdcParams,
  check,
  commitOverlay,
  diff,
  extract,
  inspect,
  open,
  openOverlay,
  pack,
  serveHttp,
} from "../mod.ts";
import { assert, assertEquals } from "./_assert.ts";
import { assertBytesEqual } from "./_archive.ts";
import { hexz } from "./_cli.ts";
import { specCuts } from "./_fastcdc_spec.ts";
import { mixedBytes, Prng } from "./_prng.ts";
import { tempDir } from "./_tools.ts";

const SEED = Number(Deno.env.get("HEXZ_TEST_SEED") ?? 20261207);

type Chunking = { kind: "fixed"; size: number } | { kind: "cdc"; params: CdcParams };

function randomChunking(rng: Prng): Chunking {
  if (rng.int(3) > 0) {
    return { kind: "fixed", size: rng.pick([1024, 4096, 65536, 1024 * (1 + rng.int(100))]) };
  }
  const bits = rng.range(7, 14);
  const avg = 2 ** bits;
  const min = rng.range(64, avg - 1);
  return { kind: "cdc", params: { min, avg, max: rng.range(avg + 1, avg * 4) } };
}

function packChunking(c: Chunking) {
  return c.kind === "fixed" ? { blockSize: c.size } : { cdc: c.params };
}

/** Chunks of a stream, as the format defines them. */
function chunks(data: Uint8Array, c: Chunking): Uint8Array[] {
  const ends = c.kind === "cdc"
    ? specCuts(data, c.params)
    : Array.from({ length: Math.ceil(data.length / c.size) }, (_, i) =>
      Math.min(data.length, (i + 1) * c.size));
  return ends.map((end, i) => data.subarray(i ? ends[i - 1] : 0, end));
}

const key = (b: Uint8Array) =>
  String.fromCharCode(...b.subarray(0, 64)) + `|${b.length}|` + hashish(b);
function hashish(b: Uint8Array): string {
  // Exact content key: FNV-1a over all bytes, two seeds (collisions would need crafted input).
  let x = 0x811c9dc5, y = 0x01000193;
  for (let i = 0; i < b.length; i++) {
    x = Math.imul(x ^ b[i], 0x01000193);
    y = Math.imul(y ^ b[i], 0x811c9dc5) ^ (y >>> 13);
  }
  return `${x >>> 0}.${y >>> 0}`;
}
const isZero = (b: Uint8Array) => b.every((x) => x === 0);

/** Mixed content, with some block-aligned repeats of earlier parts so that dedup happens. */
function randomStream(rng: Prng, max: number, align: number): Uint8Array {
  const n = rng.bool() ? rng.int(max) : rng.int(8) * align; // sometimes a multiple of a block
  const d = mixedBytes(rng, n);
  for (let k = rng.int(4); k > 0 && n >= 4 * align; k--) {
    const blocks = Math.floor(n / align);
    const from = rng.int(blocks - 1) * align, to = rng.int(blocks - 1) * align;
    d.copyWithin(to, from, from + align);
  }
  return d;
}

Deno.test(`property: random archives read back at random offsets, extract and check (seed ${SEED})`, async () => {
  const rng = new Prng(SEED);
  const [dir, done] = await tempDir();
  try {
    const seenKinds = { zero: 0, dedup: 0, cdc: 0, memory: 0 };
    for (let c = 0; c < 14; c++) {
      const what = `seed ${SEED} case ${c}`;
      const chunking = randomChunking(rng);
      const align = chunking.kind === "fixed" ? chunking.size : 4096;
      const disk = randomStream(rng, 1_500_000, align);
      const memory = rng.int(3) === 0 ? randomStream(rng, 300_000, align) : null;
      const compression = rng.pick(["none", "lz4", "zstd"] as const);
      await Deno.writeFile(`${dir}/d`, disk);
      if (memory) await Deno.writeFile(`${dir}/m`, memory);
      const opts = {
        disk: `${dir}/d`,
        memory: memory ? `${dir}/m` : undefined,
        compression,
        ...packChunking(chunking),
        uuid: rng.bytes(16),
        createdAtMs: 1_800_000_000_000,
        force: true,
      };
      await pack({ ...opts, output: `${dir}/a.hxz`, workers: 1 });
      // The same archive, byte for byte, whatever the number of workers (README).
      if (c % 4 === 0) {
        await pack({ ...opts, output: `${dir}/b.hxz`, workers: 2 });
        assertBytesEqual(
          await Deno.readFile(`${dir}/b.hxz`),
          await Deno.readFile(`${dir}/a.hxz`),
          `${what}: workers`,
        );
      }
      const a = await open(`${dir}/a.hxz`);
      try {
        const streams = memory ? [disk, memory] : [disk];
        for (const [s, data] of streams.entries()) {
          assertEquals(a.size(s), data.length, `${what}: size`);
          for (let i = 0; i < 25; i++) {
            const off = rng.int(data.length + 1);
            const len = rng.int(3) === 0
              ? data.length - off
              : rng.int(Math.min(data.length - off, 200_000) + 1);
            assertBytesEqual(
              await a.read(s, off, len),
              data.subarray(off, off + len),
              `${what}: read ${s} ${off}+${len}`,
            );
          }
        }
        // Block kinds, counted from the chunks themselves: zero, dedup of an earlier copy in
        // this archive (either stream), data.
        const seen = new Set<string>();
        for (const [s, data] of streams.entries()) {
          let zero = 0, dedup = 0, fresh = 0;
          const cs = chunks(data, chunking);
          for (const ch of cs) {
            if (isZero(ch)) zero++;
            else if (seen.has(key(ch))) dedup++;
            else (seen.add(key(ch)), fresh++);
          }
          const r = inspect(a).streams[s];
          seenKinds.zero += zero;
          seenKinds.dedup += dedup;
          assertEquals([r.blocks, r.zeroBlocks, r.dedupBlocks, r.dataBlocks], [
            cs.length,
            zero,
            dedup,
            fresh,
          ], `${what}: stream ${s} kinds`);
        }
        const report = await check(a);
        assertEquals(report.bytes, disk.length + (memory?.length ?? 0), `${what}: check`);
        await extract(a, `${dir}/out`, { force: true });
        assertBytesEqual(await Deno.readFile(`${dir}/out`), disk, `${what}: extract`);
      } finally {
        a.close();
      }
      if (chunking.kind === "cdc") seenKinds.cdc++;
      if (memory) seenKinds.memory++;
    }
    // The cases covered what they are for (else change the seed's case mix).
    assert(Object.values(seenKinds).every((n) => n > 0), JSON.stringify(seenKinds));
  } finally {
    await done();
  }
});

/** A copy of `d` with random overwrites, zeroed ranges, insertions and deletions. */
function edit(rng: Prng, d: Uint8Array, shifts: boolean): Uint8Array {
  let out = d.slice();
  for (let k = rng.range(1, 6); k > 0; k--) {
    const at = rng.int(out.length + 1);
    const len = rng.int(30_000);
    const op = rng.int(shifts ? 4 : 2);
    if (op === 0) out.set(rng.bytes(Math.min(len, out.length - at)), at);
    else if (op === 1) out.fill(0, at, at + len);
    else if (op === 2) {
      const n = new Uint8Array(out.length + len);
      n.set(out.subarray(0, at));
      n.set(rng.bytes(len), at);
      n.set(out.subarray(at), at + len);
      out = n;
    } else {out = new Uint8Array([
        ...out.subarray(0, at),
        ...out.subarray(Math.min(out.length, at + len)),
      ]);}
  }
  return out;
}

Deno.test(`property: random edit chains pack thin, read back, and diff as their chunks say (seed ${SEED})`, async () => {
  const rng = new Prng(SEED + 1);
  const [dir, done] = await tempDir();
  try {
    let parentBlocks = 0;
    for (let c = 0; c < 5; c++) {
      const what = `seed ${SEED} chain ${c}`;
      const chunking = rng.bool()
        ? { kind: "fixed" as const, size: rng.pick([1024, 4096, 16384]) }
        : { kind: "cdc" as const, params: { min: 2048, avg: 8192, max: 32768 } };
      const versions = [mixedBytes(rng, rng.range(200_000, 1_200_000))];
      for (let v = 1; v < 3; v++) {
        versions.push(edit(rng, versions[v - 1], chunking.kind === "cdc"));
      }
      const compression = rng.pick(["none", "lz4", "zstd"] as const);
      const paths = versions.map((_, v) => `${dir}/c${c}v${v}.hxz`);
      for (const [v, data] of versions.entries()) {
        await Deno.writeFile(`${dir}/in`, data);
        const base = v ? await open(paths[v - 1]) : undefined;
        try {
          await pack({
            output: paths[v],
            disk: `${dir}/in`,
            compression,
            ...packChunking(chunking),
            base,
          });
        } finally {
          base?.close();
        }
        const a = await open(paths[v]);
        try {
          assertBytesEqual(await a.read("disk", 0, data.length), data, `${what} v${v}`);
          // Data blocks: the distinct non-zero contents that neither an archive up the chain
          // (the parent's stream, or an older ancestor's, FORMAT.md feature bit 5) nor an
          // earlier block of this archive holds; the rest of the non-zero blocks are parent or
          // dedup.
          const chain = new Set(versions.slice(0, v).flatMap((d) => chunks(d, chunking).map(key)));
          const cs = chunks(data, chunking);
          const own = new Set<string>();
          let zero = 0, fresh = 0;
          for (const ch of cs) {
            if (isZero(ch)) zero++;
            else if (!chain.has(key(ch)) && !own.has(key(ch))) (own.add(key(ch)), fresh++);
          }
          const r = inspect(a).streams[0];
          assertEquals(
            [r.blocks, r.zeroBlocks, r.dataBlocks],
            [cs.length, zero, fresh],
            `${what} v${v}: kinds`,
          );
          if (v === 0) assertEquals(r.parentBlocks, 0);
          parentBlocks += r.parentBlocks;
          // diff against the previous version, from the chunks.
          if (v > 0) {
            const prev = await open(paths[v - 1]);
            try {
              const d = await diff(prev, a);
              const before = chunks(versions[v - 1], chunking).filter((x) => !isZero(x));
              const after = cs.filter((x) => !isZero(x));
              const inBefore = new Map(before.map((x) => [key(x), x.length]));
              const distinctAfter = new Map(after.map((x) => [key(x), x.length]));
              const shared = [...distinctAfter].filter(([k]) => inBefore.has(k));
              assertEquals(d.sharedBlocks, shared.length, `${what}: shared blocks`);
              assertEquals(
                d.sharedBytes,
                shared.reduce((n, [, l]) => n + l, 0),
                `${what}: shared bytes`,
              );
              assertEquals([d.a.blocks, d.b.blocks], [
                chunks(versions[v - 1], chunking).length,
                cs.length,
              ]);
              const nonZeroBytes = after.reduce((n, x) => n + x.length, 0);
              const changed = after.filter((x) => !inBefore.has(key(x))).reduce(
                (n, x) => n + x.length,
                0,
              );
              assertEquals(d.b.bytes, nonZeroBytes, `${what}: b bytes`);
              assertEquals(
                d.changedFraction,
                nonZeroBytes ? changed / nonZeroBytes : null,
                `${what}: changed`,
              );
              assertEquals(d.sameChunking, true);
            } finally {
              prev.close();
            }
          }
        } finally {
          a.close();
        }
      }
      // The newest version through the CLI, which finds the parents by their recorded paths.
      const r = await hexz(["extract", paths[2], `${dir}/c${c}.out`, "-q"]);
      assertEquals(r.code, 0, `${what}: ${r.err}`);
      assertBytesEqual(
        await Deno.readFile(`${dir}/c${c}.out`),
        versions[2],
        `${what}: CLI extract`,
      );
    }
    assert(parentBlocks > 0, `seed ${SEED}: no chain took a block from its parent`);
  } finally {
    await done();
  }
});

Deno.test(`property: random overlay writes, zeroes and reopens read as a plain buffer does, and commit (seed ${SEED})`, async () => {
  const rng = new Prng(SEED + 2);
  const [dir, done, keep] = await tempDir();
  try {
    for (let c = 0; c < 3; c++) {
      const what = `seed ${SEED} overlay case ${c}`;
      const streams = [
        mixedBytes(rng, rng.range(1, 600_000)),
        mixedBytes(rng, rng.range(1, 100_000)),
      ];
      await Deno.writeFile(`${dir}/d`, streams[0]);
      await Deno.writeFile(`${dir}/m`, streams[1]);
      const chunking = randomChunking(rng);
      await pack({
        output: `${dir}/b${c}.hxz`,
        disk: `${dir}/d`,
        memory: `${dir}/m`,
        ...packChunking(chunking),
        compression: rng.pick(["lz4", "zstd"] as const),
      });
      const base = keep(await open(`${dir}/b${c}.hxz`));
      const model = streams.map((s) => s.slice());
      const path = `${dir}/o${c}.hxo`;
      let ov = keep(await openOverlay(path, base, { create: true }));
      for (let op = 0; op < 60; op++) {
        const s = rng.int(2);
        const size = model[s].length;
        const at = rng.int(size);
        const len = Math.min(size - at, rng.bool() ? rng.range(1, 300) : rng.range(1, 70_000));
        const kind = rng.int(10);
        if (kind < 5) {
          const data = rng.bool() ? rng.bytes(len) : new Uint8Array(len);
          await ov.write(s, at, data);
          model[s].set(data, at);
        } else if (kind < 8) {
          await ov.writeZeroes(s, at, len);
          model[s].fill(0, at, at + len);
        } else if (kind === 8) {
          await ov.flush();
        } else {
          await ov.flush();
          ov.close();
          ov = keep(await openOverlay(path, base));
        }
        const off = rng.int(size), n = rng.int(size - off + 1);
        assertBytesEqual(
          await ov.read(s, off, n),
          model[s].subarray(off, off + n),
          `${what} op ${op}: read`,
        );
      }
      await ov.flush();
      for (const s of [0, 1]) {
        assertBytesEqual(await ov.read(s, 0, model[s].length), model[s], `${what}: stream ${s}`);
      }
      for (const mode of ["thin", "flatten"] as const) {
        const out = `${dir}/c${c}-${mode}.hxz`;
        await commitOverlay(base, ov, { output: out, mode });
        const a = keep(await open(out));
        for (const s of [0, 1]) {
          assertBytesEqual(await a.read(s, 0, a.size(s)), model[s], `${what}: ${mode} commit ${s}`);
        }
        await check(a);
        a.close();
      }
      ov.close();
      base.close();
    }
  } finally {
    await done();
  }
});

Deno.test(`property: random HTTP ranges of a served archive answer as RFC 9110 says (seed ${SEED})`, async () => {
  const rng = new Prng(SEED + 3);
  const [dir, done, keep] = await tempDir();
  try {
    for (let c = 0; c < 3; c++) {
      const what = `seed ${SEED} http case ${c}`;
      const disk = mixedBytes(rng, rng.range(1, 2_000_000));
      await Deno.writeFile(`${dir}/d`, disk);
      const chunking = randomChunking(rng);
      await pack({
        output: `${dir}/h${c}.hxz`,
        disk: `${dir}/d`,
        ...packChunking(chunking),
        compression: rng.pick(["lz4", "zstd"] as const),
      });
      const a = keep(await open(`${dir}/h${c}.hxz`));
      const server = await serveHttp(a, { port: 0 });
      try {
        const url = `http://127.0.0.1:${server.addr.port}/disk`;
        const size = disk.length;
        for (let i = 0; i < 30; i++) {
          const first = rng.int(size + 2);
          const form = rng.int(3);
          let range: string, want: [number, number] | null;
          if (form === 0) {
            const last = first + rng.int(rng.bool() ? 1000 : size);
            range = `bytes=${first}-${last}`;
            want = first < size ? [first, Math.min(last, size - 1)] : null;
          } else if (form === 1) {
            range = `bytes=${first}-`;
            want = first < size ? [first, size - 1] : null;
          } else {
            const n = 1 + rng.int(size + 10);
            range = `bytes=-${n}`;
            want = [Math.max(0, size - n), size - 1];
          }
          const r = await fetch(url, { headers: { range } });
          const body = new Uint8Array(await r.arrayBuffer());
          if (!want) {
            assertEquals(
              [r.status, r.headers.get("content-range")],
              [416, `bytes */${size}`],
              `${what}: ${range}`,
            );
            continue;
          }
          assertEquals(r.status, 206, `${what}: ${range}`);
          assertEquals(
            r.headers.get("content-range"),
            `bytes ${want[0]}-${want[1]}/${size}`,
            `${what}: ${range}`,
          );
          assertBytesEqual(body, disk.subarray(want[0], want[1] + 1), `${what}: ${range}`);
        }
      } finally {
        await server.shutdown();
        a.close();
      }
    }
  } finally {
    await done();
  }
});

Deno.test(`property: hexz cat prints the bytes at random offsets and lengths (seed ${SEED})`, async () => {
  const rng = new Prng(SEED + 4);
  const [dir, done] = await tempDir();
  try {
    const streams = [
      mixedBytes(rng, rng.range(100_000, 6_000_000)),
      rng.bytes(rng.range(1, 90_000)),
    ];
    await Deno.writeFile(`${dir}/d`, streams[0]);
    await Deno.writeFile(`${dir}/m`, streams[1]);
    await pack({
      output: `${dir}/c.hxz`,
      disk: `${dir}/d`,
      memory: `${dir}/m`,
      ...packChunking(randomChunking(rng)),
    });
    for (let i = 0; i < 6; i++) {
      const s = i % 3 === 2 ? 1 : 0;
      const size = streams[s].length;
      // Offsets in whole KiB are written as "NK", the others in bytes.
      const off = rng.bool() ? rng.int(Math.floor(size / 1024) + 1) * 1024 : rng.int(size + 1);
      const len = rng.int(3) === 0 ? undefined : rng.int(size - off + 1);
      const args = [
        "cat",
        `${dir}/c.hxz`,
        "--offset",
        off % 1024 === 0 && off ? `${off / 1024}K` : String(off),
      ];
      if (len !== undefined) args.push("--length", String(len));
      if (s === 1) args.push("--memory");
      const r = await hexz(args);
      const what = `seed ${SEED}: ${args.slice(2).join(" ")}`;
      assertEquals([r.code, r.err], [0, ""], what);
      assertBytesEqual(
        r.stdout,
        streams[s].subarray(off, len === undefined ? size : off + len),
        what,
      );
    }
    // One byte past the end: refused, nothing written.
    const r = await hexz([
      "cat",
      `${dir}/c.hxz`,
      "--offset",
      String(streams[0].length),
      "--length",
      "1",
    ]);
    assertEquals([r.code, r.stdout.length], [2, 0]);
    assertEquals(r.err.split("\n").length, 2, r.err); // one line
  } finally {
    await done();
  }
});
