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

/** Installs the handlers; the returned function removes them. `first` runs before the
 * temporaries are deleted (to stop a child process that writes them). */
export function cleanUpOnInterrupt(first?: () => void): () => void {
  const installed: [Deno.Signal, () => void][] = [];
  for (const [signal, code] of SIGNALS) {
    const handler = () => {
      first?.();
      removeTemporaries();
      // A progress bar may be on the line: clear it first.
      const clear = Deno.stderr.isTerminal() ? "\r\x1b[K" : "";
      Deno.stderr.writeSync(new TextEncoder().encode(`${clear}hexz: interrupted\n`));
      Deno.exit(code);
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
 * For commands that run QEMU: SIGINT, SIGTERM or SIGHUP aborts the returned signal (which stops
 * QEMU); with `exit`, the command then also deletes its temporaries and exits as above,
 * without it the command ends on its own once QEMU is gone.
 */
export function abortOnInterrupt(exit: boolean): { signal: AbortSignal; dispose(): void } {
  const ac = new AbortController();
  if (exit) return { signal: ac.signal, dispose: cleanUpOnInterrupt(() => ac.abort()) };
  const installed: Deno.Signal[] = [];
  const handler = () => ac.abort();
  for (const [sig] of SIGNALS) {
    try {
      Deno.addSignalListener(sig, handler);
      installed.push(sig);
    } catch { /* not on this platform */ }
  }
  return {
    signal: ac.signal,
    dispose: () => installed.forEach((s) => Deno.removeSignalListener(s, handler)),
  };
}
