// The data loader: shuffles, batches, augments and normalizes in native code on a background
// thread, one batch ahead of the training step. All randomness is a pure function of
// (seed, epoch, batch index), so resuming at (epoch, batch) replays the same batches.
import { performance } from "node:perf_hooks";
import { tensor } from "../ops/creation";
import { oneHot, to } from "../ops/shape";
import { ArgumentError, describe, isPlainObject } from "../tensor/errors";
import { augmentBatch, type BatchJob } from "../tensor/native_calls";
import { keep, scope } from "../tensor/scope";
import type { Tensor } from "../tensor/tensor";
import { type AugmentOptions, applyMix, checkAugment, sampleMix, sampleParams } from "./augment";
import type { ImageDataset } from "./dataset";
import { CounterRng, Stream } from "./rng";

export interface LoaderOptions {
  batchSize: number;
  shuffle: boolean;
  seed: number;
  /** Drop the last, smaller batch (default false). */
  dropLast?: boolean;
  /** Per-channel mean and std in [0, 1] units (see channelStats): x = (pixel/255 - mean) / std. */
  mean: number[];
  std: number[];
  augment?: AugmentOptions;
  numClasses: number;
  /** Where x, y and target are made (default "cpu"). */
  device?: string;
  /**
   * Data-parallel training: this rank's shard of every epoch's order, as PyTorch's
   * DistributedSampler (drop_last=False) cuts it: the permutation padded by wrapping to a multiple
   * of `world`, then every world-th index from `rank`. Shards are disjoint up to the padding and
   * together cover the data; each rank's augmentation draws from its own stream.
   */
  shard?: { rank: number; world: number };
}

export interface Batch {
  /** float32 [B, C, H, W], normalized and augmented. */
  x: Tensor;
  /** int64 [B]: the true labels. */
  y: Tensor;
  /** int64 [B]; float32 [B, numClasses] soft labels when mixup or cutmix is configured. */
  target: Tensor;
  /** Batch index within the epoch. */
  index: number;
}

/** What a checkpoint stores to resume the data stream exactly. JSON-able. */
export interface LoaderState {
  version: 1;
  seed: number;
  epoch: number;
  nextBatch: number;
  n: number;
  batchSize: number;
  shuffle: boolean;
  dropLast: boolean;
  augment: AugmentOptions;
}

interface Pending {
  job: BatchJob;
  indices: Int32Array;
  epoch: number;
  batch: number;
}

function argFail(what: string, name: string, value: unknown): never {
  throw new ArgumentError(`DataLoader: ${what}. Received: ${name}=${describe(value)}`);
}

export class DataLoader {
  readonly dataset: ImageDataset;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly numClasses: number;
  readonly device: string;
  readonly augment: AugmentOptions;
  private seedValue: number;
  readonly shard: { rank: number; world: number };
  private readonly mean: number[];
  private readonly std: number[];
  private orderCache: { epoch: number; order: Int32Array } | undefined;
  /** Milliseconds the iterator spent waiting for the native thread, and batches handed out. */
  readonly stats = { waitMs: 0, batches: 0 };

