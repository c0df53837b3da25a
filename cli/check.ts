import { Command } from "./command.ts";
import { checkArchive as check } from "../core/read/check.ts";
import { info, withArchive } from "./common.ts";
import { passwordFileOption } from "./password.ts";
import { createProgress } from "./progress.ts";
import { formatSize, optionalInteger, plural } from "./units.ts";

export function checkCommand(): Command {
  return new Command("check")
    .description("verify every checksum and block hash; exit 1 naming the first bad record")
    .argument("<archive>", "archive (.hxz)")
    .option("--workers <n>", "verify in N threads (default: the number of cores)")
    .option("-q, --silent", "no progress and no summary")
    .addOption(passwordFileOption())
    .addHelpText("after", "\nExample:\n  hexz check vm.hxz || echo damaged")
    .action(async (path: string, o) => {
      const workers = optionalInteger(o.workers, "--workers");
      const progress = createProgress("check", !!o.silent);
      const r = await withArchive(
        path,
        (a) => check(a, { onProgress: (d, t) => progress.update(d, t), workers }),
        { passwordFile: o.passwordFile },
      ).finally(() => progress.finish());
      info(
        `${path}: ok (${plural(r.blocks, "block")}, ${plural(r.pages, "page")}, ${
          plural(r.sections, "section")
        }, ${formatSize(r.bytes)} verified)`,
        !!o.silent,
      );
    });
}
