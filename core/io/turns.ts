/**
 * Turns of the event loop for long loops that would otherwise never leave JavaScript (a pack
 * or extract on one thread, a check): their awaits resolve at once, so timers, other I/O and
 * signal handlers (Ctrl-C deletes the unfinished output: cli/interrupt.ts) would wait until
 * the whole job is done.
 *
 * @module
 */

/** How long a loop may keep the event loop out; a turn through a timer costs about 2 ms. */
const EVERY_MS = 200;

/** A function a loop calls once per item: every EVERY_MS it returns a promise that resolves
 * after one turn of the event loop; otherwise null (no await needed). */
export function createTurns(everyMs = EVERY_MS): () => Promise<void> | null {
  let last = performance.now();
  return () => {
    const now = performance.now();
    if (now - last < everyMs) return null;
    last = now;
    return new Promise<void>((resolve) => setTimeout(resolve, 0)).then(() => {
      last = performance.now();
    });
  };
}
