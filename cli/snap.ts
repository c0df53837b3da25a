/**
 * `hexz snap`: saves a VM started by `hexz boot --qmp` (its disk and its RAM and device state)
 * as a thin archive that `hexz boot` resumes (vm/snap.ts).
 *
 * @module
 */
import { Command, Option } from "./command.ts";
import { parseCodecName } from "../core/codec/codec.ts";
import { snapVm } from "../vm/snap.ts";
import { fileOutput, info } from "./common.ts";
import { openWithPassword, passwordFileOption } from "./password.ts";
import { createProgress } from "./progress.ts";
import { formatSize, optionalInteger, parseCount } from "./units.ts";
import { abortOnInterrupt, exitInterrupted } from "./interrupt.ts";

export function snapCommand(): Command {
  return new Command("snap")
    .description("snapshot a VM started by hexz boot: its disk, RAM and device state")
    .argument("<qmp>", "the VM's QMP socket (hexz boot --qmp)")
    .argument("<output>", "archive to create (thin, on the VM's archive)")
    .option("--quit", "quit the VM after the snapshot (else it goes on)")
    .option("-m, --message <text>", "a note stored in the header")
    .addOption(
      new Option("--compression <codec>", "block codec (default: the base's)").choices([
        "lz4",
        "zstd",
        "none",
      ]),
    )
    .option("--level <n>", "codec level")
    .option("--timeout <seconds>", "give up saving the state after this long", "600")
    .option("-f, --force", "overwrite an existing output")
    .option("-q, --silent", "no progress and no summary")
    .addOption(passwordFileOption())
    .addHelpText(
      "after",
      "\nThe VM is stopped while its state is saved and packed, then goes on.\n" +
        "\nExample:\n  hexz boot vm.hxz --nographic --qmp /tmp/vm.qmp &" +
        "\n  hexz snap /tmp/vm.qmp vm-running.hxz && hexz boot vm-running.hxz --nographic",
    )
    .action(async (qmp: string, output: string, o) => {
      fileOutput(output, "an archive is read at random, so it is written to a file");
      const timeout = parseCount(o.timeout, "--timeout");
      const level = optionalInteger(o.level, "--level");
      const progress = createProgress("snap", !!o.silent);
      // Interrupted, the VM is let run again before the command exits (not at once, as
      // other commands that write files do).
      const stop = abortOnInterrupt(false);
      try {
        const r = await snapVm(qmp, {
          output,
          open: (p) => openWithPassword(p, { passwordFile: o.passwordFile }),
          quit: !!o.quit,
          force: !!o.force,
          message: o.message,
          compression: o.compression ? parseCodecName(o.compression) : undefined,
          level,
          timeoutMs: timeout * 1000,
          signal: stop.signal,
          onProgress: (p) => progress.update(p.done, p.total),
        });
        progress.finish();
        info(
          `${output}: ${formatSize(r.outputBytes)} written (state ${formatSize(r.stateBytes)}); ` +
            (o.quit ? "the VM quit" : r.wasRunning ? "the VM goes on" : "the VM stays paused"),
          !!o.silent,
        );
      } catch (e) {
        if (stop.signal.aborted) exitInterrupted(stop.signal.reason);
        throw e;
      } finally {
        progress.finish();
        stop.dispose();
      }
    });
}