  constructor(ds: ImageDataset, opts: LoaderOptions) {
    if (
      ds === null ||
      typeof ds !== "object" ||
      !(ds.images instanceof Uint8Array) ||
      !(ds.labels instanceof Int32Array)
    )
      argFail("ds must be an ImageDataset (as loadDataset gives: images, labels, n, channels, ...)", "ds", ds);
    if (!isPlainObject(opts))
      argFail(
        "opts must be an options object such as {batchSize: 128, seed: 0, shuffle: true, numClasses, mean, std}",
        "opts",
        opts,
      );
    const { batchSize, seed, numClasses } = opts;
    if (!Number.isInteger(batchSize) || batchSize < 1)
      argFail("batchSize must be an integer >= 1", "batchSize", batchSize);
    if (!Number.isSafeInteger(seed) || seed < 0) argFail("seed must be a non-negative integer", "seed", seed);
    if (typeof opts.shuffle !== "boolean") argFail("shuffle must be a boolean", "shuffle", opts.shuffle);
    if (!Number.isInteger(numClasses) || numClasses < ds.numClasses)
      argFail(`numClasses must be an integer >= the data set's ${ds.numClasses} classes`, "numClasses", numClasses);
    for (const [key, values] of [
      ["mean", opts.mean],
      ["std", opts.std],
    ] as const) {
      if (!Array.isArray(values) || values.length !== ds.channels || !values.every(Number.isFinite))
        argFail(`${key} must hold ${ds.channels} finite numbers (one per channel)`, key, values);
    }
    if (!opts.std.every((s) => s > 0)) argFail("std values must be > 0", "std", opts.std);
    this.dataset = ds;
    this.batchSize = batchSize;
    this.shuffle = opts.shuffle;
    this.dropLast = opts.dropLast ?? false;
    this.seedValue = seed;
    this.numClasses = numClasses;
    this.device = opts.device ?? "cpu";
    this.mean = [...opts.mean];
    this.std = [...opts.std];
    this.augment = checkAugment(opts.augment ?? {}, ds.height, ds.width);
    const shard = opts.shard ?? { rank: 0, world: 1 };
    if (
      !Number.isInteger(shard.world) ||
      shard.world < 1 ||
      !Number.isInteger(shard.rank) ||
      shard.rank < 0 ||
      shard.rank >= shard.world
    )
      argFail("shard must be {rank, world} with world >= 1 and 0 <= rank < world", "shard", opts.shard);
    this.shard = { rank: shard.rank, world: shard.world };
  }

  /** Images this rank sees per epoch: the data set's, or its shard's (padded) with a shard. */
  get size(): number {
    return Math.ceil(this.dataset.n / this.shard.world);
  }

  get seed(): number {
    return this.seedValue;
  }

