// Hostile input files: each reader ends with a clear error instead of looping, blocking on a
// FIFO or decoding half a gigabyte. The cases that used to hang run in a child process with a
// time limit, so a regression fails here instead of hanging the suite.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import * as zlib from "node:zlib";
import sharp from "sharp";
import { decodeImage } from "../../src/cli/predict";
import { loadImageFolder } from "../../src/data";
import { listTar } from "../../src/data/tar";
import { checkNoLeaks, tempDir } from "../helpers";
import { pseudoBytes } from "./fixtures";

checkNoLeaks();

/** The compiled src/ folder, for code run in a child process. */
const SRC = path.resolve(__dirname, "../../src");

/** Runs `code` in a fresh node process (SRC is defined) and kills it after 20 s. */
function runIsolated(code: string): { status: number | null; signal: string | null; stderr: string } {
  const r = spawnSync(process.execPath, ["-e", `const SRC = ${JSON.stringify(SRC)};\n${code}`], {
    encoding: "utf8",
    timeout: 20_000,
    env: { ...process.env, BUDGETNET_THREADS: "1" },
  });
  return { status: r.status, signal: r.signal, stderr: r.stderr };
}

/** Prints a rejected promise's message and exits 1, so the parent can match it. */
const REPORT = "(e) => { console.error(String(e && e.message)); process.exit(1); }";

