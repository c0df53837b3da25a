/**
 * A one-line progress bar on stderr, shown only on a terminal and never with --silent.
 *
 * @module
 */
import { formatSize } from "./units.ts";

export interface Progress {
  update(done: number, total: number): void;
  finish(): void;
}

const encoder = new TextEncoder();

export function createProgress(label: string, silent: boolean): Progress {
  const enabled = !silent && Deno.stderr.isTerminal();
  const start = performance.now();
  let lastDraw = 0;
  let drawn = false;
  const write = (s: string) => Deno.stderr.writeSync(encoder.encode(s));
  return {
    update(done, total) {
      if (!enabled) return;
      const now = performance.now();
      if (now - lastDraw < 100 && done < total) return;
      lastDraw = now;
      const frac = total > 0 ? Math.min(1, done / total) : 1;
      const width = 24;
      const filled = Math.round(frac * width);
      const secs = (now - start) / 1000;
      const rate = secs > 0 ? `${formatSize(done / secs)}/s` : "";
      write(
        `\r\x1b[K${label} ${(frac * 100).toFixed(0).padStart(3)}% [${"=".repeat(filled)}${
          " ".repeat(width - filled)
        }] ${formatSize(done)} / ${formatSize(total)}  ${rate}`,
      );
      drawn = true;
    },
    finish() {
      if (drawn) write("\r\x1b[K");
      drawn = false;
    },
  };
}
