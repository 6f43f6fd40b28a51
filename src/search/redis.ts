// Redis for the trial queue: the queue's address (redis://HOST:PORT/DB), a reachability check that
// answers within seconds, connections that give up after a bounded number of reconnects
// (ConnectionWatch) instead of ioredis's endless loop, the errors the queue throws, and the
// checks and id mapping shared by the coordinator's side (queue.ts) and the worker's
// (queue_worker.ts).
import type { RedisOptions } from "bullmq";
import { Redis } from "ioredis";
import { ArgumentError, checkArg, describe } from "../tensor/errors";

export const DEFAULT_QUEUE_NAME = "budgetnet-trials";
export const URL_FORM = "redis://HOST:PORT/DB such as redis://127.0.0.1:6379/0 (PORT defaults to 6379, DB to 0)";
/** Waits before each reconnect of a dropped connection; after the last one the connection is given up. */
export const RECONNECT_DELAYS_MS = [250, 500, 1000, 2000, 2000, 2000];
export const CONNECT_TIMEOUT_MS = 3000;
/** The name every job is added under; the job's id is the trial's id. */
export const JOB_NAME = "trial";

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

export function where(t: RedisTarget): string {
  return `${t.host}:${t.port} (db ${t.db})`;
}

export function errorText(err: unknown): string {
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
export class ConnectionWatch {
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
export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  return (
    (typeof code === "string" && code.startsWith("E")) ||
    /Connection is closed|Stream isn't writeable/.test(err.message)
  );
}

export function stderrLine(line: string): void {
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

export function checkIntOption(value: unknown, fn: string, name: string, min: number, fallback: number): number {
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

export function checkQueueName(name: unknown, fn: string): string {
  if (name === undefined) return DEFAULT_QUEUE_NAME;
  const ok = typeof name === "string" && /^[A-Za-z0-9._-]{1,100}$/.test(name);
  checkArg(ok, fn, 'name must be 1-100 letters, digits, ".", "_" or "-" (BullMQ reserves ":")', "name", name);
  return name as string;
}

export function checkTrialId(id: unknown): string {
  // BullMQ reserves ":" (stored as "~", see jobIdOf) and integer ids ("12", not "007")
  const ok = typeof id === "string" && /^[!-}]{1,200}$/.test(id) && `${Number.parseInt(id, 10)}` !== id;
  const what =
    'id must be 1-200 printable ASCII characters other than space and "~", and not an integer, such as "study-a:7"';
  checkArg(ok, "TrialQueue.run", what, "id", id);
  return id as string;
}

/** BullMQ refuses ":" in a job id; ids never hold "~", so this is undone exactly by trialIdOf. */
export function jobIdOf(trialId: string): string {
  return trialId.replaceAll(":", "~");
}

export function trialIdOf(jobId: string): string {
  return jobId.replaceAll("~", ":");
}

/** The JSON text of a payload or result; an ArgumentError-style message when it has none. */
export function jsonText(value: unknown, fn: string, name: string): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new ArgumentError(`${fn}: ${name} must be JSON (${errorText(err)}). Received: ${name}=${describe(value)}`);
  }
  if (text === undefined) throw new ArgumentError(`${fn}: ${name} must be JSON. Received: ${name}=${describe(value)}`);
  return text;
}
