/** Helpers for tests that pack and read archives. */
import { open, pack, type PackOptions } from "../mod.ts";
import type { Archive } from "../core/read/archive.ts";

export async function packBytes(
  dir: string,
  disk: Uint8Array | null,
  opts: Partial<PackOptions> = {},
  memory: Uint8Array | null = null,
): Promise<string> {
  const out = `${dir}/a-${crypto.randomUUID()}.hxz`;
  const o: PackOptions = { output: out, ...opts };
  if (disk) {
    o.disk = `${out}.disk`;
    await Deno.writeFile(o.disk, disk);
  }
  if (memory) {
    o.memory = `${out}.mem`;
    await Deno.writeFile(o.memory, memory);
  }
  await pack(o);
  return out;
}

export async function readAll(a: Archive, stream: "disk" | "memory"): Promise<Uint8Array> {
  return await a.read(stream, 0, a.size(stream));
}

export async function withOpen<T>(path: string, fn: (a: Archive) => Promise<T>): Promise<T> {
  const a = await open(path);
  try {
    return await fn(a);
  } finally {
    a.close();
  }
}

export function assertBytesEqual(actual: Uint8Array, expected: Uint8Array, what = "bytes") {
  if (actual.length !== expected.length) {
    throw new Error(`${what}: length ${actual.length} != ${expected.length}`);
  }
  for (let i = 0; i < actual.length; i++) {
    if (actual[i] !== expected[i]) throw new Error(`${what}: first difference at byte ${i}`);
  }
}
