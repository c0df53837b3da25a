/**
 * The datatype message (0x03): what one element is. Integers, IEEE floats, fixed-length
 * strings and h5py's booleans (an enum of int8 with FALSE = 0 and TRUE = 1) map to numpy
 * dtype strings ("<f4", "|i1", "|S10", "|b1"); other enums map to their base integer type;
 * opaque types and compounds of those are "|V" and their size, a compound with its `fields` as
 * numpy's `dtype.fields` has them. Everything else (array, reference, bitfield, time,
 * variable-length, compounds holding them or other compounds) has a `reason` instead of a
 * dtype: such datasets are listed as skipped, not guessed at. Every type's properties are
 * consumed, so the cursor is left after it.
 *
 * @module
 */
import { HexzError } from "../errors.ts";
import { bad, type Cursor } from "./cursor.ts";

export type TypeKind =
  | "int"
  | "uint"
  | "float"
  | "bool"
  | "string"
  | "vlen-string"
  | "compound"
  | "opaque"
  | "other";

/** A member of a compound type, as numpy's `dtype.fields` has it. */
export interface Field {
  /** The member's name. */
  name: string;
  /** Its numpy dtype string. */
  dtype: string;
  /** Its byte offset in the element. */
  offset: number;
}

export interface Datatype {
  kind: TypeKind;
  /** Bytes per element. */
  size: number;
  littleEndian: boolean;
  /** numpy's name of the element type, or null when it has none here (see `reason`). */
  dtype: string | null;
  reason?: string;
  /** Strings: 0 null-terminated, 1 null-padded, 2 space-padded. */
  padding?: number;
  /** Strings: 0 ASCII, 1 UTF-8. */
  charset?: number;
  /** Compound types: the members (numpy's dtype is then "|V" and the size). */
  fields?: Field[];
}

const CLASS_NAMES = [
  "fixed-point",
  "floating-point",
  "time",
  "string",
  "bitfield",
  "opaque",
  "compound",
  "reference",
  "enum",
  "variable-length",
  "array",
];

/** How deep types may nest (compound in array in compound ...); HDF5 sets no limit, but a
 * hostile file must not exhaust the stack. */
const MAX_NESTING = 32;

/** The most bytes one element may have here (a larger type is refused, so that a fill value
 * or a row of one element never makes a huge allocation). */
const MAX_ELEMENT = 16 << 20;

/** IEEE layouts: size -> [mantissa bits, exponent bits, bias]. */
const IEEE: Record<number, [number, number, number]> = {
  2: [10, 5, 15],
  4: [23, 8, 127],
  8: [52, 11, 1023],
};

