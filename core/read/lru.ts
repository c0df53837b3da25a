/**
 * A least-recently-used cache bounded by the total size of its values (bytes), not by count.
 *
 * @module
 */
export interface Lru<K, V> {
  get(key: K): V | undefined;
  set(key: K, value: V, size: number): void;
  delete(key: K): void;
  clear(): void;
  readonly bytes: number;
}

export function createLru<K, V>(capacityBytes: number): Lru<K, V> {
  // Map iterates in insertion order: re-inserting on access keeps the oldest first.
  const map = new Map<K, { value: V; size: number }>();
  let bytes = 0;
  return {
    get(key) {
      const hit = map.get(key);
      if (!hit) return undefined;
      map.delete(key);
      map.set(key, hit);
      return hit.value;
    },
    set(key, value, size) {
      const old = map.get(key);
      if (old) {
        bytes -= old.size;
        map.delete(key);
      }
      if (size > capacityBytes) return;
      map.set(key, { value, size });
      bytes += size;
      for (const [k, v] of map) {
        if (bytes <= capacityBytes) break;
        map.delete(k);
        bytes -= v.size;
      }
    },
    delete(key) {
      const old = map.get(key);
      if (old) {
        bytes -= old.size;
        map.delete(key);
      }
    },
    clear() {
      map.clear();
      bytes = 0;
    },
    get bytes() {
      return bytes;
    },
  };
}