  get numBatches(): number {
    const n = this.size;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** True when targets are soft labels (mixup or cutmix configured). */
  get softTargets(): boolean {
    return this.augment.mixup !== undefined || this.augment.cutmix !== undefined;
  }

  /**
   * The order of the images this loader serves in an epoch: a seeded permutation (the same on
   * every rank), or 0..n-1 without shuffle; with a shard, this rank's every world-th entry of it.
   */
  order(epoch: number): Int32Array {
    if (this.orderCache?.epoch !== epoch) {
      const n = this.dataset.n;
      const full = this.shuffle
        ? new CounterRng(this.seedValue, epoch, 0, Stream.shuffle).permutation(n)
        : Int32Array.from({ length: n }, (_, i) => i);
      const { rank, world } = this.shard;
      const order =
        world === 1 ? full : Int32Array.from({ length: this.size }, (_, j) => full[(rank + j * world) % n] as number);
      this.orderCache = { epoch, order };
    }
    return this.orderCache.order;
  }

  /** Indices into the data set of batch `batch` of `epoch`. */
  batchIndices(epoch: number, batch: number): Int32Array {
    const start = batch * this.batchSize;
    return this.order(epoch).slice(start, Math.min(start + this.batchSize, this.size));
  }

  private start(epoch: number, batch: number): Pending {
    const ds = this.dataset;
    const indices = this.batchIndices(epoch, batch);
    const params = sampleParams(
      // one stream per (rank, batch): ranks draw different crops for different images
      new CounterRng(this.seedValue, epoch, batch * this.shard.world + this.shard.rank, Stream.augment),
      this.augment,
      indices.length,
      ds.height,
      ds.width,
    );
    const job = augmentBatch(
      ds.images,
      [ds.n, ds.channels, ds.height, ds.width],
      indices,
      params,
      this.augment.crop?.padding ?? 0,
      this.augment.crop?.mode === "reflect",
      this.mean,
      this.std,
      this.device,
    );
    return { job, indices, epoch, batch };
  }

  /** Labels, and mixing when configured, for the assembled images of a batch. */
  private finish(pending: Pending, images: Tensor): Batch {
    const labels = new Int32Array(pending.indices.length);
    for (let i = 0; i < labels.length; i++) labels[i] = this.dataset.labels[pending.indices[i]];
    const out = scope(() => {
      const y = tensor(labels, [labels.length], { dtype: "int64", device: this.device });
      if (!this.softTargets) return { x: images, y, target: y.detach() };
      const ds = this.dataset;
      const rng = new CounterRng(
        this.seedValue,
        pending.epoch,
        pending.batch * this.shard.world + this.shard.rank,
        Stream.mix,
      );
      const mix = sampleMix(rng, this.augment, labels.length, ds.height, ds.width);
      if (mix.kind === "none") return { x: images, y, target: to(oneHot(y, this.numClasses), "float32") };
      const mixed = applyMix(images, y, mix, this.numClasses);
      images.dispose();
      return { x: mixed.x, y, target: mixed.target };
    });
    // The caller owns the batch: no enclosing scope may free it.
    return { x: keep(out.x), y: keep(out.y), target: keep(out.target), index: pending.batch };
  }

  /**
   * The batches of `epoch` from `startBatch` on. While the caller works on batch k, batch k+1
   * is assembled on a native thread. The caller disposes each batch's x, y and target.
   */
  *batches(epoch: number, startBatch = 0): Generator<Batch, void, undefined> {
    if (!Number.isInteger(epoch) || epoch < 0 || epoch >= 2 ** 32)
      argFail("epoch must be an integer >= 0", "epoch", epoch);
    const total = this.numBatches;
    if (!Number.isInteger(startBatch) || startBatch < 0 || startBatch > total)
      argFail(`startBatch must be an integer in [0, ${total}]`, "startBatch", startBatch);
    let pending = startBatch < total ? this.start(epoch, startBatch) : undefined;
    try {
      for (let b = startBatch; b < total; b++) {
        const current = pending as Pending;
        pending = undefined;
        const t0 = performance.now();
        const images = current.job.take();
        this.stats.waitMs += performance.now() - t0;
        this.stats.batches++;
        let batch: Batch;
        try {
          // Start batch k+1 before the label and mixing work so the thread runs during the step on k.
          if (b + 1 < total) pending = this.start(epoch, b + 1);
          batch = this.finish(current, images);
        } catch (err) {
          images.dispose();
          throw err;
        }
        yield batch;
      }
    } finally {
      pending?.job.cancel();
    }
  }

  /** A JSON-able record of where the data stream stands: resume with restore() and batches(epoch, batch). */
  state(epoch: number, nextBatch: number): LoaderState {
    return {
      version: 1,
      seed: this.seedValue,
      epoch,
      nextBatch,
      n: this.dataset.n,
      batchSize: this.batchSize,
      shuffle: this.shuffle,
      dropLast: this.dropLast,
      augment: this.augment,
    };
  }

  /**
   * Adopts a saved state's seed after checking it was made by a loader over the same data and
   * settings; returns where to resume (the next epoch's start when the saved epoch was complete).
   */
  restore(state: LoaderState): { epoch: number; batch: number } {
    if (state?.version !== 1) argFail("the state is not a DataLoader state (version 1)", "version", state?.version);
    const mine = this.state(state.epoch, state.nextBatch);
    for (const key of ["n", "batchSize", "shuffle", "dropLast"] as const)
      if (state[key] !== mine[key])
        argFail(
          `the saved state has ${key}=${JSON.stringify(state[key])}, this loader ${JSON.stringify(mine[key])}; resume with the same data and settings`,
          key,
          state[key],
        );
    if (JSON.stringify(state.augment) !== JSON.stringify(mine.augment))
      argFail(
        `the saved state was made with other augmentation (${JSON.stringify(mine.augment)} here); resume with the same settings`,
        "augment",
        state.augment,
      );
    if (!Number.isSafeInteger(state.seed) || state.seed < 0)
      argFail("seed must be a non-negative integer", "seed", state.seed);
    this.seedValue = state.seed;
    this.orderCache = undefined;
    if (state.nextBatch >= this.numBatches) return { epoch: state.epoch + 1, batch: 0 };
    return { epoch: state.epoch, batch: state.nextBatch };
  }
}
