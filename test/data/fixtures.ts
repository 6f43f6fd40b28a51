// Small files in the exact formats of the real data sets, made for the data tests.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";

/** Deterministic bytes: a simple LCG, so fixtures are the same on every run. */
export function pseudoBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

/** An IDX file: magic, big-endian dims, then bytes; gzipped when gz. */
export function writeIdx(file: string, magic: number, dims: number[], data: Uint8Array, gz = true): void {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => {
    header.writeUInt32BE(d, 4 + 4 * i);
  });
  const raw = Buffer.concat([header, Buffer.from(data)]);
  fs.writeFileSync(file, gz ? zlib.gzipSync(raw) : raw);
}

export interface CifarRecords {
  /** Bytes of the whole .bin file. */
  bytes: Buffer;
  images: Uint8Array[];
  labels: number[];
  coarse: number[];
}

/** `count` CIFAR records: label byte(s) then 3072 pixel bytes. */
export function cifarRecords(count: number, seed: number, hundred: boolean): CifarRecords {
  const images: Uint8Array[] = [];
  const labels: number[] = [];
  const coarse: number[] = [];
  const parts: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const img = pseudoBytes(3072, seed * 1000 + i);
    const fine = (seed * 7 + i * 3) % (hundred ? 100 : 10);
    const c = fine % 20;
    images.push(img);
    labels.push(fine);
    coarse.push(c);
    parts.push(Buffer.from(hundred ? [c, fine] : [fine]), Buffer.from(img));
  }
  return { bytes: Buffer.concat(parts), images, labels, coarse };
}

export const CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/** An extracted CIFAR-10 folder (cifar-10-batches-bin) under root; returns the records per file. */
export function writeCifar10Folder(root: string, perBatch = 3, testCount = 4): Map<string, CifarRecords> {
  const dir = path.join(root, "cifar-10-batches-bin");
  fs.mkdirSync(dir, { recursive: true });
  const out = new Map<string, CifarRecords>();
  for (let b = 1; b <= 5; b++) out.set(`data_batch_${b}.bin`, cifarRecords(perBatch, b, false));
  out.set("test_batch.bin", cifarRecords(testCount, 9, false));
  for (const [name, rec] of out) fs.writeFileSync(path.join(dir, name), rec.bytes);
  fs.writeFileSync(path.join(dir, "batches.meta.txt"), `${CIFAR10_NAMES.join("\n")}\n\n`);
  return out;
}

export function writeCifar100Folder(root: string, trainCount = 6, testCount = 4): Map<string, CifarRecords> {
  const dir = path.join(root, "cifar-100-binary");
  fs.mkdirSync(dir, { recursive: true });
  const out = new Map<string, CifarRecords>();
  out.set("train.bin", cifarRecords(trainCount, 3, true));
  out.set("test.bin", cifarRecords(testCount, 4, true));
  for (const [name, rec] of out) fs.writeFileSync(path.join(dir, name), rec.bytes);
  const fine = Array.from({ length: 100 }, (_, i) => `fine_${i}`);
  const coarse = Array.from({ length: 20 }, (_, i) => `coarse_${i}`);
  fs.writeFileSync(path.join(dir, "fine_label_names.txt"), `${fine.join("\n")}\n`);
  fs.writeFileSync(path.join(dir, "coarse_label_names.txt"), `${coarse.join("\n")}\n`);
  return out;
}

/** GNU tar + gzip of `folder` (a child of `cwd`) into `archive`: the official archives are made this way. */
export function tarGz(cwd: string, folder: string, archive: string): void {
  const r = spawnSync("tar", ["-czf", archive, "-C", cwd, folder], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`tar failed: ${r.stderr}`);
}
