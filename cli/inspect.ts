import { Command } from "./command.ts";
import { inspectArchive as inspect, type InspectReport } from "../core/read/inspect.ts";
import { fileTable } from "../core/read/files.ts";
import type { FileEntry } from "../core/format/filetable.ts";
import { out, withArchive } from "./common.ts";
import { passwordFileOption } from "./password.ts";
import { formatRatio, formatSize, plural } from "./units.ts";

export function inspectCommand(): Command {
  return new Command("inspect")
    .description("show what an archive holds (header only, no block is read)")
    .argument("<archive>", "archive (.hxz)")
    .option("--json", "machine-readable output")
    .option("--files", "directory archives: list the file table")
    .addOption(passwordFileOption())
    .addHelpText("after", "\nExample:\n  hexz inspect vm.hxz --json | jq .streams")
    .action(async (path: string, o) => {
      // The header alone: works even when a thin archive's parent is missing.
      const [report, files, dict] = await withArchive(
        path,
        async (a) =>
          [
            inspect(a),
            o.files ? await fileTable(a) : null,
            a.header.dictionary.length ? dictionaryTraining(await a.metadata()) : null,
          ] as const,
        // Without a password an encrypted archive shows its header; --files needs the key.
        { lazyParents: true, passwordFile: o.passwordFile, prompt: !!o.files },
      );
      if (o.json) {
        const withDict = dict ? { ...report, dictionaryTraining: dict } : report;
        const all = o.files ? { ...withDict, files: (files ?? []).map(fileJson) } : withDict;
        out(JSON.stringify(all, null, 2));
        return;
      }
      printReport(report);
      if (dict) {
        out(
          `dictionary gain: zstd ratio ${formatRatio(dict.evalBytes / dict.evalZstd)} -> ${
            formatRatio(dict.evalBytes / dict.evalZstdDict)
          } on ${formatSize(dict.evalBytes)} of held-out samples`,
        );
      }
      if (o.files) printFiles(files ?? []);
    });
}

interface DictionaryTraining {
  evalBytes: number;
  evalZstd: number;
  evalZstdDict: number;
}

/** The training figures pack records in the metadata, if they are there and well-formed. */
function dictionaryTraining(meta: unknown): DictionaryTraining | null {
  const d = (meta as { dictionary?: Record<string, unknown> } | null)?.dictionary;
  if (!d || typeof d !== "object") return null;
  const ok = ["evalBytes", "evalZstd", "evalZstdDict"].every((k) =>
    typeof d[k] === "number" && (d[k] as number) > 0
  );
  return ok ? d as unknown as DictionaryTraining : null;
}

/** An entry as JSON: xattr values (bytes) in base64, as `getfattr -e base64` shows them. */
function fileJson(f: FileEntry): unknown {
  if (!f.xattrs) return f;
  const base64 = (b: Uint8Array) => btoa(Array.from(b, (c) => String.fromCharCode(c)).join(""));
  return { ...f, xattrs: f.xattrs.map((x) => ({ name: x.name, value: base64(x.value) })) };
}

/** `ls -l`'s first letter of each type; "h" for a hard link, as tar -tv shows one. */
const KIND: Record<FileEntry["type"], string> = {
  file: "-",
  dir: "d",
  symlink: "l",
  chardev: "c",
  blockdev: "b",
  fifo: "p",
};

function printFiles(files: FileEntry[]) {
  out(`files: ${plural(files.length, "entry", "entries")}`);
  for (const f of files) {
    // As tar -tv shows them: "l" and "->" for symlinks, "h" and "link to" for hard links,
    // "major,minor" in the size column for devices; a "+" after the mode: xattrs (ls -l's
    // mark for an ACL).
    const kind = f.hardLinkTo ? "h" : KIND[f.type];
    const mode = f.mode.toString(8).padStart(4, "0") + (f.xattrs ? "+" : " ");
    const when = new Date(f.mtimeMs).toISOString().slice(0, 19).replace("T", " ");
    const size = f.major !== undefined ? `${f.major},${f.minor}` : String(f.size);
    const name = f.type === "symlink"
      ? `${f.path} -> ${f.target}`
      : f.hardLinkTo
      ? `${f.path} link to ${f.hardLinkTo}`
      : f.path;
    out(`  ${kind}${mode}${size.padStart(12)} ${when} ${name}`);
  }
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
  if (r.encryption) {
    const e = r.encryption;
    out(`encryption: ${e.cipher}, key from ${e.kdfDescription}, ${e.nonces} nonces`);
    out(`password: ${e.unlocked ? "given, correct" : "not given (only the header is readable)"}`);
  }
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
    out(`  index pages: ${s.pages} (${formatSize(s.indexBytes)})`);
  }
  out(`compression ratio: ${formatRatio(r.compressionRatio)}`);
  out(`dedup ratio: ${formatRatio(r.dedupRatio)}`);
  out(`signed: ${r.signed ? "yes" : "no"}`);
}
