/*
 * LZ4 block format (https://github.com/lz4/lz4/blob/dev/doc/lz4_Block_format.md), written
 * from the format description: a greedy single-probe hash-table compressor with the usual
 * acceleration (skip faster through incompressible data) and a decompressor that checks every
 * length and offset against both buffers before it copies, whatever the input.
 *
 * Sequence: token (4 bits literal length, 4 bits match length - 4), extra literal-length bytes
 * (255 = more follow), literals, 2-byte little-endian offset, extra match-length bytes. The
 * last sequence holds only literals; the last 5 bytes are always literals and the last match
 * starts at least 12 bytes before the end.
 */
#include <wasm_simd128.h>

#include "mem.h"

#define MINMATCH 4
#define LASTLITERALS 5
#define MFLIMIT 12
#define MAX_DISTANCE 65535
#define HASH_LOG 13
#define SKIP_TRIGGER 6

/* Positions of recent 4-byte sequences: u16 for inputs of up to 64 KiB (half the memory to
 * clear and keep in cache), u32 above. */
static u32 table32[1 << HASH_LOG];
static u16 table16[1 << HASH_LOG];

INLINE void copy16(u8 *d, const u8 *s) { wasm_v128_store(d, wasm_v128_load(s)); }
INLINE void copy8(u8 *d, const u8 *s) {
  u64 v;
  __builtin_memcpy(&v, s, 8);
  __builtin_memcpy(d, &v, 8);
}

INLINE u32 hash4(u32 seq) { return (seq * 2654435761u) >> (32 - HASH_LOG); }

/* Number of equal bytes at a and b, not reading at or past `limit` through a. */
INLINE u32 count_match(const u8 *a, const u8 *b, const u8 *limit) {
  const u8 *start = a;
  while (a + 8 <= limit) {
    u64 x, y;
    __builtin_memcpy(&x, a, 8);
    __builtin_memcpy(&y, b, 8);
    u64 d = x ^ y;
    if (d) return (u32)(a - start) + (u32)(__builtin_ctzll(d) >> 3);
    a += 8;
    b += 8;
  }
  while (a < limit && *a == *b) {
    a++;
    b++;
  }
  return (u32)(a - start);
}

/* Upper bound of the compressed size of `n` input bytes (as LZ4_compressBound). */
EXPORT(lz4_bound)
u32 lz4_bound(u32 n) { return n + n / 255 + 16; }

/*
 * The compressor, specialised by clang for `small` inputs (n <= 64 KiB), where every offset
 * fits in 16 bits without a distance check and positions fit the u16 table. Output is the
 * same either way.
 */
