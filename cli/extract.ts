import { Command } from "commander";
import { extract } from "../mod.ts";
import { info, withArchive } from "./common.ts";
import { createProgress } from "./progress.ts";
import { formatSize } from "./units.ts";

export function extractCommand(): Command {
  return new Command("extract")
    .description("restore a stream bit for bit (zero runs become holes)")
    .argument("<archive>", "archive (.hxz)")
    .argument("<output>", "file to write")
    .option("--memory", "extract the memory stream instead of the disk")
    .option("-f, --force", "overwrite an existing output")
    .option("-q, --silent", "no progress and no summary")
    .addHelpText("after", "\nExample:\n  hexz extract vm.hxz vm.img && cmp vm.img original.img")
    .action(async (path: string, output: string, o) => {
      const progress = createProgress("extract", !!o.silent);
      const res = await withArchive(path, (a) =>
        extract(a, output, {
          stream: o.memory ? "memory" : "disk",
          force: !!o.force,
          onProgress: (d, t) => progress.update(d, t),
        })).finally(() => progress.finish());
      info(`${output}: ${formatSize(res.bytes)} restored`, !!o.silent);
    });
}
