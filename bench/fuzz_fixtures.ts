// Valid files for the fuzz campaign to mutate, made once per child process: a safetensors file
// with every dtype, an IDX pair, a CIFAR-10 tar (with a pax and a GNU long-name header), PNG and
// JPEG images, an ONNX model, a run folder and a recipe. Offsets of the fields each format
// cares about go with them, so half the mutations land where a parser does arithmetic.
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import sharp from "sharp";
import { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC } from "../src/data";
import { exportOnnx } from "../src/export/onnx";
import { saveSafetensors } from "../src/export/safetensors";
import { createModel, modelSpec } from "../src/models";
import { arange, randn, tensor, zeros } from "../src/ops";
import { scope } from "../src/tensor/scope";
import { recipesDir } from "../src/train/config";

export interface Fixtures {
  dir: string;
  safetensors: Buffer;
  idxImages: Buffer;
  idxLabels: Buffer;
  tar: Buffer;
  /** Where each tar header block starts. */
  tarHeaders: number[];
  png: Buffer;
  jpeg: Buffer;
  onnx: Buffer;
  runConfig: string;
  runWeights: Buffer;
  recipe: string;
}

export const TAR_BLOCK = 512;

function tarHeader(name: string, size: number, type: string): Buffer {
  const h = Buffer.alloc(TAR_BLOCK);
  h.write(name.slice(0, 100), 0);
  h.write("0000644", 100);
  h.write("0001750", 108);
  h.write("0001750", 116);
  h.write(size.toString(8).padStart(11, "0"), 124);
  h.write("14531106754", 136);
  h.write(type, 156);
  h.write("ustar\u000000", 257);
  fixTarChecksum(h, 0);
  return h;
}

/** Recomputes the checksum of the header block at `at` (if it is whole), so mutations get past it. */
export function fixTarChecksum(buf: Buffer, at: number): void {
  if (at + TAR_BLOCK > buf.length) return;
  buf.fill(0x20, at + 148, at + 156);
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK; i++) sum += buf[at + i] as number;
  buf.write(`${sum.toString(8).padStart(6, "0")}\u0000 `, at + 148, "latin1");
}

/** A tar of `members` (name, data, type) with each header's offset. */
export function makeTar(members: [string, Buffer, string][]): { tar: Buffer; headers: number[] } {
  const parts: Buffer[] = [];
  const headers: number[] = [];
  let at = 0;
  for (const [name, data, type] of members) {
    headers.push(at);
    const padded = Buffer.alloc(Math.ceil(data.length / TAR_BLOCK) * TAR_BLOCK);
    data.copy(padded);
    parts.push(tarHeader(name, data.length, type), padded);
    at += TAR_BLOCK + padded.length;
  }
  parts.push(Buffer.alloc(2 * TAR_BLOCK));
  return { tar: Buffer.concat(parts), headers };
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = body.length + 1;
  while (`${len}${body}`.length !== len) len++;
  return `${len}${body}`;
}

function cifarTar(): { tar: Buffer; headers: number[] } {
  const folder = "cifar-10-batches-bin";
  const batch = (label: number): Buffer => Buffer.concat([Buffer.from([label]), Buffer.alloc(3072, label * 20)]);
  const long = `${folder}/${"deep/".repeat(24)}data_batch_4.bin`;
  return makeTar([
    [`${folder}/`, Buffer.alloc(0), "5"],
    [`${folder}/batches.meta.txt`, Buffer.from(["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"].join("\n")), "0"],
    [`${folder}/data_batch_1.bin`, batch(1), "0"],
    ["PaxHeader/x", Buffer.from(paxRecord("path", `${folder}/data_batch_2.bin`) + paxRecord("mtime", "1")), "x"],
    ["placeholder", batch(2), "0"],
    [`${folder}/data_batch_3.bin`, Buffer.concat([batch(3), batch(4)]), "0"],
    ["././@LongLink", Buffer.from(`${long}\u0000`), "L"],
    [long.slice(0, 100), batch(5), "0"],
    [`${folder}/data_batch_5.bin`, batch(6), "0"],
    [`${folder}/test_batch.bin`, batch(7), "0"],
  ]);
}

