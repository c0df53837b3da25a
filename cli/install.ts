/**
 * `hexz install`: boots an installer ISO with an empty disk and packs the disk once the VM
 * powers off (vm/install.ts). Needs --allow-run (QEMU), --allow-read, --allow-write.
 *
 * @module
 */
import { Command, Option } from "./command.ts";
import { parseCodecName } from "../core/codec/level.ts";
import { HexzError } from "../core/errors.ts";
import { installVm } from "../vm/install.ts";
import { fileOutput, info } from "./common.ts";
import { createProgress } from "./progress.ts";
import { sizesLine } from "./pack_session.ts";
import { formatSize, optionalInteger, parseBlockSize, parseSize } from "./units.ts";
import { checkCombination } from "./pack.ts";
import { abortOnInterrupt } from "./interrupt.ts";
import { parseVmFlags } from "./vm_flags.ts";

export function installCommand(): Command {
  return new Command("install")
    .description("boot an installer ISO on an empty disk; pack the disk when the VM powers off")
    .argument("<iso>", "installer image (booted from the VM's CD drive)")
    .argument("<output>", "archive to create (.hxz)")
    .argument("[qemu-args...]", "further QEMU arguments, after --")
    .requiredOption("--size <size>", "size of the empty disk (e.g. 8G)")
    .option("--memory <size>", "guest RAM (default: 512M)")
    .option("--cpus <n>", "virtual CPUs (default: 1)")
    .option("--nographic", "no display: the serial console and QEMU's monitor on stdio")
    .addOption(
      new Option("--accel <kind>", "accelerator: KVM where it works, else TCG").choices([
        "auto",
        "kvm",
        "tcg",
      ]).default("auto"),
    )
    .option("--timeout <seconds>", "stop the installer after this long (nothing is packed)")
    .addOption(
      new Option("--compression <codec>", "block codec").choices(["lz4", "zstd", "none"]).default(
        "lz4",
      ),
    )
    .option("--level <n>", "codec level (zstd: 1-22, default 3; lz4: acceleration, default 1)")
    .option("--block-size <size>", "fixed block size, 1K-16M (default 64K)")
    .option("--cdc", "content-defined chunking (FastCDC) instead of fixed blocks")
    .option("--workers <n>", "hash and compress in N threads (default: the number of cores)")
    .option("-m, --message <text>", "a note stored in the header")
    .option("-f, --force", "overwrite an existing output")
    .option("-q, --silent", "print nothing but errors (the console is the guest's)")
    .addHelpText(
      "after",
      "\nThe disk is a sparse file beside the output while the installer runs; a VM that\n" +
        "does not power off cleanly (non-zero QEMU status, --timeout, Ctrl-C) leaves nothing.\n" +
        "\nExample:\n  hexz install debian-12-netinst.iso debian.hxz --size 8G --memory 1G " +
        "--compression zstd",
    )
    .action(async (iso: string, output: string, extra: string[], o) => {
      fileOutput(output, "an archive is read at random, so it is written to a file");
      const size = parseSize(o.size, "--size");
      if (size === 0 || size % 512 !== 0) {
        throw new HexzError("usage", `--size: '${o.size}' is not a positive multiple of 512`);
      }
      const vm = parseVmFlags(o);
      checkCombination(o);
      const compression = parseCodecName(o.compression);
      const level = optionalInteger(o.level, "--level");
      const workers = optionalInteger(o.workers, "--workers");
      const blockSize = o.blockSize ? parseBlockSize(o.blockSize, "--block-size") : undefined;
      const progress = createProgress("pack", !!o.silent);
      const stop = abortOnInterrupt(true);
      try {
        const res = await installVm(iso, {
          size,
          ...vm,
          extra,
          nographic: !!o.nographic,
          accel: o.accel,
          signal: stop.signal,
          onStart: (s) =>
            info(
              `hexz: installing from ${iso} with ${s.accel} (${s.reason}) on an empty ` +
                `${formatSize(size)} disk`,
              !!o.silent,
            ),
          onPoweredOff: () => info("hexz: the VM powered off; packing its disk", !!o.silent),
          pack: {
            output,
            compression,
            level,
            blockSize,
            cdc: !!o.cdc,
            workers,
            message: o.message,
            force: !!o.force,
            onProgress: (p) => progress.update(p.done, p.total),
          },
        });
        progress.finish();
        info(
          `${output}: ${sizesLine(res)}`,
          !!o.silent,
        );
      } finally {
        progress.finish();
        stop.dispose();
      }
    });
}
