// Evaluation: accuracy, per-class accuracy, confusion matrix and mean loss, optionally with
// horizontal-flip test-time augmentation (the mean of the two softmax outputs).
import type { ImageDataset } from "../data/dataset";
import { DataLoader } from "../data/loader";
import type { Module } from "../nn/module";
import { crossEntropy, softmax } from "../ops/nn";
import { argmax } from "../ops/reduce";
import { flip } from "../ops/shape";
import { scope } from "../tensor/scope";
import { noGrad, type Tensor } from "../tensor/tensor";
import { forwardWithPrecision, type PrecisionConfig } from "./precision";

export interface EvalOptions {
  mean: number[];
  std: number[];
  batchSize?: number;
  /** Average the predictions on the image and its mirror. */
  tta?: boolean;
  /** Run the forward pass as training does (bf16 autocast, channels-last); default fp32. */
  precision?: PrecisionConfig;
  /** A compiled forward of the same model (compileInference) to run instead of model.forward. */
  forward?: (x: Tensor) => Tensor;
}

export interface EvalResult {
  n: number;
  accuracy: number;
  loss: number;
  tta: boolean;
  perClass: { name: string; n: number; accuracy: number }[];
  /** confusion[true][predicted] counts. */
  confusion: number[][];
}

/** Class probabilities for a normalized batch, in eval mode and without autograd. */
export function predictProbabilities(
  model: Module,
  x: Tensor,
  tta: boolean,
  precision?: PrecisionConfig,
  compiled?: (x: Tensor) => Tensor,
): Tensor {
  const forward = (input: Tensor): Tensor =>
    compiled ? compiled(input) : precision ? forwardWithPrecision(model, input, precision) : model.forward(input);
  return scope(() => {
    const p = softmax(forward(x), 1);
    return tta ? p.add(softmax(forward(flip(x, 3)), 1)).div(2) : p;
  });
}

export function evaluate(model: Module, ds: ImageDataset, opts: EvalOptions): EvalResult {
  const wasTraining = model.training;
  model.eval();
  const k = ds.numClasses;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let lossSum = 0;
  const loader = new DataLoader(ds, {
    batchSize: opts.batchSize ?? 256,
    shuffle: false,
    seed: 0,
    mean: opts.mean,
    std: opts.std,
    numClasses: k,
    // the batches go where the model is (a CUDA model is evaluated on its GPU)
    device: model.device,
  });
  try {
    noGrad(() => {
      for (const batch of loader.batches(0)) {
        scope(() => {
          const probs = predictProbabilities(model, batch.x, opts.tta ?? false, opts.precision, opts.forward);
          // NLL of the (averaged) probabilities: the cross entropy of the prediction actually made.
          lossSum += crossEntropy(probs.clamp(1e-12).log(), batch.y, { reduction: "sum" }).item();
          const pred = argmax(probs, 1).toArray();
          const truth = batch.y.toArray();
          for (let i = 0; i < truth.length; i++) (confusion[truth[i] as number] as number[])[pred[i] as number]++;
        });
        batch.x.dispose();
        batch.y.dispose();
        batch.target.dispose();
      }
    });
  } finally {
    model.train(wasTraining);
  }
  const n = ds.n;
  const correct = confusion.reduce((s, row, i) => s + (row[i] as number), 0);
  return {
    n,
    accuracy: n ? correct / n : 0,
    loss: n ? lossSum / n : 0,
    tta: opts.tta ?? false,
    perClass: confusion.map((row, i) => {
      const total = row.reduce((a, b) => a + b, 0);
      return { name: ds.classNames[i] ?? String(i), n: total, accuracy: total ? (row[i] as number) / total : 0 };
    }),
    confusion,
  };
}
