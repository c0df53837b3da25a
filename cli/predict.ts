import { Command } from "./command.ts";
import { predict } from "../core/pack/predict.ts";
import { out } from "./common.ts";
import { formatRatio, formatSize, parseSize } from "./units.ts";

export function predictCommand(): Command {
  return new Command("predict")
    .description("estimate compression and dedup savings from a sample (writes nothing)")
    .argument("<path>", "file or directory")
    .option("--sample <size>", "bytes to sample", "64M")
    .option("--json", "machine-readable output")
    .addHelpText("after", "\nExample:\n  hexz predict vm.img")
    .action(async (path: string, o) => {
      const r = await predict(path, { sampleBytes: parseSize(o.sample, "--sample") });
      if (o.json) {
        out(JSON.stringify(r, null, 2));
        return;
      }
      const pct = (f: number | null) => f === null ? "-" : `${(f * 100).toFixed(1)}%`;
      out(
        `${path}: ${formatSize(r.inputBytes)} in ${r.files} file(s), sampled ${
          formatSize(r.sampledBytes)
        }`,
      );
      out(`zero: ${pct(r.zeroFraction)}, duplicate (within the sample): ${pct(r.dedupFraction)}`);
      out(`lz4:  about ${formatSize(r.lz4.bytes)} (${formatRatio(r.lz4.ratio)})`);
      out(`zstd: about ${formatSize(r.zstd.bytes)} (${formatRatio(r.zstd.ratio)})`);
      out(`(estimated in ${r.seconds.toFixed(2)} s)`);
    });
}
