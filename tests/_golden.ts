/** The input and options of the golden vector tests/vectors/v1-small.hxz (see its README.md). */

/** The input of the golden vector: one of each block kind, and a short last block. */
export function goldenInput(): { disk: Uint8Array; memory: Uint8Array } {
  const disk = new Uint8Array(4 * 1024 + 904);
  for (let i = 0; i < 1024; i++) disk[i] = (i * 7 + 3) & 0xff; // block 0: data
  // block 1: zero
  disk.set(disk.subarray(0, 1024), 2048); // block 2: dedup of block 0
  disk.set(new TextEncoder().encode("hexz golden vector\n".repeat(54)).subarray(0, 1024), 3072);
  for (let i = 4096; i < disk.length; i++) disk[i] = i & 0xff; // block 4: 904 bytes
  const memory = new TextEncoder().encode("memory stream of the golden vector\n".repeat(3));
  return { disk, memory };
}

export const GOLDEN_OPTIONS = {
  compression: "none" as const,
  blockSize: 1024,
  uuid: new Uint8Array([
    0x6f,
    0x1e,
    0x3a,
    0x52,
    0x0b,
    0x7c,
    0x4d,
    0x21,
    0x9a,
    0x10,
    0x55,
    0x44,
    0x33,
    0x22,
    0x11,
    0x00,
  ]),
  createdAtMs: Date.UTC(2026, 10, 22, 12, 0, 0),
  toolVersion: "hexz golden",
  message: "golden vector v1",
  metadata: { purpose: "docs/FORMAT.md golden vector" },
};

/**
 * The input of the golden vector tests/vectors/v1-zero-run.hxz: a disk stream of 300 blocks of
 * 1 KiB, block 0 data and blocks 1..299 zero, whose one index page is stored LZ4-compressed.
 */
export function zeroRunInput(): Uint8Array {
  const disk = new Uint8Array(300 * 1024);
  for (let i = 0; i < 1024; i++) disk[i] = (i * 13 + 5) & 0xff;
  return disk;
}

export const ZERO_RUN_OPTIONS = {
  ...GOLDEN_OPTIONS,
  message: "golden vector v1, compressed index",
  metadata: { purpose: "docs/FORMAT.md golden vector, compressed index page" },
};

/**
 * The input of the golden vector tests/vectors/v1-thin.hxz, a thin child of v1-small.hxz: a
 * disk stream of 100 blocks of 1 KiB alternating v1-small's disk blocks 0 and 3 (all unchanged
 * blocks: parent entries that inherit their hash), then one new block of text; and v1-small's
 * memory stream unchanged.
 */
export function thinInput(): { disk: Uint8Array; memory: Uint8Array } {
  const parent = goldenInput();
  const disk = new Uint8Array(101 * 1024);
  for (let i = 0; i < 100; i++) {
    const from = i % 2 ? 3 : 0;
    disk.set(parent.disk.subarray(from * 1024, from * 1024 + 1024), i * 1024);
  }
  disk.set(
    new TextEncoder().encode("hexz thin golden vector\n".repeat(43)).subarray(0, 1024),
    100 * 1024,
  );
  return { disk, memory: parent.memory };
}

export const THIN_OPTIONS = {
  ...GOLDEN_OPTIONS,
  uuid: GOLDEN_OPTIONS.uuid.map((b, i) => i === 15 ? 0x01 : b),
  createdAtMs: Date.UTC(2026, 11, 7, 12, 0, 0),
  message: "golden vector v1, thin",
  metadata: { purpose: "docs/FORMAT.md golden vector, thin child with inherited hashes" },
};

/**
 * The input of the golden vector tests/vectors/v1-back.hxz, a thin child of v1-thin.hxz whose
 * streams are v1-small's again: its disk blocks 0, 2 and 3 and its memory are in v1-thin's
 * streams (ancestor 0), its short block 4 only in v1-small's (ancestor 1, feature bit 5).
 */
export function backInput(): { disk: Uint8Array; memory: Uint8Array } {
  return goldenInput();
}

export const BACK_OPTIONS = {
  ...GOLDEN_OPTIONS,
  uuid: GOLDEN_OPTIONS.uuid.map((b, i) => i === 15 ? 0x02 : b),
  createdAtMs: Date.UTC(2026, 11, 7, 13, 0, 0),
  message: "golden vector v1, back",
  metadata: { purpose: "docs/FORMAT.md golden vector, a block from the grandparent" },
};
