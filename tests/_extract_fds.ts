/**
 * Run as its own process by extract_test.ts (descriptors are per process, and test modules
 * share one): extracts ARCHIVE to OUT with WORKERS threads and prints how many descriptors
 * the process still holds on files in ARCHIVE's and OUT's directories once the archive is
 * closed (waiting up to 3 s for terminated workers), and the error message, if any.
 */
import { extract, open } from "../mod.ts";

const [archive, out, workers] = Deno.args;
const dirs = [archive, out].map((p) => p.slice(0, p.lastIndexOf("/") + 1));
const held = () => {
  let n = 0;
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    try {
      const target = Deno.readLinkSync(`/proc/self/fd/${e.name}`);
      if (dirs.some((d) => target.startsWith(d))) n++;
    } catch { /* closed meanwhile (the listing's own descriptor) */ }
  }
  return n;
};
let error = "";
const a = await open(archive);
try {
  await extract(a, out, { workers: Number(workers), force: true });
} catch (e) {
  error = (e as Error).message;
} finally {
  a.close();
}
let open_ = held();
for (let i = 0; i < 60 && open_ > 0; i++) {
  await new Promise((r) => setTimeout(r, 50));
  open_ = held();
}
console.log(JSON.stringify({ held: open_, error }));
