import { Command } from "./command.ts";
import { predict } from "../core/pack/predict.ts";
import { out } from "./common.ts";
import { HexzError } from "../core/errors.ts";
import { formatRatio, formatSize, parseSize, plural } from "./units.ts";

export function predictCommand(): Command {
  return new Command("predict")
    .description("estimate compression and dedup savings from a sample (writes nothing)")
    .argument("<path>", "file or directory")
    .option("--sample <size>", "bytes to sample", "64M")
    .option("--json", "machine-readable output")
    .addHelpText("after", "\nExample:\n  hexz predict vm.img")
    .action(async (path: string, o) => {
      const sampleBytes = parseSize(o.sample, "--sample");
      if (sampleBytes < 1024 * 1024) {
        throw new HexzError(
          "usage",
          `--sample ${o.sample}: must be at least 1M (one sampling window)`,
        );
      }
      const r = await predict(path, { sampleBytes });
      if (o.json) {
        out(JSON.stringify(r, null, 2));
        return;
      }
      const pct = (f: number | null) => f === null ? "-" : `${(f * 100).toFixed(1)}%`;
      out(
        `${path}: ${formatSize(r.inputBytes)} in ${plural(r.files, "file")}, sampled ${
          formatSize(r.sampledBytes)
        }`,
      );
      out(`zero: ${pct(r.zeroFraction)}, duplicate (within the sample): ${pct(r.dedupFraction)}`);
      out(`lz4:  about ${formatSize(r.lz4.bytes)} (${formatRatio(r.lz4.ratio)})`);
      out(`zstd: about ${formatSize(r.zstd.bytes)} (${formatRatio(r.zstd.ratio)})`);
      out(`(estimated in ${r.seconds.toFixed(2)} s)`);
    });
}
