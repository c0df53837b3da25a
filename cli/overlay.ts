import { Command } from "./command.ts";
import {
  compactOverlay,
  openOverlay,
  OVERLAY_BLOCK,
  readOverlayHeader,
} from "../core/overlay/overlay.ts";
import { formatUuid } from "../core/format/header.ts";
import { STREAMS } from "../core/format/constants.ts";
import { HexzError } from "../core/errors.ts";
import { out } from "./common.ts";
import { openWithPassword, passwordFileOption } from "./password.ts";
import { formatSize, plural } from "./units.ts";
import { fileTable } from "../core/read/files.ts";
import { type ChangedFile, changedFiles } from "../core/overlay/changed_files.ts";

/** Consecutive numbers as [first, last] runs. */
function runs(nums: number[]): [number, number][] {
  const r: [number, number][] = [];
  for (const n of nums) {
    const last = r[r.length - 1];
    if (last && last[1] === n - 1) last[1] = n;
    else r.push([n, n]);
  }
  return r;
}

export function overlayCommand(): Command {
  return new Command("overlay")
    .description("show what an overlay changed")
    .argument("<overlay>", "overlay file (.hxo)")
    .option(
      "--base <archive>",
      "the archive the overlay was written on (default: vm.hxz for vm.hxo)",
    )
    .option("--blocks", "list the changed 4 KiB block ranges")
    .option("--files", "directory archives: list the files whose contents changed")
    .option(
      "--compact",
      "first rewrite the file with only each block's latest content (not while it is in use)",
    )
    .option("--json", "machine-readable output")
    .addOption(passwordFileOption())
    .addHelpText(
      "after",
      "\nExamples:\n  hexz overlay vm.hxo --base vm.hxz --blocks\n  hexz overlay vm.hxo --compact",
    )
    .action(async (path: string, o) => {
      if (o.base === undefined) {
        if (!path.endsWith(".hxo")) {
          throw new HexzError("usage", `${path}: give --base (the archive it was written on)`);
        }
        o.base = path.slice(0, -4) + ".hxz";
      }
      const head = await readOverlayHeader(path);
      // Only --files reads the base's contents (its file table), and compaction the blocks
      // of an encrypted overlay; the rest needs the base's header.
      const base = await openWithPassword(o.base, {
        passwordFile: o.passwordFile,
        prompt: !!o.files || !!o.compact,
      });
      try {
        const compacted = o.compact ? await compactOverlay(path, base) : null;
        const ov = await openOverlay(path, base, { readOnly: true });
        try {
          const st = ov.stats();
          const streams = STREAMS.map((name, id) => ({
            name,
            changedBlocks: st.changedBlocks[id],
            changedBytes: st.changedBlocks[id] * OVERLAY_BLOCK,
            zeroBlocks: st.zeroBlocks[id],
            ranges: o.blocks ? runs(ov.changed(id)) : undefined,
          }));
          let files: ChangedFile[] | undefined;
          if (o.files) {
            const table = await fileTable(base);
            if (!table) {
              throw new HexzError("usage", `--files: ${o.base} is not a directory archive`);
            }
            files = changedFiles(table, ov.changed(0));
          }
          if (o.json) {
            out(
              JSON.stringify(
                {
                  base: formatUuid(head.baseUuid),
                  encrypted: ov.encrypted,
                  records: st.records,
                  fileSize: st.fileSize,
                  compactSize: st.compactSize,
                  streams,
                  files,
                },
                null,
                2,
              ),
            );
            return;
          }
          if (compacted) {
            out(`compacted: ${formatSize(compacted.before)} -> ${formatSize(compacted.after)}`);
          }
          out(
            `overlay: ${path} (${formatSize(st.fileSize)}, ${plural(st.records, "record")}` +
              `${ov.encrypted ? ", encrypted" : ""})`,
          );
          out(`base: ${o.base} (uuid ${formatUuid(head.baseUuid)})`);
          for (const s of streams) {
            if (!s.changedBlocks) continue;
            out(
              `${s.name}: ${plural(s.changedBlocks, "block")} changed (${
                formatSize(s.changedBytes)
              }), ${s.zeroBlocks} zeroed`,
            );
            for (const [a, b] of s.ranges ?? []) {
              out(`  blocks ${a}-${b}  bytes ${a * OVERLAY_BLOCK}-${(b + 1) * OVERLAY_BLOCK - 1}`);
            }
          }
          if (!streams.some((s) => s.changedBlocks)) out("no changes");
          if (files) {
            out(`files: ${files.length} changed`);
            for (const f of files) {
              out(`  ${f.path}  ${formatSize(f.changedBytes)} of ${formatSize(f.size)} changed`);
            }
          }
        } finally {
          await ov.close();
        }
      } catch (e) {
        if (e instanceof HexzError && e.code === "parent") {
          throw new HexzError("parent", `${path} was not written on ${o.base}`);
        }
        throw e;
      } finally {
        base.close();
      }
    });
}
