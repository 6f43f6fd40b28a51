// The --engine flag of eval, predict and bench: the fused oneDNN plan (src/perf/plan.ts) or the
// model's own forward through libtorch.
import type { Module } from "../nn/module";
import { type CompiledInference, compileInference, type PlanOptions, planAvailable } from "../perf/plan";
import { type FlagSpec, UsageError } from "./args";

export const ENGINE_FLAG = {
  type: "string",
  valueName: "E",
  description: "auto (the fused oneDNN plan where this build has it), plan or libtorch",
  default: "auto",
} as const satisfies FlagSpec;

/**
 * The inference engine a command asked for: "plan" compiles (and fails if it cannot), "auto"
 * compiles where the addon has the plan and falls back to libtorch (returning the reason) when
 * the model's forward is not one the plan can take, "libtorch" never compiles.
 */
export function compileForEngine(
  engine: string,
  model: Module,
  opts: PlanOptions,
): { compiled: CompiledInference | undefined; engine: "plan" | "libtorch"; note?: string } {
  if (engine !== "auto" && engine !== "plan" && engine !== "libtorch")
    throw new UsageError(`--engine must be auto, plan or libtorch. Received: --engine=${engine}`);
  if (engine === "libtorch") return { compiled: undefined, engine: "libtorch" };
  if (engine === "auto" && !planAvailable())
    return { compiled: undefined, engine: "libtorch", note: "this build has no oneDNN plan" };
  try {
    return { compiled: compileInference(model, opts), engine: "plan" };
  } catch (err) {
    if (engine === "plan") throw err;
    return { compiled: undefined, engine: "libtorch", note: (err as Error).message };
  }
}
