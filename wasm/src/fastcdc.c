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

/* Same contract as nextCut() in core/chunk/fastcdc.ts, for the chunk starting at p. */
EXPORT(cdc_next)
u32 cdc_next(const u8 *p, u32 n, u32 min, u32 avg, u32 max, u32 small, u32 large) {
  if (n <= min) return n;
  u32 limit = n < max ? n : max;
  u32 normal = limit < avg ? limit : avg;
  u64 fp = 0;
  u32 i = min;
  const u64 small2 = (u64)small << 1, large2 = (u64)large << 1;
  for (; i + 2 <= normal; i += 2) {
    fp = (fp << 2) + gear_ls[p[i]];
    if (!(fp & small2)) return i + 1;
    fp += gear[p[i + 1]];
    if (!(fp & small)) return i + 2;
  }
  if (i < normal) {
    fp = (fp << 1) + gear[p[i]];
    if (!(fp & small)) return i + 1;
    i++;
  }
  for (; i + 2 <= limit; i += 2) {
    fp = (fp << 2) + gear_ls[p[i]];
    if (!(fp & large2)) return i + 1;
    fp += gear[p[i + 1]];
    if (!(fp & large)) return i + 2;
  }
  if (i < limit) {
    fp = (fp << 1) + gear[p[i]];
    if (!(fp & large)) return i + 1;
  }
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
