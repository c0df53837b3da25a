/**
 * `predict`: estimates what packing would save, from a sample, without writing anything. The
 * input (a file, or every regular file under a directory, taken in order) is sampled in evenly
 * spaced windows; each window is cut into blocks that are checked for zeros, deduplicated by
 * BLAKE3 within the sample, and compressed with LZ4 and Zstd. The estimate scales the sample's
 * figures to the whole input. Duplicates between distant parts of the input are mostly missed
 * by a sample, so the dedup figure is a lower bound.
 *
 * @module
 */
import { HexzError, osReason } from "../errors.ts";
import { bytesKey, exactSize } from "../format/bytes.ts";
import { blake3 } from "../hash/blake3.ts";
import { createCompressor } from "../codec/codec.ts";
import { isZeroBlock } from "./zero.ts";
import { expectOptions, expectString } from "../args.ts";

export interface PredictOptions {
  /** Bytes to sample in all (default 64 MiB). */
  sampleBytes?: number;
  /** Window size (default 1 MiB). */
  windowBytes?: number;
  /** Block size used for the estimate (default 64 KiB). */
  blockSize?: number;
}

export interface PredictReport {
  path: string;
  files: number;
  inputBytes: number;
  sampledBytes: number;
  /** Fractions of the sampled bytes; null when nothing was sampled (an empty input). */
  zeroFraction: number | null;
  dedupFraction: number | null;
  /** Estimated archive sizes and ratios (input / archive; null for an empty input). */
  lz4: { bytes: number; ratio: number | null };
  zstd: { bytes: number; ratio: number | null };
  seconds: number;
}

async function listInputs(path: string): Promise<{ path: string; size: number }[]> {
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new HexzError("not-found", `${path}: no such file`);
    }
    throw new HexzError("io", `${path}: ${osReason(e)}`);
  }
  if (st.isFile) return [{ path, size: st.size }];
  if (!st.isDirectory) {
    throw new HexzError("usage", `${path}: not a regular file or a directory`);
  }
  const out: { path: string; size: number }[] = [];
  const walk = async (dir: string) => {
    const names: string[] = [];
    try {
      for await (const e of Deno.readDir(dir)) names.push(e.name);
    } catch (e) {
      throw new HexzError("io", `${dir}: ${osReason(e)}`);
    }
    for (const n of names.sort()) {
      const p = `${dir}/${n}`;
      let s: Deno.FileInfo;
      try {
        s = await Deno.lstat(p);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) continue; // removed while listed
        throw new HexzError("io", `${p}: ${osReason(e)}`);
      }
      if (s.isDirectory) await walk(p);
      else if (s.isFile) out.push({ path: p, size: s.size });
    }
  };
  await walk(path.replace(/\/+$/, ""));
  return out;
}

export async function predict(path: string, opts: PredictOptions = {}): Promise<PredictReport> {
  expectString(path, "predict");
  expectOptions(opts, "predict: options");
  const t0 = performance.now();
  const sampleBytes = opts.sampleBytes ?? 64 * 1024 * 1024;
  const windowBytes = opts.windowBytes ?? 1024 * 1024;
  const blockSize = opts.blockSize ?? 64 * 1024;
  if (!Number.isInteger(sampleBytes) || sampleBytes < windowBytes) {
    throw new HexzError(
      "usage",
      `sample size must be at least ${exactSize(windowBytes)} (one sampling window), got ${
        Number.isInteger(sampleBytes) ? exactSize(sampleBytes) : sampleBytes
      }`,
    );
  }
  const inputs = await listInputs(path);
  const total = inputs.reduce((n, f) => n + f.size, 0);
  // Window starts across the concatenation of all inputs.
  const windows: number[] = [];
  if (total <= sampleBytes) {
    for (let p = 0; p < total; p += windowBytes) windows.push(p);
  } else {
    const count = Math.floor(sampleBytes / windowBytes);
    const stride = Math.floor((total - windowBytes) / Math.max(1, count - 1));
    for (let i = 0; i < count; i++) windows.push(i * stride);
  }
  const lz4 = createCompressor("lz4", 1);
  const zstd = createCompressor("zstd", 3);
  const seen = new Set<string>();
  let sampled = 0;
  let zero = 0;
  let dup = 0;
  let lz4Bytes = 0;
  let zstdBytes = 0;
  let fileIndex = 0;
  let fileStart = 0;
  for (const w of windows) {
    // Read [w, w + windowBytes) from whichever files it covers.
    const buf = new Uint8Array(Math.min(windowBytes, total - w));
    let filled = 0;
    while (fileIndex < inputs.length && fileStart + inputs[fileIndex].size <= w) {
      fileStart += inputs[fileIndex++].size;
    }
    let fi = fileIndex;
    let fs = fileStart;
    while (filled < buf.length && fi < inputs.length) {
      const f = inputs[fi];
      const from = w + filled - fs;
      const n = Math.min(f.size - from, buf.length - filled);
      if (n > 0) {
        const file = await Deno.open(f.path, { read: true });
        try {
          await file.seek(from, Deno.SeekMode.Start);
          let got = 0;
          while (got < n) {
            const r = await file.read(buf.subarray(filled + got, filled + n));
            if (r === null) break;
            got += r;
          }
        } finally {
          file.close();
        }
        filled += n;
      }
      fs += f.size;
      fi++;
    }
    for (let off = 0; off < filled; off += blockSize) {
      const block = buf.subarray(off, Math.min(filled, off + blockSize));
      sampled += block.length;
      if (isZeroBlock(block)) {
        zero += block.length;
        continue;
      }
      const key = bytesKey(blake3(block));
      if (seen.has(key)) {
        dup += block.length;
        continue;
      }
      seen.add(key);
      lz4Bytes += lz4.compress(block).payload.length;
      zstdBytes += zstd.compress(block).payload.length;
    }
  }
  const scale = sampled ? total / sampled : 0;
  // Index overhead: one 56-byte entry per block plus page and header framing.
  const overhead = 4096 + Math.ceil(total / blockSize) * 56;
  const est = (n: number) => Math.round(n * scale) + overhead;
  const ratio = (n: number) => total ? total / est(n) : null;
  return {
    path,
    files: inputs.length,
    inputBytes: total,
    sampledBytes: sampled,
    zeroFraction: sampled ? zero / sampled : null,
    dedupFraction: sampled ? dup / sampled : null,
    lz4: { bytes: est(lz4Bytes), ratio: ratio(lz4Bytes) },
    zstd: { bytes: est(zstdBytes), ratio: ratio(zstdBytes) },
    seconds: (performance.now() - t0) / 1000,
  };
}