#define GET(h) (small ? (u32)table16[h] : table32[h])
#define PUT(h, v) (small ? (void)(table16[h] = (u16)(v)) : (void)(table32[h] = (v)))
INLINE u32 lz4_compress_with(const u8 *src, u32 n, u8 *dst, u32 cap, u32 accel, const int small) {
  const u8 *ip = src, *anchor = src;
  const u8 *const iend = src + n;
  u8 *op = dst;
  u8 *const oend = dst + cap;
  if (accel < 1) accel = 1;

  if (n >= MFLIMIT + 1) {
    const u8 *const mflimit_plus_one = iend - MFLIMIT + 1;
    const u8 *const matchlimit = iend - LASTLITERALS;
    if (small) __builtin_memset(table16, 0, sizeof table16);
    else __builtin_memset(table32, 0, sizeof table32);
    PUT(hash4(load32(ip)), 0);
    ip++;
    /* The sequence at the next probe, kept: the table stores may alias the input, so clang
     * would otherwise load it again. */
    u32 fwd_seq = load32(ip);
    u32 fwd_h = hash4(fwd_seq);
    for (;;) {
      const u8 *match;
      u8 *token;
      /* Find a match. */
      {
        const u8 *fwd = ip;
        u32 step = 1;
        u32 attempts = accel << SKIP_TRIGGER;
        u32 seq;
        do {
          u32 h = fwd_h;
          seq = fwd_seq;
          ip = fwd;
          fwd += step;
          step = attempts++ >> SKIP_TRIGGER;
          if (fwd > mflimit_plus_one) goto last_literals;
          match = src + GET(h);
          fwd_seq = load32(fwd);
          fwd_h = hash4(fwd_seq);
          PUT(h, (u32)(ip - src));
        } while ((!small && match + MAX_DISTANCE < ip) || load32(match) != seq);
      }
      /* Extend backwards. */
      while (ip > anchor && match > src && ip[-1] == match[-1]) {
        ip--;
        match--;
      }
      /* Literals. */
      {
        u32 lit = (u32)(ip - anchor);
        token = op++;
        if (op + lit + lit / 255 + 2 + 1 + LASTLITERALS > oend) return 0;
        if (lit >= 15) {
          *token = 15 << 4;
          u32 len = lit - 15;
          for (; len >= 255; len -= 255) *op++ = 255;
          *op++ = (u8)len;
        } else {
          *token = (u8)(lit << 4);
        }
        if (op + lit + 16 <= oend) {
          /* Wild copy in 16-byte steps: may write past the literals, inside dst. */
          for (u32 k = 0; k < lit; k += 16) copy16(op + k, anchor + k);
        } else {
          __builtin_memcpy(op, anchor, lit);
        }
        op += lit;
      }
    next_match:
      /* Offset and match length. */
      store16(op, (u16)(ip - match));
      op += 2;
      {
        u32 ml = count_match(ip + MINMATCH, match + MINMATCH, matchlimit);
        ip += MINMATCH + ml;
        if (op + ml / 255 + 1 + LASTLITERALS > oend) return 0;
        if (ml >= 15) {
          *token += 15;
          ml -= 15;
          for (; ml >= 255; ml -= 255) *op++ = 255;
          *op++ = (u8)ml;
        } else {
          *token += (u8)ml;
        }
      }
      anchor = ip;
      if (ip >= mflimit_plus_one) break;
      PUT(hash4(load32(ip - 2)), (u32)(ip - 2 - src));
      /* Try an immediate match at the new position. */
      {
        u32 h = hash4(load32(ip));
        match = src + GET(h);
        PUT(h, (u32)(ip - src));
        if ((small || match + MAX_DISTANCE >= ip) && load32(match) == load32(ip)) {
          token = op++;
          *token = 0;
          goto next_match;
        }
      }
      fwd_seq = load32(++ip);
      fwd_h = hash4(fwd_seq);
    }
  }
last_literals : {
  u32 lit = (u32)(iend - anchor);
  if (op + 1 + lit + (lit + 255 - 15) / 255 > oend) return 0;
  if (lit >= 15) {
    *op++ = 15 << 4;
    u32 len = lit - 15;
    for (; len >= 255; len -= 255) *op++ = 255;
    *op++ = (u8)len;
  } else {
    *op++ = (u8)(lit << 4);
  }
  __builtin_memcpy(op, anchor, lit);
  op += lit;
}
  return (u32)(op - dst);
}
#undef GET
#undef PUT

/*
 * Compresses src[0..n) into dst[0..cap). Returns the compressed size, or 0 when it does not
 * fit in `cap` (the caller then stores the block raw). `accel` >= 1; 1 matches `lz4 -1`.
 */
EXPORT(lz4_compress)
u32 lz4_compress(const u8 *src, u32 n, u8 *dst, u32 cap, u32 accel) {
  return n <= 65536 ? lz4_compress_with(src, n, dst, cap, accel, 1)
                    : lz4_compress_with(src, n, dst, cap, accel, 0);
}


/*
 * Decompresses src[0..n) into exactly dst[0..size). Returns `size` on success and -1 when the
 * input is malformed: a length running past either buffer, an offset of 0 or before the start
 * of the output, a block ending in a match, or output shorter or longer than `size`.
 */