/** Parses a datatype at the cursor, which is left after it. */
export function parseDatatype(c: Cursor, depth = 0): Datatype {
  const what = c.what;
  if (depth > MAX_NESTING) bad(what, `datatypes nested more than ${MAX_NESTING} deep`);
  const b0 = c.u8();
  const cls = b0 & 0x0f, version = b0 >> 4;
  if (version < 1 || version > 5) bad(what, `datatype version ${version}`);
  const bits0 = c.u8(), bits1 = c.u8();
  c.u8();
  const size = c.u32();
  if (size === 0) bad(what, "datatype of 0 bytes");
  if (size > MAX_ELEMENT) {
    throw new HexzError(
      "unsupported",
      `${what}: a datatype of ${size} bytes (more than ${MAX_ELEMENT}) is not supported`,
    );
  }
  const le = (bits0 & 1) === 0;
  const order = size === 1 ? "|" : le ? "<" : ">";
  const other = (reason: string): Datatype => ({
    kind: "other",
    size,
    littleEndian: le,
    dtype: null,
    reason,
  });
  switch (cls) {
    case 0: {
      const offset = c.u16(), precision = c.u16();
      const signed = (bits0 & 0x08) !== 0;
      if (offset !== 0 || precision !== size * 8 || ![1, 2, 4, 8].includes(size)) {
        return other(`${precision}-bit integer datatype at bit ${offset} of ${size} bytes`);
      }
      return {
        kind: signed ? "int" : "uint",
        size,
        littleEndian: le,
        dtype: `${order}${signed ? "i" : "u"}${size}`,
      };
    }
    case 1: {
      const offset = c.u16(), precision = c.u16();
      c.u8(); // exponent location
      const expSize = c.u8();
      c.u8(); // mantissa location
      const mantSize = c.u8();
      const bias = c.u32();
      const ieee = IEEE[size];
      if ((bits0 & 0x40) !== 0) return other("VAX floating-point datatype");
      if (
        !ieee || offset !== 0 || precision !== size * 8 || mantSize !== ieee[0] ||
        expSize !== ieee[1] || bias !== ieee[2]
      ) {
        return other(`non-IEEE ${size}-byte floating-point datatype`);
      }
      return { kind: "float", size, littleEndian: le, dtype: `${order}f${size}` };
    }
    case 3:
      return {
        kind: "string",
        size,
        littleEndian: true,
        dtype: `|S${size}`,
        padding: bits0 & 0x0f,
        charset: bits0 >> 4,
      };
    case 8: {
      const members = bits0 | (bits1 << 8);
      const base = parseDatatype(c, depth + 1);
      const names: string[] = [];
      for (let i = 0; i < members; i++) {
        const start = c.pos;
        while (c.u8() !== 0) { /* the name's bytes */ }
        names.push(new TextDecoder().decode(c.bytes.subarray(start, c.pos - 1)));
        if (version < 3) c.skip((8 - ((c.pos - start) % 8)) % 8);
      }
      const values: number[] = [];
      for (let i = 0; i < members; i++) {
        const v = c.take(base.size);
        values.push(base.size === 1 ? (base.kind === "int" ? (v[0] << 24) >> 24 : v[0]) : NaN);
      }
      const isBool = base.dtype === "|i1" && members === 2 && names[0] === "FALSE" &&
        names[1] === "TRUE" && values[0] === 0 && values[1] === 1;
      if (isBool) return { kind: "bool", size: 1, littleEndian: true, dtype: "|b1" };
      if (base.kind !== "int" && base.kind !== "uint") {
        return other("enum datatype of a non-integer");
      }
      return { ...base };
    }
    case 6: {
      // Members: name (padded to 8 bytes before version 3), offset, (version 1: an array
      // description), type.
      const members = bits0 | (bits1 << 8);
      const fields: Field[] = [];
      let reason: string | undefined;
      const offsetWidth = version >= 3 ? Math.floor(Math.floor(Math.log2(size)) / 8) + 1 : 4;
      for (let i = 0; i < members; i++) {
        const start = c.pos;
        while (c.u8() !== 0) { /* the name's bytes */ }
        const name = new TextDecoder().decode(c.bytes.subarray(start, c.pos - 1));
        if (version < 3) c.skip((8 - ((c.pos - start) % 8)) % 8);
        const offset = c.uint(offsetWidth, "member offset");
        if (version === 1) {
          const rank = c.u8();
          c.skip(3 + 4 + 4 + 16);
          if (rank) reason ??= `compound datatype with an array member '${name}'`;
        }
        const t = parseDatatype(c, depth + 1);
        if (offset + t.size > size) bad(what, `compound member '${name}' lies outside its type`);
        if (t.dtype === null || t.fields) {
          reason ??= `compound datatype with a member '${name}' of ${
            t.fields ? "compound datatype" : t.reason
          }`;
        } else fields.push({ name, dtype: t.dtype, offset });
      }
      if (reason) return other(reason);
      return { kind: "compound", size, littleEndian: le, dtype: `|V${size}`, fields };
    }
    case 5:
      c.skip(bits0); // the ASCII tag, padded
      return { kind: "opaque", size, littleEndian: le, dtype: `|V${size}` };
    case 2:
      c.skip(2); // precision
      return other("time datatype");
    case 4:
      c.skip(4); // offset, precision
      return other("bitfield datatype");
    case 10: {
      const rank = c.u8();
      if (version < 3) c.skip(3);
      c.skip(4 * rank * (version < 3 ? 2 : 1));
      parseDatatype(c, depth + 1);
      return other("array datatype");
    }
    case 9: {
      const isString = (bits0 & 0x0f) === 1;
      if (isString) {
        parseDatatype(c, depth + 1); // the base type (a character)
        return {
          kind: "vlen-string",
          size,
          littleEndian: true,
          dtype: null,
          reason: "variable-length string datatype",
          padding: bits0 >> 4,
          charset: bits1 & 0x0f,
        };
      }
      parseDatatype(c, depth + 1);
      return other("variable-length sequence datatype");
    }
    default:
      if (cls >= CLASS_NAMES.length) bad(what, `unknown datatype class ${cls}`);
      return other(`${CLASS_NAMES[cls]} datatype`);
  }
}
