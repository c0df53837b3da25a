/**
 * A writer for the cpio "newc" format (what the Linux kernel unpacks as an initramfs):
 * 110-byte ASCII-hex headers, names and data padded to 4 bytes, ended by `TRAILER!!!`.
 *
 * @module
 */

export interface CpioEntry {
  /** Path inside the archive, without a leading slash. */
  name: string;
  /** File type and permission bits, e.g. 0o100755 for an executable, 0o40755 for a directory. */
  mode: number;
  data?: Uint8Array;
}

const enc = new TextEncoder();
const hex8 = (n: number) => n.toString(16).padStart(8, "0");

export function cpioNewc(entries: CpioEntry[]): Uint8Array<ArrayBuffer> {
  const parts: Uint8Array[] = [];
  let size = 0;
  const push = (b: Uint8Array) => {
    parts.push(b);
    size += b.length;
    const pad = (4 - (size % 4)) % 4;
    if (pad) {
      parts.push(new Uint8Array(pad));
      size += pad;
    }
  };
  let ino = 1;
  for (const e of [...entries, { name: "TRAILER!!!", mode: 0 }]) {
    const data: Uint8Array = (e as CpioEntry).data ?? new Uint8Array(0);
    const name = enc.encode(e.name + "\0");
    const header = "070701" + hex8(e.name === "TRAILER!!!" ? 0 : ino++) + hex8(e.mode) +
      hex8(0) + hex8(0) + hex8(1) + hex8(0) + hex8(data.length) + hex8(0) + hex8(0) +
      hex8(0) + hex8(0) + hex8(name.length) + hex8(0);
    // Header and name are padded together; then the data is.
    const head = new Uint8Array(header.length + name.length);
    head.set(enc.encode(header));
    head.set(name, header.length);
    push(head);
    if (data.length) push(data);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
