/**
 * Instantiates one of our embedded WebAssembly modules (see wasm/build.ts). Modules are
 * self-contained: they import nothing and export their `memory`.
 *
 * @module
 */
import { decodeBase64 } from "./base64.ts";

const modules = new Map<string, WebAssembly.Module>();

/** Compiles (once per base64 string) and instantiates a module synchronously. */
export function instantiate(name: string, wasmBase64: string): WebAssembly.Instance {
  let mod = modules.get(name);
  if (!mod) {
    mod = new WebAssembly.Module(decodeBase64(wasmBase64));
    modules.set(name, mod);
  }
  return new WebAssembly.Instance(mod, {});
}
