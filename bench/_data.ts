/** Bench input: the OS image from bench/os_image.sh when present, else a stand-in. */
export async function benchInput(limit = 64 << 20): Promise<{ name: string; data: Uint8Array }> {
  const candidates = [
    Deno.env.get("HEXZ_BENCH_FILE"),
    "/tmp/hexz-bench/v1.img",
    "/usr/bin/qemu-system-x86_64",
  ].filter((x): x is string => !!x);
  for (const path of candidates) {
    try {
      const f = await Deno.open(path);
      try {
        const size = (await f.stat()).size;
        // The used part of a file system image sits at its start; read the first `limit` bytes.
        const data = new Uint8Array(Math.min(size, limit));
        let got = 0;
        while (got < data.length) {
          const n = await f.read(data.subarray(got));
          if (n === null) break;
          got += n;
        }
        return { name: path, data: data.subarray(0, got) };
      } finally {
        f.close();
      }
    } catch { /* next */ }
  }
  throw new Error("no bench input: run bench/os_image.sh or set HEXZ_BENCH_FILE");
}

/** Cuts `data` into `size`-byte blocks. */
export function blocksOf(data: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let o = 0; o + size <= data.length; o += size) out.push(data.subarray(o, o + size));
  return out;
}

/** Best-of-`runs` throughput of `fn` over `bytes`, in MB/s (10^6 bytes per second). */
export function mbps(bytes: number, fn: () => void, runs = 12): number {
  // Warm up: V8 first runs WebAssembly from its baseline compiler and tiers hot functions up
  // in the background; measure the steady state.
  for (let i = 0; i < 3; i++) fn();
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    fn();
    best = Math.min(best, performance.now() - t);
  }
  return bytes / 1e6 / (best / 1000);
}

/**
 * Best throughput (MB/s) of each function when their runs are interleaved (a, b, c, a, b, c,
 * ...): on a machine whose speed drifts, every contender sees the same conditions.
 */
export function race(bytes: number, fns: Record<string, () => void>, rounds = 12) {
  const names = Object.keys(fns);
  const best: Record<string, number> = {};
  for (const n of names) {
    for (let i = 0; i < 3; i++) fns[n]();
    best[n] = Infinity;
  }
  for (let r = 0; r < rounds; r++) {
    for (const n of names) {
      const t = performance.now();
      fns[n]();
      best[n] = Math.min(best[n], performance.now() - t);
    }
  }
  const out: Record<string, number> = {};
  for (const n of names) out[n] = bytes / 1e6 / (best[n] / 1000);
  return out;
}
