import { assertEquals, assertMatch } from "./_assert.ts";
import { oneLine } from "../cli/line.ts";
import { hexz } from "./_cli.ts";

Deno.test("oneLine escapes control characters and nothing else", () => {
  assertEquals(oneLine("a\nb\rc\td"), "a\\nb\\rc\\td");
  assertEquals(oneLine("\x1b[31mred\x7f\x00"), "\\x1b[31mred\\x7f\\x00");
  assertEquals(oneLine("plain é ✓ \\n"), "plain é ✓ \\n");
});

Deno.test("an error naming a path with a newline or an escape stays one line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/src`);
    await Deno.writeTextFile(`${dir}/src/f`, "x");
    const a = `${dir}/t.hxz`;
    assertEquals((await hexz(["build", `${dir}/src`, a, "-q"])).code, 0);
    const r = await hexz(["cat", a, "--file", "evil\nhexz: all good\x1b[2J"]);
    assertEquals(r.code, 1);
    assertEquals(r.err.split("\n").length, 2, r.err); // one line and its end
    assertMatch(r.err, /evil\\nhexz: all good\\x1b\[2J/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
