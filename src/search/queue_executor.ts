// Execution across machines: the coordinator puts each trial on a BullMQ queue in Redis
// (queue.ts) and `budgetnet worker --queue URL` processes on any machine take them, train them
// in a child process (trial.ts) under their own --dir, and report the outcome back. The study's
// journal on the coordinator stays the one record: a result is journaled once per trial id,
// however many times a stalled trial was taken up again.
import * as path from "node:path";
import { machineThreads } from "./local";
import { startWorker, TrialQueue, type WorkerHandle } from "./queue";
import type { Executor } from "./study";
import { startTrial, type TrialOutcome, type TrialPayload } from "./trial";

/** Trials run by remote workers; `slots` bounds how many the coordinator keeps queued at once. */
export class QueueExecutor implements Executor {
  readonly description: string;

  private constructor(
    private readonly queue: TrialQueue,
    readonly url: string,
    readonly study: string,
    readonly slots: number,
  ) {
    this.description = `Redis queue ${url} (up to ${slots} trials queued at once)`;
  }

  /** `study` must be unique on that Redis: the study's name and creation time. */
  static async open(url: string, study: string, slots = 64): Promise<QueueExecutor> {
    return new QueueExecutor(await TrialQueue.open({ url }), url, study, slots);
  }

  async run(payload: TrialPayload, _runDir: string): Promise<TrialOutcome> {
    return (await this.queue.run(`${this.study}:${payload.trial}`, payload)) as TrialOutcome;
  }

  async cancelAll(): Promise<void> {
    // queued trials stay on the queue: workers finish them and a resumed coordinator collects
    // their stored results by trial id
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}

export interface QueueWorkerOptions {
  url: string;
  /** Where this worker keeps its trials' run folders. */
  dir: string;
  threads?: number;
  /** Seconds without a lock renewal after which another worker takes a trial up (default 30). */
  lockSeconds?: number;
}

/**
 * `budgetnet worker`: takes trials off the queue one at a time and trains each in a child
 * process; a trial whose lock this worker lost (or a forced close) has its child killed, so two
 * workers never train the same trial into one folder.
 */
export async function runQueueWorker(opts: QueueWorkerOptions): Promise<WorkerHandle> {
  const threads = opts.threads ?? machineThreads();
  const lockMs = (opts.lockSeconds ?? 30) * 1000;
  return startWorker({ url: opts.url, lockDurationMs: lockMs, stalledIntervalMs: lockMs }, async (raw, info) => {
    const payload = raw as TrialPayload;
    const runDir = path.join(
      opts.dir,
      safeName(payload.study),
      `t${String(payload.trial).padStart(4, "0")}-r${payload.rung}`,
    );
    const started = startTrial(runDir, payload, threads);
    if (!("child" in started)) return started;
    const kill = (): void => {
      started.child.kill("SIGKILL");
    };
    info.signal.addEventListener("abort", kill, { once: true });
    try {
      return await started.done;
    } finally {
      info.signal.removeEventListener("abort", kill);
    }
  });
}

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]/g, "_");
}
