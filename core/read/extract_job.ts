/**
 * The messages between extract (main thread) and its workers. The main thread walks the
 * index, resolves blocks of thin archives to the file that holds them, and sends runs of
 * blocks as jobs; workers decode, verify and write them at their offsets in the output file,
 * then report. Every number in a job comes from an index entry the main thread validated.
 *
 * @module
 */
import type { HexzErrorCode } from "../errors.ts";

/** Per block in `ExtractJob.meta`: index, file, location, stored, logical, codec, position. */
export const JOB_FIELDS = 7;

/** Opens the output (already sized to the stream) for writing; `stream` names blocks. */
export interface ExtractInit {
  type: "init";
  output: string;
  stream: string;
}
/** An archive file that jobs refer to by `id`. */
export interface ExtractFile {
  type: "file";
  id: number;
  path: string;
}
export interface ExtractJob {
  type: "job";
  /** JOB_FIELDS numbers per block. */
  meta: Float64Array;
  /** The blocks' BLAKE3-256, 32 bytes each. */
  hashes: Uint8Array;
}
/** Closes every file; the worker answers "closed". */
export interface ExtractClose {
  type: "close";
}
export type ExtractRequest = ExtractInit | ExtractFile | ExtractJob | ExtractClose;

export type ExtractWorkerMessage =
  | { type: "ready" }
  | { type: "done"; bytes: number }
  | { type: "closed" }
  | { type: "error"; message: string; code?: HexzErrorCode };
