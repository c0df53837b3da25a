/**
 * Device numbers (core/format/devnum.ts) against glibc's encoding and the kernel: what `stat`
 * reports for real device nodes, and round trips including majors and minors past the old 8/12
 * bits (where the high bits live at 44.. and 20..).
 */
import { makedev, splitDev } from "../core/format/devnum.ts";
import { assertEquals } from "./_assert.ts";

Deno.test("device numbers: /dev/null and /dev/zero split as stat(1) reports them", async () => {
  for (const path of ["/dev/null", "/dev/zero"]) {
    const st = await Deno.stat(path);
    const p = await new Deno.Command("stat", { args: ["-c", "%t %T", path] }).output();
    const [major, minor] = new TextDecoder().decode(p.stdout).trim().split(" ").map((h) =>
      parseInt(h, 16)
    );
    assertEquals(splitDev(st.rdev!), { major, minor }, path);
    assertEquals(makedev(major, minor), BigInt(st.rdev!), path);
  }
});

Deno.test("device numbers: glibc's layout, and round trips past 12-bit majors and 8-bit minors", () => {
  // Values glibc's makedev gives (sys/sysmacros.h).
  assertEquals(makedev(1, 3), 0x103n);
  assertEquals(makedev(259, 0), 0x10300n);
  assertEquals(makedev(4096, 0), 1n << 44n);
  assertEquals(makedev(0, 256), 1n << 20n);
  assertEquals(makedev(0xffffffff, 0xffffffff), 0xffffffffffffffffn);
  for (
    const [major, minor] of [
      [0, 0],
      [8, 17],
      [4096, 0],
      [4095, 255],
      [0, 256],
      [
        0xfffff,
        0xfffff,
      ],
      [4096, 256],
      [0xffffffff, 0xffffffff],
    ]
  ) {
    assertEquals(splitDev(makedev(major, minor)), { major, minor }, `${major},${minor}`);
  }
});
