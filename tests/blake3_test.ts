import { createBLAKE3 } from "hash-wasm";
import {
  blake3,
  blake3DeriveKey,
  blake3InPlace,
  blake3Input,
  blake3Into,
  blake3Keyed,
  createBlake3,
  toHex,
} from "../core/hash/blake3.ts";
import { assertEquals } from "./_assert.ts";
import { needs, pseudoRandom, tempDir } from "./_tools.ts";

/** Lengths around every chunk, SIMD batch and tree boundary the implementation has. */
const LENGTHS = [
  0,
  1,
  63,
  64,
  65,
  1023,
  1024,
  1025,
  2048,
  2049,
  3072,
  3073,
  4095,
  4096,
  4097,
  5121,
  8192,
  8193,
  16384,
  31744,
  65536,
  102400,
  1 << 20,
  (1 << 20) + 17,
  (5 << 20) + 3,
];
const enc = (s: string) => new TextEncoder().encode(s);
const KEY = enc("whats the Elvish word for friend");
const CONTEXT = "BLAKE3 2019-12-27 16:29:52 test vectors context";

function official(n: number): Uint8Array {
  const d = new Uint8Array(n);
  for (let i = 0; i < n; i++) d[i] = i % 251;
  return d;
}

Deno.test("blake3 of the empty input is the published value", () => {
  assertEquals(
    toHex(blake3(new Uint8Array(0))),
    "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
  );
});

Deno.test("blake3 agrees with hash-wasm on every boundary length, one-shot and incremental", async () => {
  const ref = await createBLAKE3(256);
  for (const n of LENGTHS) {
    const d = pseudoRandom(n, n + 3);
    ref.init();
    ref.update(d);
    const want = ref.digest("hex");
    assertEquals(toHex(blake3(d)), want, `length ${n}`);
    const out = new Uint8Array(40);
    blake3Into(d, out, 5);
    assertEquals(toHex(out.subarray(5, 37)), want, `blake3Into ${n}`);
    // Odd piece sizes cross every internal boundary at a different phase.
    for (const piece of [1, 63, 777, 4097]) {
      if (n > 200_000 && piece < 777) continue;
      const h = createBlake3();
      for (let o = 0; o < n; o += piece) h.update(d.subarray(o, Math.min(n, o + piece)));
      assertEquals(toHex(h.digest()), want, `length ${n} in pieces of ${piece}`);
    }
  }
});

Deno.test("blake3 hashers are independent and can digest more than once", () => {
  const a = createBlake3(), b = createBlake3(KEY);
  a.update(enc("abc"));
  b.update(enc("abc"));
  const first = toHex(a.digest());
  assertEquals(first, toHex(blake3(enc("abc"))));
  a.update(enc("def"));
  assertEquals(toHex(a.digest()), toHex(blake3(enc("abcdef"))));
  assertEquals(toHex(b.digest()), toHex(blake3Keyed(KEY, enc("abc"))));
});

Deno.test(needs(["b3sum"], {
  name: "blake3 hash, keyed hash, derive-key and long output agree with b3sum",
  async fn() {
    const [dir, done] = await tempDir();
    try {
      const run = async (args: string[], stdin?: Uint8Array) => {
        const p = new Deno.Command("b3sum", {
          args,
          stdin: stdin ? "piped" : "null",
          stdout: "piped",
        })
          .spawn();
        if (stdin) {
          const w = p.stdin.getWriter();
          await w.write(stdin);
          await w.close();
        }
        return new TextDecoder().decode((await p.output()).stdout).trim();
      };
      for (const n of LENGTHS) {
        const d = official(n);
        const f = `${dir}/in`;
        await Deno.writeFile(f, d);
        assertEquals(toHex(blake3(d)), await run(["--no-names", f]), `hash ${n}`);
        assertEquals(
          toHex(blake3Keyed(KEY, d)),
          await run(["--no-names", "--keyed", f], KEY),
          `keyed ${n}`,
        );
        assertEquals(
          toHex(blake3DeriveKey(CONTEXT, d)),
          await run(["--no-names", "--derive-key", CONTEXT, f]),
          `derive-key ${n}`,
        );
        assertEquals(
          toHex(createBlake3().update(d).digest(131)),
          await run(["--no-names", "-l", "131", f]),
          `131-byte output ${n}`,
        );
      }
    } finally {
      await done();
    }
  },
}));

Deno.test("blake3InPlace hashes input read straight into WebAssembly memory", () => {
  for (const n of [0, 1, 1024, 4097, 1 << 20]) {
    const d = pseudoRandom(n, n + 11);
    blake3Input(n).set(d);
    const out = new Uint8Array(32);
    blake3InPlace(n, out, 0);
    assertEquals(toHex(out), toHex(blake3(d)), `length ${n}`);
  }
});
