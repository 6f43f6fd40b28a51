// Reader targets of the fuzz campaign: each takes a valid fixture, mutates it (bytes, a header
// field, the file's kind on disk), writes it under the case's folder and reads it back through
// the package's public reader. Returns what was done, for the report.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { decodeImage } from "../src/cli/predict";
import { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, loadCifar, loadIdxPair, loadImageFolder, readIdx } from "../src/data";
import { readOnnx, summarizeOnnx } from "../src/export/onnx";
import { loadSafetensors } from "../src/export/safetensors";
import { applyOverrides, loadRecipe } from "../src/train/config";
import { loadRunModel, readRunConfig } from "../src/train/run";
import { type Fixtures, fixPngCrcs, fixTarChecksum, pngHotOffsets, TAR_BLOCK } from "./fuzz_fixtures";
import { EXTREME_NUMBER_TEXTS, mutateBytes, mutateJson, oddJsonValue, type Rng } from "./fuzz_mutate";

export type ReaderTarget = (fx: Fixtures, rng: Rng, dir: string) => Promise<string>;

/** The safetensors header as JSON with one field made hostile, re-framed with a right or wrong length. */
function mutateSafetensorsHeader(file: Buffer, rng: Rng): { bytes: Buffer; how: string } {
  const n = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.toString("utf8", 8, 8 + n)) as Record<string, Record<string, unknown>>;
  const keys = Object.keys(header).filter((k) => k !== "__metadata__");
  const key = rng.pick(keys);
  const entry = header[key] as Record<string, unknown>;
  const field = rng.pick(["dtype", "shape", "data_offsets", "data_offsets", "shape"]);
  const offsets = entry.data_offsets as number[];
  const choices: Record<string, unknown[]> = {
    dtype: ["F32", "BF16", "BOOL", "I8", "F8_E4M3", "", 7, null],
    shape: [[-1], [2 ** 31, 2 ** 31], [0], [], [1e308], [1.5], ["3"], [2 ** 53], null, [3, 4, 1, 1, 1, 1, 1, 1, 1, 1]],
    data_offsets: [
      [offsets[1], offsets[0]],
      [-8, offsets[1]],
      [offsets[0], 2 ** 53],
      [offsets[0], 1e308],
      [offsets[0]],
      [offsets[0], offsets[1], 3],
      [0, 0],
      ["0", "4"],
      null,
    ],
  };
  entry[field] = rng.chance(0.2) ? oddJsonValue(rng) : rng.pick(choices[field] as unknown[]);
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  const lengthHow = rng.pick(["right", "right", "right", "huge", "short"]);
  const lengths: Record<string, bigint> = {
    right: BigInt(json.length),
    huge: rng.pick([2n ** 63n, 2n ** 64n - 1n, 100_000_001n, BigInt(file.length)]),
    short: BigInt(Math.max(0, json.length - 1 - rng.int(8))),
  };
  prefix.writeBigUInt64LE(lengths[lengthHow] as bigint);
  return {
    bytes: Buffer.concat([prefix, json, file.subarray(8 + n)]),
    how: `${key}.${field} = ${JSON.stringify(entry[field])?.slice(0, 60)}, length ${lengthHow}`,
  };
}

function mutateSafetensors(file: Buffer, rng: Rng): { bytes: Buffer; how: string } {
  return rng.chance(0.6) ? mutateSafetensorsHeader(file, rng) : mutateBytes(file, rng, [0, 4, 8, 16]);
}

/** A tar with a mutation, a header field set to an extreme number, and checksums fixed most of the time. */
function mutateTar(fx: Fixtures, rng: Rng): { bytes: Buffer; how: string } {
  const hot = fx.tarHeaders.flatMap((h) => [h, h + 124, h + 148, h + 156, h + 257, h + 345, h + TAR_BLOCK]);
  let m: { bytes: Buffer; how: string };
  if (rng.chance(0.5)) {
    const bytes = Buffer.from(fx.tar);
    const at = rng.pick(fx.tarHeaders);
    const [field, width] = rng.pick([
      [124, 12],
      [124, 12],
      [148, 8],
      [156, 1],
      [0, 100],
      [345, 155],
    ] as const);
    const text = rng.pick(EXTREME_NUMBER_TEXTS);
    bytes.fill(0, at + field, at + field + width);
    if (rng.chance(0.2) && field === 124) {
      bytes[at + field] = rng.pick([0x80, 0xff, 0xbf]); // GNU base-256
      bytes.fill(0xff, at + field + 1, at + field + width);
    } else bytes.write(text.slice(0, width), at + field, "latin1");
    m = { bytes, how: `header ${at} field ${field} = ${JSON.stringify(text)}` };
  } else m = mutateBytes(fx.tar, rng, hot);
  if (rng.chance(0.7)) for (const h of fx.tarHeaders) fixTarChecksum(m.bytes, h);
  return m;
}

