// Local execution: `--workers N` trials at once, each a child process (trial.ts) with the
// machine's libtorch threads split between them (BUDGETNET_THREADS, else one per core).
import type { ChildProcess } from "node:child_process";
import * as os from "node:os";
import { ArgumentError } from "../tensor/errors";
import type { Executor } from "./study";
import { startTrial, type TrialOutcome, type TrialPayload } from "./trial";

/** Threads the machine offers: BUDGETNET_THREADS when set, else the cores. */
export function machineThreads(): number {
  const env = Number(process.env.BUDGETNET_THREADS);
  return Number.isInteger(env) && env >= 1 ? env : os.availableParallelism();
}

export class LocalExecutor implements Executor {
  readonly description: string;
  readonly threadsPerTrial: number;
  private readonly children = new Set<ChildProcess>();

  constructor(readonly slots: number) {
    if (!Number.isInteger(slots) || slots < 1)
      throw new ArgumentError(`--workers must be an integer >= 1. Received: ${slots}`);
    this.threadsPerTrial = Math.max(1, Math.floor(machineThreads() / slots));
    this.description = `local: ${slots} worker${slots > 1 ? "s" : ""} x ${this.threadsPerTrial} thread${this.threadsPerTrial > 1 ? "s" : ""}`;
  }

  async run(payload: TrialPayload, runDir: string): Promise<TrialOutcome> {
    const started = startTrial(runDir, payload, this.threadsPerTrial);
    if (!("child" in started)) return started;
    this.children.add(started.child);
    try {
      return await started.done;
    } finally {
      this.children.delete(started.child);
    }
  }

  async cancelAll(): Promise<void> {
    const exits = [...this.children].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once("exit", () => resolve());
          c.kill("SIGKILL");
        }),
    );
    await Promise.all(exits);
  }

  async close(): Promise<void> {
    await this.cancelAll();
  }
}
