/**
 * `--no-compact` of the commands that write overlays while they run (`serve --nbd --rw`,
 * `mount --rw`, `boot`), and the lines they print when the overlay compacts itself.
 *
 * @module
 */
import type { CompactEvent, OverlayCompactOptions } from "../core/overlay/overlay.ts";
import { AUTO_COMPACT_DEAD_BYTES } from "../core/overlay/overlay.ts";
import { info } from "./common.ts";
import { formatSize } from "./units.ts";

export const NO_COMPACT_HELP = "never compact the overlay (default: once " +
  `${formatSize(AUTO_COMPACT_DEAD_BYTES)} and most of it are overwritten blocks)`;

/**
 * The overlay's compaction for the flags: none with `--no-compact`; else the default, with a
 * line on stderr for each compaction (unless `quiet`: `--silent`, or a console that is the
 * guest's) and for each failure (always; the old log stays in use).
 */
export function compactOptions(
  overlay: string,
  noCompact: boolean,
  quiet: boolean,
): OverlayCompactOptions {
  if (noCompact) return { autoCompact: false, onlineCompact: false };
  return { onCompact: (e) => report(overlay, e, quiet) };
}

function report(overlay: string, e: CompactEvent, quiet: boolean) {
  try {
    if (e.ok) {
      info(`hexz: compacted ${overlay}: ${formatSize(e.before)} -> ${formatSize(e.after)}`, quiet);
    } else {
      info(
        `hexz: ${e.error.message} (the overlay goes on as it was; next try once it has grown ` +
          `${formatSize(AUTO_COMPACT_DEAD_BYTES)} more)`,
      );
    }
  } catch { /* stderr is closed (a daemon whose parent has gone) */ }
}
