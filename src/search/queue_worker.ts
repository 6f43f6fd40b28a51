// The worker's side of the trial queue: startWorker takes jobs one at a time (or `concurrency`),
// renews their locks, aborts a handler whose lock was lost, and reports results once (queue.ts
// has the guarantees).
import { type Job, Worker } from "bullmq";
import { checkArg, describe } from "../tensor/errors";
import {
  ConnectionWatch,
  checkIntOption,
  checkQueueName,
  checkRedisReachable,
  errorText,
  isConnectionError,
  jsonText,
  parseRedisUrl,
  type QueueOptions,
  stderrLine,
  trialIdOf,
} from "./redis";

export interface TrialWorkerOptions extends QueueOptions {
  /** Jobs this worker runs at once. Default 1. */
  concurrency?: number;
  /** A job's lock lasts this long unless renewed (every lockDurationMs / 4); a killed worker's job is retaken after it. Default 30000. */
  lockDurationMs?: number;
  /** How often this worker looks for jobs whose lock expired. Default 30000. */
  stalledIntervalMs?: number;
  /** How often one job may stall (its worker killed) and still be retried rather than failed. Default 5. */
  maxStalledCount?: number;
}

export interface TrialInfo {
  /** The trial's id (the job's id). */
  id: string;
  /** 1 on the first start; every start counts, including the restart after a killed worker. */
  attempt: number;
  /** Aborted when this worker lost the job's lock (another worker may have it), on close({force}), or when Redis was lost. */
  signal: AbortSignal;
}

export type TrialHandler = (payload: unknown, info: TrialInfo) => Promise<unknown>;

export interface WorkerHandle {
  /**
   * Stops taking jobs and waits for running handlers to finish and report. With force, their
   * signals abort and nothing waits: their jobs go back on the queue once their locks expire.
   */
  close(opts?: { force?: boolean }): Promise<void>;
  /**
   * Settles when the worker stopped: resolves after close(); rejects with RedisUnavailableError
   * when Redis was lost, or with BullMQ's error when its job loop failed.
   */
  readonly finished: Promise<void>;
}

/** Takes jobs from the queue and runs handler(payload, info) on each; its return value (JSON) is the job's result. */
export async function startWorker(opts: TrialWorkerOptions, handler: TrialHandler): Promise<WorkerHandle> {
  checkArg(typeof opts === "object" && opts !== null, "startWorker", "opts must be an options object", "opts", opts);
  checkArg(typeof handler === "function", "startWorker", "handler must be an async function", "handler", handler);
  const target = parseRedisUrl(opts.url);
  const name = checkQueueName(opts.name, "startWorker");
  const concurrency = checkIntOption(opts.concurrency, "startWorker", "concurrency", 1, 1);
  const lockDuration = checkIntOption(opts.lockDurationMs, "startWorker", "lockDurationMs", 1000, 30_000);
  const stalledInterval = checkIntOption(opts.stalledIntervalMs, "startWorker", "stalledIntervalMs", 100, 30_000);
  const maxStalledCount = checkIntOption(opts.maxStalledCount, "startWorker", "maxStalledCount", 0, 5);
  const log = opts.log ?? stderrLine;
  await checkRedisReachable(opts.url);

  const stop = new AbortController();
  let settleFinished!: (err?: Error) => void;
  const finished = new Promise<void>((resolve, reject) => {
    settleFinished = (err) => (err ? reject(err) : resolve());
  });
  finished.catch(() => {}); // a caller that never reads `finished` does not get an unhandled rejection
  let closing: Promise<void> | undefined;
  let running: Promise<void> = Promise.resolve();

  // BullMQ reports a result or failure refused for want of the job's lock as "Missing lock for job
  // ID. COMMAND" (sometimes twice: completing, then retrying); say it once, plainly
  const lockLossSaid = new Set<string>();

  // three parameters: BullMQ then passes each job an abort signal (used when its lock is lost)
  const processor = async (job: Job, _token?: string, jobSignal?: AbortSignal): Promise<unknown> => {
    const signal = jobSignal ? AbortSignal.any([jobSignal, stop.signal]) : stop.signal;
    const id = trialIdOf(job.id ?? "");
    lockLossSaid.delete(job.id ?? "");
    let result: unknown;
    try {
      result = await handler(job.data, { id, attempt: job.attemptsStarted, signal });
    } catch (err) {
      throw err instanceof Error ? err : new Error(`the trial handler threw a non-Error: ${describe(err)}`);
    }
    jsonText(result ?? null, "trial handler", "result"); // fails the attempt with a clear message
    return result ?? null;
  };
  const watch = new ConnectionWatch(target, (err) => void shutDown(true, err));
  const worker = new Worker(name, processor, {
    connection: watch.options(),
    autorun: false,
    concurrency,
    lockDuration,
    stalledInterval,
    maxStalledCount,
  });
  worker.on("error", (err) => {
    watch.noteError(err);
    if (isConnectionError(err) || stop.signal.aborted) return;
    const lockLoss = /^Missing lock for job (.+)\. \w+$/.exec(err.message);
    if (!lockLoss) return log(`trial worker ${name}: ${errorText(err)}`);
    const id = lockLoss[1] as string;
    if (lockLossSaid.has(id)) return;
    lockLossSaid.add(id);
    log(
      `trial ${trialIdOf(id)}: this worker lost the job's lock (not renewed within ${lockDuration} ms: a blocked event loop ` +
        "or Redis out of reach), so its outcome was discarded; the trial runs again",
    );
  });
  worker.on("failed", (job, err) => {
    if (job) log(`trial ${trialIdOf(job.id ?? "")} attempt ${job.attemptsStarted} failed: ${errorText(err)}`);
  });
  worker.on("stalled", (jobId) =>
    log(`trial ${trialIdOf(jobId)} stalled (its worker stopped renewing the lock); back on the queue`),
  );
  worker.on("lockRenewalFailed", (jobIds) => {
    for (const id of jobIds) worker.cancelJob(id, `this worker lost the lock of trial ${trialIdOf(id)}`);
  });

  async function shutDown(force: boolean, cause?: Error): Promise<void> {
    const reason = cause ?? new Error("the worker was closed");
    if (!closing) {
      closing = (async () => {
        if (force) {
          // close the connections first, so that the aborted handlers' errors are not recorded
          // as failed attempts (BullMQ records nothing once its backend is closing)
          await worker.close(true).catch(() => {});
          stop.abort(reason);
        } else {
          await worker.close(false).catch(() => {});
          await running;
        }
        settleFinished(cause);
      })();
    } else if (force || cause) {
      // a graceful close is waiting for the running handlers: end them now
      stop.abort(reason);
      if (cause) settleFinished(cause);
      return;
    }
    await closing;
  }

  try {
    await worker.waitUntilReady();
  } catch (err) {
    await worker.close(true).catch(() => {});
    throw watch.lost ?? err;
  }
  running = worker.run().catch((err) => {
    // BullMQ's loop ended on an error of its own: the worker takes no more jobs, so it ends
    if (!closing) void shutDown(true, new Error(`trial worker ${name} stopped: ${errorText(err)}`));
  });
  return {
    close: (closeOpts) => shutDown(closeOpts?.force === true),
    finished,
  };
}
