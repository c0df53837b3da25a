/**
 * Build profiles: codec, level, block size and dictionary defaults for kinds of content.
 * Explicit options always override the profile.
 *
 * @module
 */
import { HexzError } from "../errors.ts";
import type { CodecName } from "../format/constants.ts";

export interface Profile {
  compression: CodecName;
  level: number;
  blockSize: number;
  /** Train a zstd dictionary on the input and store it in the archive. */
  dictionary: boolean;
  description: string;
}

const K = 1024;

export const PROFILES = {
  generic: {
    compression: "lz4",
    level: 1,
    blockSize: 64 * K,
    dictionary: false,
    description: "lz4, 64 KiB blocks: fast to pack and read",
  },
  eda: {
    compression: "zstd",
    level: 3,
    blockSize: 128 * K,
    dictionary: true,
    description: "zstd 3, 128 KiB blocks, trained dictionary: many similar text files",
  },
  embedded: {
    compression: "lz4",
    level: 1,
    blockSize: 16 * K,
    dictionary: false,
    description: "lz4, 16 KiB blocks: small random reads on small devices",
  },
  ml: {
    compression: "zstd",
    level: 3,
    blockSize: 256 * K,
    dictionary: true,
    description: "zstd 3, 256 KiB blocks, trained dictionary: checkpoints and datasets",
  },
  archival: {
    compression: "zstd",
    level: 19,
    blockSize: 256 * K,
    dictionary: false,
    description: "zstd 19, 256 KiB blocks: smallest archives, slow to pack",
  },
} as const satisfies Record<string, Profile>;

export type ProfileName = keyof typeof PROFILES;

export function getProfile(name: string): Profile {
  const p = (PROFILES as Record<string, Profile>)[name];
  if (!p) {
    throw new HexzError(
      "usage",
      `unknown profile '${name}' (expected ${Object.keys(PROFILES).join(", ")})`,
    );
  }
  return p;
}
