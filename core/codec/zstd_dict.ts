/**
 * Zstd with a dictionary, through the `zstd-codec` WebAssembly build: Deno's native zstd
 * ignores dictionaries. The dictionary is prepared once per archive (a CDict for compressing,
 * a DDict for decompressing) and reused for every block.
 *
 * Decoding is bounded by the block's logical length: a frame must declare exactly that content
 * size before anything is allocated for it.
 *
 * @module
 */
import { HexzError } from "../errors.ts";
import type { DictCodec } from "./codec.ts";
import { checkZstdLevel } from "./zstd.ts";

// deno-lint-ignore no-explicit-any
type Zstd = any;
let loading: Promise<Zstd> | null = null;

/**
 * Loaded on first use: most archives have no dictionary, and the package is large. The
 * specifier is complete (not an import-map name) so that hexz run from a URL, where no import
 * map applies, finds it too.
 */
function zstdWasm(): Promise<Zstd> {
  // deno-lint-ignore no-import-prefix
  return loading ??= import("npm:zstd-codec@0.1.5").then(({ ZstdCodec }) =>
    new Promise((resolve) => ZstdCodec.run(resolve))
  );
}

/** A codec that compresses and decompresses with `dict` (raw content or zstd format). */
export async function createZstdDictCodec(dict: Uint8Array, level: number): Promise<DictCodec> {
  checkZstdLevel(level);
  if (dict.length === 0) throw new HexzError("corrupt", "empty zstd dictionary");
  const z = await zstdWasm();
  const simple = new z.Simple();
  const generic = new z.Generic();
  // Prepared lazily: a packer only compresses, a reader only decompresses. The WebAssembly
  // heap of zstd-codec does not grow much, so codecs must be closed when done with.
  let cdict: { delete(): void } | null = null;
  let ddict: { delete(): void } | null = null;
  return {
    compress(src) {
      const out = guard(() => {
        cdict ??= new z.Dict.Compression(dict, level);
        return simple.compressUsingDict(src, cdict);
      });
      if (!out) throw new HexzError("io", "zstd dictionary compression failed");
      return out as Uint8Array;
    },
    decompressInto(src, dst) {
      const declared = src.length >= 6 ? guard(() => generic.contentSize(src)) : null;
      if (declared !== dst.length) {
        throw new HexzError(
          "corrupt",
          `zstd frame declares ${declared ?? "no"} content size, expected ${dst.length}`,
        );
      }
      const out = dst.length === 0 ? new Uint8Array(0) : guard(() => {
        ddict ??= new z.Dict.Decompression(dict);
        return simple.decompressUsingDict(src, ddict);
      });
      if (!out || out.length !== dst.length) {
        throw new HexzError("corrupt", "zstd frame does not decode with the archive's dictionary");
      }
      dst.set(out);
      return dst.length;
    },
    close() {
      cdict?.delete();
      ddict?.delete();
      cdict = ddict = null;
    },
  };
}

/** zstd-codec aborts with a thrown string (e.g. out of memory): make that a HexzError. */
function guard<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof Error) throw e;
    throw new HexzError("io", `zstd-codec: ${String(e).split("\n")[0]}`);
  }
}
