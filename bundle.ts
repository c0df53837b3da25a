/**
 * Bundles the command line into one JavaScript file (esbuild), for people who want hexz as a
 * single file: `deno run --allow-read --allow-write hexz.js pack ...`.
 *
 *   deno task bundle [OUT]        (default dist/hexz.js)
 *
 * The WebAssembly modules are embedded already (wasm/gen/*.ts). Worker modules cannot be
 * bundled into the same file, so a bundled hexz packs and extracts on one thread; the archives
 * it writes are the same.
 *
 * @module
 */
import * as esbuild from "esbuild";

const out = Deno.args[0] ?? "dist/hexz.js";
const root = new URL(".", import.meta.url).pathname;
try {
  const r = await esbuild.build({
    entryPoints: [`${root}cli.ts`],
    bundle: true,
    format: "esm",
    platform: "node",
    target: "esnext",
    outfile: out,
    // zstd-codec (dictionaries) is CommonJS from Emscripten: it uses require(), __dirname and
    // __filename when it loads.
    banner: {
      js: 'import { createRequire as __hexzRequire } from "node:module";\n' +
        'import { fileURLToPath as __hexzPath } from "node:url";\n' +
        "const require = __hexzRequire(import.meta.url);\n" +
        "const __filename = __hexzPath(import.meta.url);\n" +
        'const __dirname = __hexzPath(new URL(".", import.meta.url));',
    },
    logLevel: "warning",
    // The library imports its lazily loaded packages as `npm:NAME@VERSION` (so that a run from
    // a URL needs no import map); here they come from node_modules like any package.
    plugins: [{
      name: "npm-specifiers",
      setup(build) {
        build.onResolve({ filter: /^npm:/ }, (args) => {
          const name = args.path.slice(4).replace(/^(@?[^@]+)@[^/]+/, "$1");
          return build.resolve(name, { kind: args.kind, resolveDir: root });
        });
      },
    }],
  });
  if (r.errors.length) Deno.exit(1);
  console.log(`bundle: ${out} (${(await Deno.stat(out)).size} bytes)`);
} finally {
  await esbuild.stop();
}
