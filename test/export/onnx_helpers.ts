// Shared by the ONNX tests and the all-models check: BatchNorm statistics that are not the
// identity (so folding is really exercised), and running an exported file in onnxruntime-node.
import * as ort from "onnxruntime-node";
import { BatchNorm2d } from "../../src/nn/layers";
import type { Module } from "../../src/nn/module";
import { normalInPlace, uniformInPlace } from "../../src/ops/inplace";
import { noGrad } from "../../src/tensor/tensor";

/**
 * Gives every BatchNorm a random affine map and running statistics (as after training). Each
 * BatchNorm scales by at most 1 (γ ≤ 1, σ² ≥ 1), so 1000-layer residual stacks stay finite.
 */
export function randomizeBatchNorms(model: Module): void {
  noGrad(() => {
    for (const [, m] of model.namedModules()) {
      if (!(m instanceof BatchNorm2d)) continue;
      if (m.weight) uniformInPlace(m.weight, 0.5, 1);
      if (m.bias) normalInPlace(m.bias, 0, 0.2);
      if (m.runningMean) normalInPlace(m.runningMean, 0, 0.2);
      if (m.runningVar) uniformInPlace(m.runningVar, 1, 2);
    }
  });
}

/** Runs an ONNX file (bytes) on x [N, C, H, W] with onnxruntime; returns the named outputs. */
export async function runOrt(
  session: ort.InferenceSession,
  x: Float32Array,
  shape: number[],
): Promise<Record<string, Float32Array>> {
  const out = await session.run({ input: new ort.Tensor("float32", x, shape) });
  const result: Record<string, Float32Array> = {};
  for (const [k, v] of Object.entries(out)) result[k] = v.data as Float32Array;
  return result;
}

export function ortSession(bytes: Uint8Array, threads = 1): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, { intraOpNumThreads: threads, interOpNumThreads: 1 });
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs((a[i] as number) - (b[i] as number)));
  return d;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] as number));
  return m;
}
