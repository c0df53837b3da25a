/**
 * Walking up a thin archive's chain: the archive a `parent` entry's block lives in is its
 * `ancestor` + 1 generations above the archive (docs/FORMAT.md, feature bit 5).
 *
 * @module
 */
import type { Archive } from "./archive.ts";

/**
 * The archive `generations` above `a` (1: its parent), opening parents as needed; or null,
 * with how many generations there are above `a`, when its chain ends first.
 */
export async function ancestorOf(
  a: Archive,
  generations: number,
): Promise<{ archive: Archive | null; above: number }> {
  let cur = a;
  for (let above = 0; above < generations; above++) {
    const next = await cur.parent();
    if (!next) return { archive: null, above };
    cur = next;
  }
  return { archive: cur, above: generations };
}
