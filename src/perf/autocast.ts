// Mixed precision on the CPU through libtorch's own autocast (torch.autocast("cpu", bfloat16)):
// convolutions and matmuls run in bfloat16 (oneDNN's AVX512_BF16 kernels where the CPU has
// them), while the ops on autocast's float32 list (losses, softmax, norms of sums) stay in
// float32. Parameters stay float32 masters; the bfloat16 copies autocast makes of them are
// cached for one region and dropped when the outermost region closes.
import { ArgumentError } from "../tensor/errors";
import {
  type AutocastDevice,
  autocastEnter,
  autocastExit,
  autocastState as nativeAutocastState,
} from "../tensor/native_calls";

export type AutocastDtype = "bfloat16";
export type { AutocastDevice };

export interface AutocastOptions {
  /** Lower-precision type for the ops on autocast's list. CPU autocast supports bfloat16 only. */
  dtype?: AutocastDtype;
  /** false runs fn with autocast off (to switch it off inside an autocast region). */
  enabled?: boolean;
  /** Which autocast: "cpu" (default) or "cuda" (the ops on CUDA tensors; needs a CUDA libtorch). */
  device?: AutocastDevice;
}

export interface AutocastState {
  enabled: boolean;
  dtype: string;
}

/**
 * Runs fn with CPU autocast on, then restores the previous state, also when fn throws.
 * fn must be synchronous: the state is thread-local in libtorch and is restored when fn returns.
 * Call backward() outside the region, as in PyTorch (its ops follow the forward's dtypes).
 */
export function autocast<T>(fn: () => T, opts: AutocastOptions = {}): T {
  const dtype = opts.dtype ?? "bfloat16";
  if (dtype !== "bfloat16")
    throw new ArgumentError(`autocast: CPU autocast supports dtype "bfloat16" only. Received: dtype=${String(dtype)}`);
  if (typeof fn !== "function") throw new ArgumentError(`autocast: fn must be a function. Received: fn=${String(fn)}`);
  const device = opts.device ?? "cpu";
  if (device !== "cpu" && device !== "cuda")
    throw new ArgumentError(`autocast: device must be "cpu" or "cuda". Received: device=${String(device)}`);
  const prev = autocastEnter(opts.enabled ?? true, dtype, device);
  let result: T;
  try {
    result = fn();
  } finally {
    autocastExit(prev, device);
  }
  if (result instanceof Promise)
    throw new ArgumentError(
      "autocast: fn returned a Promise; autocast state is thread-local and was already restored. Pass a synchronous function.",
    );
  return result;
}

/** Whether autocast of device ("cpu" by default) is on for the ops called now, and its dtype. */
export function autocastState(device: AutocastDevice = "cpu"): AutocastState {
  return nativeAutocastState(device);
}
