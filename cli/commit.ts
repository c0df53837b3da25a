import { Command, Option } from "./command.ts";
import { commitOverlay } from "../core/overlay/commit.ts";
import { openOverlay } from "../core/overlay/overlay.ts";
import { parseCodecName } from "../core/codec/codec.ts";
import { HexzError } from "../core/errors.ts";
import { fileOutput, info } from "./common.ts";
import { openWithPassword, passwordFileOption } from "./password.ts";
import { createProgress } from "./progress.ts";
import { formatSize, optionalInteger, parseBlockSize } from "./units.ts";

export function commitCommand(): Command {
  return new Command("commit").writesOutput()
    .description("turn an archive plus an overlay of writes into a new archive")
    .argument("<base>", "archive the overlay was written on")
    .argument("<overlay>", "overlay file (.hxo)")
    .argument("<output>", "archive to create")
    .option("--thin", "store only what changed, as a child of <base> (the default)")
    .option("--flatten", "write a self-contained archive")
    .option("-m, --message <text>", "a note stored in the header (default: the base's)")
    .option("--keep-overlay", "keep the overlay file (it is deleted after a successful commit)")
    .addOption(
      new Option("--compression <codec>", "block codec (default: the base's)").choices([
        "lz4",
        "zstd",
        "none",
      ]),
    )
    .option("--level <n>", "codec level (default: the base's, or the codec's default)")
    .option("--block-size <size>", "fixed block size for --flatten (default: the base's chunking)")
    .addOption(passwordFileOption())
    .option("-f, --force", "overwrite an existing output")
    .option("-q, --silent", "no progress and no summary")
    .addHelpText(
      "after",
      "\nExample:\n  hexz commit vm.hxz vm.hxo vm-v2.hxz --message 'after apt upgrade'",
    )
    .action(async (basePath: string, overlayPath: string, output: string, o) => {
      fileOutput(output, "an archive is read at random, so it is written to a file");
      if (o.blockSize !== undefined && !o.flatten) {
        throw new HexzError(
          "usage",
          "--block-size needs --flatten (a thin archive keeps its base's chunking)",
        );
      }
      if (o.compression === "none" && o.level !== undefined) {
        throw new HexzError("usage", "--level: --compression none has no levels");
      }
      if (o.thin && o.flatten) {
        throw new HexzError("usage", "--thin and --flatten exclude each other");
      }
      // Every flag is checked before anything is opened.
      const compression = o.compression ? parseCodecName(o.compression) : undefined;
      const level = optionalInteger(o.level, "--level");
      const blockSize = o.blockSize ? parseBlockSize(o.blockSize, "--block-size") : undefined;
      // An encrypted base gives an archive encrypted with the same password.
      const base = await openWithPassword(basePath, { passwordFile: o.passwordFile });
      const progress = createProgress("commit", !!o.silent);
      try {
        const ov = await openOverlay(overlayPath, base, { readOnly: true });
        try {
          const res = await commitOverlay(base, ov, {
            output,
            mode: o.flatten ? "flatten" : "thin",
            basePath,
            message: o.message,
            compression,
            level,
            blockSize,
            force: !!o.force,
            onProgress: (p) => progress.update(p.done, p.total),
          });
          progress.finish();
          info(`${output}: ${formatSize(res.outputBytes)} written`, !!o.silent);
        } finally {
          await ov.close();
        }
        if (!o.keepOverlay) await Deno.remove(overlayPath);
      } finally {
        progress.finish();
        base.close();
      }
    });
}
