import { Command } from "./command.ts";
import { HexzError } from "../core/errors.ts";
import { out } from "./common.ts";
import { createProgress } from "./progress.ts";
import { formatSize, optionalInteger, parseSize } from "./units.ts";

export function benchCommand(): Command {
  return new Command("bench")
    .description("measure hexz on this machine: kernels, then pack and extract end to end")
    .argument("[file]", "data to measure on (its first --size bytes; default: a built-in sample)")
    .option("--size <size>", "bytes of input, 1M-1G", "64M")
    .option("--runs <n>", "timed runs per kernel, best one kept", "5")
    .option("--json", "machine-readable output")
    .option("-q, --silent", "no progress")
    .addHelpText(
      "after",
      "\nFigures are MB/s of input on one thread (pack: 1 and all threads), best of the runs; they" +
        "\nmove with the machine's load, so compare figures from one run.\n\nExample:\n" +
        "  hexz bench vm.img --size 256M",
    )
    .action(async (file: string | undefined, o) => {
      const size = parseSize(o.size, "--size");
      if (size < 1 << 20 || size > 1 << 30) {
        throw new HexzError("usage", `--size ${o.size}: must be between 1M and 1G`);
      }
      const runs = optionalInteger(o.runs, "--runs");
      if (runs !== undefined && (runs < 1 || runs > 100)) {
        throw new HexzError("usage", `--runs ${o.runs}: must be 1..100`);
      }
      const { bench } = await import("../diag/bench.ts");
      const progress = createProgress("bench", !!o.silent || !!o.json);
      const steps = 10;
      let done = 0;
      const r = await bench({
        file,
        size,
        runs,
        onStep: () => progress.update(done++, steps),
      }).finally(() => progress.finish());
      if (o.json) return out(JSON.stringify(r, null, 2));
      out(`input: ${r.input}, ${formatSize(r.bytes)}; ${r.workers} threads for the parallel pack`);
      const w = Math.max(...r.rows.map((x) => x.name.length));
      for (const x of r.rows) {
        const ratio = x.ratio === null ? "" : `  ratio ${x.ratio.toFixed(2)}x`;
        out(`${x.name.padEnd(w)}  ${x.mbps.toFixed(0).padStart(6)} MB/s${ratio}`);
      }
    });
}
