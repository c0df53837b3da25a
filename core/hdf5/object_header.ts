/**
 * Object headers: the list of messages that describe a group or a dataset. Version 1 (a
 * 16-byte prefix, 8-byte aligned messages) and version 2 ("OHDR", lookup3 checksum), each with
 * continuation blocks (message 0x10; "OCHK" in version 2) followed until every message is
 * read. A continuation seen twice, or too many of them, is reported, never looped on.
 *
 * @module
 */
import { HexzError } from "../errors.ts";
import { lookup3 } from "./checksum.ts";
import { bad, type Cursor } from "./cursor.ts";
import type { H5File } from "./h5file.ts";

/** Message types this reader looks at. */
export const MSG = {
  dataspace: 0x01,
  linkInfo: 0x02,
  datatype: 0x03,
  fillOld: 0x04,
  fill: 0x05,
  link: 0x06,
  externalFiles: 0x07,
  layout: 0x08,
  filters: 0x0b,
  attribute: 0x0c,
  continuation: 0x10,
  symbolTable: 0x11,
  attributeInfo: 0x15,
} as const;

const NAMES: Record<number, string> = {
  [MSG.dataspace]: "dataspace",
  [MSG.datatype]: "datatype",
  [MSG.fill]: "fill value",
  [MSG.filters]: "filter pipeline",
};

export interface Message {
  type: number;
  /** Bit 1: the message is shared (stored elsewhere); this reader refuses those. */
  flags: number;
  data: Uint8Array;
}

const MAX_BLOCKS = 4096;

/** Reads every message of the object header at absolute offset `at`; `what` names it. */
export async function readObjectHeader(f: H5File, at: number, what: string): Promise<Message[]> {
  const first = await f.read(at, Math.min(f.src.size - at, 1), `${what}: object header`);
  const w = `${what}: object header`;
  if (first[0] === 1) return await readV1(f, at, w);
  if (first[0] === 0x4f) return await readV2(f, at, w); // "O" of OHDR
  bad(w, `unknown version ${first[0]}`);
}

async function readV1(f: H5File, at: number, what: string): Promise<Message[]> {
  const p = await f.cursor(at, 16, what);
  p.skip(2);
  const count = p.u16();
  p.skip(4);
  const size = p.u32();
  const out: Message[] = [];
  const queue: [number, number][] = [[at + 16, size]];
  const seen = new Set<number>();
  while (queue.length) {
    const [addr, len] = queue.shift()!;
    if (seen.has(addr)) bad(what, `continuation block at ${addr} seen twice`);
    if (seen.size >= MAX_BLOCKS) bad(what, "too many continuation blocks");
    seen.add(addr);
    const c = await f.cursor(addr, len, what);
    while (c.left >= 8) {
      const type = c.u16(), size = c.u16(), flags = c.u8();
      c.skip(3);
      const data = c.take(size);
      if (type === MSG.continuation) queue.push(continuation(f, data, what));
      else out.push({ type, flags, data });
    }
  }
  if (out.length > count) bad(what, `${out.length} messages where the header says ${count}`);
  return out;
}

function continuation(f: H5File, data: Uint8Array, what: string): [number, number] {
  const c = f.over(data, `${what}: continuation message`);
  const addr = f.abs(c.address());
  const len = c.length();
  return [addr, len];
}

async function readV2(f: H5File, at: number, what: string): Promise<Message[]> {
  const p = await f.cursor(at, Math.min(f.src.size - at, 6 + 16 + 4 + 8), what);
  p.signature("OHDR");
  const version = p.u8();
  if (version !== 2) bad(what, `unknown version ${version}`);
  const flags = p.u8();
  if (flags & 0x20) p.skip(16);
  if (flags & 0x10) p.skip(4);
  const size = p.uint(1 << (flags & 3), "chunk size");
  const start = p.pos;
  const block = await f.cursor(at, start + size + 4, what);
  checkSum(block.bytes, what);
  block.pos = start;
  const out: Message[] = [];
  const queue: [number, number][] = [];
  const order = (flags & 0x04) !== 0;
  parseV2(f, block, start + size, order, out, queue, what);
  const seen = new Set<number>();
  while (queue.length) {
    const [addr, len] = queue.shift()!;
    if (seen.has(addr)) bad(what, `continuation block at ${addr} seen twice`);
    if (seen.size >= MAX_BLOCKS) bad(what, "too many continuation blocks");
    seen.add(addr);
    const c = await f.cursor(addr, len, what);
    if (len < 8) bad(what, `continuation block of ${len} bytes`);
    c.signature("OCHK");
    checkSum(c.bytes, what);
    parseV2(f, c, len - 4, order, out, queue, what);
  }
  return out;
}

function checkSum(bytes: Uint8Array, what: string) {
  const n = bytes.length - 4;
  const stored = bytes[n] | (bytes[n + 1] << 8) | (bytes[n + 2] << 16) | (bytes[n + 3] << 24);
  if (lookup3(bytes.subarray(0, n)) !== stored >>> 0) bad(what, "checksum mismatch");
}

function parseV2(
  f: H5File,
  c: Cursor,
  end: number,
  order: boolean,
  out: Message[],
  queue: [number, number][],
  what: string,
) {
  const head = order ? 6 : 4;
  while (end - c.pos >= head) {
    const type = c.u8(), size = c.u16(), flags = c.u8();
    if (order) c.skip(2);
    if (c.pos + size > end) bad(what, `message of ${size} bytes runs past its block`);
    const data = c.take(size);
    if (type === MSG.continuation) queue.push(continuation(f, data, what));
    else out.push({ type, flags, data });
  }
}

/**
 * The message of `type`, where a shared one (bit 1 of its flags) is replaced by the message
 * it refers to in another object's header: a committed datatype, as `h5py` makes with
 * `f["t"] = np.dtype(...)`. Messages shared through the file's shared message heap are refused.
 */
export async function findShared(
  f: H5File,
  msgs: Message[],
  type: number,
  what: string,
): Promise<Message | undefined> {
  const m = msgs.find((m) => m.type === type);
  if (!m || !(m.flags & 0x02)) return m;
  const c = f.over(m.data, `${what}: shared ${NAMES[type] ?? "message"}`);
  const version = c.u8(), kind = c.u8();
  if (version === 1) c.skip(6);
  else if (version === 3 && kind !== 2) {
    throw new HexzError(
      "unsupported",
      `${what}: a ${NAMES[type] ?? "message"} in the shared message heap is not supported`,
    );
  } else if (version !== 2 && version !== 3) bad(c.what, `unknown version ${version}`);
  const at = f.abs(c.address("object header"));
  const target = (await readObjectHeader(f, at, `${what}: committed ${NAMES[type] ?? "object"}`))
    .find((t) => t.type === type);
  if (!target || target.flags & 0x02) bad(c.what, "refers to no such message");
  return target;
}

/** The one message of `type`, or undefined; a shared one is refused. */
export function findMessage(msgs: Message[], type: number, what: string): Message | undefined {
  const m = msgs.find((m) => m.type === type);
  if (m && m.flags & 0x02) {
    throw new HexzError(
      "unsupported",
      `${what}: a shared ${NAMES[type] ?? `message (type ${type})`} (a committed datatype) ` +
        "is not supported",
    );
  }
  return m;
}
