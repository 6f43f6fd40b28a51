// The int8 reference forward in libtorch: the folded model with its dequantized int8 weights
// (exactly the values an int8 kernel multiplies) and every activation of the QuantSpec
// fake-quantized where the model computes it (quantize, clamp, dequantize with the site's scale
// and zero point). This is "budgetnet's int8 accuracy": `budgetnet quantize` reports it, eval
// --int8 runs it where the native int8 plan is absent, and the plan and the QDQ ONNX export are
// compared against it. It differs from a real int8 kernel only by float32 accumulation order.
import type { Module } from "../nn/module";
import { tensor } from "../ops/creation";
import { copyInPlace } from "../ops/inplace";
import type { NativeHandle, Tensor } from "../tensor/tensor";
import { callNative } from "../tensor/trace";
import { forwardWithSites } from "./intercept";
import { activationRange, dequantizeWeight, type QuantizedWeight } from "./quantize";
import type { ActivationQuant } from "./spec";

/** A fake-quantized copy of the value (a new handle), with the straight-through gradient. */
export function fakeQuantizeHandle(value: NativeHandle, q: ActivationQuant): NativeHandle {
  const [qmin, qmax] = activationRange(q);
  return callNative("fakeQuantizePerTensor", [value, q.scale, q.zeroPoint, qmin, qmax]) as NativeHandle;
}

/** Writes the dequantized int8 weights into the folded model's weights, in place. */
export function applyQuantizedWeights(folded: Module, weights: Map<string, QuantizedWeight>): void {
  const state = folded.stateDict();
  for (const [name, w] of weights) {
    const target = state.get(name);
    if (target === undefined) throw new Error(`the folded model has no weight ${name}`);
    const values = tensor(dequantizeWeight(w.q, w.shape, w.quant), w.shape);
    try {
      copyInPlace(target, values);
    } finally {
      values.dispose();
    }
  }
}

/**
 * The simulated int8 forward of a folded model whose weights already hold their dequantized
 * int8 values (applyQuantizedWeights, or loadQuantized): x -> logits. A site key of the spec that
 * the forward never reaches is an error naming it (the spec belongs to another model).
 */
export function simulatedForward(folded: Module, activations: Record<string, ActivationQuant>): (x: Tensor) => Tensor {
  let checked = false;
  return (x: Tensor): Tensor => {
    const seen = new Set<string>();
    const y = forwardWithSites(folded, x, {
      onSite: (site, value) => {
        const q = activations[site.key];
        if (q === undefined) return undefined;
        seen.add(site.key);
        return fakeQuantizeHandle(value, q);
      },
    });
    if (!checked) {
      const missing = Object.keys(activations).filter((k) => !seen.has(k));
      if (missing.length > 0) {
        y.dispose();
        throw new Error(
          `the int8 spec names ${missing.length} site(s) this model's forward does not have: ${missing.slice(0, 5).join(", ")}. The quantization was made for another model; run \`budgetnet quantize\` again.`,
        );
      }
      checked = true;
    }
    return y;
  };
}