function writeMaybeGz(file: string, bytes: Buffer, rng: Rng): string {
  const gz = rng.chance(0.3);
  fs.writeFileSync(file, gz ? zlib.gzipSync(bytes, { level: 1 }) : bytes);
  return gz ? " (gzipped)" : "";
}

/** Replaces `file` with something that is not a readable regular file. */
function oddFile(file: string, rng: Rng): string {
  fs.rmSync(file, { force: true });
  const kind = rng.pick(["fifo", "dir", "dangling", "loop", "empty", "symlink-ok"]);
  if (kind === "fifo") spawnSync("mkfifo", [file]);
  else if (kind === "dir") fs.mkdirSync(file);
  else if (kind === "dangling") fs.symlinkSync(path.join(path.dirname(file), "missing.png"), file);
  else if (kind === "loop") fs.symlinkSync(path.basename(file), file);
  else if (kind === "empty") fs.writeFileSync(file, "");
  else {
    const real = path.join(path.dirname(file), "..", "real.png");
    fs.writeFileSync(real, fs.readFileSync(path.join(path.dirname(file), "..", "..", "fixture.png")));
    fs.symlinkSync(real, file);
  }
  return kind;
}

/** A PNG or JPEG with a mutation (PNG chunk CRCs fixed most of the time), or IHDR sizes made extreme. */
function mutateImage(fx: Fixtures, rng: Rng): { bytes: Buffer; how: string } {
  if (rng.chance(0.3)) {
    const m = mutateBytes(fx.jpeg, rng, [0, 2, 4, 20]);
    return { bytes: m.bytes, how: `jpeg: ${m.how}` };
  }
  if (rng.chance(0.3)) {
    const bytes = Buffer.from(fx.png);
    const w = rng.pick([0, 1, 8192, 8193, 16000, 65535, 2 ** 31 - 1, 2 ** 32 - 1]);
    const h = rng.pick([0, 1, 8192, 16000, 2 ** 31 - 1]);
    bytes.writeUInt32BE(w, 16);
    bytes.writeUInt32BE(h, 20);
    fixPngCrcs(bytes);
    return { bytes, how: `png claims ${w}x${h}` };
  }
  const m = mutateBytes(fx.png, rng, pngHotOffsets(fx.png));
  if (rng.chance(0.7)) fixPngCrcs(m.bytes);
  return { bytes: m.bytes, how: `png: ${m.how}` };
}

