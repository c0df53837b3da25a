/**
 * Codec names and levels as users give them: parsed and checked without loading any codec
 * (the command line checks them before it starts the pack workers).
 *
 * @module
 */
import { HexzError } from "../errors.ts";
import type { CodecName } from "../format/constants.ts";

export const DEFAULT_LEVEL: Record<CodecName, number> = { none: 0, lz4: 1, zstd: 3 };

export function parseCodecName(s: string): CodecName {
  if (s === "none" || s === "lz4" || s === "zstd") return s;
  throw new HexzError("usage", `unknown compression '${s}' (expected lz4, zstd or none)`);
}

/** Validates a level for a codec. lz4's level is its acceleration (1 = `lz4 -1`). */
export function checkLevel(name: CodecName, level: number): void {
  parseCodecName(name); // a name from untyped code: refused, never taken for another codec
  const ok = name === "none"
    ? true
    : name === "lz4"
    ? Number.isInteger(level) && level >= 1 && level <= 65537
    : Number.isInteger(level) && level >= -7 && level <= 22 && level !== 0;
  if (!ok) {
    throw new HexzError(
      "usage",
      name === "lz4"
        ? `lz4 level (acceleration) must be 1..65537, got ${level}`
        : `zstd level must be -7..-1 or 1..22, got ${level}`,
    );
  }
}
