/*
 * Shared by our WebAssembly modules: fixed-width types, unaligned little-endian loads and
 * stores, and one growable scratch arena after the module's static data. Each module is
 * single-threaded and owned by one TypeScript wrapper, which asks for the arena once per size.
 */
#ifndef HEXZ_MEM_H
#define HEXZ_MEM_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef unsigned long usize;

#define EXPORT(name) __attribute__((export_name(#name)))
#define INLINE static inline __attribute__((always_inline))

INLINE u32 load32(const u8 *p) {
  u32 v;
  __builtin_memcpy(&v, p, 4);
  return v;
}
INLINE u16 load16(const u8 *p) {
  u16 v;
  __builtin_memcpy(&v, p, 2);
  return v;
}
INLINE void store16(u8 *p, u16 v) { __builtin_memcpy(p, &v, 2); }
INLINE void store32(u8 *p, u32 v) { __builtin_memcpy(p, &v, 4); }

extern u8 __heap_base;

/*
 * Returns a pointer to at least `size` bytes of scratch memory, 16-byte aligned, growing the
 * linear memory when needed; 0 when it cannot grow. The same area is returned every time: the
 * caller lays out its buffers inside it.
 */
EXPORT(arena)
u8 *arena(u32 size) {
  usize base = ((usize)&__heap_base + 15) & ~(usize)15;
  usize need = base + size;
  usize have = __builtin_wasm_memory_size(0) * 65536;
  if (need > have) {
    usize pages = (need - have + 65535) / 65536;
    if (__builtin_wasm_memory_grow(0, pages) == (usize)-1) return 0;
  }
  return (u8 *)base;
}

#endif
