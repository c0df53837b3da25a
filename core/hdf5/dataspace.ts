/**
 * The dataspace message (0x01): the shape of a dataset or attribute. Version 1 (rank 0 is a
 * scalar) and version 2 (with an explicit scalar / simple / null type).
 *
 * @module
 */
import { bad, Cursor, UNDEF } from "./cursor.ts";

export interface Dataspace {
  /** Dimensions, outermost first; [] for a scalar. */
  shape: number[];
  /** A null dataspace has no elements at all. */
  isNull: boolean;
  /** Element count (1 for a scalar, 0 for null). */
  count: number;
  /** The dimensions the dataset may grow to (-1: unlimited); `shape` when not given. */
  maxShape: number[];
}

/** HDF5 allows at most 32 dimensions. */
const MAX_RANK = 32;

export function parseDataspace(c: Cursor): Dataspace {
  const version = c.u8();
  if (version !== 1 && version !== 2) bad(c.what, `dataspace version ${version}`);
  const rank = c.u8();
  const flags = c.u8();
  if (rank > MAX_RANK) bad(c.what, `rank ${rank} (at most ${MAX_RANK})`);
  let isNull = false;
  if (version === 1) c.skip(5);
  else isNull = c.u8() === 2;
  const shape: number[] = [];
  for (let i = 0; i < rank; i++) shape.push(c.length("a dimension"));
  // Maximum dimensions: all ones is unlimited (read as an address to see that).
  const maxShape: number[] = [];
  for (let i = 0; i < rank && flags & 1; i++) {
    const m = new Cursor(c.take(c.lengthSize), c.what, c.lengthSize).address("a maximum dimension");
    if (m !== UNDEF && m < shape[i]) bad(c.what, `dimension ${i} is larger than its maximum`);
    maxShape.push(m === UNDEF ? -1 : m);
  }
  let count = isNull ? 0 : 1;
  for (const d of shape) {
    count *= d;
    if (!Number.isSafeInteger(count)) bad(c.what, `shape ${shape.join("x")} is too large`);
  }
  return {
    shape: isNull ? [] : shape,
    isNull,
    count,
    maxShape: isNull ? [] : flags & 1 ? maxShape : shape,
  };
}
