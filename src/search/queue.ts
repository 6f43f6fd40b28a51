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
import { type Job, Queue, type RedisOptions, Worker } from "bullmq";
import { Redis } from "ioredis";
import { ArgumentError, checkArg, describe } from "../tensor/errors";

export const DEFAULT_QUEUE_NAME = "budgetnet-trials";
const URL_FORM = "redis://HOST:PORT/DB such as redis://127.0.0.1:6379/0 (PORT defaults to 6379, DB to 0)";
/** Waits before each reconnect of a dropped connection; after the last one the connection is given up. */
const RECONNECT_DELAYS_MS = [250, 500, 1000, 2000, 2000, 2000];
const CONNECT_TIMEOUT_MS = 3000;
/** The name every job is added under; the job's id is the trial's id. */
const JOB_NAME = "trial";

export interface RedisTarget {
  host: string;
  port: number;
  db: number;
}

/** Redis cannot be reached, or the connection to it was lost for good. */
export class RedisUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RedisUnavailableError";
  }
}

/** A trial's handler failed on its last allowed attempt (or the trial stalled too often). */
export class TrialFailedError extends Error {
  constructor(
    readonly id: string,
    /** The handler's error message as the worker recorded it. */
    readonly reason: string,
    /** Times the trial was started, restarts after a killed worker included. */
    readonly attemptsStarted: number,
  ) {
    super(
      `trial ${id} failed for good (started ${attemptsStarted} time${attemptsStarted === 1 ? "" : "s"}): ${reason}`,
    );
    this.name = "TrialFailedError";
  }
}

/** redis://HOST[:PORT][/DB] -> its parts; anything else is an ArgumentError showing the expected form. */
export function parseRedisUrl(url: string): RedisTarget {
  const fail = (what: string): never => {
    throw new ArgumentError(`parseRedisUrl: ${what}; expected ${URL_FORM}. Received: url=${describe(url)}`);
  };
  if (typeof url !== "string" || url.length === 0) fail("the Redis URL must be a non-empty string");
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return fail("it is not a valid URL (the port must be a number from 1 to 65535)");
  }
  if (parsed.protocol !== "redis:") fail(`the scheme must be redis:// (got ${parsed.protocol}//)`);
  if (parsed.username || parsed.password) fail("a user name or password in the URL is not supported");
  if (parsed.search || parsed.hash) fail("a query (?...) or fragment (#...) is not supported");
  const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  if (!host) fail("the host is missing");
  const port = parsed.port === "" ? 6379 : Number(parsed.port);
  if (port < 1) fail("the port must be a number from 1 to 65535");
  const dbMatch = /^\/?$|^\/(\d{1,6})$/.exec(parsed.pathname);
  if (!dbMatch) fail(`the path must be /DB, a database number such as /0 (got ${parsed.pathname})`);
  return { host, port, db: Number(dbMatch?.[1] ?? 0) };
}

function where(t: RedisTarget): string {
  return `${t.host}:${t.port} (db ${t.db})`;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message || err.name : describe(err);
}

/**
 * Resolves once the Redis at `url` answers PING; otherwise rejects within timeoutMs with a
 * RedisUnavailableError naming host:port and what to do. Nothing is left open either way.
 */
