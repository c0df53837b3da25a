import { assertEquals, assertRejects } from "./_assert.ts";
import { HexzError } from "../mod.ts";
import { removeStaleSocket } from "../serve/socket.ts";
import { tempDir } from "./_tools.ts";

Deno.test("removeStaleSocket: a dead socket goes, a live one or a file stays", async () => {
  const [dir, done] = await tempDir();
  try {
    await removeStaleSocket(`${dir}/none.sock`); // nothing there: nothing to do
    // A live listener: refused, and left alone.
    const live = Deno.listen({ transport: "unix", path: `${dir}/live.sock` });
    try {
      const e = await assertRejects(() => removeStaleSocket(`${dir}/live.sock`, "a VM"), HexzError);
      assertEquals(e.message, `${dir}/live.sock: a VM is listening on this socket`);
      assertEquals((await Deno.lstat(`${dir}/live.sock`)).isSocket, true);
    } finally {
      live.close();
    }
    // Closed: Deno removes its own socket file, so leave one behind as a dead process would.
    const dead = Deno.listen({ transport: "unix", path: `${dir}/dead.sock` });
    await Deno.link(`${dir}/dead.sock`, `${dir}/stale.sock`);
    dead.close();
    assertEquals((await Deno.lstat(`${dir}/stale.sock`)).isSocket, true);
    await removeStaleSocket(`${dir}/stale.sock`);
    await assertRejects(() => Deno.lstat(`${dir}/stale.sock`), Deno.errors.NotFound);
    // Not a socket: never removed.
    await Deno.writeTextFile(`${dir}/file`, "keep");
    const f = await assertRejects(() => removeStaleSocket(`${dir}/file`), HexzError);
    assertEquals(f.message, `${dir}/file: exists and is not a socket`);
    assertEquals(await Deno.readTextFile(`${dir}/file`), "keep");
  } finally {
    await done();
  }
});
