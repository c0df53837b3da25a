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
      if (now - lastDraw < 100 && (done < total || total <= 0)) return;
      lastDraw = now;
      const secs = (now - start) / 1000;
      const rate = secs > 0 ? `${formatSize(done / secs)}/s` : "";
      if (total <= 0) {
        // An input of unknown size (a pipe): how far, not how much is left.
        write(`\r\x1b[K${label} ${formatSize(done)}  ${rate}`);
        drawn = true;
        return;
      }
      const frac = Math.min(1, done / total);
      const width = 24;
      const filled = Math.round(frac * width);
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