EXPORT(lz4_decompress)
int lz4_decompress(const u8 *src, u32 n, u8 *dst, u32 size) {
  const u8 *ip = src;
  const u8 *const iend = src + n;
  u8 *op = dst;
  u8 *const oend = dst + size;
  if (n == 0) return -1;
  for (;;) {
    u32 token = *ip++;
    /*
     * Shortcut for the common sequence, far from both ends: at most 14 literals and a match
     * of at most 18 bytes at an offset of 16 or more. One 16-byte copy of literals, two of
     * the match, and only the offset to check.
     */
    if (token < 0xF0 && (token & 15) != 15 && (u32)(iend - ip) >= 18 && (u32)(oend - op) >= 48) {
      u32 lit = token >> 4;
      copy16(op, ip);
      op += lit;
      ip += lit;
      u32 offset = load16(ip);
      u32 ml = (token & 15) + MINMATCH;
      if (offset >= 8 && offset <= (u32)(op - dst)) {
        ip += 2;
        const u8 *match = op - offset;
        if (offset >= 16) {
          copy16(op, match);
          copy16(op + 16, match + 16);
        } else {
          copy8(op, match);
          copy8(op + 8, match + 8);
          copy8(op + 16, match + 16);
        }
        op += ml;
        continue;
      }
      /* Otherwise the literals are done; the match takes the general path below. */
      token &= 15;
    }
    u32 lit = token >> 4;
    if (lit == 15) {
      u32 s;
      do {
        if (ip >= iend) return -1;
        s = *ip++;
        lit += s;
        if (lit > size) return -1;
      } while (s == 255);
    }
    if (lit > (u32)(iend - ip) || lit > (u32)(oend - op)) return -1;
    if ((u32)(iend - ip) >= lit + 16 && (u32)(oend - op) >= lit + 16) {
      for (u32 k = 0; k < lit; k += 16) copy16(op + k, ip + k);
    } else {
      __builtin_memcpy(op, ip, lit);
    }
    op += lit;
    ip += lit;
    if (ip == iend) break; /* the last sequence has no match */
    if (iend - ip < 2) return -1;
    u32 offset = load16(ip);
    ip += 2;
    if (offset == 0 || offset > (u32)(op - dst)) return -1;
    u32 ml = token & 15;
    if (ml == 15) {
      u32 s;
      do {
        if (ip >= iend) return -1;
        s = *ip++;
        ml += s;
        if (ml > size) return -1;
      } while (s == 255);
    }
    ml += MINMATCH;
    if (ml > (u32)(oend - op)) return -1;
    const u8 *match = op - offset;
    if (offset >= 16 && (u32)(oend - op) >= ((ml + 15) & ~15u)) {
      /* Non-overlapping 16-byte steps; may write up to 15 bytes past the match, inside dst. */
      u8 *d = op;
      const u8 *s = match;
      u8 *const e = op + ml;
      do {
        copy16(d, s);
        d += 16;
        s += 16;
      } while (d < e);
    } else if (offset >= 8 && (u32)(oend - op) >= ((ml + 7) & ~7u)) {
      u8 *d = op;
      const u8 *s = match;
      u8 *const e = op + ml;
      do {
        copy8(d, s);
        d += 8;
        s += 8;
      } while (d < e);
    } else if (ml <= 32) {
      /* Short match with a short offset: byte by byte, which also handles overlap. */
      for (u32 k = 0; k < ml; k++) op[k] = match[k];
    } else if (offset == 1) {
      __builtin_memset(op, *match, ml);
    } else {
      /* Long overlapping match: the output repeats with period `offset`; copy in doubling runs. */
      u32 left = ml;
      u8 *d = op;
      while (left) {
        u32 k = (u32)(d - match);
        if (k > left) k = left;
        __builtin_memcpy(d, match, k);
        d += k;
        left -= k;
      }
    }
    op += ml;
  }
  return op == oend ? (int)size : -1;
}
