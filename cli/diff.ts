import { Command } from "./command.ts";
import { diffArchives } from "../core/history/diff.ts";
import { info, out } from "./common.ts";
import { openWithPassword, passwordFileOption } from "./password.ts";
import { equalBytes } from "../core/format/bytes.ts";
import { formatSize, plural } from "./units.ts";

export function diffCommand(): Command {
  return new Command("diff")
    .description("compare the blocks of two archives: shared, unique, and what dedup saves")
    .argument("<a>", "first archive")
    .argument("<b>", "second archive")
    .option("--json", "machine-readable output")
    .addOption(passwordFileOption())
    .addHelpText("after", "\nExample:\n  hexz diff base-model.hxz finetune.hxz")
    .action(async (pa: string, pb: string, o) => {
      const a = await openWithPassword(pa, { passwordFile: o.passwordFile });
      try {
        const b = await openWithPassword(pb, { passwordFile: o.passwordFile });
        try {
          const r = await diffArchives(a, b);
          if (o.json) {
            out(JSON.stringify(r, null, 2));
            return;
          }
          if (!r.sameChunking) {
            info(`hexz: note: the archives are chunked differently; few blocks can match`);
          }
          const [ea, eb] = [a.header.encryption, b.header.encryption];
          if ((ea || eb) && !(ea && eb && equalBytes(ea.chainSalt, eb.chainSalt))) {
            // Encrypted block hashes are keyed per chain: equal blocks get different hashes.
            info(`hexz: note: the archives are not encrypted in one chain; no block can match`);
          }
          const row = (name: string, s: typeof r.a) =>
            out(
              `${name}: ${plural(s.blocks, "block")}, ${formatSize(s.bytes)} of data (+${
                formatSize(s.zeroBytes)
              } zeros); ` +
                `unique ${plural(s.uniqueBlocks, "block")}, ${formatSize(s.uniqueBytes)}`,
            );
          row(pa, r.a);
          row(pb, r.b);
          out(`shared: ${plural(r.sharedBlocks, "block")}, ${formatSize(r.sharedBytes)}`);
          out(
            r.changedFraction === null
              ? `changed: - (${pb} holds no data but zeros)`
              : `changed: ${(r.changedFraction * 100).toFixed(1)}% of ${pb}'s data is not in ${pa}`,
          );
          out(`dedup saves: ${formatSize(r.dedupSavings)} when both live in one chain`);
        } finally {
          b.close();
        }
      } finally {
        a.close();
      }
    });
}
