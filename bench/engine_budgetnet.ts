// One budgetnet measurement of the engine benchmark, run in its own process by bench/engine.ts
// (so BUDGETNET_ALLOCATOR, read when the addon loads, can differ between measurements). The
// training step is written the way a user would write it: a scope around each step, backward(),
// then an in-place SGD update under noGrad. Prints one JSON line: EngineMeasurement.
import {
  addInPlace,
  addScaledInPlace,
  clone,
  createModel,
  crossEntropy,
  keep,
  manualSeed,
  mulInPlace,
  native,
  noGrad,
  randint,
  randn,
  scope,
  setNumThreads,
  type Tensor,
} from "../src";

export interface EngineConfig {
  model: string;
  batch: number;
  threads: number;
  trainWarmup: number;
  trainIters: number;
  inferWarmup: number;
  inferIters: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  seed: number;
}

export interface PhaseTiming {
  /** Milliseconds of each timed iteration. */
  iterMs: number[];
  /** batch · iterations / total seconds. */
  imagesPerSecMean: number;
  /** batch / median iteration seconds: robust to another process stealing a core for a moment. */
  imagesPerSecMedian: number;
}

export interface EngineMeasurement {
  engine: string;
  train: PhaseTiming;
  infer: PhaseTiming;
  params: number;
  threads: number;
  info: Record<string, unknown>;
}

export function phaseTiming(iterMs: number[], batch: number): PhaseTiming {
  const total = iterMs.reduce((a, b) => a + b, 0);
  return {
    iterMs,
    imagesPerSecMean: (batch * iterMs.length) / (total / 1000),
    imagesPerSecMedian: batch / (median(iterMs) / 1000),
  };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** SGD with momentum and weight decay, PyTorch's update rule (torch.optim.SGD, dampening 0). */
class LocalSgd {
  private readonly buffers = new Map<Tensor, Tensor>();

  constructor(
    private readonly params: Tensor[],
    private readonly opts: { lr: number; momentum: number; weightDecay: number },
  ) {}

  step(): void {
    noGrad(() =>
      scope(() => {
        for (const p of this.params) {
          const g = p.grad;
          if (g === undefined) continue;
          if (this.opts.weightDecay !== 0) addScaledInPlace(g, p, this.opts.weightDecay);
          let buf = this.buffers.get(p);
          if (buf === undefined) {
            buf = keep(clone(g));
            this.buffers.set(p, buf);
          } else {
            mulInPlace(buf, this.opts.momentum);
            addInPlace(buf, g);
          }
          addScaledInPlace(p, buf, -this.opts.lr);
        }
      }),
    );
  }

  zeroGrad(): void {
    for (const p of this.params) p.zeroGrad();
  }

  dispose(): void {
    for (const b of this.buffers.values()) b.dispose();
  }
}

function timeIterations(warmup: number, iters: number, step: () => void): number[] {
  for (let i = 0; i < warmup; i++) step();
  const out: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    step();
    out.push(performance.now() - t0);
  }
  return out;
}

export function measureBudgetnet(cfg: EngineConfig): EngineMeasurement {
  setNumThreads(cfg.threads);
  manualSeed(cfg.seed);
  const model = createModel(cfg.model);
  const x = keep(randn([cfg.batch, 3, 32, 32]));
  const y = keep(randint(0, 10, [cfg.batch], { dtype: "int64" }));
  const sgd = new LocalSgd(model.parameters(), cfg);

  model.train();
  const trainMs = timeIterations(cfg.trainWarmup, cfg.trainIters, () =>
    scope(() => {
      const loss = crossEntropy(model.forward(x), y);
      loss.backward();
      sgd.step();
      sgd.zeroGrad();
    }),
  );

  model.eval();
  const inferMs = timeIterations(cfg.inferWarmup, cfg.inferIters, () =>
    noGrad(() =>
      scope(() => {
        model.forward(x);
      }),
    ),
  );

  const result: EngineMeasurement = {
    engine: "budgetnet",
    train: phaseTiming(trainMs, cfg.batch),
    infer: phaseTiming(inferMs, cfg.batch),
    params: model.numParameters(),
    threads: cfg.threads,
    info: { ...native.buildInfo(), allocatorEnv: process.env.BUDGETNET_ALLOCATOR ?? null },
  };
  sgd.dispose();
  model.dispose();
  x.dispose();
  y.dispose();
  return result;
}

// Child mode: `node dist/bench/engine_budgetnet.js '<EngineConfig JSON>'`.
if (require.main === module) {
  const cfg = JSON.parse(process.argv[2] ?? "") as EngineConfig;
  process.stdout.write(`${JSON.stringify(measureBudgetnet(cfg))}\n`);
}
