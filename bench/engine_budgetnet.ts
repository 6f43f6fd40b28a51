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
import { median } from "./stats";

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
  /** Process CPU time (all threads) per timed iteration: less sensitive than wall time to waiting for a core. */
  cpuMsPerIter: number;
  /** Minor page faults per timed iteration: fresh pages touched (what the allocator tuning is about). */
  minorFaultsPerIter: number;
}

export interface EngineMeasurement {
  engine: string;
  train: PhaseTiming;
  infer: PhaseTiming;
  params: number;
  threads: number;
  info: Record<string, unknown>;
}

interface Timed {
  iterMs: number[];
  cpuMs: number;
  minorFaults: number;
}

export function phaseTiming(t: Timed, batch: number): PhaseTiming {
  const n = t.iterMs.length;
  const total = t.iterMs.reduce((a, b) => a + b, 0);
  return {
    iterMs: t.iterMs,
    imagesPerSecMean: (batch * n) / (total / 1000),
    imagesPerSecMedian: batch / (median(t.iterMs) / 1000),
    cpuMsPerIter: t.cpuMs / n,
    minorFaultsPerIter: t.minorFaults / n,
  };
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

/**
 * Diagnostic only (--gc-between-steps, needs node --expose-gc): after each step, outside the
 * timed region, a full GC and one turn of the event loop, so the finalizers of the disposed
 * handles' native wrappers run. Shows what budgetnet would reach if a disposed handle left no
 * native allocation behind. Why it matters: each handle's native wrapper (a few dozen bytes)
 * is freed only by its finalizer, which never runs inside a synchronous training loop; those
 * small live blocks land inside the freed activation buffers in glibc's heap, so the next
 * step's buffers cannot reuse them and come from fresh pages (about 16,000 page faults and
 * 65 MB more heap per inference step of ResNet-20, against none in PyTorch).
 */
async function gcBetweenSteps(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error("--gc-between-steps needs node --expose-gc");
  gc();
  await new Promise((resolve) => setImmediate(resolve));
}

async function timeIterations(
  warmup: number,
  iters: number,
  step: () => void,
  between: (() => Promise<void>) | undefined,
): Promise<Timed> {
  for (let i = 0; i < warmup; i++) {
    step();
    if (between) await between();
  }
  const iterMs: number[] = [];
  let cpuMs = 0;
  let minorFaults = 0;
  for (let i = 0; i < iters; i++) {
    const cpu0 = process.cpuUsage();
    const faults0 = process.resourceUsage().minorPageFault;
    const t0 = performance.now();
    step();
    iterMs.push(performance.now() - t0);
    const cpu = process.cpuUsage(cpu0);
    cpuMs += (cpu.user + cpu.system) / 1000;
    minorFaults += process.resourceUsage().minorPageFault - faults0;
    if (between) await between();
  }
  return { iterMs, cpuMs, minorFaults };
}

export async function measureBudgetnet(cfg: EngineConfig, gcBetween = false): Promise<EngineMeasurement> {
  const between = gcBetween ? gcBetweenSteps : undefined;
  setNumThreads(cfg.threads);
  manualSeed(cfg.seed);
  const model = createModel(cfg.model);
  const x = keep(randn([cfg.batch, 3, 32, 32]));
  const y = keep(randint(0, 10, [cfg.batch], { dtype: "int64" }));
  const sgd = new LocalSgd(model.parameters(), cfg);

  model.train();
  const trainTimed = await timeIterations(
    cfg.trainWarmup,
    cfg.trainIters,
    () =>
      scope(() => {
        const loss = crossEntropy(model.forward(x), y);
        loss.backward();
        sgd.step();
        sgd.zeroGrad();
      }),
    between,
  );

  model.eval();
  const inferTimed = await timeIterations(
    cfg.inferWarmup,
    cfg.inferIters,
    () =>
      noGrad(() =>
        scope(() => {
          model.forward(x);
        }),
      ),
    between,
  );

  const result: EngineMeasurement = {
    engine: gcBetween ? "budgetnet-gc-between-steps" : "budgetnet",
    train: phaseTiming(trainTimed, cfg.batch),
    infer: phaseTiming(inferTimed, cfg.batch),
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

// Child mode: `node [--expose-gc] dist/bench/engine_budgetnet.js '<EngineConfig JSON>' [--gc-between-steps]`.
if (require.main === module) {
  const cfg = JSON.parse(process.argv[2] ?? "") as EngineConfig;
  measureBudgetnet(cfg, process.argv[3] === "--gc-between-steps").then(
    (m) => process.stdout.write(`${JSON.stringify(m)}\n`),
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
