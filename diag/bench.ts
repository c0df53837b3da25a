/**
 * `hexz bench`: how fast hexz is on this machine, on the user's own data or a built-in sample.
 * Each kernel (BLAKE3, FastCDC, LZ4, zstd) is timed on one thread over the same bytes, best of
 * several runs after a warm-up (V8 tiers WebAssembly up in the background, so first runs are
 * slower); then the sample is packed and extracted end to end through the library, as the
 * commands do, in a temporary directory. Figures are MB/s (10^6 bytes per second) of input.
 * They move with the machine's load: compare figures measured in one run.
 *
 * @module
 */
import { blake3Into } from "../core/hash/blake3.ts";
import { createChunker } from "../core/chunk/fastcdc_wasm.ts";
import { DEFAULT_CDC } from "../core/chunk/fastcdc.ts";
import { lz4CompressBound, lz4CompressInto, lz4DecompressInto } from "../core/codec/lz4.ts";
import { zstdBound, zstdCompressInto, zstdDecompressInto } from "../core/codec/zstd.ts";
import { HexzError, osReason } from "../core/errors.ts";
import { defaultWorkers } from "../core/workers.ts";

export interface BenchOptions {
  /** Bytes to take from the start of `file` (default 64 MiB), or the sample's size. */
  size?: number;
  /** A file whose first `size` bytes are the input; else a built-in sample. */
  file?: string;
  /** Timed runs per kernel after the warm-up (default 5). */
  runs?: number;
  /** Called before each measurement with its name. */
  onStep?: (name: string) => void;
}

export interface BenchRow {
  /** "blake3", "fastcdc", "lz4 compress", ..., "pack (1 thread)", "extract". */
  name: string;
  /** Input bytes per second, in MB/s. */
  mbps: number;
  /** Input / output bytes for the compressors and pack (null where nothing is compressed). */
  ratio: number | null;
}

export interface BenchReport {
  input: string;
  bytes: number;
  /** Default worker threads for the parallel pack. */
  workers: number;
  rows: BenchRow[];
}

const BLOCK = 64 * 1024;
const MIN_SIZE = 1 << 20;

/**
 * A stand-in for a disk image, the same every time: a quarter zero runs, a quarter text, a
 * quarter loosely structured binary and a quarter random bytes, interleaved in 1 MiB stretches.
 */
export function benchSample(size: number): Uint8Array {
  const out = new Uint8Array(size);
  const words = new TextEncoder().encode(
    "the quick brown fox jumps over the lazy dog; GET /index.html 200 0.013 kernel: eth0 up\n",
  );
  let x = 0x9e3779b9;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  for (let o = 0, k = 0; o < size; o += 1 << 20, k++) {
    const end = Math.min(size, o + (1 << 20));
    switch (k % 4) {
      case 0:
        break; // zeros
      case 1:
        for (let i = o; i < end; i++) out[i] = words[(i + (next() & 3)) % words.length];
        break;
      case 2:
        for (let i = o; i < end; i++) {
          out[i] = (next() & 0xf) === 0 ? next() & 0xff : (i >> 6) & 0xff;
        }
        break;
      default:
        for (let i = o; i < end; i++) out[i] = next() & 0xff;
    }
  }
  return out;
}

async function readInput(file: string, size: number): Promise<Uint8Array> {
  let f: Deno.FsFile;
  try {
    f = await Deno.open(file, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new HexzError("not-found", `${file}: no such file`);
    }
    throw new HexzError("io", `${file}: ${osReason(e)}`);
  }
  try {
    const st = await f.stat();
    if (!st.isFile) throw new HexzError("usage", `${file}: not a regular file`);
    const data = new Uint8Array(Math.min(size, st.size));
    let got = 0;
    while (got < data.length) {
      const n = await f.read(data.subarray(got));
      if (n === null) break;
      got += n;
    }
    if (got < MIN_SIZE) {
      throw new HexzError("usage", `${file}: ${got} bytes: bench needs at least 1 MiB of input`);
    }
    return data.subarray(0, got);
  } finally {
    f.close();
  }
}

/** Best time of `runs` runs of `fn` after one warm-up, in ms. */
function best(runs: number, fn: () => void): number {
  fn();
  let t = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    t = Math.min(t, performance.now() - t0);
  }
  return t;
}

async function bestAsync(runs: number, fn: () => Promise<void>): Promise<number> {
  await fn();
  let t = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    t = Math.min(t, performance.now() - t0);
  }
  return t;
}

