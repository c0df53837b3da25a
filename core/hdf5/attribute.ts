/**
 * Attribute messages (0x0C, versions 1-3) decoded as JSON where that is simple: numbers,
 * booleans and strings (fixed-length, or variable-length from the global heap, as h5py
 * stores Python strings), as a scalar or as nested lists for a shape. Anything else is left
 * out (`undefined`), as are attributes of more than 65,536 elements.
 *
 * @module
 */
import { bad, type Cursor } from "./cursor.ts";
import { type Datatype, parseDatatype } from "./datatype.ts";
import { parseDataspace } from "./dataspace.ts";
import type { H5File } from "./h5file.ts";
import type { globalHeap } from "./heap.ts";

const MAX_ELEMENTS = 65536;

export interface Attribute {
  name: string;
  value: unknown;
}

/** The value of an attribute message, or undefined when it is not simple. */
export async function parseAttribute(
  f: H5File,
  c: Cursor,
  heap: ReturnType<typeof globalHeap>,
): Promise<Attribute> {
  const version = c.u8();
  if (version < 1 || version > 3) bad(c.what, `attribute version ${version}`);
  c.u8(); // reserved (1) or flags
  const nameSize = c.u16(), typeSize = c.u16(), spaceSize = c.u16();
  if (version === 3) c.u8(); // name charset
  const pad = (n: number) => version === 1 ? (n + 7) & ~7 : n;
  const rawName = c.take(pad(nameSize));
  const end = rawName.indexOf(0);
  const name = new TextDecoder().decode(rawName.subarray(0, end < 0 ? nameSize : end));
  const typeBytes = c.take(pad(typeSize));
  const spaceBytes = c.take(pad(spaceSize));
  const what = `${c.what} '${name}'`;
  const type = parseDatatype(f.over(typeBytes, what));
  const space = parseDataspace(f.over(spaceBytes, what));
  const simple = ["int", "uint", "float", "bool", "string", "vlen-string"].includes(type.kind);
  if (!simple || space.count > MAX_ELEMENTS) return { name, value: undefined };
  const data = c.take(Math.min(c.left, space.count * type.size));
  if (data.length < space.count * type.size) bad(what, "data is truncated");
  const values: unknown[] = [];
  for (let i = 0; i < space.count; i++) {
    values.push(
      await element(f, type, data.subarray(i * type.size, (i + 1) * type.size), heap, what),
    );
  }
  if (space.isNull) return { name, value: null };
  if (!space.shape.length) return { name, value: values[0] };
  return { name, value: nest(values, space.shape) };
}

function nest(values: unknown[], shape: number[]): unknown {
  if (shape.length === 1) return values;
  const step = values.length / shape[0];
  const out = [];
  for (let i = 0; i < shape[0]; i++) {
    out.push(nest(values.slice(i * step, (i + 1) * step), shape.slice(1)));
  }
  return out;
}

async function element(
  f: H5File,
  t: Datatype,
  b: Uint8Array,
  heap: ReturnType<typeof globalHeap>,
  what: string,
): Promise<unknown> {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const le = t.littleEndian;
  switch (t.kind) {
    case "bool":
      return b[0] !== 0;
    case "int":
    case "uint": {
      if (t.size === 8) {
        const v = t.kind === "int" ? dv.getBigInt64(0, le) : dv.getBigUint64(0, le);
        return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
      }
      const get = {
        int: [
          0,
          (i: number) => dv.getInt8(i),
          (i: number) => dv.getInt16(i, le),
          0,
          (i: number) => dv.getInt32(i, le),
        ],
        uint: [
          0,
          (i: number) => dv.getUint8(i),
          (i: number) => dv.getUint16(i, le),
          0,
          (i: number) => dv.getUint32(i, le),
        ],
      }[t.kind][t.size] as (i: number) => number;
      return get(0);
    }
    case "float":
      if (t.size === 2) return null; // no float16 in JSON here
      return finite(t.size === 4 ? dv.getFloat32(0, le) : dv.getFloat64(0, le));
    case "string": {
      let end = b.length;
      while (end > 0 && (b[end - 1] === 0 || (t.padding === 2 && b[end - 1] === 0x20))) end--;
      const z = b.indexOf(0);
      if (z >= 0 && z < end) end = z;
      return new TextDecoder().decode(b.subarray(0, end));
    }
    case "vlen-string": {
      const c = f.over(b, what);
      const length = c.u32();
      const address = c.address();
      const index = c.u32();
      if (length === 0) return "";
      const obj = await heap(address, index, what);
      if (obj.length < length) bad(what, "string is shorter than its length");
      return new TextDecoder().decode(obj.subarray(0, length));
    }
  }
  return undefined;
}

/** JSON has no NaN or infinities: they become strings, as Python's json would not write. */
function finite(v: number): number | string {
  return Number.isFinite(v) ? v : String(v);
}
