// The int8 forward of a quantized run, for eval, predict and bench: the native int8 plan where it
// exists, else the simulated int8 forward in libtorch (the same quantization points; see
// ./simulate.ts).
import * as path from "node:path";
import type { Module } from "../nn/module";
import { compileInference, planAvailable } from "../perf/plan";
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
 * The int8 forward of the quantization in dir (quant.json + model.safetensors): the native int8
 * plan (src/perf/plan.ts, precision "int8": int8 convolutions with fused ReLU and residual sums,
 * the model's folded weights being exactly scale x q) where the addon has oneDNN and the plan takes
 * the model, else the simulation, with the plan's reason as `note`. `engine` "simulated" forces
 * the simulation (the reference the plan is checked against).
 */
export function int8Forward(
  dir: string,
  opts: { batchSize: number; engine?: "auto" | "plan" | "simulated" },
): Int8Forward {
  const { model, spec } = loadQuantized(dir);
  const simulation = (note: string): Int8Forward => ({
    forward: simulatedForward(model, spec.activations),
    dispose: () => model.dispose(),
    engine: "int8-simulated",
    spec,
    note,
  });
  const want = opts.engine ?? "auto";
  if (want === "simulated") return simulation("int8 arithmetic simulated in libtorch (fake quantization), as asked");
  if (!planAvailable()) {
    if (want === "plan") {
      model.dispose();
      throw new Error("the int8 plan needs an addon built with oneDNN (libdnnl-dev); this build has none.");
    }
    return simulation("this build has no oneDNN plan; int8 arithmetic simulated in libtorch (fake quantization)");
  }
  try {
    const compiled = compileInference(model, {
      precision: "int8",
      quant: spec,
      inputShape: [Math.max(1, opts.batchSize), ...spec.inputShape],
    });
    return {
      forward: (x) => compiled.forward(x),
      dispose: () => {
        compiled.dispose();
        model.dispose();
      },
      engine: "int8-plan",
      spec,
      note:
        compiled.summary.float !== undefined && compiled.summary.float.length > 0
          ? `${compiled.summary.float.length} op(s) in float32: ${compiled.summary.float.map((f) => `${f.key} (${f.op})`).join(", ")}`
          : undefined,
    };
  } catch (e) {
    if (want === "plan") {
      model.dispose();
      throw e;
    }
    return simulation(
      `the int8 plan refused this model (${(e as Error).message}); int8 arithmetic simulated in libtorch`,
    );
  }
}

/** The folded model of a quantization, for callers that need the module itself (export). */
export function loadInt8Model(dir: string): { model: Module; spec: QuantSpec } {
  return loadQuantized(dir);
}
