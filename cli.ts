/**
 * The hexz command line. Every command maps its flags onto a call of the library that mod.ts
 * exports (imported from its own module, so that a command loads only what it uses).
 *
 *   deno run --allow-read --allow-write cli.ts pack vm.hxz --disk vm.img
 *   deno task hexz inspect vm.hxz
 *
 * @module
 */
import { run } from "./cli/run.ts";

if (import.meta.main) {
  Deno.exit(await run(Deno.args));
}
