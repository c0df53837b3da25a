import { Command, Option } from "./command.ts";
import { getProfile, PROFILES } from "../core/pack/profiles.ts";
import { parseCodecName } from "../core/codec/level.ts";
import { fileOutput, info } from "./common.ts";
import { passwordFileOption } from "./password.ts";
import { packSession, sizesLine } from "./pack_session.ts";
import { HexzError } from "../core/errors.ts";
import { optionalInteger, parseBlockSize, parseInteger, plural } from "./units.ts";

export function buildCommand(): Command {
  return new Command("build").writesOutput()
    .description("pack a directory tree into an archive with a file table")
    .argument("<source>", "directory to pack")
    .argument("<output>", "archive to create (.hxz)")
    .addOption(
      new Option("--profile <name>", "defaults for a kind of content").choices(
        Object.keys(PROFILES),
      ).default("generic"),
    )
    .option("--memory <path>", "a memory dump stored beside the tree")
    .option("--no-xattrs", "leave extended attributes out (kept by default; need --allow-ffi)")
    .addOption(
      new Option("--compression <codec>", "block codec (overrides the profile)").choices([
        "lz4",
        "zstd",
        "none",
      ]),
    )
    .option("--level <n>", "codec level (overrides the profile)")
    .option("--block-size <size>", "fixed block size (overrides the profile)")
    .option("--cdc", "content-defined chunking (FastCDC, 16/64/128 KiB)")
    .option(
      "--base <archive>",
      "thin archive: store only blocks not already in this archive's chain",
    )
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
Profiles:
${Object.entries(PROFILES).map(([n, p]) => `  ${n.padEnd(9)} ${p.description}`).join("\n")}

Examples:
  hexz build ./rootfs rootfs.hxz --profile embedded
  hexz build ./dataset v2.hxz --base v1.hxz          # thin: only what changed since v1`,
    )
    .action(async (source: string, output: string, o) => {
      fileOutput(output, "an archive is read at random, so it is written to a file");
      if (o.compression === "none" && o.level !== undefined) {
        throw new HexzError("usage", "--level: --compression none has no levels");
      }
      if (o.cdc && o.blockSize !== undefined) {
        throw new HexzError("usage", "--block-size is for fixed blocks: it does not go with --cdc");
      }
      const profile = getProfile(o.profile);
      const compression = o.compression ? parseCodecName(o.compression) : profile.compression;
      const level = o.level !== undefined
        ? parseInteger(o.level, "--level")
        : (o.compression ? undefined : profile.level);
      const workers = optionalInteger(o.workers, "--workers");
      // A thin archive is chunked like its base: only chunking asked for here is checked.
      const blockSize = o.blockSize
        ? parseBlockSize(o.blockSize, "--block-size")
        : o.base
        ? undefined
        : profile.blockSize;
      // Profiles with a dictionary train one, as long as the codec is still zstd.
      const trainDictionary = profile.dictionary && compression === "zstd";
      const res = await packSession(
        "build",
        o,
        trainDictionary ? null : { compression, level, workers },
        async (session) => {
          const { build } = await import("../mod.ts");
          return await build({
            ...session,
            basePath: o.base,
            source,
            output,
            workers,
            memory: o.memory,
            compression,
            level,
            blockSize,
            cdc: !!o.cdc,
            trainDictionary,
            message: o.message,
            force: !!o.force,
            noXattrs: !!o.noXattrs,
            metadata: { profile: o.profile },
            onWarning: (m) => info(`hexz: warning: ${m}`, !!o.silent),
          });
        },
      );
      info(
        `${output}: ${plural(res.entries, "entry", "entries")}, ${sizesLine(res)}`,
        !!o.silent,
      );
    });
}
