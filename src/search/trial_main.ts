// The child process of one trial: `node trial_main.js RUNDIR` (see trial.ts).
import "../index"; // registers every model family
import * as fs from "node:fs";
import * as path from "node:path";
import { writeFileAtomic } from "../export/atomic";
import type { Module } from "../nn/module";
import { USER_MODULES_ENV } from "../paths";
import { compileInference, type PlanOptions, planAvailable } from "../perf/plan";
import { recipeFromObject } from "../train/config";
import { type CompiledForward, evaluateRun } from "../train/evaluate_run";
import { readRunConfig } from "../train/run";
import { train } from "../train/trainer";
import { OUTCOME_FILE, PAYLOAD_FILE, type TrialOutcome, type TrialPayload, workerName } from "./trial";

/** The user's --require modules (their models must be registered before the trial builds one). */
function loadUserModules(): void {
  for (const file of (process.env[USER_MODULES_ENV] ?? "").split(path.delimiter)) if (file !== "") require(file);
}

async function main(runDir: string): Promise<number> {
  loadUserModules();
  // the parent died (kill -9 included): stop at once; the resumed study restarts this trial from its checkpoint
  process.on("disconnect", () => process.kill(process.pid, "SIGKILL"));
  const payload = JSON.parse(fs.readFileSync(path.join(runDir, PAYLOAD_FILE), "utf8")) as TrialPayload;
  const cfg = recipeFromObject(payload.config, `trial ${payload.trial} of study ${payload.study}`);
  const resume = fs.existsSync(path.join(runDir, "checkpoint.safetensors"));
  const started = Date.now();
  const result = await train(cfg, { runDir, resume, handleSignals: false });
  if (result.status !== "completed") throw new Error(`trial ${payload.trial} stopped before its last epoch`);
  const testAccuracy =
    payload.evaluateTest === true
      ? evaluateRun(runDir, { split: "test", weights: "final", compile: compileAuto }).accuracy
      : undefined;
  const outcome: TrialOutcome = {
    valAccuracy: result.bestValAccuracy,
    finalValAccuracy: result.finalValAccuracy,
    epochs: result.epochs,
    steps: result.steps,
    seconds: (Date.now() - started) / 1000,
    trainSeconds: epochSeconds(runDir),
    testAccuracy,
    params: readRunConfig(runDir).parameters,
    worker: workerName(),
    runDir: path.resolve(runDir),
  };
  writeFileAtomic(path.join(runDir, OUTCOME_FILE), [JSON.stringify(outcome, null, 2)]);
  return 0;
}

/** The fused plan where this build has it and the model fits it, else libtorch's forward. */
function compileAuto(model: Module, opts: PlanOptions): CompiledForward {
  if (!planAvailable()) return { compiled: undefined, engine: "libtorch" };
  try {
    return { compiled: compileInference(model, opts), engine: "plan" };
  } catch (e) {
    return { compiled: undefined, engine: "libtorch", note: (e as Error).message };
  }
}

/** Seconds the trainer spent in its epochs (steps and validation), summed from metrics.jsonl. */
function epochSeconds(runDir: string): number {
  let sum = 0;
  for (const line of fs.readFileSync(path.join(runDir, "metrics.jsonl"), "utf8").split("\n")) {
    if (!line.includes('"type":"epoch"')) continue;
    try {
      const e = JSON.parse(line) as { seconds?: number };
      if (typeof e.seconds === "number") sum += e.seconds;
    } catch {
      // a line cut short by a kill of an earlier attempt: not an epoch that finished
    }
  }
  return sum;
}

const dir = process.argv[2];
if (dir === undefined) {
  process.stderr.write("usage: node trial_main.js RUNDIR (started by budgetnet search)\n");
  process.exit(2);
}
main(dir).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`budgetnet trial error: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