export async function checkRedisReachable(url: string, timeoutMs = 3000): Promise<void> {
  const target = parseRedisUrl(url);
  checkArg(
    Number.isFinite(timeoutMs) && timeoutMs > 0,
    "checkRedisReachable",
    "timeoutMs must be > 0",
    "timeoutMs",
    timeoutMs,
  );
  let lastError: unknown;
  const client = new Redis({
    ...target,
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  client.on("error", (err) => {
    lastError = err;
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    // ioredis selects the database on connect but only reports a refusal as an event: ask again
    const answered = client
      .connect()
      .then(() => client.select(target.db))
      .then(() => client.ping());
    answered.catch(() => {}); // when the timeout wins, this rejects later, after disconnect()
    await Promise.race([answered, timeout]);
  } catch (err) {
    if (err instanceof Error && err.name === "ReplyError") {
      const hint = /DB index/.test(err.message)
        ? "use a database the server has (0-15 unless its configuration says otherwise)"
        : "a server that requires a password is not supported";
      throw new RedisUnavailableError(`Redis at ${where(target)} refused: ${err.message}; ${hint}`);
    }
    // the socket's own error (refused, unknown host) says more than the "Connection is closed" that follows it
    const cause = errorText(lastError ?? err);
    throw new RedisUnavailableError(
      `cannot reach Redis at ${where(target)}: ${cause}. Start redis-server there (for example ` +
        `\`redis-server --port ${target.port}\`) or give the URL of a running one (${URL_FORM})`,
    );
  } finally {
    clearTimeout(timer);
    client.disconnect();
  }
}

/**
 * The ioredis options of every connection one TrialQueue or worker opens, and the watch over them:
 * a dropped connection is retried RECONNECT_DELAYS_MS.length times, then given up, once, with a
 * RedisUnavailableError passed to onLost. BullMQ requires maxRetriesPerRequest: null for its
 * blocking connections (commands then wait while reconnecting); the bounded retryStrategy is what
 * ends that wait, flushing the waiting commands with an error.
 */
class ConnectionWatch {
  lost: RedisUnavailableError | undefined;
  private lastError: unknown;

  constructor(
    readonly target: RedisTarget,
    private readonly onLost: (err: RedisUnavailableError) => void,
  ) {}

  options(): RedisOptions {
    return {
      ...this.target,
      connectTimeout: CONNECT_TIMEOUT_MS,
      maxRetriesPerRequest: null,
      retryStrategy: (times: number) => this.retryDelay(times),
    };
  }

  noteError(err: unknown): void {
    this.lastError = err;
  }

  private retryDelay(times: number): number | null {
    if (this.lost) return null;
    const delay = RECONNECT_DELAYS_MS[times - 1];
    if (delay !== undefined) return delay;
    const totalS = RECONNECT_DELAYS_MS.reduce((a, b) => a + b, 0) / 1000;
    const last = this.lastError === undefined ? "" : ` (last error: ${errorText(this.lastError)})`;
    this.lost = new RedisUnavailableError(
      `lost the connection to Redis at ${where(this.target)}: ${RECONNECT_DELAYS_MS.length} reconnects over ` +
        `${totalS} s failed${last}. Check that redis-server is running and reachable, then start again: ` +
        "queued and unfinished trials stay in Redis",
    );
    // ioredis calls this from its socket handlers; react outside them
    const lost = this.lost;
    setImmediate(() => this.onLost(lost));
    return null;
  }
}

/** True for socket-level errors (refused, reset, closed), which the watch reports once as a loss. */
function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  return (
    (typeof code === "string" && code.startsWith("E")) ||
    /Connection is closed|Stream isn't writeable/.test(err.message)
  );
}

function stderrLine(line: string): void {
  process.stderr.write(`${line}\n`);
}

export interface QueueOptions {
  /** redis://HOST:PORT/DB */
  url: string;
  /** The BullMQ queue's name; coordinator and workers must agree. Default "budgetnet-trials". */
  name?: string;
  /** Where warnings go (a worker's failed attempts, lock losses, BullMQ errors). Default: stderr. */
  log?: (line: string) => void;
}

export interface TrialQueueOptions extends QueueOptions {
  /** Tries a trial gets when its handler throws (retries + 1). Default 3. */
  attempts?: number;
  /** How often pending trials' states are read from Redis. Default 1000 ms. */
  pollIntervalMs?: number;
}

function checkIntOption(value: unknown, fn: string, name: string, min: number, fallback: number): number {
  if (value === undefined) return fallback;
  checkArg(
    Number.isInteger(value) && (value as number) >= min,
    fn,
    `${name} must be an integer >= ${min}`,
    name,
    value,
  );
  return value as number;
}

function checkQueueName(name: unknown, fn: string): string {
  if (name === undefined) return DEFAULT_QUEUE_NAME;
  const ok = typeof name === "string" && /^[A-Za-z0-9._-]{1,100}$/.test(name);
  checkArg(ok, fn, 'name must be 1-100 letters, digits, ".", "_" or "-" (BullMQ reserves ":")', "name", name);
  return name as string;
}

function checkTrialId(id: unknown): string {
  // BullMQ reserves ":" (stored as "~", see jobIdOf) and integer ids ("12", not "007")
  const ok = typeof id === "string" && /^[!-}]{1,200}$/.test(id) && `${Number.parseInt(id, 10)}` !== id;
  const what =
    'id must be 1-200 printable ASCII characters other than space and "~", and not an integer, such as "study-a:7"';
  checkArg(ok, "TrialQueue.run", what, "id", id);
  return id as string;
}

/** BullMQ refuses ":" in a job id; ids never hold "~", so this is undone exactly by trialIdOf. */
function jobIdOf(trialId: string): string {
  return trialId.replaceAll(":", "~");
}

function trialIdOf(jobId: string): string {
  return jobId.replaceAll("~", ":");
}

/** The JSON text of a payload or result; an ArgumentError-style message when it has none. */
function jsonText(value: unknown, fn: string, name: string): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new ArgumentError(`${fn}: ${name} must be JSON (${errorText(err)}). Received: ${name}=${describe(value)}`);
  }
  if (text === undefined) throw new ArgumentError(`${fn}: ${name} must be JSON. Received: ${name}=${describe(value)}`);
  return text;
}

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
