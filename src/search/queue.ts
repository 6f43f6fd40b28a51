// The distributed trial queue: a BullMQ queue in Redis with JSON payloads, independent of what a
// trial is. The coordinator puts trials on it (TrialQueue.run) and any number of worker processes,
// on any machines, take them one at a time (startWorker).
//
// Guarantees, and what gives them:
// - A job's id is the trial's id, so re-submitting an id (a restarted coordinator) never
//   duplicates it, and an id that already completed resolves with its stored result.
// - A worker killed mid-job stops renewing the job's lock; after lockDurationMs another worker's
//   stalled-job check puts the job back on the queue (maxStalledCount bounds how often).
// - A handler that throws is retried up to `attempts` times in all, then run() rejects with
//   TrialFailedError carrying the handler's message.
// - A result counts once: BullMQ records a completion only from the worker holding the job's lock.
// - The coordinator learns of results by polling each pending id's state, which cannot miss a
//   result the way an event stream read from "now" can (a result that landed before the first read).
// - Every Redis connection reconnects a bounded number of times, then gives up with a
//   RedisUnavailableError instead of ioredis's endless reconnect loop.
import { Queue } from "bullmq";
import { checkArg } from "../tensor/errors";
import {
  ConnectionWatch,
  checkIntOption,
  checkQueueName,
  checkRedisReachable,
  checkTrialId,
  errorText,
  isConnectionError,
  JOB_NAME,
  jobIdOf,
  jsonText,
  parseRedisUrl,
  type RedisUnavailableError,
  stderrLine,
  TrialFailedError,
  type TrialQueueOptions,
} from "./redis";

interface Waiter {
  promise: Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  /** Set once the job is on the queue: only then is its state polled. */
  submitted: boolean;
}

