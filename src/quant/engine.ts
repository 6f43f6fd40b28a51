// The int8 forward of a quantized run, for eval (and, once wired, predict, bench and serve):
// the native int8 plan where it exists, else the simulated int8 forward in libtorch (same
// numbers up to float32 accumulation order; see ./simulate.ts).
import * as path from "node:path";
import type { Module } from "../nn/module";
import type { Tensor } from "../tensor/tensor";
import { loadQuantized } from "./files";
import { simulatedForward } from "./simulate";
import type { QuantSpec } from "./spec";

export interface Int8Forward {
  forward(x: Tensor): Tensor;
  dispose(): void;
  engine: "int8-plan" | "int8-simulated";
  spec: QuantSpec;
  /** Why the simulation runs instead of the plan. */
  note?: string;
}

/** RUN/int8, where `budgetnet quantize` writes by default. */
export function defaultInt8Dir(runDir: string): string {
  return path.join(runDir, "int8");
}

/**
 * The int8 forward of the quantization in dir (quant.json + model.safetensors).
 *
 * INT8 PLAN HOOK: this is the one place the native int8 plan plugs in. When src/perf/plan.ts's
 * compileInference takes { precision: "int8", quant, inputShape }, compile `model` (the folded
 * model with dequantized weights; its int8 weights are round(w / scale) exactly) with `spec`
 * here, return { engine: "int8-plan", forward: compiled.forward, ... }, and keep the simulation
 * as the fallback (with the plan's error as `note`) where the plan is absent or refuses the model.
 */
export function int8Forward(dir: string, _opts: { batchSize: number }): Int8Forward {
  const { model, spec } = loadQuantized(dir);
  const simulate = simulatedForward(model, spec.activations);
  return {
    forward: simulate,
    dispose: () => model.dispose(),
    engine: "int8-simulated",
    spec,
    note: "the native int8 plan is not built yet; int8 arithmetic simulated in libtorch (fake quantization)",
  };
}

/** The folded model of a quantization, for callers that need the module itself (export). */
export function loadInt8Model(dir: string): { model: Module; spec: QuantSpec } {
  return loadQuantized(dir);
}
