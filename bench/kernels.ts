/**
 * Kernel throughput against the native tools, in one run on the same bytes:
 *   deno run -A bench/kernels.ts [FILE]
 * Prints a markdown table of MB/s and the ratios the targets in bench/README.md are stated in.
 * Figures are the best of 12 interleaved runs (after 3 warm-up runs) on one core; compare ratios, not absolute numbers, across machines.
 */
import { createBLAKE3 } from "hash-wasm";
import * as lz4wasm from "lz4-wasm";
import { blake3, blake3InPlace, blake3Input, blake3Into } from "../core/hash/blake3.ts";
import { lz4Compress, lz4DecompressInto, lz4DecompressView } from "../core/codec/lz4.ts";
import { DEFAULT_CDC, findCutsReference } from "../core/chunk/fastcdc.ts";
import { createChunker } from "../core/chunk/fastcdc_wasm.ts";
import { benchInput, blocksOf, mbps, race } from "./_data.ts";

if (Deno.args[0]) Deno.env.set("HEXZ_BENCH_FILE", Deno.args[0]);
const { name, data } = await benchInput(64 << 20);
const blocks = blocksOf(data, 65536);
const bytes = blocks.length * 65536;
const tmp = await Deno.makeTempFile();
await Deno.writeFile(tmp, data.subarray(0, bytes));

/** Best-of-5 wall time of a native command on the file (page cache warm), as MB/s. */
async function nativeMbps(cmd: string, args: string[]): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < 6; i++) {
    const t = performance.now();
    const p = await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output();
    if (!p.success) return NaN;
    if (i > 0) best = Math.min(best, performance.now() - t);
  }
  return bytes / 1e6 / (best / 1000);
}

/** `lz4 -b1` reports its own compress and decompress speeds for 64 KiB blocks. */
async function lz4Native(): Promise<[number, number, number]> {
  const p = await new Deno.Command("lz4", { args: ["-b1", "-B4", "-i3", tmp] }).output();
  const text = new TextDecoder().decode(p.stderr) + new TextDecoder().decode(p.stdout);
  const m = [...text.matchAll(/\(([\d.]+)\),\s*([\d.]+) MB\/s ,\s*([\d.]+) MB\/s/g)].pop();
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [NaN, NaN, NaN];
}

const rows: [string, number, string][] = [];
const out = new Uint8Array(32);
const hw = await createBLAKE3(256);
const inPlace = blake3Input(bytes);
inPlace.set(data.subarray(0, bytes)); // as a reader would: straight into WebAssembly memory
const b3r = race(bytes, {
  inPlace: () => blake3InPlace(bytes, out, 0),
  whole: () => blake3(data.subarray(0, bytes)),
  blocks: () => {
    for (const b of blocks) blake3Into(b, out, 0);
  },
  hashWasm: () => {
    hw.init();
    hw.update(data.subarray(0, bytes));
    hw.digest("binary");
  },
});
const ours3 = b3r.whole, ours3b = b3r.blocks, hw3 = b3r.hashWasm, ours3p = b3r.inPlace;
const b3 = await nativeMbps("b3sum", ["--num-threads", "1", "--no-names", tmp]);
rows.push([
  "BLAKE3 hexz, whole input already in WebAssembly memory (blake3InPlace)",
  ours3p,
  `in place/hash-wasm ${(ours3p / hw3).toFixed(2)}x, in place/b3sum ${
    (ours3p / b3 * 100).toFixed(0)
  }%`,
]);
rows.push(["BLAKE3 hexz, whole input from a JS buffer (copied in)", ours3, ""]);
rows.push(["BLAKE3 hexz, 64 KiB blocks", ours3b, ""]);
rows.push([
  "BLAKE3 hash-wasm",
  hw3,
  `hexz/hash-wasm ${(ours3 / hw3).toFixed(2)}x (target >= 2.2x)`,
]);
rows.push([
  "BLAKE3 b3sum --num-threads 1",
  b3,
  `hexz/b3sum ${(ours3 / b3 * 100).toFixed(0)}% (target >= 55%)`,
]);

let cBytes = 0;
const ours = blocks.map((b) => lz4Compress(b)!.slice());
for (const c of ours) cBytes += c.length;
const theirs = blocks.map((b) => lz4wasm.compress(b));
const dst = new Uint8Array(65536);
const lzc = race(bytes, {
  ours: () => {
    for (const b of blocks) lz4Compress(b);
  },
  theirs: () => {
    for (const b of blocks) lz4wasm.compress(b);
  },
});
const lzd = race(bytes, {
  ours: () => {
    for (const c of ours) lz4DecompressInto(c, dst);
  },
  view: () => {
    for (const c of ours) lz4DecompressView(c, 65536);
  },
  theirs: () => {
    for (const c of theirs) lz4wasm.decompress(c);
  },
});
const lc = lzc.ours, wc = lzc.theirs, ld = lzd.ours, wd = lzd.theirs, lv = lzd.view;
const [nr, nc, nd] = await lz4Native();
rows.push(["LZ4 compress hexz (ratio " + (bytes / cBytes).toFixed(3) + ")", lc, ""]);
rows.push(["LZ4 compress lz4-wasm", wc, `hexz/lz4-wasm ${(lc / wc).toFixed(2)}x (target >= 1.2x)`]);
rows.push([`LZ4 compress lz4 -1 native (ratio ${nr})`, nc, `hexz/native ${(lc / nc).toFixed(2)}x`]);
rows.push([
  "LZ4 decompress hexz into WebAssembly memory (lz4DecompressView)",
  lv,
  `view/lz4-wasm ${(lv / wd).toFixed(2)}x`,
]);
rows.push(["LZ4 decompress hexz into a JS buffer (copied out)", ld, ""]);
rows.push([
  "LZ4 decompress lz4-wasm",
  wd,
  `hexz/lz4-wasm ${(ld / wd).toFixed(2)}x (target >= 1.8x)`,
]);
rows.push(["LZ4 decompress native", nd, `hexz/native ${(ld / nd).toFixed(2)}x`]);

const chunker = createChunker(DEFAULT_CDC, bytes);
chunker.buffer.set(data.subarray(0, bytes));
const cw = mbps(bytes, () => chunker.cuts(bytes, true));
const ct = mbps(bytes, () => findCutsReference(data.subarray(0, bytes), DEFAULT_CDC, true), 2);
rows.push(["FastCDC hexz wasm (2 bytes/step)", cw, `target >= 2000 MB/s`]);
rows.push(["FastCDC TypeScript reference", ct, `wasm/ts ${(cw / ct).toFixed(2)}x`]);

await Deno.remove(tmp);
console.log(`input: ${name}, ${(bytes / 1048576).toFixed(0)} MiB, ${new Date().toISOString()}\n`);
console.log("| kernel | MB/s | ratio |\n|---|---:|---|");
for (const [k, v, r] of rows) console.log(`| ${k} | ${v.toFixed(0)} | ${r} |`);
