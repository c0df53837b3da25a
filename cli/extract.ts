import { Command } from "./command.ts";
import { HexzError } from "../core/errors.ts";
import { extractStream as extract } from "../core/read/extract.ts";
import { fileTable } from "../core/read/files.ts";
import { extractTree } from "../mod.ts";
import { fileOutput, info, withArchive } from "./common.ts";
import { passwordFileOption } from "./password.ts";
import { createProgress } from "./progress.ts";
import { formatSize, optionalInteger, plural } from "./units.ts";

export function extractCommand(): Command {
  return new Command("extract").writesOutput()
    .description("restore a stream bit for bit (zero runs become holes), or a directory tree")
    .argument("<archive>", "archive (.hxz)")
    .argument("<output>", "file to write (a directory for directory archives)")
    .argument("[paths...]", "directory archives: restore only these paths and what is under them")
    .option("--memory", "extract the memory stream instead of the disk")
    .option("-f, --force", "overwrite an existing output")
    .option("-q, --silent", "no progress and no summary")
    .option("--raw", "for directory archives: write the raw disk stream instead of the tree")
    .option("--workers <n>", "decode in N threads (default: the number of cores)")
    .addOption(passwordFileOption())
    .addHelpText(
      "after",
      "\nExamples:\n  hexz extract vm.hxz vm.img && cmp vm.img original.img\n  hexz extract rootfs.hxz ./rootfs\n  hexz extract rootfs.hxz ./out etc usr/bin/ls",
    )
    .action(async (path: string, output: string, paths: string[], o) => {
      fileOutput(output, "extract writes files ('hexz cat' writes a stream to stdout)");
      if (paths.length && (o.raw || o.memory)) {
        throw new HexzError(
          "usage",
          `paths choose files of a directory archive's tree: not with ${
            o.raw ? "--raw" : "--memory"
          }`,
        );
      }
      const progress = createProgress("extract", !!o.silent);
      const msg = await withArchive(path, async (a) => {
        const onProgress = (d: number, t: number) => progress.update(d, t);
        const workers = optionalInteger(o.workers, "--workers");
        const tree = !o.memory && !o.raw && await fileTable(a);
        if (paths.length && !tree) {
          throw new HexzError(
            "usage",
            `${path}: not a directory archive: paths cannot be chosen (it holds streams)`,
          );
        }
        if (tree) {
          const warnings: string[] = [];
          const r = await extractTree(a, output, {
            force: !!o.force,
            onProgress,
            workers,
            paths,
            onWarning: (m) => warnings.push(m),
          });
          progress.finish();
          // Always shown, even with --silent: what is missing from the tree.
          for (const w of warnings) console.error(`hexz: warning: ${w}`);
          if (r.notCreated) {
            // As GNU tar: the rest is restored, and the exit status says something was not.
            throw new HexzError(
              "io",
              `${output}: extracted without ${plural(r.notCreated, "entry", "entries")}`,
            );
          }
          return `${output}: ${plural(r.entries, "entry", "entries")}, ${
            formatSize(r.bytes)
          } restored`;
        }
        const r = await extract(a, output, {
          stream: o.memory ? "memory" : "disk",
          force: !!o.force,
          onProgress,
          workers,
        });
        return `${output}: ${formatSize(r.bytes)} restored`;
      }, { passwordFile: o.passwordFile }).finally(() => progress.finish());
      info(msg, !!o.silent);
    });
}
