/**
 * Splits a sequential input into blocks, fixed-size or content-defined (FastCDC), reading it
 * in large pieces so memory stays bounded whatever the input size.
 *
 * @module
 */
import type { CdcParams } from "./fastcdc.ts";
import { type Chunker, createChunker } from "./fastcdc_wasm.ts";

export type ChunkSpec = { kind: "fixed"; size: number } | { kind: "cdc"; params: CdcParams };

/** Something that fills a buffer from the current position; null at end of input. */
export interface SequentialInput {
  read(into: Uint8Array): Promise<number | null>;
}

function fixedCuts(size: number, length: number, eof: boolean): number[] {
  const cuts: number[] = [];
  let pos = size;
  for (; pos <= length; pos += size) cuts.push(pos);
  if (eof && cuts.length && cuts[cuts.length - 1] !== length) cuts.push(length);
  if (eof && !cuts.length && length > 0) cuts.push(length);
  return cuts;
}

/** Splits inputs one after another, reusing one buffer (and chunker) for all of them. */
export interface Splitter {
  /**
   * Yields consecutive blocks of `input`. Each yielded view is valid only until the generator
   * is resumed: consume (or copy) it first. One input at a time: finish (or return from) one
   * generator before starting the next.
   */
  split(input: SequentialInput): AsyncGenerator<Uint8Array>;
}

/**
 * A splitter for `spec`. Its buffer (16 MiB, or 4 blocks if larger) is allocated on the first
 * split and kept, so splitting many small inputs (the files of a tree) costs no allocation each.
 */
export function createSplitter(spec: ChunkSpec): Splitter {
  const maxBlock = spec.kind === "fixed" ? spec.size : spec.params.max;
  const size = Math.max(16 * 1024 * 1024, 4 * maxBlock);
  // For CDC the buffer lives inside the chunker's WebAssembly memory: input is read straight
  // into it and chunked without a copy.
  let chunker: Chunker | null = null;
  let buf: Uint8Array | null = null;
  let busy = false;
  return {
    async *split(input) {
      if (busy) throw new Error("splitter: one input at a time");
      busy = true;
      try {
        if (!buf) {
          chunker = spec.kind === "cdc" ? createChunker(spec.params, size) : null;
          buf = chunker ? chunker.buffer : new Uint8Array(size);
        }
        let filled = 0;
        let eof = false;
        while (!eof || filled > 0) {
          while (!eof && filled < buf.length) {
            const n = await input.read(buf.subarray(filled));
            if (n === null || n === 0) eof = true;
            else filled += n;
          }
          const data = buf.subarray(0, filled);
          const cuts = spec.kind === "cdc"
            ? chunker!.cuts(filled, eof)
            : fixedCuts(spec.size, filled, eof);
          let start = 0;
          for (const end of cuts) {
            yield data.subarray(start, end);
            start = end;
          }
          if (eof && start !== filled) throw new Error("chunker left bytes at end of input");
          buf.copyWithin(0, start, filled);
          filled -= start;
        }
      } finally {
        busy = false;
      }
    },
  };
}

/** Yields consecutive blocks of one input (see `Splitter.split`). */
export function splitBlocks(input: SequentialInput, spec: ChunkSpec): AsyncGenerator<Uint8Array> {
  return createSplitter(spec).split(input);
}
