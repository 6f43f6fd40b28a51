// Casting a whole (inference) model to another floating dtype in place: explicit bfloat16
// inference. With BatchNorm folded away, a CIFAR net is convs, adds, activations, pooling and
// one linear layer, all of which have bfloat16 CPU kernels; casting the weights once saves the
// per-forward weight casts autocast makes (its cache lives for one region only).
import type { Module } from "../nn/module";
import { to } from "../ops/shape";
import { ArgumentError } from "../tensor/errors";
import { setData } from "../tensor/native_calls";
import { scope } from "../tensor/scope";

const FLOATS = new Set(["float32", "float64", "bfloat16", "float16"]);

/**
 * Every floating parameter and buffer of model becomes dtype, in place (the same Tensor objects;
 * integer buffers such as num_batches_tracked are left alone). Returns how many were cast.
 * Meant for inference copies: training keeps float32 master weights (use autocast instead).
 */
export function castModel(model: Module, dtype: "bfloat16" | "float32"): number {
  if (dtype !== "bfloat16" && dtype !== "float32")
    throw new ArgumentError(`castModel: dtype must be "bfloat16" or "float32". Received: dtype=${String(dtype)}`);
  let n = 0;
  for (const [, t] of [...model.namedParameters(), ...model.namedBuffers()]) {
    const d = t.dtype;
    if (!FLOATS.has(d) || d === dtype) continue;
    scope(() => setData(t, to(t, dtype), true));
    n++;
  }
  return n;
}
