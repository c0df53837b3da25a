import { Command, Option } from "./command.ts";
import { parseCodecName } from "../core/codec/level.ts";
import { DEFAULT_CDC } from "../core/chunk/fastcdc.ts";
import { fileOutput, info } from "./common.ts";
import { passwordFileOption } from "./password.ts";
import { noteNoDictionary, packSession, sizesLine } from "./pack_session.ts";
import { HexzError } from "../core/errors.ts";
import { optionalInteger, parseBlockSize, parseSize } from "./units.ts";

const k = (n: number) => `${n / 1024}K`;

/** Refuses flags that the other flags would make pack ignore (convert to .hxz uses it too). */
export function checkCombination(o: Record<string, string | boolean | undefined>): void {
  const refuse = (message: string) => {
    throw new HexzError("usage", message);
  };
  if (o.compression === "none" && o.level !== undefined) {
    refuse("--level: --compression none has no levels");
  }
  if (o.cdc && o.blockSize !== undefined) {
    refuse("--block-size is for fixed blocks: with --cdc give --min-chunk/--avg-chunk/--max-chunk");
  }
  for (
    const [key, flag] of [["minChunk", "--min-chunk"], ["avgChunk", "--avg-chunk"], [
      "maxChunk",
      "--max-chunk",
    ]]
  ) {
    if (!o.cdc && o[key] !== undefined) refuse(`${flag} goes with --cdc`);
  }
  if (!o.trainDict && o.dictSize !== undefined) refuse("--dict-size goes with --train-dict");
}

export function packCommand(): Command {
  return new Command("pack").writesOutput()
    .description("pack a disk image and/or memory dump into an archive")
    .argument("<output>", "archive to create (.hxz)")
    .option("--disk <path>", "disk image (main stream)")
    .option("--memory <path>", "memory dump (auxiliary stream)")
    .addOption(
      new Option("--compression <codec>", "block codec").choices(["lz4", "zstd", "none"]).default(
        "lz4",
      ),
    )
    .option("--level <n>", "codec level (zstd: 1-22, default 3; lz4: acceleration, default 1)")
    .option("--block-size <size>", "fixed block size, 1K-16M (default 64K; --base: the base's)")
    .option("--cdc", "content-defined chunking (FastCDC) instead of fixed blocks")
    .option("--min-chunk <size>", `with --cdc: minimum chunk (default ${k(DEFAULT_CDC.min)})`)
    .option(
      "--avg-chunk <size>",
      `with --cdc: average chunk, a power of two (default ${k(DEFAULT_CDC.avg)})`,
    )
    .option("--max-chunk <size>", `with --cdc: maximum chunk (default ${k(DEFAULT_CDC.max)})`)
    .option(
      "--base <archive>",
      "thin archive: store only blocks not already in this archive's chain",
    )
    .option("--train-dict", "train a zstd dictionary on samples of the input and use it")
    .option("--dict-size <size>", "with --train-dict: dictionary size limit (default 110K)")
    .option("--workers <n>", "hash and compress in N threads (default: the number of cores)")
    .option("--encrypt", "encrypt with a password (AES-256-GCM; see docs/SECURITY.md)")
    .addOption(
      new Option("--kdf <name>", "with --encrypt: key derivation (default argon2id)").choices([
        "argon2id",
        "pbkdf2",
      ]),
    )
    .option("--random-nonce", "with --encrypt: random nonces (equal blocks no longer match)")
    .addOption(passwordFileOption())
    .option("-m, --message <text>", "a note stored in the header")
    .option("-f, --force", "overwrite an existing output")
    .option("-q, --silent", "no progress and no summary")
    .addHelpText(
      "after",
      `
Examples:
  hexz pack vm.hxz --disk vm.img
  hexz pack snap.hxz --disk disk.raw --memory mem.dump --compression zstd --level 6 --cdc
  hexz pack v2.hxz --disk v2.img --base v1.hxz        # thin: only what changed since v1
  hexz pack vm.hxz --disk vm.img --encrypt             # asks for a new password twice
  hexz pack logs.hxz --disk logs.img --compression zstd --block-size 16K --train-dict`,
    )
    .action(async (output: string, o) => {
      fileOutput(output, "an archive is read at random, so it is written to a file");
      checkCombination(o);
      const compression = parseCodecName(o.compression);
      const level = optionalInteger(o.level, "--level");
      const workers = optionalInteger(o.workers, "--workers");
      const blockSize = o.blockSize ? parseBlockSize(o.blockSize, "--block-size") : undefined;
      const cdc = o.cdc
        ? {
          min: parseSize(o.minChunk ?? k(DEFAULT_CDC.min), "--min-chunk"),
          avg: parseSize(o.avgChunk ?? k(DEFAULT_CDC.avg), "--avg-chunk"),
          max: parseSize(o.maxChunk ?? k(DEFAULT_CDC.max), "--max-chunk"),
        }
        : false;
      const trainDictionary = o.trainDict
        ? { maxSize: parseSize(o.dictSize ?? "110K", "--dict-size") }
        : false;
      const res = await packSession(
        "pack",
        o,
        trainDictionary ? null : { compression, level, workers },
        async (session) => {
          const { pack } = await import("../mod.ts");
          return await pack({
            ...session,
            basePath: o.base,
            output,
            disk: o.disk,
            memory: o.memory,
            compression,
            level,
            blockSize,
            cdc,
            force: !!o.force,
            message: o.message,
            trainDictionary,
            workers,
          });
        },
      );
      noteNoDictionary(trainDictionary, res, !!o.silent);
      info(`${output}: ${sizesLine(res)}`, !!o.silent);
    });
}
