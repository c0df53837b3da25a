/**
 * FastCDC cut points computed by our WebAssembly module (wasm/src/fastcdc.c, two bytes per
 * step), identical to the TypeScript reference in fastcdc.ts.
 *
 * A chunker owns its own module instance, and its input buffer lives inside that instance's
 * memory: the caller reads input straight into `buffer`, and no byte is copied to chunk it.
 *
 * @module
 */
import { wasmBase64 } from "../../wasm/gen/fastcdc.ts";
import { wasmModule } from "../../wasm/module.ts";
import { type CdcParams, validateCdcParams } from "./fastcdc.ts";
import { cdcMasks, GEAR } from "./gear.ts";

interface CdcExports {
  memory: WebAssembly.Memory;
  arena(size: number): number;
  cdc_gear(): number;
  cdc_prepare(): void;
  cdc_cuts(
    p: number,
    n: number,
    min: number,
    avg: number,
    max: number,
    small: number,
    large: number,
    eof: number,
    out: number,
    cap: number,
  ): number;
}

export interface Chunker {
  /** Input buffer of the requested capacity, inside WebAssembly memory. */
  readonly buffer: Uint8Array;
  /** Cut points in buffer[0..length), with findCuts' contract. */
  cuts(length: number, eof: boolean): Uint32Array;
}

const CUTS = 4096;

/** A chunker with an input buffer of `capacity` bytes. */
export function createChunker(params: CdcParams, capacity: number): Chunker {
  validateCdcParams(params);
  const mod = wasmModule<CdcExports>("fastcdc", wasmBase64);
  const ex = mod.exports;
  new Int32Array(ex.memory.buffer, ex.cdc_gear(), 256).set(GEAR);
  ex.cdc_prepare();
  const { small, large } = cdcMasks(params.avg);
  const base = mod.arena(CUTS * 4 + capacity);
  const mem = mod.bytes();
  const buffer = mem.subarray(base + CUTS * 4, base + CUTS * 4 + capacity);
  const cutView = new Uint32Array(mem.buffer, base, CUTS);
  return {
    buffer,
    cuts(length, eof) {
      if (length > capacity) throw new RangeError("length exceeds the chunker's buffer");
      const all: number[] = [];
      let pos = 0;
      for (;;) {
        const n = ex.cdc_cuts(
          base + CUTS * 4 + pos,
          length - pos,
          params.min,
          params.avg,
          params.max,
          small,
          large,
          eof ? 1 : 0,
          base,
          CUTS,
        );
        for (let i = 0; i < n; i++) all.push(pos + cutView[i]);
        if (n < CUTS) break;
        pos = all[all.length - 1];
      }
      return Uint32Array.from(all);
    },
  };
}

/** Cut points of `data` (copied into a temporary chunker); see findCutsReference. */
export function findCuts(data: Uint8Array, params: CdcParams, eof: boolean): Uint32Array {
  const c = createChunker(params, data.length);
  c.buffer.set(data);
  return c.cuts(data.length, eof);
}
