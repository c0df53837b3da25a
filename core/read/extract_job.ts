/**
 * The messages between extract (main thread) and its workers. The main thread walks the
 * index, resolves blocks of thin archives to the file that holds them, and sends runs of
 * blocks as jobs; workers decode, verify and write them at their offsets in the output file
 * (or in pieces to the files of a directory archive), then report. Every number in a job
 * comes from an index entry or file table entry the main thread validated.
 *
 * @module
 */
import type { HexzErrorCode } from "../errors.ts";
import type { BlockEntry } from "../format/entry.ts";
import type { BlockInfo } from "./archive.ts";

/** A job: up to this many blocks, or JOB_BYTES of output, whichever comes first. */
export const JOB_BLOCKS = 256;
export const JOB_BYTES = 4 * 1024 * 1024;
/** Per block in `ExtractJob.meta`: index, file, location, stored, logical, codec, position. */
export const JOB_FIELDS = 7;
/** Per piece in `ExtractJob.pieces`: block (its place in the job), file (its place in
 * `ExtractJob.paths`), position, start in the block, length. */
export const PIECE_FIELDS = 5;

/** Opens the output (already sized to the stream) for writing, if jobs write there (null:
 * every job has pieces); `stream` names blocks. */
export interface ExtractInit {
  type: "init";
  output: string | null;
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
  /**
   * Where the decoded bytes go when they are not the stream's own (the files of a directory
   * archive): PIECE_FIELDS numbers per piece, into files the main thread created, which the
   * runner opens by path (Deno's descriptors belong to one thread) and never through a
   * symbolic link. Without pieces each block goes to `position` in the output; with none
   * (an empty array) the blocks are only decoded and verified (`check`).
   */
  pieces?: Float64Array;
  /** The files `pieces` name. */
  paths?: string[];
  /** Names the blocks' stream in errors, instead of the one given at init. */
  stream?: string;
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

/** Gathers located blocks into the `meta` and `hashes` of one job after another. */
export interface JobBuilder {
  /** Adds block `b`, whose stored bytes are `entry` in archive file `file`; returns its place
   * in the job. */
  add(b: BlockInfo, entry: BlockEntry, file: number): number;
  /** The job has JOB_BLOCKS blocks or JOB_BYTES of output. */
  readonly full: boolean;
  /**
   * The blocks gathered so far (views valid until the next `add`) and the bytes they decode
   * to, or null if none; the next `add` starts a new job.
   */
  take(): { meta: Float64Array; hashes: Uint8Array; bytes: number } | null;
}

export function createJobBuilder(): JobBuilder {
  const meta = new Float64Array(JOB_BLOCKS * JOB_FIELDS);
  const hashes = new Uint8Array(JOB_BLOCKS * 32);
  let count = 0, bytes = 0;
  return {
    add(b, entry, file) {
      const f = count * JOB_FIELDS, len = b.entry.logicalLength;
      meta[f] = b.index;
      meta[f + 1] = file;
      meta[f + 2] = entry.location;
      meta[f + 3] = entry.storedLength;
      meta[f + 4] = len;
      meta[f + 5] = entry.codec;
      meta[f + 6] = b.offset;
      hashes.set(entry.hash, count * 32);
      bytes += len;
      return count++;
    },
    get full() {
      return count === JOB_BLOCKS || bytes >= JOB_BYTES;
    },
    take() {
      if (count === 0) return null;
      const r = {
        meta: meta.subarray(0, count * JOB_FIELDS),
        hashes: hashes.subarray(0, count * 32),
        bytes,
      };
      count = bytes = 0;
      return r;
    },
  };
}
