// The int8 quantization of a trained run, as written by `budgetnet quantize` and read by the int8
// inference plan (src/perf/plan.ts, native/plan.cc), eval/predict/bench/serve and the QDQ ONNX
// export. Scales follow PyTorch's and ONNX's affine convention: real = scale * (q - zeroPoint).
//
// Files, beside the run (default RUN/int8/):
//   quant.json          this QuantSpec
//   model.safetensors   the BatchNorm-folded model: int8 weights of every quantized conv/linear
//                       (dtype I8, same names as the folded model's state dict), their per-output-
//                       channel scales as float32 tensors named `${weight}.scale`, and every
//                       other tensor (biases, unfolded BatchNorms, ...) as float32.

/** Quantization of one activation (a site, src/quant/sites.ts): per tensor. */
export interface ActivationQuant {
  scale: number;
  zeroPoint: number;
  /** uint8 for values known non-negative (after ReLU) when zeroPoint is 0, else int8 or uint8 with a zero point. */
  dtype: "uint8" | "int8";
}

/** Quantization of one weight: symmetric int8 (zero point 0), per output channel (axis 0) or per tensor. */
export interface WeightQuant {
  /** One scale per output channel (length = weight.shape[0]) or one for the tensor. */
  scales: number[];
  axis: 0;
}

export type ObserverName = "minmax" | "percentile" | "mse";

export interface QuantSpec {
  format: "budgetnet-int8";
  version: 1;
  /** The run's model, options as trained (resolved). */
  model: string;
  modelOptions: Record<string, unknown>;
  /** [C, H, W] of one input, as the run trained. */
  inputShape: number[];
  /** How activation ranges were chosen, and on how many training images. */
  observer: ObserverName;
  calibrationImages: number;
  perChannel: boolean;
  /** "ptq" (post-training) or "qat" (fine-tuned with fake quantization). */
  method: "ptq" | "qat";
  /** Site key -> activation quantization, for every site that a consumer may need. */
  activations: Record<string, ActivationQuant>;
  /** Folded state-dict weight name -> its weight quantization. */
  weights: Record<string, WeightQuant>;
  /** Sites or modules left in float, with the reason (ops the int8 path does not cover). */
  float: { key: string; reason: string }[];
}