export const READER_TARGETS: Record<string, ReaderTarget> = {
  async safetensors(fx, rng, dir) {
    const m = mutateSafetensors(fx.safetensors, rng);
    const file = path.join(dir, "m.safetensors");
    fs.writeFileSync(file, m.bytes);
    const { tensors } = loadSafetensors(file);
    for (const t of tensors.values()) t.dispose();
    return m.how;
  },

  async idx(fx, rng, dir) {
    const images = rng.chance(0.5);
    const m = mutateBytes(images ? fx.idxImages : fx.idxLabels, rng, [0, 2, 3, 4, 8, 12]);
    const imagesFile = path.join(dir, "images-idx3-ubyte");
    const labelsFile = path.join(dir, "labels-idx1-ubyte");
    const gz = writeMaybeGz(images ? imagesFile : labelsFile, m.bytes, rng);
    fs.writeFileSync(images ? labelsFile : imagesFile, images ? fx.idxLabels : fx.idxImages);
    if (rng.chance(0.3)) readIdx(images ? imagesFile : labelsFile, images ? IDX_IMAGES_MAGIC : IDX_LABELS_MAGIC);
    else loadIdxPair({ name: "fuzz", imagesFile, labelsFile, classNames: [..."0123456789"] });
    return `${images ? "images" : "labels"}: ${m.how}${gz}`;
  },

  async cifarTar(fx, rng, dir) {
    const m = mutateTar(fx, rng);
    const file = path.join(dir, "cifar-10-binary.tar");
    const gz = writeMaybeGz(file, m.bytes, rng);
    loadCifar("cifar10", file, { split: rng.pick(["train", "test"] as const) });
    return `${m.how}${gz}`;
  },

  async imageFolder(fx, rng, dir) {
    const root = path.join(dir, "folder");
    fs.writeFileSync(path.join(dir, "fixture.png"), fx.png);
    for (const [cls, name, bytes] of [
      ["cat", "a.png", fx.png],
      ["cat", "b.jpg", fx.jpeg],
      ["dog", "c.png", fx.png],
    ] as const) {
      fs.mkdirSync(path.join(root, cls), { recursive: true });
      fs.writeFileSync(path.join(root, cls, name), bytes);
    }
    const victim = path.join(root, rng.pick(["cat", "dog"]), rng.pick(["a.png", "c.png", "b.jpg"]));
    let how: string;
    const r = rng.next();
    if (r < 0.15) how = `${path.basename(victim)} made ${oddFile(victim, rng)}`;
    else if (r < 0.2) {
      fs.mkdirSync(path.join(root, "empty"));
      how = "empty class folder";
    } else {
      const m = mutateImage(fx, rng);
      fs.writeFileSync(victim, m.bytes);
      how = `${path.basename(victim)}: ${m.how}`;
    }
    const size = rng.pick([undefined, 4, 8]);
    loadImageFolder(root, { size });
    return `${how}, size=${size}`;
  },

  async predictImage(fx, rng, dir) {
    fs.writeFileSync(path.join(dir, "..", "fixture.png"), fx.png);
    fs.mkdirSync(path.join(dir, "in"), { recursive: true });
    const file = path.join(dir, "in", "x.png");
    let how: string;
    if (rng.chance(0.15)) how = oddFile(file, rng);
    else {
      const m = mutateImage(fx, rng);
      fs.writeFileSync(file, m.bytes);
      how = m.how;
    }
    await decodeImage(file, rng.pick([1, 3]), 8, 8);
    return how;
  },

  async onnx(fx, rng) {
    const m = mutateBytes(fx.onnx, rng, [0, 1, 2, 3, 8, 16, 32]);
    summarizeOnnx(readOnnx(m.bytes, "fuzz.onnx"));
    return m.how;
  },

  async runFolder(fx, rng, dir) {
    let config = fx.runConfig;
    let weights = fx.runWeights;
    let how: string;
    if (rng.chance(0.6)) {
      const m = mutateJson(config, rng);
      config = m.text;
      how = `config.json: ${m.how}`;
    } else {
      const m = mutateSafetensors(weights, rng);
      weights = m.bytes;
      how = `best.safetensors: ${m.how}`;
    }
    fs.writeFileSync(path.join(dir, "config.json"), config);
    fs.writeFileSync(path.join(dir, "best.safetensors"), weights);
    if (rng.chance(0.2)) readRunConfig(dir);
    else loadRunModel(dir, rng.pick(["best", "final"] as const)).model.dispose();
    return how;
  },

  async recipe(fx, rng, dir) {
    const m = mutateJson(fx.recipe, rng);
    const file = path.join(dir, "r.json");
    fs.writeFileSync(file, m.text);
    const cfg = loadRecipe(file);
    const flags = [
      "lr",
      "epochs",
      "batch-size",
      "optimizer.lr",
      "schedule.type",
      "augment.crop.padding",
      "seed",
      "x.y",
    ];
    const overrides: Record<string, string> = {};
    for (let i = rng.int(3); i > 0; i--)
      overrides[rng.pick(flags)] = rng.pick([...EXTREME_NUMBER_TEXTS, "[1,2]", "{}", "{", "null", "true", "cosine"]);
    applyOverrides(cfg, overrides);
    return `${m.how}; overrides ${JSON.stringify(overrides)}`;
  },
};
