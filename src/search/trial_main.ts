// The child process of one trial: `node trial_main.js RUNDIR` (see trial.ts).
import "../index"; // registers every model family
import * as fs from "node:fs";
import * as path from "node:path";
import { writeFileAtomic } from "../export/atomic";
import { recipeFromObject } from "../train/config";
import { train } from "../train/trainer";
import { OUTCOME_FILE, PAYLOAD_FILE, type TrialOutcome, type TrialPayload, workerName } from "./trial";

async function main(runDir: string): Promise<number> {
  // the parent died (kill -9 included): stop at once; the resumed study restarts this trial from its checkpoint
  process.on("disconnect", () => process.kill(process.pid, "SIGKILL"));
  const payload = JSON.parse(fs.readFileSync(path.join(runDir, PAYLOAD_FILE), "utf8")) as TrialPayload;
  const cfg = recipeFromObject(payload.config, `trial ${payload.trial} of study ${payload.study}`);
  const resume = fs.existsSync(path.join(runDir, "checkpoint.safetensors"));
  const started = Date.now();
  const result = await train(cfg, { runDir, resume, handleSignals: false });
  if (result.status !== "completed") throw new Error(`trial ${payload.trial} stopped before its last epoch`);
  const outcome: TrialOutcome = {
    valAccuracy: result.bestValAccuracy,
    finalValAccuracy: result.finalValAccuracy,
    epochs: result.epochs,
    steps: result.steps,
    seconds: (Date.now() - started) / 1000,
    worker: workerName(),
    runDir: path.resolve(runDir),
  };
  writeFileAtomic(path.join(runDir, OUTCOME_FILE), [JSON.stringify(outcome, null, 2)]);
  return 0;
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
