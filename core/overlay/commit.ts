/**
 * `commit`: turns an archive plus an overlay into a new archive. Thin (the default) stores
 * only blocks that are not already in the base's chain, as a child of the base; flatten
 * writes a self-contained archive.
 *
 * @module
 */
import { splitBlocks } from "../chunk/split.ts";
import { STREAMS } from "../format/constants.ts";
import {
  chunkSpec,
  type PackOptions,
  type PackResult,
  packStreams,
  type StreamInput,
} from "../pack/pack.ts";
import { syncReads } from "../pack/input.ts";
import { HexzError, osReason } from "../errors.ts";
import { archivePaths } from "../read/parent.ts";
import { carriedSections, chunkingOf, codecOf, keptEncryption } from "../pack/repack.ts";
import type { Archive } from "../read/archive.ts";
import type { Overlay } from "./overlay.ts";
import { definedOptions, expectArchive, expectOptions, expectString } from "../args.ts";

export interface CommitOptions
  extends Omit<PackOptions, "disk" | "memory" | "base" | "basePath" | "cdc"> {
  /** "thin" (default): a child of the base; "flatten": self-contained. */
  mode?: "thin" | "flatten";
  /** Path recorded for the base in a thin child (default: the base's own name). */
  basePath?: string;
  /** A file whose bytes become the memory stream, instead of the overlay's (a VM's saved
   * state: vm/snap.ts). */
  memory?: string;
}

/**
 * Writes `base` with `overlay`'s writes applied as a new archive at `opts.output`. Unless
 * `opts` says otherwise (an option given as undefined counts as not given), it keeps the
 * base's codec, level, message, file table and metadata; a thin child is chunked and encrypted
 * like its base, and a flattened copy keeps the base's chunking (unless `blockSize` is given)
 * and encryption: an encrypted base (opened with its password) gives an archive encrypted with
 * the same password, or with `encrypt`'s.
 */
export async function commitOverlay(
  base: Archive,
  overlay: Overlay,
  opts: CommitOptions,
): Promise<PackResult> {
  expectArchive(base, "commitOverlay: base");
  expectOptions(overlay, "commitOverlay: overlay", true);
  expectOptions(opts, "commitOverlay: options", true);
  expectString(opts.output, "commitOverlay: output");
  const thin = (opts.mode ?? "thin") === "thin";
  // What is not given (or given as undefined) is the base's: codec, level, message, chunking
  // and, flattened, encryption (a thin child is always encrypted like its base).
  const given = definedOptions(opts);
  const packOpts: PackOptions = {
    ...codecOf(base, given.compression),
    message: base.header.message,
    ...(thin ? {} : chunkingOf(base)),
    ...(thin ? {} : { encrypt: given.encrypt ?? keptEncryption(base) }),
    ...given,
    output: opts.output,
    memory: undefined, // a file for the memory stream is read below, not packed by path
    // A directory archive stays one: the overlay changed bytes, not where files lie.
    ...await carriedSections(base, opts),
    base: thin ? base : undefined,
    basePath: thin ? (opts.basePath ?? base.source.name) : undefined,
    // The overlay and the base's chain are read (flatten reads the base without a base).
    readsFrom: [...(opts.readsFrom ?? []), overlay.path, ...(thin ? [] : await archivePaths(base))],
  };
  if (!thin && opts.blockSize) packOpts.cdc = false;
  const spec = chunkSpec(packOpts);
  let memory: Deno.FsFile | null = null;
  let memorySize = 0;
  if (opts.memory !== undefined) {
    expectString(opts.memory, "commitOverlay: memory");
    try {
      memory = await Deno.open(opts.memory, { read: true });
      memorySize = (await memory.stat()).size;
    } catch (e) {
      memory?.close();
      throw new HexzError(
        e instanceof Deno.errors.NotFound ? "not-found" : "io",
        `${opts.memory}: ${osReason(e)}`,
      );
    }
    packOpts.readsFrom = [...packOpts.readsFrom!, opts.memory];
  }
  const inputs: StreamInput[] = STREAMS.map((name, id) => ({ name, id }))
    .filter(({ id }) => memory && id === 1 ? memorySize > 0 : overlay.size(id) > 0)
    .map(({ name, id }) => {
      if (memory && id === 1) {
        return {
          name,
          size: memorySize,
          blocks: splitBlocks(syncReads(memory), spec),
          file: opts.memory,
        };
      }
      let pos = 0;
      const size = overlay.size(id);
      return {
        name,
        size,
        blocks: splitBlocks({
          async read(into: Uint8Array) {
            if (pos >= size) return null;
            const n = Math.min(into.length, size - pos, 4 * 1024 * 1024);
            into.set(await overlay.read(id, pos, n));
            pos += n;
            return n;
          },
        }, spec),
      };
    });
  try {
    return await packStreams(packOpts, inputs);
  } finally {
    memory?.close();
  }
}