function idx(magic: number, dims: number[], data: Buffer): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => {
    header.writeUInt32BE(d, 4 + 4 * i);
  });
  return Buffer.concat([header, data]);
}

function weightsOf(model: ReturnType<typeof createModel>, file: string): void {
  saveSafetensors(file, model.stateDict());
}

export async function buildFixtures(dir: string): Promise<Fixtures> {
  fs.mkdirSync(dir, { recursive: true });
  const st = path.join(dir, "all.safetensors");
  scope(() =>
    saveSafetensors(
      st,
      {
        f32: randn([3, 4]),
        f64: randn([2], { dtype: "float64" }),
        i64: arange(5),
        i32: arange(3, undefined, 1, { dtype: "int32" }),
        u8: tensor(Uint8Array.from([0, 1, 255]), [3]),
        bool: tensor([1, 0, 1, 1], [2, 2], { dtype: "bool" }),
        bf16: randn([3], { dtype: "bfloat16" }),
        f16: randn([2], { dtype: "float16" }),
        scalar: tensor(7),
        empty: zeros([0, 3]),
      },
      { note: "fuzz" },
    ),
  );
  const rgb = Buffer.alloc(8 * 6 * 3);
  for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 37) & 0xff;
  const raw = { raw: { width: 8, height: 6, channels: 3 as const } };
  const png = await sharp(rgb, raw).png().toBuffer();
  const jpeg = await sharp(rgb, raw).jpeg().toBuffer();
  const model = createModel("resnet20", { numClasses: 3, inChannels: 1 });
  const onnx = Buffer.from(exportOnnx(model, { inputShape: [1, 8, 8], classNames: ["a", "b", "c"] }));
  const runWeights = path.join(dir, "best.safetensors");
  weightsOf(model, runWeights);
  const runConfig = JSON.stringify({
    recipe: JSON.parse(fs.readFileSync(path.join(recipesDir(), "fashion-mnist-quick.json"), "utf8")),
    model: modelSpec(model),
    parameters: model.numParameters(),
    data: {
      dataset: "folder",
      numClasses: 3,
      classNames: ["a", "b", "c"],
      imageShape: [1, 8, 8],
      mean: [0.5],
      std: [0.25],
    },
  });
  model.dispose();
  const { tar, headers } = cifarTar();
  const images = Buffer.alloc(3 * 4 * 4);
  for (let i = 0; i < images.length; i++) images[i] = i;
  return {
    dir,
    safetensors: fs.readFileSync(st),
    idxImages: idx(IDX_IMAGES_MAGIC, [3, 4, 4], images),
    idxLabels: idx(IDX_LABELS_MAGIC, [3], Buffer.from([0, 9, 4])),
    tar,
    tarHeaders: headers,
    png,
    jpeg,
    onnx,
    runConfig,
    runWeights: fs.readFileSync(runWeights),
    recipe: fs.readFileSync(path.join(recipesDir(), "fashion-mnist-quick.json"), "utf8"),
  };
}

/** Offsets of a PNG's IHDR fields (width, height, depth, colour type) and of its chunk lengths. */
export function pngHotOffsets(png: Buffer): number[] {
  const out = [16, 20, 24, 25];
  for (let at = 8; at + 8 <= png.length; ) {
    out.push(at);
    at += 12 + png.readUInt32BE(at);
  }
  return out;
}

/** Recomputes every PNG chunk CRC that still fits, so mutations reach the decoder. */
export function fixPngCrcs(png: Buffer): void {
  for (let at = 8; at + 12 <= png.length; ) {
    const len = png.readUInt32BE(at);
    if (at + 12 + len > png.length) return;
    png.writeUInt32BE(zlib.crc32(png.subarray(at + 4, at + 8 + len)), at + 8 + len);
    at += 12 + len;
  }
}
