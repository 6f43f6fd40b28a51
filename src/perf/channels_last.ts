// Channels-last (NHWC) memory format for a whole model. oneDNN's convolutions work in a blocked
// or NHWC layout; fed NCHW tensors, libtorch reorders activations and weights around every conv.
// With the weights and the input already NHWC, conv, batch norm, ReLU and add keep NHWC end to
// end and the reorders disappear. Which models gain is measured, not assumed (src/perf/choices.ts).
import type { Module } from "../nn/module";
import { contiguous, isContiguous } from "../ops/shape";
import { ArgumentError } from "../tensor/errors";
import { setData } from "../tensor/native_calls";
import { scope } from "../tensor/scope";
import type { MemoryFormat, Tensor } from "../tensor/tensor";

function relayout(model: Module, format: MemoryFormat, fn: string): number {
  if (model === null || typeof model !== "object" || typeof model.namedParameters !== "function")
    throw new ArgumentError(`${fn}: model must be a Module. Received: model=${String(model)}`);
  let changed = 0;
  const tensors = [...model.namedParameters(), ...model.namedBuffers()].map(([, t]) => t);
  for (const t of tensors) {
    if (t.rank !== 4 || isContiguous(t, format)) continue;
    // set_data swaps the storage under the same tensor: the optimizer's and the module's
    // references, requiresGrad and the parameter's name all stay.
    scope(() => setData(t, contiguous(t, format)));
    const g = t.grad;
    if (g !== undefined) {
      scope(() => setData(g, contiguous(g, format)));
      g.dispose();
    }
    changed++;
  }
  return changed;
}

/**
 * Converts every 4-d parameter and buffer of model (convolution weights) to channels-last, in
 * place. Returns how many were converted. Feed the model channels-last inputs too
 * (toChannelsLastInput); a contiguous input still works, at the cost of one reorder.
 */
export function toChannelsLast(model: Module): number {
  return relayout(model, "channelsLast", "toChannelsLast");
}

/** Undoes toChannelsLast: every 4-d parameter and buffer back to contiguous NCHW, in place. */
export function toContiguousFormat(model: Module): number {
  return relayout(model, "contiguous", "toContiguousFormat");
}

/** A channels-last copy of a 4-d batch (or x itself, re-wrapped, when it already is). */
export function toChannelsLastInput(x: Tensor): Tensor {
  return contiguous(x, "channelsLast");
}
