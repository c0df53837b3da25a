/**
 * Runs shell commands in turn, N rounds, and prints each one's median and fastest wall time
 * and the median of its per-round ratios to the first command. On a host whose speed drifts
 * within minutes, rounds of interleaved runs compare better than runs grouped per command.
 *
 *   deno run -A bench/interleave.ts 12 "zstd -d -f -q a.zst -o a.raw" "deno run -A cli.ts extract a.hxz a.raw --force -q"
 *
 * @module
 */
const [roundsArg, ...commands] = Deno.args;
const rounds = Number(roundsArg);
if (!Number.isInteger(rounds) || rounds < 1 || commands.length === 0) {
  console.error('usage: interleave.ts ROUNDS "command" ["command"...]');
  Deno.exit(2);
}

const times: number[][] = commands.map(() => []);
for (let r = 0; r < rounds; r++) {
  for (const [i, c] of commands.entries()) {
    const t0 = performance.now();
    const { code } = await new Deno.Command("sh", {
      args: ["-c", c],
      stdout: "null",
      stderr: "null",
    })
      .output();
    if (code !== 0) {
      console.error(`failed (exit ${code}): ${c}`);
      Deno.exit(1);
    }
    times[i].push((performance.now() - t0) / 1000);
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
console.log(`| command | median s | fastest s | per-round ratio to the first (median) |`);
console.log(`|---|---:|---:|---:|`);
for (const [i, c] of commands.entries()) {
  const ratio = median(times[i].map((t, r) => t / times[0][r]));
  console.log(
    `| \`${c}\` | ${median(times[i]).toFixed(3)} | ${Math.min(...times[i]).toFixed(3)} | ${
      ratio.toFixed(3)
    } |`,
  );
}
