/*
 * BLAKE3 (https://github.com/BLAKE3-team/BLAKE3-specs/blob/master/blake3.pdf), written from
 * the specification: the compression function, 1 KiB chunks, the binary tree of parent nodes,
 * extendable output, and the keyed-hash and derive-key modes.
 *
 * Speed comes from hashing four whole chunks at once with SIMD128: each 128-bit vector holds
 * the same state word of four chunks, so one G function advances four compressions. The tree
 * is built as the reference implementation does: a stack of chaining values, merged as soon as
 * a subtree is complete and more input is known to follow, so the root is only ever the
 * last node finalized.
 */
#include <wasm_simd128.h>

#include "mem.h"

#define CHUNK_LEN 1024
#define BLOCK_LEN 64
#define CHUNK_START 1
#define CHUNK_END 2
#define PARENT 4
#define ROOT 8

static const u32 IV[8] = {0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
                          0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19};

INLINE u32 rotr(u32 w, u32 c) { return (w >> c) | (w << (32 - c)); }

#define G(a, b, c, d, x, y)        \
  s[a] = s[a] + s[b] + (x);        \
  s[d] = rotr(s[d] ^ s[a], 16);    \
  s[c] = s[c] + s[d];              \
  s[b] = rotr(s[b] ^ s[c], 12);    \
  s[a] = s[a] + s[b] + (y);        \
  s[d] = rotr(s[d] ^ s[a], 8);     \
  s[c] = s[c] + s[d];              \
  s[b] = rotr(s[b] ^ s[c], 7);

/* One round with message schedule row (a..p); the seven rows are the spec's permutations. */
#define ROUND(M, a, b, c, d, e, f, g, h, i, j, k, l, m_, n, o, p) \
  G(0, 4, 8, 12, M[a], M[b])                                       \
  G(1, 5, 9, 13, M[c], M[d])                                       \
  G(2, 6, 10, 14, M[e], M[f])                                      \
  G(3, 7, 11, 15, M[g], M[h])                                      \
  G(0, 5, 10, 15, M[i], M[j])                                      \
  G(1, 6, 11, 12, M[k], M[l])                                      \
  G(2, 7, 8, 13, M[m_], M[n])                                      \
  G(3, 4, 9, 14, M[o], M[p])

#define SEVEN_ROUNDS(M)                                          \
  ROUND(M, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) \
  ROUND(M, 2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8) \
  ROUND(M, 3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1) \
  ROUND(M, 10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6) \
  ROUND(M, 12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4) \
  ROUND(M, 9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7) \
  ROUND(M, 11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13)

static void compress(const u32 cv[8], const u8 block[64], u32 block_len, u64 counter, u32 flags,
                     u32 s[16]) {
  u32 m[16];
  for (int i = 0; i < 16; i++) m[i] = load32(block + 4 * i);
  for (int i = 0; i < 8; i++) s[i] = cv[i];
  s[8] = IV[0];
  s[9] = IV[1];
  s[10] = IV[2];
  s[11] = IV[3];
  s[12] = (u32)counter;
  s[13] = (u32)(counter >> 32);
  s[14] = block_len;
  s[15] = flags;
  SEVEN_ROUNDS(m)
}

static void compress_in_place(u32 cv[8], const u8 block[64], u32 block_len, u64 counter,
                              u32 flags) {
  u32 s[16];
  compress(cv, block, block_len, counter, flags, s);
  for (int i = 0; i < 8; i++) cv[i] = s[i] ^ s[i + 8];
}

/* ---- four chunks at once ---- */