/** The coordinator's side: puts trials on the queue and waits for their results. */
export class TrialQueue {
  private readonly waiters = new Map<string, Waiter>();
  private pollTimer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly queue: Queue,
    private readonly watch: ConnectionWatch,
    readonly name: string,
    private readonly attempts: number,
    private readonly pollIntervalMs: number,
  ) {}

  /** Connects (a RedisUnavailableError within a few seconds when Redis cannot be reached). */
  static async open(opts: TrialQueueOptions): Promise<TrialQueue> {
    checkArg(
      typeof opts === "object" && opts !== null,
      "TrialQueue.open",
      "opts must be an options object",
      "opts",
      opts,
    );
    const target = parseRedisUrl(opts.url);
    const name = checkQueueName(opts.name, "TrialQueue.open");
    const attempts = checkIntOption(opts.attempts, "TrialQueue.open", "attempts", 1, 3);
    const pollIntervalMs = checkIntOption(opts.pollIntervalMs, "TrialQueue.open", "pollIntervalMs", 10, 1000);
    const log = opts.log ?? stderrLine;
    await checkRedisReachable(opts.url);
    let self: TrialQueue | undefined;
    const watch = new ConnectionWatch(target, (err) => self?.abandon(err));
    const queue = new Queue(name, { connection: watch.options() });
    queue.on("error", (err) => {
      watch.noteError(err);
      if (!isConnectionError(err)) log(`trial queue ${name}: ${errorText(err)}`);
    });
    try {
      await queue.waitUntilReady();
    } catch (err) {
      await queue.close().catch(() => {});
      throw watch.lost ?? err;
    }
    self = new TrialQueue(queue, watch, name, attempts, pollIntervalMs);
    return self;
  }

  /**
   * Puts a trial on the queue under `id` and resolves with its handler's result (JSON). An id
   * already on the queue is not added again (its stored payload stands): a completed one resolves
   * with its stored result at once, a failed one rejects with its stored failure. Rejects with
   * TrialFailedError when the trial failed for good, RedisUnavailableError when Redis was lost.
   * Calling run(id) again while that id is pending returns the same promise.
   */
  run(id: string, payload: unknown): Promise<unknown> {
    try {
      checkTrialId(id);
      jsonText(payload, "TrialQueue.run", "payload");
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.watch.lost) return Promise.reject(this.watch.lost);
    if (this.closing) return Promise.reject(new Error(`TrialQueue.run: queue ${this.name} is closed`));
    const pending = this.waiters.get(id);
    if (pending) return pending.promise;
    let resolve!: (v: unknown) => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<unknown>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const waiter: Waiter = { promise, resolve, reject, submitted: false };
    this.waiters.set(id, waiter);
    void this.submit(id, payload, waiter);
    return promise;
  }

  /** How many jobs are waiting, active, completed and failed. */
  async counts(): Promise<Record<string, number>> {
    const c = await this.queue.getJobCounts("waiting", "active", "completed", "failed");
    return { waiting: c.waiting ?? 0, active: c.active ?? 0, completed: c.completed ?? 0, failed: c.failed ?? 0 };
  }

  /**
   * Closes the connection. Trials still pending reject; they stay on the queue, and running the
   * same ids on a queue opened again picks up their results.
   */
  close(): Promise<void> {
    this.closing ??= this.shutDown(
      (id) =>
        new Error(
          `TrialQueue closed while trial ${id} was pending; it stays on queue ${this.name}: run the same id again to get its result`,
        ),
    );
    return this.closing;
  }

  private async shutDown(pendingError: (id: string) => Error): Promise<void> {
    clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    await this.polling;
    for (const id of [...this.waiters.keys()]) this.settle(id, pendingError(id));
    await this.queue.close().catch(() => {});
  }

  /** The connection was given up: every pending and later run() rejects with the loss. */
  private abandon(err: RedisUnavailableError): void {
    this.closing ??= this.shutDown(() => err);
  }

  private async submit(id: string, payload: unknown, waiter: Waiter): Promise<void> {
    try {
      await this.queue.add(JOB_NAME, payload, {
        jobId: jobIdOf(id),
        attempts: this.attempts,
        removeOnComplete: false,
        removeOnFail: false,
      });
    } catch (err) {
      this.settle(
        id,
        this.watch.lost ?? new Error(`could not put trial ${id} on queue ${this.name}: ${errorText(err)}`),
      );
      return;
    }
    waiter.submitted = true;
    await this.check(id);
    this.schedulePoll();
  }

  /** Reads one pending trial's state and settles it when it has finished. */
  private async check(id: string): Promise<void> {
    if (!this.waiters.get(id)?.submitted) return;
    try {
      const state = await this.queue.getJobState(jobIdOf(id));
      if (state === "completed" || state === "failed") {
        const job = await this.queue.getJob(jobIdOf(id));
        if (!job) return; // removed between the two reads: the next poll says "unknown"
        if (state === "completed") this.settle(id, undefined, job.returnvalue);
        else this.settle(id, new TrialFailedError(id, job.failedReason || "(no reason recorded)", job.attemptsStarted));
      } else if (state === "unknown") {
        this.settle(
          id,
          new Error(`trial ${id} is no longer on queue ${this.name} (removed by another process?); run it again`),
        );
      }
    } catch (err) {
      // a dropped connection is the watch's to report; anything else is this trial's failure
      if (!isConnectionError(err)) this.settle(id, new Error(`reading trial ${id}'s state failed: ${errorText(err)}`));
    }
  }

  private schedulePoll(): void {
    if (this.pollTimer || this.polling || this.closing || this.waiters.size === 0) return;
    this.pollTimer = setTimeout(() => {
      this.pollTimer = undefined;
      this.polling = (async () => {
        for (const id of [...this.waiters.keys()]) await this.check(id);
      })().finally(() => {
        this.polling = undefined;
        this.schedulePoll();
      });
    }, this.pollIntervalMs);
  }

  private settle(id: string, error: Error | undefined, result?: unknown): void {
    const waiter = this.waiters.get(id);
    if (!waiter) return;
    this.waiters.delete(id);
    if (error) waiter.reject(error);
    else waiter.resolve(result ?? null);
  }
}

export {
  startWorker,
  type TrialHandler,
  type TrialInfo,
  type TrialWorkerOptions,
  type WorkerHandle,
} from "./queue_worker";
export {
  checkRedisReachable,
  DEFAULT_QUEUE_NAME,
  parseRedisUrl,
  type QueueOptions,
  type RedisTarget,
  RedisUnavailableError,
  TrialFailedError,
  type TrialQueueOptions,
} from "./redis";
