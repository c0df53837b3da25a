import { Command, Option, usage } from "./command.ts";
import { parseCodecName } from "../core/codec/level.ts";
import { fileOutput, info, withArchive } from "./common.ts";
import { passwordFileOption } from "./password.ts";
import { noteNoDictionary, packSession, sizesLine } from "./pack_session.ts";
import { createProgress } from "./progress.ts";
import { formatSize, optionalInteger, parseBlockSize, parseSize } from "./units.ts";
import { checkCombination } from "./pack.ts";

const FORMATS = ["tar", "tar.gz", "tar.zst", "hxz"] as const;
type Format = typeof FORMATS[number];

/** The format a file name says, as tar and zstd name their files. */
function formatOf(path: string): Format | null {
  const p = path.toLowerCase();
  if (p.endsWith(".hxz")) return "hxz";
  if (p.endsWith(".tar")) return "tar";
  if (p.endsWith(".tar.gz") || p.endsWith(".tgz")) return "tar.gz";
  if (p.endsWith(".tar.zst") || p.endsWith(".tzst")) return "tar.zst";
  return null;
}

export function convertCommand(): Command {
  return new Command("convert").writesOutput()
    .description("tar, tar.gz, tar.zst, WebDataset shards and HDF5 to an archive, and back")
    .argument(
      "<paths...>",
      "inputs, then the output (format from its name, or --to); - is stdin, or stdout for a tar",
    )
    .addOption(new Option("--to <format>", "output format").choices(FORMATS))
    .addOption(
      new Option("--compression <codec>", "to .hxz: block codec (default lz4)").choices([
        "lz4",
        "zstd",
        "none",
      ]),
    )
    .option("--level <n>", "to .hxz: codec level as in pack; to tar.gz 1-9, tar.zst 1-19")
    .option("--block-size <size>", "to .hxz: fixed block size, 1K-16M (default 64K)")
    .option("--cdc", "to .hxz: content-defined chunking (FastCDC, 16/64/128 KiB)")
    .option("--train-dict", "to .hxz: train a zstd dictionary on the files (a first pass)")
    .option("--dict-size <size>", "with --train-dict: dictionary size limit (default 110K)")
    .option("--workers <n>", "to .hxz: hash and compress in N threads (default: the cores)")
    .option("--base <archive>", "to .hxz: thin, storing only blocks not in this archive's chain")
    .option("--encrypt", "to .hxz: encrypt with a password (AES-256-GCM; see docs/SECURITY.md)")
    .addOption(
      new Option("--kdf <name>", "with --encrypt: key derivation (default argon2id)").choices([
        "argon2id",
        "pbkdf2",
      ]),
    )
    .option("--random-nonce", "with --encrypt: random nonces (equal blocks no longer match)")
    .option(
      "--shard-size <size>",
      "to tar: shards of at most SIZE (output is a pattern like out-%06d.tar)",
    )
    .addOption(passwordFileOption())
    .option("-m, --message <text>", "to .hxz: a note stored in the header")
    .option("-f, --force", "overwrite existing outputs")
    .option("-q, --silent", "no progress and no summary")
    .addHelpText(
      "after",
      `
Examples:
  hexz convert rootfs.tar.gz rootfs.hxz --compression zstd
  hexz convert shard-000.tar shard-001.tar train.hxz     # one tree; shard ends recorded
  hexz convert model.h5 model.hxz                       # one file per HDF5 dataset
  hexz convert train.hxz train.tar.zst
  curl -s https://host/data.tar.gz | hexz convert - data.hxz
  hexz convert data.hxz - | tar -x -C ./data
  hexz convert train.hxz out-%06d.tar --shard-size 1G    # samples are never split
  hexz convert train.hxz shard-%03d.tar                  # the shards it was made from`,
    )
    .action(async (paths: string[], o) => {
      if (paths.length < 2) throw usage("give the inputs, then the output");
      const output = paths[paths.length - 1];
      const inputs = paths.slice(0, -1);
      if (inputs.filter((p) => p === "-").length > 1) throw usage("standard input ('-') twice");
      // A tar to standard output (`- | tar x`); an archive is read at random, so never.
      const format = (o.to as Format | undefined) ?? (output === "-" ? "tar" : formatOf(output));
      if (format === "hxz") {
        fileOutput(output, "an archive is read at random, so it is written to a file");
      }
      if (!format) {
        throw usage(
          `${output}: cannot tell the format from the name (.hxz, .tar, .tar.gz, .tar.zst): ` +
            "give --to",
        );
      }
      if (format === "hxz") await toArchive(inputs, output, o);
      else await toTar(inputs, output, format, o);
    });
}