/** A ustar header block for `name` whose size field holds `size` verbatim, with a valid checksum. */
function tarHeader(name: string, size: string | Buffer, type = "0"): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0);
  h.write("0000644", 100);
  h.write("0000000", 108);
  h.write("0000000", 116);
  if (typeof size === "string") h.write(size, 124);
  else size.copy(h, 124);
  h.write("00000000000", 136);
  h.write(type, 156);
  h.write("ustar\u000000", 257);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\u0000 `, 148);
  return h;
}

function member(name: string, data: Buffer, type = "0"): Buffer {
  const padded = Buffer.alloc(Math.ceil(data.length / 512) * 512);
  data.copy(padded);
  return Buffer.concat([tarHeader(name, data.length.toString(8).padStart(11, "0"), type), padded]);
}

async function writePng(file: string, w: number, h: number): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await sharp(Buffer.from(pseudoBytes(w * h * 3, w + h)), { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toFile(file);
}

/** A small valid PNG whose IHDR claims width x height (CRC fixed), so only its header is believable. */
async function pngClaiming(file: string, width: number, height: number): Promise<void> {
  await writePng(file, 4, 4);
  const png = fs.readFileSync(file);
  // Signature (8 bytes), then the IHDR chunk: length (4), "IHDR" (4), width, height, ..., CRC.
  png.writeUInt32BE(width, 16);
  png.writeUInt32BE(height, 20);
  png.writeUInt32BE(zlib.crc32(png.subarray(12, 29)), 29);
  fs.writeFileSync(file, png);
}

function mkfifo(file: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const r = spawnSync("mkfifo", [file]);
  assert.equal(r.status, 0, `mkfifo failed: ${r.stderr}`);
}

test('a tar size field of "-1000" with a valid checksum is an error naming the file and offset, not an endless loop', () => {
  const file = path.join(tempDir(), "hostile.tar");
  const first = member("cifar/batches.meta.txt", Buffer.from("a\nb\n"));
  fs.writeFileSync(file, Buffer.concat([first, tarHeader("cifar/data_batch_1.bin", "-1000"), Buffer.alloc(2048)]));
  const r = runIsolated(`require(SRC + "/data/tar").readTarFile(${JSON.stringify(file)});`);
  assert.equal(r.signal, null, "the tar reader did not finish within 20 s");
  assert.notEqual(r.status, 0);
  assert.match(
    r.stderr,
    /hostile\.tar: the tar header at byte 1024 has a size field that is not a non-negative octal number.*Download it again\. Received: size="-1000/,
  );
});

test("tar size fields that are not non-negative integers, or run past the end, are errors", () => {
  const tail = Buffer.alloc(1024);
  const bad = (size: string | Buffer): Buffer => Buffer.concat([tarHeader("x.bin", size), tail]);
  for (const size of ["12x", "9", "-0", "1e3"])
    assert.throws(() => listTar(bad(size), "t.tar"), /t\.tar: the tar header at byte 0 has a size field that is not/);
  // GNU base-256: a negative value, and one beyond 2^53.
  const negative = Buffer.alloc(12, 0xff);
  const huge = Buffer.from([0x80, 0x3f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  for (const size of [negative, huge]) assert.throws(() => listTar(bad(size), "t.tar"), /has a size field that is not/);
  // A valid octal size larger than what follows.
  assert.throws(
    () => listTar(bad("77777777777"), "t.tar"),
    /t\.tar: the archive ends inside a member \(its header at byte 0 gives 8589934591 bytes.*truncated/,
  );
});

test("a pax record whose length does not fit its header is an error naming the byte offset", () => {
  const data = member("z.bin", Buffer.from("zz"));
  const paxOf = (records: string): Buffer => Buffer.concat([member("pax", Buffer.from(records), "x"), data]);
  // A record that is well formed names the member.
  assert.deepEqual([...listTar(paxOf("19 path=long/z.bin\n"), "p.tar").keys()], ["long/z.bin"]);
  for (const records of ["99 path=long/z.bin\n", "0 path=a\n", "-5 path=a\n", "abc path=a\n", "19 path=long/z.bin!"])
    assert.throws(
      () => listTar(paxOf(records), "p.tar"),
      /p\.tar: the pax record at byte 512 is malformed.*Download it again\. Received: length=/,
      records,
    );
});

test("a FIFO named *.png in an image folder is refused by name before it is opened", () => {
  const root = tempDir();
  fs.mkdirSync(path.join(root, "a"));
  fs.writeFileSync(path.join(root, "a", "ok.png"), "");
  mkfifo(path.join(root, "a", "pipe.png"));
  const r = runIsolated(`require(SRC + "/data/folder").loadImageFolder(${JSON.stringify(root)});`);
  assert.equal(r.signal, null, "loading the folder did not finish within 20 s");
  assert.notEqual(r.status, 0);
  assert.match(
    r.stderr,
    /image folder: .*a\/pipe\.png is not a regular file \(it is a FIFO \(named pipe\)\).*Remove it/,
  );
});

test("a directory named x.png is refused; a symlink to a PNG is read; a dangling one is an error", async () => {
  const root = tempDir();
  await writePng(path.join(root, "a", "real.png"), 3, 3);
  fs.mkdirSync(path.join(root, "a", "x.png"));
  assert.throws(() => loadImageFolder(root), /a\/x\.png is not a regular file \(it is a directory\)/);
  fs.rmdirSync(path.join(root, "a", "x.png"));
  fs.symlinkSync(path.join(root, "a", "real.png"), path.join(root, "a", "link.png"));
  assert.equal(loadImageFolder(root).n, 2);
  fs.symlinkSync(path.join(root, "nowhere.png"), path.join(root, "a", "dangling.png"));
  assert.throws(
    () => loadImageFolder(root),
    /image folder: cannot read .*a\/dangling\.png: ENOENT.*a symlink must lead/,
  );
});

test("an empty class folder is an error naming it and saying to remove it or add images", async () => {
  const root = tempDir();
  await writePng(path.join(root, "cat", "1.png"), 2, 2);
  fs.mkdirSync(path.join(root, "dog"));
  fs.writeFileSync(path.join(root, "dog", "README.txt"), "no images here");
  assert.throws(
    () => loadImageFolder(root),
    /the class folder .*\/dog has no \.png\/\.jpg\/\.jpeg files; a class needs at least one image\. Remove the folder or add images/,
  );
});

test("a PNG whose header says 16000x16000 is refused from its header, before decoding", async () => {
  const root = tempDir();
  await writePng(path.join(root, "a", "fine.png"), 4, 4);
  await pngClaiming(path.join(root, "a", "huge.png"), 16000, 16000);
  assert.throws(
    () => loadImageFolder(root, { size: 4 }),
    /image folder: .*huge\.png is 16000x16000 \(256000000 pixels\), over the limit of 67108864 pixels \(8192x8192\).*scale it down/,
  );
  await assert.rejects(
    decodeImage(path.join(root, "a", "huge.png"), 3, 8, 8),
    /predict: .*huge\.png is 16000x16000 .*over the limit of 67108864 pixels/,
  );
  assert.equal((await decodeImage(path.join(root, "a", "fine.png"), 3, 8, 8)).length, 3 * 8 * 8);
});

test("predict refuses a FIFO or a directory given as an image, naming it, without blocking", async () => {
  const dir = tempDir();
  mkfifo(path.join(dir, "pipe.png"));
  const r = runIsolated(
    `require(SRC + "/cli/predict").decodeImage(${JSON.stringify(path.join(dir, "pipe.png"))}, 3, 8, 8).then(() => process.exit(0), ${REPORT});`,
  );
  assert.equal(r.signal, null, "predict did not finish within 20 s");
  assert.equal(r.status, 1);
  assert.match(r.stderr, /predict: .*pipe\.png is not a regular file \(it is a FIFO/);
  fs.mkdirSync(path.join(dir, "x.png"));
  await assert.rejects(
    decodeImage(path.join(dir, "x.png"), 1, 8, 8),
    /predict: .*x\.png is not a regular file \(it is a directory\)/,
  );
});
