import { Command } from "commander";
import { inspect, type InspectReport } from "../mod.ts";
import { out, withArchive } from "./common.ts";
import { formatRatio, formatSize } from "./units.ts";

export function inspectCommand(): Command {
  return new Command("inspect")
    .description("show what an archive holds (header only, no block is read)")
    .argument("<archive>", "archive (.hxz)")
    .option("--json", "machine-readable output")
    .addHelpText("after", "\nExample:\n  hexz inspect vm.hxz --json | jq .streams")
    .action(async (path: string, o) => {
      // The header alone: works even when a thin archive's parent is missing.
      const report = await withArchive(path, (a) => Promise.resolve(inspect(a)), {
        lazyParents: true,
      });
      if (o.json) out(JSON.stringify(report, (_k, v) => v === Infinity ? null : v, 2));
      else printReport(report);
    });
}

function printReport(r: InspectReport) {
  const c = r.chunking;
  out(`archive: ${r.path}`);
  out(`file size: ${formatSize(r.fileSize)} (${r.fileSize} bytes)`);
  out(`format: hexz ${r.formatVersion}, written by ${r.toolVersion || "unknown"}`);
  out(`uuid: ${r.uuid}`);
  out(`root hash: ${r.rootHash}`);
  out(`created: ${r.createdAt}`);
  if (r.message) out(`message: ${r.message}`);
  if (r.features.length) out(`features: ${r.features.join(", ")}`);
  out(
    `compression: ${r.compression.codec}${
      r.compression.codec === "none" ? "" : ` level ${r.compression.level}`
    }`,
  );
  out(
    c.mode === "fixed"
      ? `chunking: fixed ${formatSize(c.blockSize)} blocks`
      : `chunking: FastCDC min ${formatSize(c.min)}, avg ${formatSize(c.avg)}, max ${
        formatSize(c.max)
      }`,
  );
  if (r.parent) out(`parent: ${r.parent.path} (uuid ${r.parent.uuid})`);
  if (r.dictionaryBytes) out(`dictionary: ${formatSize(r.dictionaryBytes)}`);
  if (r.metadataBytes) out(`metadata: ${formatSize(r.metadataBytes)}`);
  for (const s of r.streams) {
    if (!s.blocks) continue;
    out(`${s.name}:`);
    out(`  size: ${formatSize(s.logicalSize)} (${s.logicalSize} bytes)`);
    out(`  stored: ${formatSize(s.storedBytes)} (${formatRatio(s.ratio)})`);
    out(
      `  blocks: ${s.blocks} (data ${s.dataBlocks}, zero ${s.zeroBlocks}, dedup ${s.dedupBlocks}` +
        (s.parentBlocks ? `, in parent chain ${s.parentBlocks}` : "") + `)`,
    );
    if (s.parentBlocks) out(`  in parent chain: ${formatSize(s.parentBytes)}`);
    out(`  index pages: ${s.pages}`);
  }
  out(`compression ratio: ${formatRatio(r.compressionRatio)}`);
  out(`dedup ratio: ${formatRatio(r.dedupRatio)}`);
  out(`signed: ${r.signed ? "yes" : "no"}`);
}
