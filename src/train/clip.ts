// Gradient clipping with torch.nn.utils' semantics: clip_grad_norm_ scales every gradient by
// maxNorm / (total norm + 1e-6) when that is below 1 and returns the norm before clipping;
// clip_grad_value_ clamps each element. Parameters without a gradient are skipped.
import { clampInPlace, mulInPlace } from "../ops/inplace";
import { ArgumentError, describe } from "../tensor/errors";
import { globalNorm } from "../tensor/native_calls";
import { scope } from "../tensor/scope";
import { noGrad, Tensor } from "../tensor/tensor";

function gradsOf(fn: string, params: Iterable<Tensor>): Tensor[] {
  if (params === null || params === undefined || typeof params[Symbol.iterator] !== "function")
    throw new ArgumentError(
      `${fn}: params must be an array of Tensors (e.g. model.parameters()). Received: params=${describe(params)}`,
    );
  const grads: Tensor[] = [];
  for (const p of params) {
    if (!(p instanceof Tensor))
      throw new ArgumentError(`${fn}: params must contain only Tensors. Received: param=${describe(p)}`);
    const g = p.grad;
    if (g !== undefined) grads.push(g);
  }
  return grads;
}

/**
 * Scales the gradients in place so their joint normType-norm is at most maxNorm, and returns the
 * norm before clipping (0 when no parameter has a gradient). normType may be Infinity (max |g|).
 */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number, normType = 2): number {
  if (!(Number.isFinite(maxNorm) && maxNorm >= 0))
    throw new ArgumentError(
      `clipGradNorm: maxNorm must be a finite number >= 0. Received: maxNorm=${describe(maxNorm)}`,
    );
  if (!(normType > 0))
    throw new ArgumentError(
      `clipGradNorm: normType must be > 0 (or Infinity). Received: normType=${describe(normType)}`,
    );
  return noGrad(() =>
    scope(() => {
      const grads = gradsOf("clipGradNorm", params);
      if (grads.length === 0) return 0;
      const total = globalNorm(grads, normType);
      const coef = maxNorm / (total + 1e-6);
      if (coef < 1) for (const g of grads) mulInPlace(g, coef);
      return total;
    }),
  );
}

/** Clamps every gradient element to [−clipValue, clipValue] in place. */
export function clipGradValue(params: Iterable<Tensor>, clipValue: number): void {
  if (!(Number.isFinite(clipValue) && clipValue >= 0))
    throw new ArgumentError(
      `clipGradValue: clipValue must be a finite number >= 0. Received: clipValue=${describe(clipValue)}`,
    );
  noGrad(() =>
    scope(() => {
      for (const g of gradsOf("clipGradValue", params)) clampInPlace(g, -clipValue, clipValue);
    }),
  );
}
