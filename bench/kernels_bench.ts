/**
 * `deno bench bench/kernels_bench.ts`: our WebAssembly kernels against the npm packages they
 * replaced, on 64 KiB blocks of the bench input (see bench/_data.ts). Native tools are
 * compared in bench/kernels.ts, which prints ratios.
 */
import { createBLAKE3 } from "hash-wasm";
import * as lz4wasm from "lz4-wasm";
import { blake3Into } from "../core/hash/blake3.ts";
import { lz4Compress, lz4DecompressInto } from "../core/codec/lz4.ts";
import { DEFAULT_CDC, findCutsReference } from "../core/chunk/fastcdc.ts";
import { createChunker } from "../core/chunk/fastcdc_wasm.ts";
import { benchInput, blocksOf } from "./_data.ts";

const { data } = await benchInput(16 << 20);
const blocks = blocksOf(data, 65536);
const hw = await createBLAKE3(256);
const out = new Uint8Array(32);

Deno.bench("blake3 hexz", { group: "blake3", baseline: true }, () => {
  for (const b of blocks) blake3Into(b, out, 0);
});
Deno.bench("blake3 hash-wasm", { group: "blake3" }, () => {
  for (const b of blocks) {
    hw.init();
    hw.update(b);
    hw.digest("binary");
  }
});

const ours = blocks.map((b) => lz4Compress(b)!.slice());
const theirs = blocks.map((b) => lz4wasm.compress(b));
const dst = new Uint8Array(65536);
Deno.bench("lz4 compress hexz", { group: "lz4c", baseline: true }, () => {
  for (const b of blocks) lz4Compress(b);
});
Deno.bench("lz4 compress lz4-wasm", { group: "lz4c" }, () => {
  for (const b of blocks) lz4wasm.compress(b);
});
Deno.bench("lz4 decompress hexz", { group: "lz4d", baseline: true }, () => {
  for (const c of ours) lz4DecompressInto(c, dst);
});
Deno.bench("lz4 decompress lz4-wasm", { group: "lz4d" }, () => {
  for (const c of theirs) lz4wasm.decompress(c);
});

const chunker = createChunker(DEFAULT_CDC, data.length);
chunker.buffer.set(data);
Deno.bench("fastcdc wasm", { group: "cdc", baseline: true }, () => {
  chunker.cuts(data.length, true);
});
Deno.bench("fastcdc typescript", { group: "cdc" }, () => {
  findCutsReference(data, DEFAULT_CDC, true);
});
