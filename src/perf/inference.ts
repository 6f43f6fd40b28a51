// Inference regions: libtorch's c10::InferenceMode, a stronger no_grad. Tensors made inside
// carry no version counter or autograd metadata, which saves a little work per op; they cannot
// be used by autograd afterwards (libtorch raises if they are).
import { ArgumentError } from "../tensor/errors";
import { inferenceModeEnter, inferenceModeExit } from "../tensor/native_calls";

export { isInferenceMode } from "../tensor/native_calls";

/** Runs fn under c10::InferenceMode (torch.inference_mode()); restores the state when fn ends or throws. */
export function inferenceMode<T>(fn: () => T): T {
  if (typeof fn !== "function")
    throw new ArgumentError(`inferenceMode: fn must be a function. Received: fn=${String(fn)}`);
  inferenceModeEnter();
  let result: T;
  try {
    result = fn();
  } finally {
    inferenceModeExit();
  }
  if (result instanceof Promise)
    throw new ArgumentError(
      "inferenceMode: fn returned a Promise; the mode is thread-local and was already turned off. Pass a synchronous function.",
    );
  return result;
}
