/**
 * What the command line does when it is interrupted (Ctrl-C, `kill`, a closed terminal) in the
 * middle of a command: delete the temporary files and directories it was writing, say so in one
 * line, and exit with 128 + the signal's number, as a shell reports a process killed by it.
 * `zstd` deletes its unfinished output the same way. Only commands that write files install
 * it (Command.writesOutput): the others end at once, as the runtime does by default, and mount
 * and serve shut down cleanly on their own handlers.
 *
 * @module
 */
import { removeTemporaries } from "../core/io/temporaries.ts";

const SIGNALS: [Deno.Signal, number][] = [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]];

/** Deletes the temporaries, says so and exits with 128 + the number of `signal`. */
export function exitInterrupted(signal: Deno.Signal): never {
  removeTemporaries();
  // A progress bar may be on the line: clear it first.
  const clear = Deno.stderr.isTerminal() ? "\r\x1b[K" : "";
  Deno.stderr.writeSync(new TextEncoder().encode(`${clear}hexz: interrupted\n`));
  Deno.exit(SIGNALS.find(([s]) => s === signal)?.[1] ?? 130);
}

/** Installs the handlers; the returned function removes them. `first` runs before the
 * temporaries are deleted (to stop a child process that writes them). */
export function cleanUpOnInterrupt(first?: () => void): () => void {
  const installed: [Deno.Signal, () => void][] = [];
  for (const [signal] of SIGNALS) {
    const handler = () => {
      first?.();
      exitInterrupted(signal);
    };
    try {
      Deno.addSignalListener(signal, handler);
      installed.push([signal, handler]);
    } catch { /* a signal this platform lacks */ }
  }
  return () => {
    for (const [signal, handler] of installed) Deno.removeSignalListener(signal, handler);
  };
}

/**
 * For commands that run or drive QEMU: SIGINT, SIGTERM or SIGHUP aborts the returned signal
 * (with the signal's name as its reason) and the command reacts to it (boot stops QEMU, snap lets
 * the VM run again); with `exit`, the temporaries are then deleted and the process exits as
 * above at once.
 */
export function abortOnInterrupt(exit: boolean): { signal: AbortSignal; dispose(): void } {
  const ac = new AbortController();
  if (exit) return { signal: ac.signal, dispose: cleanUpOnInterrupt(() => ac.abort()) };
  const handlers: [Deno.Signal, () => void][] = [];
  for (const [sig] of SIGNALS) {
    // The signal's name is the reason: exitInterrupted(reason) exits as it would.
    const handler = () => ac.abort(sig);
    try {
      Deno.addSignalListener(sig, handler);
      handlers.push([sig, handler]);
    } catch { /* not on this platform */ }
  }
  return {
    signal: ac.signal,
    dispose: () => handlers.forEach(([s, h]) => Deno.removeSignalListener(s, h)),
  };
}
