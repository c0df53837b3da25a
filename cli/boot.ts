/**
 * `hexz boot`: runs an archive's disk in QEMU, writes kept in an overlay (vm/boot.ts). Exits
 * with QEMU's status; interrupted, once QEMU is stopped, as other commands do (130, 143, 129).
 * Needs --allow-run (QEMU), --allow-read, --allow-write.
 *
 * @module
 */
import { defaultOverlayPath } from "../core/overlay/overlay.ts";
import { Command, Option } from "./command.ts";
import { HexzError, LOCKED } from "../core/errors.ts";
import { bootVm } from "../vm/boot.ts";
import { info, withArchive } from "./common.ts";
import { passwordFileOption } from "./password.ts";
import { abortOnInterrupt, exitInterrupted } from "./interrupt.ts";
import { parseVmFlags } from "./vm_flags.ts";
import { compactOptions, NO_COMPACT_HELP } from "./compaction.ts";

export function bootCommand(): Command {
  return new Command("boot")
    .description("boot an archive's disk in QEMU, writes kept in an overlay")
    .argument("<archive>", "archive (.hxz) with a bootable disk stream")
    .argument("[qemu-args...]", "further QEMU arguments, after --")
    .option("--overlay <file>", "overlay that keeps the VM's writes (default: <archive>.hxo)")
    .option("--no-compact", NO_COMPACT_HELP)
    .option("--memory <size>", "guest RAM (default: 512M, or the snapshot's)")
    .option("--cpus <n>", "virtual CPUs (default: 1, or the snapshot's)")
    .option("--kernel <file>", "boot this kernel (direct Linux boot)")
    .option("--initrd <file>", "initial RAM disk for --kernel")
    .option("--append <args>", "kernel command line for --kernel")
    .option("--fresh", "boot a snapshot's disk without loading its saved state")
    .option("--qmp <socket>", "serve QMP on this Unix socket (for hexz snap)")
    .option("--nographic", "no display: the serial console and QEMU's monitor on stdio")
    .addOption(
      new Option("--accel <kind>", "accelerator: KVM where it works, else TCG").choices([
        "auto",
        "kvm",
        "tcg",
      ]).default("auto"),
    )
    .option("--timeout <seconds>", "stop the VM after this long")
    .option("-q, --silent", "print nothing but errors (the console is the guest's)")
    .addOption(passwordFileOption())
    .addHelpText(
      "after",
      "\nThe archive never changes: the VM's writes go to the overlay, which stays for\n" +
        "'hexz commit'. An archive made by 'hexz snap' resumes where it was saved.\n" +
        "\nExamples:\n  hexz boot vm.hxz --nographic --qmp /tmp/vm.qmp" +
        "\n  hexz boot vm.hxz --kernel vmlinuz --initrd initrd.gz --append console=ttyS0 " +
        "--nographic -- -no-reboot" +
        "\n  hexz commit vm.hxz vm.hxo vm-v2.hxz",
    )
    .action(async (file: string, extra: string[], o) => {
      if (o.initrd !== undefined && o.kernel === undefined) {
        throw new HexzError("usage", "--initrd only applies with --kernel");
      }
      if (o.append !== undefined && o.kernel === undefined) {
        throw new HexzError("usage", "--append only applies with --kernel");
      }
      const vm = parseVmFlags(o);
      if (o.overlay === undefined && /^https?:\/\//i.test(file)) {
        throw new HexzError("usage", "an archive read from a URL needs --overlay FILE.hxo");
      }
      const overlay = o.overlay ?? defaultOverlayPath(file);
      // Interrupted, QEMU is stopped and the overlay closed (a compaction running is cancelled
      // and its temporary file removed) before the command exits as interrupted commands do.
      const stop = abortOnInterrupt(false);
      try {
        const code = await withArchive(file, async (archive) => {
          if (archive.header.encryption && !archive.keys) {
            throw new HexzError("password", `${file}: ${LOCKED}`);
          }
          const r = await bootVm(archive, {
            overlay,
            archivePath: file,
            ...vm,
            kernel: o.kernel,
            initrd: o.initrd,
            append: o.append,
            extra: extra.length ? extra : undefined,
            qmp: o.qmp,
            fresh: !!o.fresh,
            nographic: !!o.nographic,
            accel: o.accel,
            signal: stop.signal,
            // Only failures are told: the console is the guest's.
            compact: compactOptions(overlay, !!o.noCompact, true),
            onStart: (s) =>
              info(
                `hexz: ${s.resumed ? "resumed" : "booted"} ${file} with ${s.accel} (${s.reason})` +
                  `, writes to ${overlay}` + (s.qmp ? `, QMP at ${s.qmp}` : ""),
                !!o.silent,
              ),
          });
          if (stop.signal.aborted) return r.code;
          if (r.timedOut) {
            throw new HexzError("io", `the VM was stopped after --timeout ${o.timeout} s`);
          }
          info(`hexz: QEMU exited with status ${r.code}; writes kept in ${overlay}`, !!o.silent);
          return r.code;
        }, { passwordFile: o.passwordFile });
        if (stop.signal.aborted) exitInterrupted(stop.signal.reason);
        return code;
      } catch (e) {
        if (stop.signal.aborted) exitInterrupted(stop.signal.reason);
        throw e;
      } finally {
        stop.dispose();
      }
    });
}
