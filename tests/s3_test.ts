/**
 * The S3 face of the server, driven by the real AWS CLI (`aws s3api`, `aws s3`): ranged
 * GetObject, HeadObject, ListObjectsV2 with prefix, delimiter and pagination, NoSuchKey and
 * NoSuchBucket errors; and the bucket-name rules, without the CLI.
 */
import { assert, assertEquals, assertMatch, assertThrows } from "./_assert.ts";
import { assertBytesEqual } from "./_archive.ts";
import { needs, pseudoRandom, tempDir } from "./_tools.ts";
import { HexzError, open } from "../mod.ts";
import { build } from "../core/pack/build.ts";
import { serveHttp } from "../serve/http.ts";
import { checkBucketName, defaultBucketName, listPage, s3Handler } from "../serve/s3.ts";
import type { ArchiveObject, ObjectCatalog } from "../serve/objects.ts";

async function aws(
  endpoint: string,
  dir: string,
  ...args: string[]
): Promise<{ code: number; out: string; err: string }> {
  const p = await new Deno.Command("aws", {
    args: [...args, "--endpoint-url", endpoint, "--no-sign-request", "--output", "json"],
    env: {
      AWS_DEFAULT_REGION: "us-east-1",
      AWS_CONFIG_FILE: `${dir}/no-config`,
      AWS_SHARED_CREDENTIALS_FILE: `${dir}/no-credentials`,
      AWS_EC2_METADATA_DISABLED: "true",
      AWS_PAGER: "",
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: p.code, out: dec.decode(p.stdout), err: dec.decode(p.stderr) };
}

Deno.test(needs(["aws"], {
  name: "aws s3api get-object with a range, head-object and list-objects-v2 against --s3",
  async fn() {
    const [dir, cleanup, keep] = await tempDir();
    const big = pseudoRandom(700_000, 5);
    await Deno.mkdir(`${dir}/src/sub`, { recursive: true });
    await Deno.writeFile(`${dir}/src/sub/big.bin`, big);
    await Deno.writeTextFile(`${dir}/src/a & b.txt`, "ampersand\n");
    await Deno.writeTextFile(`${dir}/src/z.txt`, "zed\n");
    await Deno.writeFile(`${dir}/mem`, pseudoRandom(4096, 8));
    await build({ source: `${dir}/src`, output: `${dir}/My_Tree.hxz`, memory: `${dir}/mem` });
    const a = keep(await open(`${dir}/My_Tree.hxz`));
    const server = await serveHttp(a, { port: 0, s3: true });
    const ep = `http://127.0.0.1:${server.addr.port}`;
    try {
      const bucket = "my-tree";
      // get-object with a range, into a file.
      let r = await aws(
        ep,
        dir,
        "s3api",
        "get-object",
        "--bucket",
        bucket,
        "--key",
        "files/sub/big.bin",
        "--range",
        "bytes=0-99",
        `${dir}/out`,
      );
      assertEquals(r.code, 0, r.err);
      let meta = JSON.parse(r.out);
      assertEquals(meta.ContentLength, 100);
      assertEquals(meta.ContentRange, "bytes 0-99/700000");
      assertBytesEqual(await Deno.readFile(`${dir}/out`), big.subarray(0, 100), "range");

      r = await aws(ep, dir, "s3api", "head-object", "--bucket", bucket, "--key", "memory");
      assertEquals(r.code, 0, r.err);
      meta = JSON.parse(r.out);
      assertEquals(meta.ContentLength, 4096);
      assertMatch(meta.ETag, /^"[0-9a-f]{64}-memory"$/);

      r = await aws(ep, dir, "s3api", "list-objects-v2", "--bucket", bucket, "--no-paginate");
      assertEquals(r.code, 0, r.err);
      let list = JSON.parse(r.out);
      const keys = list.Contents.map((c: { Key: string }) => c.Key);
      assertEquals(keys, ["disk", "files/a & b.txt", "files/sub/big.bin", "files/z.txt", "memory"]);
      const bigEntry = list.Contents.find((c: { Key: string }) => c.Key === "files/sub/big.bin");
      assertEquals(bigEntry.Size, 700_000);
      assertEquals(new Date(bigEntry.LastModified).getTime(), a.header.createdAtMs);
      assertEquals(list.KeyCount, 5);

      // Prefix and delimiter: one level of the tree.
      r = await aws(
        ep,
        dir,
        "s3api",
        "list-objects-v2",
        "--bucket",
        bucket,
        "--prefix",
        "files/",
        "--delimiter",
        "/",
      );
      assertEquals(r.code, 0, r.err);
      list = JSON.parse(r.out);
      assertEquals(list.Contents.map((c: { Key: string }) => c.Key), [
        "files/a & b.txt",
        "files/z.txt",
      ]);
      assertEquals(list.CommonPrefixes, [{ Prefix: "files/sub/" }]);

      // Pages of two: the CLI follows continuation tokens when asked to page by itself.
      r = await aws(
        ep,
        dir,
        "s3api",
        "list-objects-v2",
        "--bucket",
        bucket,
        "--max-keys",
        "2",
        "--no-paginate",
      );
      assertEquals(r.code, 0, r.err);
      list = JSON.parse(r.out);
      assertEquals(list.KeyCount, 2);
      assertEquals(list.IsTruncated, true);
      assert(list.NextContinuationToken, "no continuation token");
      r = await aws(
        ep,
        dir,
        "s3api",
        "list-objects-v2",
        "--bucket",
        bucket,
        "--max-keys",
        "2",
        "--continuation-token",
        list.NextContinuationToken,
        "--no-paginate",
      );
      assertEquals(r.code, 0, r.err);
      assertEquals(JSON.parse(r.out).Contents.map((c: { Key: string }) => c.Key), [
        "files/sub/big.bin",
        "files/z.txt",
      ]);
      r = await aws(ep, dir, "s3api", "list-objects-v2", "--bucket", bucket, "--page-size", "2");
      assertEquals(r.code, 0, r.err);
      assertEquals(JSON.parse(r.out).Contents.length, 5);

      // Whole object through the high-level command.
      r = await aws(ep, dir, "s3", "cp", `s3://${bucket}/files/sub/big.bin`, `${dir}/whole`);
      assertEquals(r.code, 0, r.err);
      assertBytesEqual(await Deno.readFile(`${dir}/whole`), big, "aws s3 cp");

      r = await aws(
        ep,
        dir,
        "s3api",
        "get-object",
        "--bucket",
        bucket,
        "--key",
        "nope",
        `${dir}/x`,
      );
      assert(r.code !== 0);
      assertMatch(r.err, /NoSuchKey/);
      r = await aws(ep, dir, "s3api", "list-objects-v2", "--bucket", "other-bucket");
      assert(r.code !== 0);
      assertMatch(r.err, /NoSuchBucket/);
      r = await aws(
        ep,
        dir,
        "s3api",
        "get-object",
        "--bucket",
        bucket,
        "--key",
        "memory",
        "--range",
        "bytes=5000-",
        `${dir}/x`,
      );
      assert(r.code !== 0);
      assertMatch(r.err, /InvalidRange/);

      // The raw XML: S3's namespace, and an error document for a missing key.
      const xml = await (await fetch(`${ep}/${bucket}?list-type=2&prefix=mem`)).text();
      assertMatch(xml, /<ListBucketResult xmlns="http:\/\/s3\.amazonaws\.com\/doc\/2006-03-01\/">/);
      assertMatch(xml, /<KeyCount>1<\/KeyCount>.*<IsTruncated>false<\/IsTruncated>/s);
      const res = await fetch(`${ep}/${bucket}/files/none`, {
        headers: {
          authorization: "AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/s3/aws4_request",
        },
      });
      assertEquals(res.status, 404);
      assertMatch(await res.text(), /<Error><Code>NoSuchKey<\/Code>/);
    } finally {
      await server.shutdown();
      a.close();
      await cleanup();
    }
  },
}));

Deno.test("S3 bucket names: defaults from the archive name, invalid names refused", () => {
  assertEquals(defaultBucketName("/srv/VM_Disk.hxz"), "vm-disk");
  assertEquals(defaultBucketName("https://h/x/Backup.2026.HXZ"), "backup.2026");
  assertEquals(defaultBucketName("vm.hxz"), "vm-hxz");
  assertEquals(defaultBucketName("--.hxz"), "hexz");
  assertEquals(defaultBucketName("a".repeat(80) + ".hxz"), "a".repeat(63));
  for (const ok of ["abc", "my.bucket-1", "a".repeat(63)]) assertEquals(checkBucketName(ok), ok);
  for (const bad of ["ab", "Abc", "a_b", "-ab", "ab-", "a..b", "192.168.1.1", "a".repeat(64)]) {
    assertThrows(() => checkBucketName(bad), HexzError, /not a valid bucket name/, bad);
  }
});

Deno.test("S3 listing: start-after is a place, only a page's last common prefix skips its keys", async () => {
  const keys = ["disk", "files/a", "files/b", "files/sub/c", "files/sub/d", "files/z"];
  const objects = keys.map((key) =>
    ({ key, size: 1, etag: '"e"', lastModified: new Date(0) }) as unknown as ArchiveObject
  );
  const list = (after: string, delimiter = "/") => {
    const p = listPage(objects, "files/", delimiter, after, 1000);
    return [p.contents.map((o) => o.key), p.prefixes];
  };
  // The prefix itself as start-after (it returned nothing before).
  assertEquals(list("files/"), [["files/a", "files/b", "files/z"], ["files/sub/"]]);
  assertEquals(list("files/", ""), [keys.slice(1), []]);
  // A page that ended on the common prefix files/sub/ returned everything under it.
  assertEquals(list("files/sub/"), [["files/z"], []]);
  assertEquals(list("files/b"), [["files/z"], ["files/sub/"]]);
  // Pages of one walk the whole listing once.
  const seen: string[] = [];
  let after = "";
  for (let i = 0; i < 10; i++) {
    const p = listPage(objects, "files/", "/", after, 1);
    seen.push(...p.contents.map((o) => o.key), ...p.prefixes);
    if (!p.truncated) break;
    after = p.last;
  }
  assertEquals(seen, ["files/a", "files/b", "files/sub/", "files/z"]);
  // max-keys above 1000 is capped as S3 does; a 405 says what is allowed.
  const catalog = { objects } as unknown as ObjectCatalog;
  const handler = s3Handler(catalog, "b");
  let r = await handler(new Request("http://h/b?list-type=2&max-keys=99999999999"));
  assertEquals(r.status, 200);
  assertMatch(await r.text(), /<MaxKeys>1000<\/MaxKeys>/);
  r = await handler(new Request("http://h/b/disk", { method: "PUT", body: "x" }));
  assertEquals([r.status, r.headers.get("allow")], [405, "GET, HEAD"]);
  await r.body?.cancel();
});
