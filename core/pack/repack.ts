/**
 * Re-packing an existing archive: its blocks, read through any parent chain, become the
 * input of a new archive with the same block boundaries. `flatten` makes a self-contained copy
 * of a thin archive.
 *
 * @module
 */
import { archivePaths } from "../read/parent.ts";
import { CHUNKING, STREAMS } from "../format/constants.ts";
import type { Archive } from "../read/archive.ts";
import {
  checkPackOptions,
  type PackOptions,
  type PackResult,
  packStreams,
  type StreamInput,
} from "./pack.ts";
import { expectArchive } from "../args.ts";

/** The chunking options that reproduce `a`'s block boundaries. */
export function chunkingOf(a: Archive): Pick<PackOptions, "cdc" | "blockSize"> {
  const h = a.header;
  return h.chunking === CHUNKING.fastcdc
    ? { cdc: { min: h.cdcMin, avg: h.cdcAvg, max: h.cdcMax } }
    : { blockSize: h.blockSize, cdc: false };
}

/** Each non-empty stream of `a`, as input for `packStreams`. */
export function archiveStreams(a: Archive): StreamInput[] {
  return STREAMS.map((name, id) => ({ name, id }))
    .filter(({ id }) => a.header.streams[id].blockCount > 0)
    .map(({ name, id }) => ({
      name,
      size: a.header.streams[id].logicalSize,
      blocks: (async function* () {
        for await (const b of a.blocks(id)) yield await a.readBlock(id, b.index);
      })(),
    }));
}

/** Writes a self-contained copy of `a` (no parent references) to `opts.output`. */
export async function flatten(
  a: Archive,
  opts: Omit<PackOptions, "disk" | "memory" | "base" | "cdc" | "blockSize">,
): Promise<PackResult> {
  expectArchive(a, "flatten");
  checkPackOptions(opts, "flatten");
  return await packStreams({
    message: a.header.message,
    ...opts,
    readsFrom: [...(opts.readsFrom ?? []), ...await archivePaths(a)],
    ...chunkingOf(a),
  }, archiveStreams(a));
}
