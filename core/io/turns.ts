/**
 * Turns of the event loop for long loops that would otherwise never leave JavaScript (a pack
 * or extract on one thread, a check): their awaits resolve at once, so timers, other I/O and
 * signal handlers (Ctrl-C deletes the unfinished output: cli/interrupt.ts) would wait until
 * the whole job is done.
 *
 * @module
 */

/** How long a loop may keep the event loop out. */
const EVERY_MS = 200;

/**
 * One turn of the event loop: a message through a channel of its own (about 0.1 ms here,
 * where `setTimeout(0)` took 2.3 ms), closed once it arrives so that it keeps nothing alive.
 */
function oneTurn(): Promise<void> {
  return new Promise<void>((resolve) => {
    const c = new MessageChannel();
    c.port1.onmessage = () => {
      c.port1.close();
      c.port2.close();
      resolve();
    };
    c.port2.postMessage(0);
  });
}

/** A function a loop calls once per item: every EVERY_MS it returns a promise that resolves
 * after one turn of the event loop; otherwise null (no await needed). */
export function createTurns(everyMs = EVERY_MS): () => Promise<void> | null {
  let last = performance.now();
  return () => {
    const now = performance.now();
    if (now - last < everyMs) return null;
    return oneTurn().then(() => {
      last = performance.now();
    });
  };
}
