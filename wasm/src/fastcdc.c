/*
 * FastCDC cut-point search (docs/CHUNKING.md), the hot loop of core/chunk/fastcdc.ts. It rolls
 * two bytes per iteration as in the 2020 paper: the 64-bit fingerprint is shifted by two and
 * the first byte's gear value enters pre-shifted by one, so the mask test after the first byte
 * is the one-byte test shifted left by one. With a 64-bit fingerprint no mask bit is lost, so
 * the cut points are exactly those of the one-byte TypeScript reference.
 *
 * The gear table is written into `gear` by the TypeScript wrapper from core/chunk/gear.ts, so
 * its definition lives in one place.
 */
#include <wasm_simd128.h>

#include "mem.h"

static u32 gear[256];
static u64 gear_ls[256];

EXPORT(cdc_gear)
u32 *cdc_gear(void) { return gear; }

/* Call after writing `cdc_gear()`: prepares the pre-shifted table. */
EXPORT(cdc_prepare)
void cdc_prepare(void) {
  for (int i = 0; i < 256; i++) gear_ls[i] = (u64)gear[i] << 1;
}

INLINE int zero64(const u8 *p) {
  v128_t a = wasm_v128_or(wasm_v128_load(p), wasm_v128_load(p + 16));
  v128_t b = wasm_v128_or(wasm_v128_load(p + 32), wasm_v128_load(p + 48));
  return !wasm_v128_any_true(wasm_v128_or(a, b));
}

/*
 * Zero runs (holes in disk images) are skipped 64 bytes at a time without changing any cut:
 * over zero bytes the fingerprint converges, within 32 bytes, to the fixed point F of
 * fp = 2 fp + GEAR[0], that is F = -GEAR[0] (mod 2^32), and stays there. When F fails both
 * masks no cut can fall inside the run, so once fp is F a whole zero window changes nothing.
 * Only the low 32 bits of fp ever reach a test.
 */
#define SCAN(END, MASK, MASK2)                                                  \
  for (; i + 2 <= (END);) {                                                     \
    if (skip && (u32)fp == fixed && i + 64 <= (END) && zero64(p + i)) {        \
      i += 64;                                                                  \
      continue;                                                                 \
    }                                                                           \
    u32 stop = i + 64 < (END) ? i + 64 : (END);                                 \
    for (; i + 2 <= stop; i += 2) {                                             \
      fp = (fp << 2) + gear_ls[p[i]];                                           \
      if (!(fp & (MASK2))) return i + 1;                                        \
      fp += gear[p[i + 1]];                                                     \
      if (!(fp & (MASK))) return i + 2;                                         \
    }                                                                           \
    if (i + 2 > (END)) break;                                                   \
  }                                                                             \
  if (i < (END)) {                                                              \
    fp = (fp << 1) + gear[p[i]];                                                \
    if (!(fp & (MASK))) return i + 1;                                           \
    i++;                                                                        \
  }

/* Same contract as nextCut() in core/chunk/fastcdc.ts, for the chunk starting at p. */
EXPORT(cdc_next)
u32 cdc_next(const u8 *p, u32 n, u32 min, u32 avg, u32 max, u32 small, u32 large) {
  if (n <= min) return n;
  u32 limit = n < max ? n : max;
  u32 normal = limit < avg ? limit : avg;
  u64 fp = 0;
  u32 i = min;
  const u64 small2 = (u64)small << 1, large2 = (u64)large << 1;
  const u32 fixed = 0u - gear[0];
  const int skip = (fixed & small) && (fixed & large);
  SCAN(normal, small, small2)
  SCAN(limit, large, large2)
  return limit;
}

/*
 * All decided cuts in p[0..n) as end offsets into out[0..cap), like findCuts(): a chunk that
 * runs into the end is only decided at `max` or when `eof`. Returns the number written; stops
 * early when `cap` is reached (the caller calls again from the last cut).
 */
EXPORT(cdc_cuts)
u32 cdc_cuts(const u8 *p, u32 n, u32 min, u32 avg, u32 max, u32 small, u32 large, u32 eof,
             u32 *out, u32 cap) {
  u32 pos = 0, count = 0;
  while (pos < n && count < cap) {
    u32 len = cdc_next(p + pos, n - pos, min, avg, max, small, large);
    if (pos + len == n && len < max && !eof) break;
    pos += len;
    out[count++] = pos;
  }
  return count;
}
