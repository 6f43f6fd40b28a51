// Throughput of the int8 inference plan against the bf16 and fp32 plans of the same model: the
// helper behind `npm run bench -- int8` (which passes the QuantSpec of a run: RUN/int8/quant.json).
// Each precision is compiled once, warmed up, then timed `repeats` times on one batch; the figure
// is batch / median seconds per forward (robust to another process taking a core for a moment).
import { readFileSync } from "node:fs";
import { createModel, manualSeed, type nn, noGrad, randn, scope, setNumThreads } from "../src";
import { compileInference } from "../src/perf/plan";
import type { QuantSpec } from "../src/quant/spec";
import { parseBenchArgs, UsageError } from "./args";
import { median } from "./stats";

export interface Int8PlanThroughput {
  batch: number;
  threads: number;
  /** images/s by precision: batch / median seconds per forward. */
  imagesPerSec: { fp32: number; bf16: number; int8: number };
  /** The oneDNN implementation of each int8 convolution (brgconv:avx512_core_vnni, ...). */
  int8Choices: string[];
  /** int8 images/s over bf16's and over fp32's. */
  int8OverBf16: number;
  int8OverFp32: number;
}

/** images/s of one compiled forward on a [batch, ...imageShape] batch: batch / median seconds. */
function imagesPerSec(forward: (x: ReturnType<typeof randn>) => unknown, shape: number[], repeats: number): number {
  return noGrad(() =>
    scope(() => {
      const x = randn(shape);
      for (let i = 0; i < 2; i++) scope(() => void forward(x));
      const ms: number[] = [];
      for (let i = 0; i < repeats; i++) {
        const t0 = performance.now();
        scope(() => void forward(x));
        ms.push(performance.now() - t0);
      }
      return (shape[0] as number) / (median(ms) / 1000);
    }),
  );
}

/** The three plans of `model` timed on [batch, ...imageShape] with `threads` libtorch/oneDNN threads. */
export function measureInt8Plan(
  model: nn.Module,
  quant: QuantSpec,
  opts: { imageShape: number[]; batch: number; threads: number; repeats: number },
): Int8PlanThroughput {
  setNumThreads(opts.threads);
  const shape = [opts.batch, ...opts.imageShape];
  const rates: Record<string, number> = {};
  let int8Choices: string[] = [];
  for (const precision of ["fp32", "bf16", "int8"] as const) {
    const compiled = compileInference(model, {
      precision,
      inputShape: shape,
      ...(precision === "int8" ? { quant } : {}),
    });
    try {
      rates[precision] = imagesPerSec((x) => compiled.forward(x), shape, opts.repeats);
      if (precision === "int8") int8Choices = compiled.choices();
    } finally {
      compiled.dispose();
    }
  }
  const [fp32, bf16, int8] = [rates.fp32, rates.bf16, rates.int8] as [number, number, number];
  return {
    batch: opts.batch,
    threads: opts.threads,
    imagesPerSec: { fp32, bf16, int8 },
    int8Choices,
    int8OverBf16: int8 / bf16,
    int8OverFp32: int8 / fp32,
  };
}

const FLAGS = {
  quant: { type: "string", description: "the QuantSpec (RUN/int8/quant.json) of the model", valueName: "FILE" },
  batch: { type: "integer", description: "images per forward", default: 256, min: 1 },
  threads: { type: "integer", description: "libtorch and oneDNN threads", default: 2, min: 1 },
  repeats: { type: "integer", description: "timed forwards per precision", default: 7, min: 1 },
} as const;

/** `int8_plan --quant FILE`: the spec's model (seeded weights: speed does not depend on them). */
export async function main(args: string[]): Promise<void> {
  const o = parseBenchArgs("int8", FLAGS, args);
  if (o === undefined) return;
  if (o.quant === undefined)
    throw new UsageError("--quant FILE is required (budgetnet quantize writes RUN/int8/quant.json)");
  const quant = JSON.parse(readFileSync(o.quant, "utf8")) as QuantSpec;
  manualSeed(0);
  const model = createModel(quant.model, quant.modelOptions);
  try {
    const r = measureInt8Plan(model.eval(), quant, {
      imageShape: quant.inputShape,
      batch: o.batch,
      threads: o.threads,
      repeats: o.repeats,
    });
    console.log(JSON.stringify(r, null, 2));
  } finally {
    model.dispose();
  }
}
