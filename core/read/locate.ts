/**
 * Where the stored bytes of a block are, for the zero-copy decode path (block_kernel.ts):
 * following a thin archive's parent entries down to the local file that holds the block.
 *
 * @module
 */
import { FEATURE, KIND } from "../format/constants.ts";
import type { BlockEntry } from "../format/entry.ts";
import { equalBytes } from "../format/bytes.ts";
import type { Archive, BlockInfo } from "./archive.ts";
import { KERNEL_MAX_BLOCK, kernelCodec } from "./block_kernel.ts";
import { ancestorOf } from "./chain.ts";

/**
 * The archive (a local file) and entry of the stored bytes of `b`, or null where the block
 * kernel cannot decode them (encrypted, dictionary, a parent that is not a local file,
 * anything odd): the caller then reads the block through the archive, which reports any
 * problem in its own words.
 */
export async function locate(
  a: Archive,
  b: BlockInfo,
): Promise<{ archive: Archive; entry: BlockEntry } | null> {
  let archive = a, entry = b.entry;
  try {
    for (let depth = 0; entry.kind === KIND.parent; depth++) {
      const p = depth < 256 ? (await ancestorOf(archive, entry.ancestor + 1)).archive : null;
      if (!p) return null;
      const pe = (await p.block(entry.parentStream, entry.location)).entry;
      // What the archive's own reader would check; on any doubt it decodes and reports.
      if (pe.logicalLength !== entry.logicalLength || !equalBytes(pe.hash, entry.hash)) {
        return null;
      }
      archive = p;
      entry = pe;
    }
  } catch {
    return null; // the archive's own path names the problem
  }
  const ok = (entry.kind === KIND.data || entry.kind === KIND.dedup) && entry.flags === 0 &&
    kernelCodec(entry.codec) && !(archive.header.features & FEATURE.encrypted) &&
    archive.source.path !== undefined && entry.storedLength <= KERNEL_MAX_BLOCK &&
    entry.logicalLength <= KERNEL_MAX_BLOCK;
  return ok ? { archive, entry } : null;
}
