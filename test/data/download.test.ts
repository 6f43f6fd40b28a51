import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { downloadDataset, IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, loadDataset, RESOURCES } from "../../src/data";
import { checkNoLeaks, tempDir } from "../helpers";
import { pseudoBytes, tarGz, writeCifar10Folder, writeIdx } from "./fixtures";

checkNoLeaks();

type Mode = "normal" | "truncate-once" | "ignore-range" | "corrupt";
let mode: Mode = "normal";
let truncated = false;
const files = new Map<string, Buffer>();
const requests: { path: string; range?: string }[] = [];
let server: http.Server;
let baseUrl = "";

function md5(b: Buffer): string {
  return createHash("md5").update(b).digest("hex");
}

before(async () => {
  // A small CIFAR-10 archive and MNIST-format files, made here in the official formats.
  const src = tempDir();
  writeCifar10Folder(src, 40, 30);
  tarGz(src, "cifar-10-batches-bin", path.join(src, "cifar-10-binary.tar.gz"));
  files.set("/cifar-10-binary.tar.gz", fs.readFileSync(path.join(src, "cifar-10-binary.tar.gz")));
  for (const [prefix, n] of [
    ["train", 12],
    ["t10k", 5],
  ] as const) {
    writeIdx(path.join(src, `${prefix}-images-idx3-ubyte.gz`), IDX_IMAGES_MAGIC, [n, 28, 28], pseudoBytes(n * 784, n));
    writeIdx(
      path.join(src, `${prefix}-labels-idx1-ubyte.gz`),
      IDX_LABELS_MAGIC,
      [n],
      pseudoBytes(n, 1).map((v) => v % 10),
    );
    for (const kind of ["images-idx3", "labels-idx1"])
      files.set(`/${prefix}-${kind}-ubyte.gz`, fs.readFileSync(path.join(src, `${prefix}-${kind}-ubyte.gz`)));
  }
  server = http.createServer((req, res) => {
    const range = req.headers.range;
    requests.push({ path: req.url ?? "", range });
    let body = files.get(req.url ?? "");
    if (body === undefined) {
      res.writeHead(404).end();
      return;
    }
    if (mode === "corrupt") {
      body = Buffer.from(body);
      body[body.length >> 1] ^= 0xff;
    }
    if (mode === "truncate-once" && !truncated) {
      // Promise the whole file, send half, drop the connection.
      truncated = true;
      res.writeHead(200, { "content-length": body.length });
      res.write(body.subarray(0, body.length >> 1), () => res.destroy());
      return;
    }
    const m = /^bytes=(\d+)-$/.exec(range ?? "");
    if (m && mode !== "ignore-range") {
      const start = Number(m[1]);
      if (start >= body.length) {
        res.writeHead(416, { "content-range": `bytes */${body.length}` }).end();
        return;
      }
      res.writeHead(206, {
        "content-length": body.length - start,
        "content-range": `bytes ${start}-${body.length - 1}/${body.length}`,
      });
      res.end(body.subarray(start));
      return;
    }
    res.writeHead(200, { "content-length": body.length });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

after(() => {
  server.close();
});

function cifarChecksum(): Record<string, string> {
  return { "cifar-10-binary.tar.gz": md5(files.get("/cifar-10-binary.tar.gz") as Buffer) };
}

function reset(m: Mode): void {
  mode = m;
  truncated = false;
  requests.length = 0;
}

test("the official table carries the published checksums", () => {
  assert.equal(RESOURCES.cifar10.files["cifar-10-binary.tar.gz"], "c32a1d4ab5d03f1284b67883e8d87530");
  assert.equal(RESOURCES.cifar100.files["cifar-100-binary.tar.gz"], "03b5dce01913d631647c71ecec9e9cb8");
  assert.equal(RESOURCES.mnist.files["train-images-idx3-ubyte.gz"], "f68b3c2dcbeaaa9fbdd348bbdeb94873");
  assert.equal(RESOURCES["fashion-mnist"].files["t10k-labels-idx1-ubyte.gz"], "bb300cfdad3c16e7a12a480ee83cd310");
});

test("downloads and verifies an archive that loadDataset then reads; a verified file is not fetched again", async () => {
  reset("normal");
  const root = tempDir();
  const out = await downloadDataset("cifar10", { root, baseUrl, checksums: cifarChecksum() });
  assert.deepEqual(out, [path.join(root, "cifar-10-binary.tar.gz")]);
  assert.deepEqual(fs.readdirSync(root), ["cifar-10-binary.tar.gz"]);
  const ds = loadDataset("cifar10", { split: "train", root });
  assert.equal(ds.n, 200);
  assert.equal(requests.length, 1);
  await downloadDataset("cifar10", { root, baseUrl, checksums: cifarChecksum() });
  assert.equal(requests.length, 1);
});

test("a checksum mismatch is a clear error and leaves no file behind", async () => {
  reset("corrupt");
  const root = tempDir();
  const expected = cifarChecksum()["cifar-10-binary.tar.gz"];
  await assert.rejects(
    downloadDataset("cifar10", { root, baseUrl, checksums: cifarChecksum() }),
    new RegExp(`failed its checksum: expected md5 ${expected}, got [0-9a-f]{32}.*The file was deleted`),
  );
  assert.deepEqual(fs.readdirSync(root), []);
});

test("the official checksum is checked when no override is given", async () => {
  reset("normal");
  const root = tempDir();
  await assert.rejects(downloadDataset("cifar10", { root, baseUrl }), /expected md5 c32a1d4ab5d03f1284b67883e8d87530/);
  assert.deepEqual(fs.readdirSync(root), []);
});

test("a connection closed early keeps the .part file and the retry resumes with a Range request", async () => {
  reset("truncate-once");
  const root = tempDir();
  const whole = files.get("/cifar-10-binary.tar.gz") as Buffer;
  await assert.rejects(
    downloadDataset("cifar10", { root, baseUrl, checksums: cifarChecksum() }),
    /was interrupted: .*run the download again to resume from there/,
  );
  const part = path.join(root, "cifar-10-binary.tar.gz.part");
  const kept = fs.statSync(part).size;
  assert.ok(kept > 0 && kept < whole.length, `kept ${kept} of ${whole.length}`);
  assert.equal(fs.existsSync(path.join(root, "cifar-10-binary.tar.gz")), false);
  const log: string[] = [];
  await downloadDataset("cifar10", { root, baseUrl, checksums: cifarChecksum(), log: (m) => log.push(m) });
  assert.equal(requests[1]?.range, `bytes=${kept}-`);
  assert.ok(log.some((m) => m.includes(`resuming`)));
  assert.equal(md5(fs.readFileSync(path.join(root, "cifar-10-binary.tar.gz"))), md5(whole));
  assert.deepEqual(fs.readdirSync(root), ["cifar-10-binary.tar.gz"]);
});

test("a server that ignores Range makes the download start over cleanly", async () => {
  reset("ignore-range");
  const root = tempDir();
  const whole = files.get("/cifar-10-binary.tar.gz") as Buffer;
  fs.writeFileSync(path.join(root, "cifar-10-binary.tar.gz.part"), whole.subarray(0, 1000));
  await downloadDataset("cifar10", { root, baseUrl, checksums: cifarChecksum() });
  assert.equal(requests[0]?.range, "bytes=1000-");
  assert.deepEqual(fs.readFileSync(path.join(root, "cifar-10-binary.tar.gz")), whole);
});

test("a stale .part that fails the checksum after resuming is dropped and downloaded again", async () => {
  reset("normal");
  const root = tempDir();
  fs.writeFileSync(path.join(root, "cifar-10-binary.tar.gz.part"), Buffer.alloc(500, 7));
  await downloadDataset("cifar10", { root, baseUrl, checksums: cifarChecksum() });
  assert.deepEqual(
    requests.map((r) => r.range),
    ["bytes=500-", undefined],
  );
  assert.deepEqual(fs.readdirSync(root), ["cifar-10-binary.tar.gz"]);
  assert.equal(loadDataset("cifar10", { split: "test", root }).n, 30);
});

test("MNIST-format files download and load; an HTTP error names the status", async () => {
  reset("normal");
  const root = tempDir();
  const checksums: Record<string, string> = {};
  for (const [p, b] of files) if (p.endsWith("ubyte.gz")) checksums[p.slice(1)] = md5(b);
  const out = await downloadDataset("mnist", { root, baseUrl, checksums });
  assert.equal(out.length, 4);
  assert.equal(loadDataset("mnist", { split: "train", root }).n, 12);
  assert.equal(loadDataset("mnist", { split: "test", root }).n, 5);
  await assert.rejects(downloadDataset("cifar100", { root: tempDir(), baseUrl }), /failed: HTTP 404/);
  await assert.rejects(downloadDataset("svhn" as "mnist", {}), /no download for this data set.*Received: name="svhn"/);
});
