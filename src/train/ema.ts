// Exponential moving average of a model's weights (Polyak averaging as used by timm's ModelEma and
// TensorFlow's ExponentialMovingAverage): after each optimizer step
//   shadow ← decay·shadow + (1 − decay)·param
// Buffers (BatchNorm running statistics, counters) are copied, not averaged: they are already
// running averages, and averaging them again would lag behind the weights they normalize.
import type { Module } from "../nn/module";
import { copyInPlace, lerpInPlace } from "../ops/inplace";
import { clone } from "../ops/shape";
import { ArgumentError, describe } from "../tensor/errors";
import { keep, scope } from "../tensor/scope";
import { noGrad, type Tensor } from "../tensor/tensor";
import { checkOption, ownedCopy } from "./optim";

export interface EMAOptions {
  /** Weight of the running average per update; 0.999 averages over roughly the last 1000 steps. */
  decay?: number;
  /**
   * Use min(decay, (1 + n)/(10 + n)) for the n-th update (TensorFlow's num_updates rule), so
   * short runs are not dominated by the initial weights.
   */
  warmup?: boolean;
}

export interface EMAStateDict {
  /** The averaged parameters and copied buffers, by the model's state-dict keys. */
  state: Map<string, Tensor>;
  meta: { type: "EMA"; decay: number; warmup: boolean; updates: number };
}

export class EMA {
  readonly decay: number;
  readonly warmup: boolean;
  /** Number of update() calls so far. */
  updates = 0;
  private readonly live: Map<string, Tensor>;
  private readonly averaged: Set<string>;
  private shadow: Map<string, Tensor>;

  constructor(
    readonly model: Module,
    opts: EMAOptions = {},
  ) {
    this.decay = opts.decay ?? 0.999;
    this.warmup = opts.warmup ?? false;
    checkOption(this.decay >= 0 && this.decay <= 1, "EMA", "must be in [0, 1]", "decay", this.decay);
    checkOption(typeof this.warmup === "boolean", "EMA", "must be a boolean", "warmup", this.warmup);
    this.live = model.stateDict();
    this.averaged = new Set(model.namedParameters().map(([k]) => k));
    this.shadow = new Map(noGrad(() => [...this.live].map(([k, t]) => [k, keep(clone(t))] as [string, Tensor])));
  }

  /** The decay the next update() will use. */
  get currentDecay(): number {
    const n = this.updates;
    return this.warmup ? Math.min(this.decay, (1 + n) / (10 + n)) : this.decay;
  }

  /** Folds the model's current weights into the average; call after each optimizer step. */
  update(): void {
    const decay = this.currentDecay;
    noGrad(() => {
      for (const [k, t] of this.live) {
        const s = this.shadow.get(k)!;
        if (this.averaged.has(k)) lerpInPlace(s, t, 1 - decay);
        else copyInPlace(s, t);
      }
    });
    this.updates += 1;
  }

  /** Copies the averaged weights into a model of the same architecture (e.g. one kept for evaluation). */
  copyTo(model: Module): void {
    model.loadStateDict(this.shadow);
  }

  /** Exchanges the tracked model's weights with the averaged ones; a second swap() restores them. */
  swap(): void {
    noGrad(() => {
      for (const [k, t] of this.live) {
        const s = this.shadow.get(k)!;
        scope(() => {
          const tmp = clone(t);
          copyInPlace(t, s);
          copyInPlace(s, tmp);
        });
      }
    });
  }

  /** Runs fn with the averaged weights in the tracked model (e.g. to evaluate), then restores them. */
  apply<T>(fn: () => T): T {
    this.swap();
    try {
      return fn();
    } finally {
      this.swap();
    }
  }

  /** The averaged tensors are the live ones, not copies: write them out, do not dispose them. */
  stateDict(): EMAStateDict {
    return {
      state: new Map(this.shadow),
      meta: { type: "EMA", decay: this.decay, warmup: this.warmup, updates: this.updates },
    };
  }

  /** Restores the average and the update count (decay stays as constructed). Tensors are copied. */
  loadStateDict(sd: EMAStateDict): void {
    const fn = "EMA.loadStateDict";
    if (sd === null || typeof sd !== "object" || !(sd.state instanceof Map) || sd.meta?.type !== "EMA")
      throw new ArgumentError(`${fn}: expected the stateDict() of an EMA. Received: type=${describe(sd?.meta?.type)}`);
    checkOption(
      Number.isInteger(sd.meta.updates) && sd.meta.updates >= 0,
      fn,
      "must be an integer >= 0",
      "updates",
      sd.meta.updates,
    );
    const problems: string[] = [];
    for (const k of this.live.keys()) if (!sd.state.has(k)) problems.push(`missing "${k}"`);
    for (const [k, t] of sd.state) {
      const own = this.live.get(k);
      if (own === undefined) problems.push(`unexpected "${k}"`);
      else if (t.shape.join(",") !== own.shape.join(","))
        problems.push(`"${k}" has shape [${t.shape.join(", ")}] but the model has [${own.shape.join(", ")}]`);
    }
    if (problems.length > 0)
      throw new ArgumentError(`${fn}: the state dict does not fit this model: ${problems.join("; ")}.`);
    const next = new Map([...this.live].map(([k, t]) => [k, ownedCopy(sd.state.get(k)!, t)] as [string, Tensor]));
    this.dispose();
    this.shadow = next;
    this.updates = sd.meta.updates;
  }

  /** Frees the averaged copies. */
  dispose(): void {
    for (const t of this.shadow.values()) t.dispose();
    this.shadow = new Map();
  }
}
