/**
 * The demo: builds a sample disk image (64 MiB, partly empty, with repeated and compressible
 * regions like a real OS disk), packs it with LZ4 and with Zstd + CDC, inspects the archive,
 * reads random ranges and checks them against the image, extracts it and compares, and runs a
 * full integrity check. Everything happens in a temporary directory that is removed afterwards.
 *
 *   deno task demo
 *
 * @module
 */
import { check, extract, inspect, open, pack } from "../mod.ts";
import { formatRatio, formatSize } from "../cli/units.ts";

function sampleImage(size: number): Uint8Array {
  const img = new Uint8Array(size);
  let x = 0x9e3779b9;
  const rnd = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  const words = ["kernel", "init", "systemd", "libc", "python3", "config", "log", "cache", "usr"];
  const text = (n: number) => {
    let s = "";
    while (s.length < n) s += `${words[rnd() % words.length]}=${rnd() % 1000}\n`;
    return new TextEncoder().encode(s.slice(0, n));
  };
  const MiB = 1024 * 1024;
  // 0-8 MiB: "binaries" (random, incompressible); 8-24 MiB: text; 24-28 MiB: a copy of 0-4 MiB
  // (duplicated files); 28-40 MiB: empty; 40-44 MiB: text again; the rest: empty.
  for (let i = 0; i < 8 * MiB; i += 4) {
    const v = rnd();
    img[i] = v;
    img[i + 1] = v >>> 8;
    img[i + 2] = v >>> 16;
    img[i + 3] = v >>> 24;
  }
  img.set(text(16 * MiB), 8 * MiB);
  img.set(img.subarray(0, 4 * MiB), 24 * MiB);
  img.set(text(4 * MiB), 40 * MiB);
  return img;
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const dir = await Deno.makeTempDir({ prefix: "hexz-demo-" });
try {
  const imgPath = `${dir}/sample.img`;
  const img = sampleImage(64 * 1024 * 1024);
  await Deno.writeFile(imgPath, img);
  console.log(`sample disk image: ${formatSize(img.length)}`);

  for (
    const [label, opts] of [
      ["lz4, 64 KiB blocks", { compression: "lz4" as const }],
      ["zstd -3, FastCDC", { compression: "zstd" as const, cdc: true }],
    ] as const
  ) {
    const out = `${dir}/sample-${opts.compression}.hxz`;
    const t0 = performance.now();
    const res = await pack({ output: out, disk: imgPath, ...opts });
    const secs = (performance.now() - t0) / 1000;
    console.log(
      `pack (${label}): ${formatSize(res.inputBytes)} => ${formatSize(res.outputBytes)} ` +
        `(${formatRatio(res.inputBytes / res.outputBytes)}) in ${secs.toFixed(2)} s`,
    );
  }

  const archivePath = `${dir}/sample-zstd.hxz`;
  const a = await open(archivePath);
  try {
    const r = inspect(a);
    const s = r.streams[0];
    console.log(
      `inspect: ${s.blocks} blocks (data ${s.dataBlocks}, zero ${s.zeroBlocks}, dedup ${s.dedupBlocks}), ` +
        `${count(s.pages, "index page")}, root hash ${r.rootHash.slice(0, 16)}…`,
    );
    let ok = 0;
    for (let i = 0; i < 200; i++) {
      const off = Math.floor(Math.random() * (img.length - 70000));
      const len = 1 + Math.floor(Math.random() * 70000);
      if (same(await a.read("disk", off, len), img.subarray(off, off + len))) ok++;
    }
    console.log(`random reads: ${ok}/200 ranges match the image`);
    if (ok !== 200) throw new Error("random reads differ from the image");
    await extract(a, `${dir}/restored.img`);
    const restored = await Deno.readFile(`${dir}/restored.img`);
    const used = (await Deno.stat(`${dir}/restored.img`)).blocks! * 512;
    console.log(
      `extract: ${same(restored, img) ? "identical to the image" : "DIFFERENT"} ` +
        `(${formatSize(used)} allocated: zero runs are holes)`,
    );
    if (!same(restored, img)) throw new Error("extracted image differs");
    const c = await check(a);
    console.log(`check: ${count(c.blocks, "block")} and ${count(c.pages, "page")} verified`);
  } finally {
    a.close();
  }
  console.log("demo: ok");
} finally {
  await Deno.remove(dir, { recursive: true });
}

/** "1 page", "2 pages". */
function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}
