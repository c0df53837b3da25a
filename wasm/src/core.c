/*
 * BLAKE3 and LZ4 in one module, sharing one memory, plus a zero-block test: pack workers read
 * input straight into this memory, then test, hash and compress each block where it lies and
 * leave payloads side by side, so no block is copied between the file and the result.
 */
#include "blake3.c"
#include "lz4.c"

/* 1 when p[0..n) is all zero bytes. */
EXPORT(is_zero)
u32 is_zero(const u8 *p, u32 n) {
  v128_t acc = wasm_i32x4_splat(0);
  u32 i = 0;
  for (; i + 64 <= n; i += 64) {
    acc = wasm_v128_or(acc, wasm_v128_or(wasm_v128_or(wasm_v128_load(p + i), wasm_v128_load(p + i + 16)),
                                         wasm_v128_or(wasm_v128_load(p + i + 32), wasm_v128_load(p + i + 48))));
    if (wasm_v128_any_true(acc)) return 0;
  }
  for (; i + 16 <= n; i += 16) acc = wasm_v128_or(acc, wasm_v128_load(p + i));
  if (wasm_v128_any_true(acc)) return 0;
  for (; i < n; i++)
    if (p[i]) return 0;
  return 1;
}
