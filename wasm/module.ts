/**
 * A live instance of one of our WebAssembly modules with its scratch arena: the wrappers in
 * core/ lay out their buffers inside `arena(size)` and read and write them through `bytes()`,
 * which always views the current memory (it changes identity when memory grows).
 *
 * @module
 */
import { instantiate } from "./load.ts";

export interface WasmModule<E> {
  readonly exports: E;
  /** Byte offset of a scratch area of at least `size` bytes (grows memory when needed). */
  arena(size: number): number;
  /** The whole linear memory as bytes. */
  bytes(): Uint8Array;
}

type Base = { memory: WebAssembly.Memory; arena(size: number): number };

export function wasmModule<E extends Base>(name: string, wasmBase64: string): WasmModule<E> {
  const exports = instantiate(name, wasmBase64).exports as unknown as E;
  let base = 0;
  let have = -1;
  let view = new Uint8Array(exports.memory.buffer);
  return {
    exports,
    arena(size) {
      if (size > have) {
        const p = exports.arena(size);
        if (p === 0) {
          throw new RangeError(`${name}: cannot grow WebAssembly memory to ${size} bytes`);
        }
        base = p;
        have = size;
      }
      return base;
    },
    bytes() {
      if (view.buffer !== exports.memory.buffer) view = new Uint8Array(exports.memory.buffer);
      return view;
    },
  };
}