/** Measures the kernels and pack/extract on `opts.file` (or the sample). */
export async function bench(opts: BenchOptions = {}): Promise<BenchReport> {
  const size = opts.size ?? 64 << 20;
  const runs = opts.runs ?? 5;
  if (!Number.isInteger(size) || size < MIN_SIZE || size > 1 << 30) {
    throw new HexzError("usage", `bench size must be 1 MiB..1 GiB, got ${size}`);
  }
  if (!Number.isInteger(runs) || runs < 1 || runs > 100) {
    throw new HexzError("usage", `bench runs must be 1..100, got ${runs}`);
  }
  const data = opts.file ? await readInput(opts.file, size) : benchSample(size);
  const n = data.length - data.length % BLOCK;
  const blocks: Uint8Array[] = [];
  for (let o = 0; o < n; o += BLOCK) blocks.push(data.subarray(o, o + BLOCK));
  const rows: BenchRow[] = [];
  const rate = (ms: number, bytes = n) => bytes / 1e6 / (ms / 1000);
  const step = (name: string) => opts.onStep?.(name);

  step("blake3");
  const digest = new Uint8Array(32);
  rows.push({
    name: "blake3",
    mbps: rate(best(runs, () => {
      for (const b of blocks) blake3Into(b, digest, 0);
    })),
    ratio: null,
  });
  step("fastcdc");
  // As pack does: the input lies in the chunker's own WebAssembly buffer.
  const chunker = createChunker(DEFAULT_CDC, n);
  chunker.buffer.set(data.subarray(0, n));
  rows.push({
    name: "fastcdc",
    mbps: rate(best(runs, () => void chunker.cuts(n, true))),
    ratio: null,
  });

  // Compressed blocks kept to time the decoders on what the encoders made.
  for (const codec of ["lz4", "zstd"] as const) {
    const bound = codec === "lz4" ? lz4CompressBound(BLOCK) : zstdBound(BLOCK);
    const out = new Uint8Array(bound * blocks.length);
    const lens = new Int32Array(blocks.length);
    const compress = () => {
      for (let i = 0; i < blocks.length; i++) {
        const dst = out.subarray(i * bound, (i + 1) * bound);
        lens[i] = codec === "lz4"
          ? lz4CompressInto(blocks[i], dst, 1)
          : zstdCompressInto(blocks[i], dst, 3);
      }
    };
    step(`${codec} compress`);
    const tc = best(runs, compress);
    // A block that does not shrink is stored as is, as pack does.
    const stored = Array.from(lens).reduce((s, l) => s + (l > 0 ? l : BLOCK), 0);
    rows.push({ name: `${codec} compress`, mbps: rate(tc), ratio: n / stored });
    const back = new Uint8Array(BLOCK);
    step(`${codec} decompress`);
    const td = best(runs, () => {
      for (let i = 0; i < blocks.length; i++) {
        if (lens[i] <= 0) continue;
        const src = out.subarray(i * bound, i * bound + lens[i]);
        if (codec === "lz4") lz4DecompressInto(src, back);
        else zstdDecompressInto(src, back);
      }
    });
    rows.push({ name: `${codec} decompress`, mbps: rate(td), ratio: null });
  }

  // End to end through the library, in a temporary directory removed afterwards.
  const { pack } = await import("../core/pack/pack.ts");
  const { openArchive } = await import("../core/read/archive.ts");
  const { fileSource } = await import("../core/io/source.ts");
  const { extractStream } = await import("../core/read/extract.ts");
  const dir = await Deno.makeTempDir({ prefix: "hexz-bench-" });
  try {
    const img = `${dir}/input.img`;
    await Deno.writeFile(img, data);
    const workers = defaultWorkers();
    const archive = `${dir}/a.hxz`;
    let outBytes = 0;
    for (const w of [...new Set([1, workers])]) {
      const name = w === 1 ? "pack (1 thread)" : `pack (${w} threads)`;
      step(name);
      const t = await bestAsync(Math.min(runs, 3), async () => {
        const r = await pack({ output: archive, disk: img, force: true, workers: w });
        outBytes = r.outputBytes;
      });
      rows.push({ name, mbps: rate(t, data.length), ratio: data.length / outBytes });
    }
    step("extract");
    const t = await bestAsync(Math.min(runs, 3), async () => {
      const a = await openArchive(await fileSource(archive));
      try {
        await extractStream(a, `${dir}/out.img`, { force: true });
      } finally {
        a.close();
      }
    });
    rows.push({ name: "extract", mbps: rate(t, data.length), ratio: null });
    // A measurement of wrong output would be worthless: the round trip must be exact.
    const back = await Deno.readFile(`${dir}/out.img`);
    if (back.length !== data.length || back.some((b, i) => b !== data[i])) {
      throw new HexzError("corrupt", "bench: the extracted bytes differ from the input");
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return {
    input: opts.file ?? "built-in sample",
    bytes: data.length,
    workers: defaultWorkers(),
    rows,
  };
}