// deno-lint-ignore no-explicit-any
async function toArchive(inputs: string[], output: string, o: Record<string, any>) {
  if (o.shardSize !== undefined) throw usage("--shard-size applies to tar output");
  checkCombination(o);
  const compression = parseCodecName(o.compression ?? "lz4");
  const level = optionalInteger(o.level, "--level");
  const workers = optionalInteger(o.workers, "--workers");
  const blockSize = o.blockSize ? parseBlockSize(o.blockSize, "--block-size") : undefined;
  const trainDictionary = o.trainDict
    ? { maxSize: parseSize(o.dictSize ?? "110K", "--dict-size") }
    : false;
  const hdf5 = inputs.filter(isHdf5);
  if (hdf5.length) {
    if (inputs.length > 1) {
      throw usage(`an HDF5 file converts on its own: got ${inputs.length} inputs`);
    }
    if (trainDictionary) throw usage("--train-dict applies to tar inputs");
    return await fromHdf5(inputs[0], output, o, { compression, level, workers, blockSize });
  }
  const stdin = { name: "stdin", stream: Deno.stdin.readable };
  const res = await packSession(
    "convert",
    o,
    trainDictionary ? null : { compression, level, workers },
    async (session) => {
      const { tarToArchive } = await import("../mod.ts");
      return await tarToArchive({
        ...session,
        inputs: inputs.map((p) => p === "-" ? stdin : p),
        output,
        compression,
        level,
        blockSize,
        cdc: !!o.cdc,
        trainDictionary,
        workers,
        message: o.message,
        force: !!o.force,
      });
    },
  );
  noteNoDictionary(trainDictionary, res, !!o.silent);
  info(`${output}: ${res.entries} entries, ${sizesLine(res)}`, !!o.silent);
}

/** HDF5 by its name (.h5, .hdf5, .he5) or its signature at offset 0. */
function isHdf5(path: string): boolean {
  if (path === "-") return false; // standard input is read as a tar
  if (/\.(h5|hdf5|he5)$/i.test(path)) return true;
  try {
    const f = Deno.openSync(path);
    try {
      const head = new Uint8Array(8);
      const n = f.readSync(head);
      return n === 8 && head.every((b, i) => b === HDF5_SIGNATURE[i]);
    } finally {
      f.close();
    }
  } catch {
    return false; // the tar path reports what is wrong with it
  }
}

const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

/** One HDF5 file: each dataset becomes a file (docs/HDF5.md). */
async function fromHdf5(
  source: string,
  output: string,
  // deno-lint-ignore no-explicit-any
  o: Record<string, any>,
  p: {
    compression: ReturnType<typeof parseCodecName>;
    level?: number;
    workers?: number;
    blockSize?: number;
  },
) {
  const res = await packSession("convert", o, p, async (session) => {
    const { packHdf5 } = await import("../mod.ts");
    return await packHdf5({
      ...session,
      ...p,
      source,
      output,
      cdc: !!o.cdc,
      message: o.message,
      force: !!o.force,
      onWarning: (m) => info(`hexz: warning: ${m}`, !!o.silent),
    });
  });
  info(
    `${output}: ${res.datasets} datasets${res.skipped ? ` (${res.skipped} skipped)` : ""}, ${
      sizesLine(res)
    }`,
    !!o.silent,
  );
}

async function toTar(
  inputs: string[],
  output: string,
  format: Exclude<Format, "hxz">,
  // deno-lint-ignore no-explicit-any
  o: Record<string, any>,
) {
  if (inputs.length !== 1) {
    throw usage(`converting to ${format} takes one archive, got ${inputs.length} inputs`);
  }
  for (
    const flag of [
      "blockSize",
      "cdc",
      "trainDict",
      "dictSize",
      "workers",
      "message",
      "base",
      "encrypt",
      "kdf",
      "randomNonce",
    ]
  ) {
    if (o[flag] !== undefined) {
      const name = flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
      throw usage(`--${name} applies to .hxz output`);
    }
  }
  if (o.compression !== undefined) {
    throw usage("--compression applies to .hxz output (a tar's comes from its name or --to)");
  }
  const level = optionalInteger(o.level, "--level");
  const shardSize = o.shardSize !== undefined ? parseSize(o.shardSize, "--shard-size") : undefined;
  const compression = format === "tar.gz" ? "gzip" : format === "tar.zst" ? "zstd" : "none";
  const progress = createProgress("convert", !!o.silent);
  if (output === "-") {
    if (shardSize !== undefined) throw usage("--shard-size writes files: give an output pattern");
    if (Deno.stdout.isTerminal()) {
      throw usage("refusing to write a tar to a terminal (redirect it, or give a file)");
    }
    const { tarStream } = await import("../mod.ts");
    await withArchive(inputs[0], async (a) => {
      for await (
        const c of await tarStream(a, { compression, level, onProgress: progress.update })
      ) {
        for (let at = 0; at < c.length;) at += Deno.stdout.writeSync(c.subarray(at));
      }
    }, { passwordFile: o.passwordFile }).finally(() => progress.finish());
    return;
  }
  const { archiveToTar, isShardPattern } = await import("../mod.ts");
  const res = await withArchive(inputs[0], (a) =>
    archiveToTar(a, {
      output,
      compression,
      level,
      shardSize,
      shards: shardSize === undefined && isShardPattern(output),
      force: !!o.force,
      onProgress: (d, t) => progress.update(d, t),
    }), { passwordFile: o.passwordFile }).finally(() => progress.finish());
  const where = res.outputs.length === 1 ? res.outputs[0] : `${res.outputs.length} shards`;
  info(`${where}: ${res.entries} entries, ${formatSize(res.bytes)} of content`, !!o.silent);
}
