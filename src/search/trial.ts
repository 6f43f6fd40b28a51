// A trial is an ordinary budgetnet run: the trainer, its run folder, its metrics. The coordinator
// (or a Redis worker) writes the trial's full training config to RUNDIR/trial.json and starts
// `node dist/src/search/trial_main.js RUNDIR` as a child process, so the coordinator's event loop
// stays free (journal, queue locks, other workers) and a crash of one trial is only that trial's.
// The child trains (resuming from RUNDIR/checkpoint.safetensors when a killed trial left one),
// writes RUNDIR/outcome.json atomically and exits 0. It is tied to its parent through an IPC
// channel: when the parent dies (kill -9 included) the channel closes and the child kills itself,
// so no orphan keeps training into a folder the resumed study will use.
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { writeFileAtomic } from "../export/atomic";
import type { TrainConfig } from "../train/config";

export interface TrialPayload {
  study: string;
  trial: number;
  rung: number;
  config: TrainConfig;
  /**
   * Evaluate the final weights on the test set after training (ablation studies report test
   * accuracy beside the validation accuracy they decide on); a search never sets it.
   */
  evaluateTest?: boolean;
}

export interface TrialOutcome {
  valAccuracy: number;
  finalValAccuracy: number;
  epochs: number;
  steps: number;
  seconds: number;
  /** Seconds inside the trainer's training epochs (steps and validation), for the executor's overhead. */
  trainSeconds?: number;
  /** Test accuracy of the final weights, when the payload asked for it. */
  testAccuracy?: number;
  params?: number;
  /** host:pid of the process that trained it. */
  worker: string;
  runDir: string;
}

export const OUTCOME_FILE = "outcome.json";
export const PAYLOAD_FILE = "trial.json";
export const LOG_FILE = "trial.log";

export function readOutcome(runDir: string): TrialOutcome | undefined {
  const file = path.join(runDir, OUTCOME_FILE);
  if (!fs.existsSync(file)) return undefined;
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as TrialOutcome;
  } catch {
    return undefined; // written atomically, so a bad file is foreign; the trial runs again
  }
}

function trialMain(): string {
  return path.join(__dirname, "trial_main.js");
}

export interface RunningTrial {
  child: ChildProcess;
  done: Promise<TrialOutcome>;
}

/**
 * Starts a trial in a child process with `threads` libtorch threads; `done` resolves with its
 * outcome or rejects with the end of its log. A finished trial's outcome is returned without
 * running anything again.
 */
export function startTrial(runDir: string, payload: TrialPayload, threads: number): RunningTrial | TrialOutcome {
  fs.mkdirSync(runDir, { recursive: true });
  const existing = readOutcome(runDir);
  if (existing !== undefined) return existing;
  writeFileAtomic(path.join(runDir, PAYLOAD_FILE), [JSON.stringify(payload, null, 2)]);
  const log = fs.openSync(path.join(runDir, LOG_FILE), "a");
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [trialMain(), runDir], {
      stdio: ["ignore", log, log, "ipc"],
      env: { ...process.env, BUDGETNET_THREADS: String(threads) },
    });
  } finally {
    fs.closeSync(log);
  }
  const done = new Promise<TrialOutcome>((resolve, reject) => {
    child.on("error", (e) => reject(new Error(`trial ${payload.trial}: could not start its process: ${e.message}`)));
    child.on("exit", (code, signal) => {
      const outcome = readOutcome(runDir);
      if (code === 0 && outcome !== undefined) resolve(outcome);
      else
        reject(
          new Error(
            `trial ${payload.trial} ${signal !== null ? `was killed (${signal})` : `exited with status ${code}`}: ${logTail(runDir)}`,
          ),
        );
    });
  });
  return { child, done };
}

/** The last error line of a trial's log, for the journal's failure event. */
export function logTail(runDir: string): string {
  try {
    const lines = fs
      .readFileSync(path.join(runDir, LOG_FILE), "utf8")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "");
    const err = [...lines].reverse().find((l) => /error/i.test(l));
    return (err ?? lines[lines.length - 1] ?? "(no output)").slice(0, 500);
  } catch {
    return "(no log)";
  }
}

export function workerName(): string {
  return `${os.hostname()}:${process.pid}`;
}