INLINE v128_t rot16(v128_t x) {
  return wasm_i8x16_shuffle(x, x, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
}
/* Shifts, not a byte shuffle: V8 turns this shuffle into pshufb with its mask in memory, and
 * the shifts measured 6-11% faster over the whole hash (the rot16 shuffle is faster kept). */
INLINE v128_t rot8(v128_t x) { return wasm_v128_or(wasm_u32x4_shr(x, 8), wasm_i32x4_shl(x, 24)); }
INLINE v128_t rot12(v128_t x) {
  return wasm_v128_or(wasm_u32x4_shr(x, 12), wasm_i32x4_shl(x, 20));
}
INLINE v128_t rot7(v128_t x) { return wasm_v128_or(wasm_u32x4_shr(x, 7), wasm_i32x4_shl(x, 25)); }

#undef G
#define G(a, b, c, d, x, y)                                   \
  s[a] = wasm_i32x4_add(wasm_i32x4_add(s[a], s[b]), (x));     \
  s[d] = rot16(wasm_v128_xor(s[d], s[a]));                    \
  s[c] = wasm_i32x4_add(s[c], s[d]);                          \
  s[b] = rot12(wasm_v128_xor(s[b], s[c]));                    \
  s[a] = wasm_i32x4_add(wasm_i32x4_add(s[a], s[b]), (y));     \
  s[d] = rot8(wasm_v128_xor(s[d], s[a]));                     \
  s[c] = wasm_i32x4_add(s[c], s[d]);                          \
  s[b] = rot7(wasm_v128_xor(s[b], s[c]));

INLINE void transpose4(v128_t *a, v128_t *b, v128_t *c, v128_t *d) {
  v128_t t0 = wasm_i32x4_shuffle(*a, *b, 0, 4, 1, 5);
  v128_t t1 = wasm_i32x4_shuffle(*a, *b, 2, 6, 3, 7);
  v128_t t2 = wasm_i32x4_shuffle(*c, *d, 0, 4, 1, 5);
  v128_t t3 = wasm_i32x4_shuffle(*c, *d, 2, 6, 3, 7);
  *a = wasm_i32x4_shuffle(t0, t2, 0, 1, 4, 5);
  *b = wasm_i32x4_shuffle(t0, t2, 2, 3, 6, 7);
  *c = wasm_i32x4_shuffle(t1, t3, 0, 1, 4, 5);
  *d = wasm_i32x4_shuffle(t1, t3, 2, 3, 6, 7);
}

/*
 * Four compressions side by side. Lane j hashes `blocks` consecutive 64-byte blocks at
 * in + j * stride, with counter `counter + j * step`; the first block gets `first` and the last
 * `last` on top of `flags`. Chunks: stride 1024, 16 blocks, step 1, CHUNK_START/CHUNK_END.
 * Parents: stride 64, 1 block, step 0, no extra flags (PARENT is in `flags`).
 */
INLINE void hash4_lanes(const u8 *in, u32 stride, int blocks, const u32 key[8], u64 counter, u32 step,
                  u32 flags, u32 first, u32 last, u32 out[32]) {
  v128_t h[8];
  for (int i = 0; i < 8; i++) h[i] = wasm_i32x4_splat(key[i]);
  const u64 c0 = counter, c1 = counter + step, c2 = counter + 2 * step, c3 = counter + 3 * step;
  const v128_t ctr_lo = wasm_i32x4_make((u32)c0, (u32)c1, (u32)c2, (u32)c3);
  const v128_t ctr_hi =
      wasm_i32x4_make((u32)(c0 >> 32), (u32)(c1 >> 32), (u32)(c2 >> 32), (u32)(c3 >> 32));
  for (int b = 0; b < blocks; b++) {
    v128_t m[16];
    for (int q = 0; q < 4; q++) {
      /* Words 4q..4q+3 of this block in each lane, transposed so m[w] holds word w x 4. */
      v128_t r0 = wasm_v128_load(in + 0 * stride + b * BLOCK_LEN + 16 * q);
      v128_t r1 = wasm_v128_load(in + 1 * stride + b * BLOCK_LEN + 16 * q);
      v128_t r2 = wasm_v128_load(in + 2 * stride + b * BLOCK_LEN + 16 * q);
      v128_t r3 = wasm_v128_load(in + 3 * stride + b * BLOCK_LEN + 16 * q);
      transpose4(&r0, &r1, &r2, &r3);
      m[4 * q] = r0;
      m[4 * q + 1] = r1;
      m[4 * q + 2] = r2;
      m[4 * q + 3] = r3;
    }
    u32 f = flags | (b == 0 ? first : 0) | (b == blocks - 1 ? last : 0);
    v128_t s[16];
    for (int i = 0; i < 8; i++) s[i] = h[i];
    s[8] = wasm_i32x4_splat(IV[0]);
    s[9] = wasm_i32x4_splat(IV[1]);
    s[10] = wasm_i32x4_splat(IV[2]);
    s[11] = wasm_i32x4_splat(IV[3]);
    s[12] = ctr_lo;
    s[13] = ctr_hi;
    s[14] = wasm_i32x4_splat(BLOCK_LEN);
    s[15] = wasm_i32x4_splat(f);
    SEVEN_ROUNDS(m)
    for (int i = 0; i < 8; i++) h[i] = wasm_v128_xor(s[i], s[i + 8]);
  }
  transpose4(&h[0], &h[1], &h[2], &h[3]);
  transpose4(&h[4], &h[5], &h[6], &h[7]);
  /* Now h[j] holds words 0..3 of lane j (j<4) and h[4+j] words 4..7. */
  for (int j = 0; j < 4; j++) {
    wasm_v128_store(out + 8 * j, h[j]);
    wasm_v128_store(out + 8 * j + 4, h[4 + j]);
  }
}

/* Chaining values of four consecutive whole chunks at `in`, chunk counters counter..+3. */
static void hash4_chunks(const u8 *in, const u32 key[8], u64 counter, u32 flags, u32 out[32]) {
  hash4_lanes(in, CHUNK_LEN, CHUNK_LEN / BLOCK_LEN, key, counter, 1, flags, CHUNK_START, CHUNK_END, out);
}

/* Four parent CVs of the eight CVs at `cvs` (pairs side by side are parent blocks). */
static void hash4_parents(const u32 *cvs, const u32 key[8], u32 flags, u32 out[32]) {
  hash4_lanes((const u8 *)cvs, BLOCK_LEN, 1, key, 0, 0, flags | PARENT, 0, 0, out);
}

/* ---- the incremental hasher ---- */

typedef struct {
  u32 key[8];
  u32 cv[8];
  u64 chunk_counter;
  u8 buf[BLOCK_LEN];
  u32 buf_len;
  u32 blocks_compressed;
  u32 flags;
  u32 stack_len;
  u32 stack[54 * 8];
} hasher;

EXPORT(b3_state_size)
u32 b3_state_size(void) { return sizeof(hasher); }

static void chunk_reset(hasher *h, u64 counter) {
  for (int i = 0; i < 8; i++) h->cv[i] = h->key[i];
  h->chunk_counter = counter;
  h->buf_len = 0;
  h->blocks_compressed = 0;
}

INLINE u32 chunk_len(const hasher *h) { return h->blocks_compressed * BLOCK_LEN + h->buf_len; }
INLINE u32 start_flag(const hasher *h) { return h->blocks_compressed == 0 ? CHUNK_START : 0; }

/* Adds up to the rest of the current chunk from `in`; returns bytes taken. */
static u32 chunk_update(hasher *h, const u8 *in, u32 len) {
  u32 taken = 0;
  while (len > 0) {
    if (h->buf_len == BLOCK_LEN) {
      compress_in_place(h->cv, h->buf, BLOCK_LEN, h->chunk_counter, h->flags | start_flag(h));
      h->blocks_compressed++;
      h->buf_len = 0;
    }
    /* Whole blocks straight from the input while more input follows them. */
    while (h->buf_len == 0 && len > BLOCK_LEN) {
      compress_in_place(h->cv, in, BLOCK_LEN, h->chunk_counter, h->flags | start_flag(h));
      h->blocks_compressed++;
      in += BLOCK_LEN;
      len -= BLOCK_LEN;
      taken += BLOCK_LEN;
    }
    u32 want = BLOCK_LEN - h->buf_len;
    u32 take = len < want ? len : want;
    __builtin_memcpy(h->buf + h->buf_len, in, take);
    h->buf_len += take;
    in += take;
    len -= take;
    taken += take;
  }
  return taken;
}

static void parent_cv(const u32 left[8], const u32 right[8], const u32 key[8], u32 flags,
                      u32 out[8]) {
  u8 block[64];
  __builtin_memcpy(block, left, 32);
  __builtin_memcpy(block + 32, right, 32);
  for (int i = 0; i < 8; i++) out[i] = key[i];
  compress_in_place(out, block, BLOCK_LEN, 0, flags | PARENT);
}

/* Pushes the CV of chunk number total-1; merges every subtree it completes. */
static void add_chunk_cv(hasher *h, const u32 cv_in[8], u64 total) {
  u32 cv[8];
  for (int i = 0; i < 8; i++) cv[i] = cv_in[i];
  while ((total & 1) == 0) {
    h->stack_len--;
    parent_cv(h->stack + 8 * h->stack_len, cv, h->key, h->flags, cv);
    total >>= 1;
  }
  for (int i = 0; i < 8; i++) h->stack[8 * h->stack_len + i] = cv[i];
  h->stack_len++;
}

/* Pushes the CV of a whole 16-chunk subtree ending at chunk `total`; merges as add_chunk_cv. */
static void add_subtree_cv(hasher *h, const u32 cv_in[8], u64 total) {
  u32 cv[8];
  for (int i = 0; i < 8; i++) cv[i] = cv_in[i];
  u64 t = total >> 4;
  while ((t & 1) == 0) {
    h->stack_len--;
    parent_cv(h->stack + 8 * h->stack_len, cv, h->key, h->flags, cv);
    t >>= 1;
  }
  for (int i = 0; i < 8; i++) h->stack[8 * h->stack_len + i] = cv[i];
  h->stack_len++;
}

/*
 * Starts a hasher at `h`. `key` is 32 bytes or 0 (then the IV is the key); `flags` is 0
 * (hash), 16 (keyed hash), 32 (derive-key context) or 64 (derive-key material).
 */
EXPORT(b3_init)
void b3_init(hasher *h, const u8 *key, u32 flags) {
  for (int i = 0; i < 8; i++) h->key[i] = key ? load32(key + 4 * i) : IV[i];
  h->flags = flags;
  h->stack_len = 0;
  chunk_reset(h, 0);
}

EXPORT(b3_update)
void b3_update(hasher *h, const u8 *in, u32 len) {
  while (len > 0) {
    if (chunk_len(h) == CHUNK_LEN) {
      u32 cv[8];
      for (int i = 0; i < 8; i++) cv[i] = h->cv[i];
      compress_in_place(cv, h->buf, h->buf_len, h->chunk_counter,
                        h->flags | start_flag(h) | CHUNK_END);
      u64 total = h->chunk_counter + 1;
      add_chunk_cv(h, cv, total);
      chunk_reset(h, total);
    }
    if (chunk_len(h) == 0 && (h->chunk_counter & 15) == 0) {
      /* Whole 16-chunk subtrees: chunks and the parents above them 4 at a time. */
      while (len > 16 * CHUNK_LEN) {
        u32 cvs[16 * 8], p8[8 * 8], p4[4 * 8], p2[2 * 8], top[8];
        for (int k = 0; k < 4; k++) {
          hash4_chunks(in + 4 * k * CHUNK_LEN, h->key, h->chunk_counter + 4 * k, h->flags,
                       cvs + 32 * k);
        }
        hash4_parents(cvs, h->key, h->flags, p8);
        hash4_parents(cvs + 64, h->key, h->flags, p8 + 32);
        hash4_parents(p8, h->key, h->flags, p4);
        parent_cv(p4, p4 + 8, h->key, h->flags, p2);
        parent_cv(p4 + 16, p4 + 24, h->key, h->flags, p2 + 8);
        parent_cv(p2, p2 + 8, h->key, h->flags, top);
        add_subtree_cv(h, top, h->chunk_counter + 16);
        chunk_reset(h, h->chunk_counter + 16);
        in += 16 * CHUNK_LEN;
        len -= 16 * CHUNK_LEN;
      }
    }
    if (chunk_len(h) == 0) {
      while (len > 4 * CHUNK_LEN) {
        u32 cvs[32];
        hash4_chunks(in, h->key, h->chunk_counter, h->flags, cvs);
        for (int j = 0; j < 4; j++) add_chunk_cv(h, cvs + 8 * j, h->chunk_counter + j + 1);
        chunk_reset(h, h->chunk_counter + 4);
        in += 4 * CHUNK_LEN;
        len -= 4 * CHUNK_LEN;
      }
    }
    u32 want = CHUNK_LEN - chunk_len(h);
    u32 take = chunk_update(h, in, len < want ? len : want);
    in += take;
    len -= take;
  }
}

/* Writes `out_len` bytes of output (32 for a plain hash); the hasher stays usable. */
EXPORT(b3_finalize)
void b3_finalize(const hasher *h, u8 *out, u32 out_len) {
  u32 cv[8], block_words[16];
  u8 block[64];
  u32 block_len = h->buf_len, flags = h->flags | start_flag(h) | CHUNK_END;
  u64 counter = h->chunk_counter;
  for (int i = 0; i < 8; i++) cv[i] = h->cv[i];
  __builtin_memset(block, 0, sizeof block);
  __builtin_memcpy(block, h->buf, h->buf_len);
  for (u32 n = h->stack_len; n > 0; n--) {
    /* Turn the pending output into a CV, then make it the right child of a parent node. */
    compress_in_place(cv, block, block_len, counter, flags);
    __builtin_memcpy(block, h->stack + 8 * (n - 1), 32);
    __builtin_memcpy(block + 32, cv, 32);
    for (int i = 0; i < 8; i++) cv[i] = h->key[i];
    block_len = BLOCK_LEN;
    counter = 0;
    flags = h->flags | PARENT;
  }
  for (u64 ctr = 0; out_len > 0; ctr++) {
    u32 s[16];
    compress(cv, block, block_len, ctr, flags | ROOT, s);
    for (int i = 0; i < 8; i++) {
      block_words[i] = s[i] ^ s[i + 8];
      block_words[i + 8] = s[i + 8] ^ cv[i];
    }
    u32 take = out_len < 64 ? out_len : 64;
    __builtin_memcpy(out, block_words, take);
    out += take;
    out_len -= take;
  }
}

static hasher one_shot;

/* BLAKE3-256 of in[0..len) into out[0..32). */
EXPORT(b3_hash)
void b3_hash(const u8 *in, u32 len, u8 *out) {
  b3_init(&one_shot, 0, 0);
  b3_update(&one_shot, in, len);
  b3_finalize(&one_shot, out, 32);
}
