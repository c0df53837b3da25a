/**
 * Our dictionary trainer against `zstd --train`, on real data: the same training samples for
 * both, a dictionary of the same size (zstd gets `--maxdict` = the size of ours), and the gain
 * measured on held-out samples (every 8th, never trained on; all-zero ones left out, as hexz
 * never compresses those) at zstd level 3: the compression ratio with the dictionary minus the
 * ratio without. The target: our gain at least
 * 90% of zstd's.
 *
 *   deno run -A bench/dict.ts [DIR]     (default /tmp/hexz-bench from bench/os_image.sh)
 *
 * @module
 */
import { sampleFile, sampleFiles, trainDictionary } from "../core/pack/dict_train.ts";
import { createZstdDictCodec } from "../core/codec/zstd_dict.ts";
import { zstdCompress } from "../core/codec/zstd.ts";

const root = Deno.args[0] ?? "/tmp/hexz-bench";
const LEVEL = 3;

/** Regular files under `dir`, in sorted walk order. */
function files(dir: string, out: string[] = []): string[] {
  let names: string[];
  try {
    names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  } catch {
    return out;
  }
  for (const n of names) {
    const p = `${dir}/${n}`;
    const st = Deno.lstatSync(p);
    if (st.isDirectory) files(p, out);
    else if (st.isFile && st.size > 0) out.push(p);
  }
  return out;
}

interface Row {
  data: string;
  samples: number;
  dictBytes: number;
  plain: number;
  ours: number;
  theirs: number;
  share: number;
}

async function compare(data: string, samples: Uint8Array[]): Promise<Row | null> {
  const train: Uint8Array[] = [], held: Uint8Array[] = [];
  samples.forEach((s, i) => (i % 8 === 7 ? held : train).push(s));
  // hexz stores all-zero blocks as a flag, never compressed: they are not evaluated.
  const evaluated = held.filter((s) => s.some((b) => b !== 0));
  const ours = await trainDictionary(train, { level: LEVEL });
  if (!ours) {
    console.error(`${data}: our trainer found no useful dictionary`);
    return null;
  }
  const dir = await Deno.makeTempDir({ prefix: "hexz-dict-" });
  try {
    // zstd gets the training samples that are not all zeros (given those, its dictionaries
    // for the OS image did worse than none); ours gets them all and drops them itself.
    train.filter((s) => s.some((b) => b !== 0)).forEach((s, i) =>
      Deno.writeFileSync(`${dir}/${String(i).padStart(5, "0")}`, s)
    );
    const size = ours.dictionary.length;
    const z = await new Deno.Command("sh", {
      args: ["-c", `zstd -q --train ${dir}/0* --maxdict=${size} -o ${dir}.zdict`],
    }).output();
    if (z.code !== 0) throw new Error(new TextDecoder().decode(z.stderr));
    const theirDict = await Deno.readFile(`${dir}.zdict`);
    await Deno.remove(`${dir}.zdict`);
    const a = await createZstdDictCodec(ours.dictionary, LEVEL);
    const b = await createZstdDictCodec(theirDict, LEVEL);
    try {
      const bytes = evaluated.reduce((n, s) => n + s.length, 0);
      const plain = evaluated.reduce((n, s) => n + zstdCompress(s, LEVEL).length, 0);
      const withOurs = evaluated.reduce((n, s) => n + a.compress(s).length, 0);
      const withTheirs = evaluated.reduce((n, s) => n + b.compress(s).length, 0);
      const ratio = (x: number) => bytes / x;
      return {
        data,
        samples: samples.length,
        dictBytes: size,
        plain: ratio(plain),
        ours: ratio(withOurs),
        theirs: ratio(withTheirs),
        share: (ratio(withOurs) - ratio(plain)) / (ratio(withTheirs) - ratio(plain)),
      };
    } finally {
      a.close?.();
      b.close?.();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const fs = `${root}/rootfs`;
const text = [
  ...files(`${fs}/etc`),
  ...files(`${fs}/var/lib/dpkg/info`),
  ...files(`${fs}/usr/share/doc`),
];
const sets: [string, () => Promise<Uint8Array[]>][] = [
  ["OS image v1, 4 KiB blocks", () => sampleFile(`${root}/v1.img`, 4096)],
  ["OS image v1, 16 KiB blocks", () => sampleFile(`${root}/v1.img`, 16384)],
  [
    `text files of the root fs (/etc, dpkg info, docs: ${text.length}), first 4 KiB`,
    () => sampleFiles(text, 4096),
  ],
  [`every file of the root fs, first 16 KiB`, () => sampleFiles(files(fs), 16384)],
];

console.log(
  `| data | samples | dictionary | ratio, no dictionary | ours | zstd --train | our gain / zstd's |`,
);
console.log(`|---|---:|---:|---:|---:|---:|---:|`);
for (const [name, load] of sets) {
  const r = await compare(name, await load());
  if (!r) continue;
  console.log(
    `| ${r.data} | ${r.samples} | ${(r.dictBytes / 1024).toFixed(1)} KiB | ${
      r.plain.toFixed(3)
    } | ${r.ours.toFixed(3)} | ${r.theirs.toFixed(3)} | ${(100 * r.share).toFixed(1)}% |`,
  );
}
