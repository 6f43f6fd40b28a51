// The distributed trial queue: URL parsing, an unreachable Redis failing fast, and end to end
// with a real redis-server and worker processes (one SIGKILLed while it holds a job), retries,
// re-submitted ids, a lost connection, and closed queues leaving nothing open.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import * as net from "node:net";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  checkRedisReachable,
  parseRedisUrl,
  RedisUnavailableError,
  startWorker,
  TrialFailedError,
  TrialQueue,
} from "../../src/search/queue";
import { ArgumentError } from "../../src/tensor/errors";
import { freePort, type RedisServer, redisSkip, startRedisServer } from "../redis_server";

const FIXTURE = path.join(__dirname, "queue_worker_fixture.js");
const QUEUE_JS = path.join(__dirname, "..", "..", "src", "search", "queue.js");
const LOCK_MS = "3000";
const STALLED_MS = "500";

test("parseRedisUrl reads host, port and db, with 6379 and 0 as defaults", () => {
  assert.deepEqual(parseRedisUrl("redis://127.0.0.1:6390/2"), { host: "127.0.0.1", port: 6390, db: 2 });
  assert.deepEqual(parseRedisUrl("redis://queue.lab"), { host: "queue.lab", port: 6379, db: 0 });
  assert.deepEqual(parseRedisUrl("redis://[::1]:7000/"), { host: "::1", port: 7000, db: 0 });
});

test("parseRedisUrl: a malformed URL is an ArgumentError naming the expected form", () => {
  const cases: [unknown, RegExp][] = [
    ["", /non-empty string/],
    [42, /non-empty string/],
    ["localhost:6379", /scheme must be redis:\/\//],
    ["http://h:6379/0", /scheme must be redis:\/\//],
    ["redis://h:99999/0", /not a valid URL/],
    ["redis://h:0/0", /port must be a number from 1 to 65535/],
    ["redis://:secret@h:6379/0", /password in the URL is not supported/],
    ["redis://h:6379/zero", /path must be \/DB/],
    ["redis://h:6379/0/1", /path must be \/DB/],
    ["redis://h:6379/0?timeout=1", /query/],
    ["redis:///0", /host is missing/],
  ];
  for (const [url, why] of cases) {
    assert.throws(
      () => parseRedisUrl(url as string),
      (err: Error) =>
        err instanceof ArgumentError && why.test(err.message) && err.message.includes("redis://HOST:PORT/DB"),
      `url ${String(url)}`,
    );
  }
});

test("options are checked before anything connects", async () => {
  await assert.rejects(
    TrialQueue.open({ url: "redis://127.0.0.1:1/0", attempts: 0 }),
    /attempts must be an integer >= 1/,
  );
  await assert.rejects(TrialQueue.open({ url: "redis://127.0.0.1:1/0", name: "a:b" }), /BullMQ reserves ":"/);
  const handler = async () => null;
  await assert.rejects(startWorker({ url: "redis://127.0.0.1:1/0", lockDurationMs: 10 }, handler), /lockDurationMs/);
  await assert.rejects(startWorker({ url: "redis://127.0.0.1:1/0", concurrency: 0 }, handler), /concurrency/);
});

test("an unreachable Redis is a RedisUnavailableError within 5 s naming host:port", async () => {
  const port = await freePort(); // nothing listens there
  const url = `redis://127.0.0.1:${port}/0`;
  const named = (err: Error) =>
    err instanceof RedisUnavailableError &&
    err.message.includes(`127.0.0.1:${port}`) &&
    /redis-server/.test(err.message);
  for (const attempt of [
    () => checkRedisReachable(url),
    () => TrialQueue.open({ url }),
    () => startWorker({ url }, async () => null),
  ]) {
    const t0 = Date.now();
    await assert.rejects(attempt(), named);
    assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
  }
});

test("a server that accepts but never answers is a RedisUnavailableError after the timeout, not a hang", async () => {
  const sockets: net.Socket[] = [];
  const silent = net.createServer((s) => sockets.push(s));
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  const port = (silent.address() as net.AddressInfo).port;
  try {
    const t0 = Date.now();
    await assert.rejects(checkRedisReachable(`redis://127.0.0.1:${port}/0`, 1000), (err: Error) => {
      return err instanceof RedisUnavailableError && /no answer within 1000 ms/.test(err.message);
    });
    assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => silent.close(resolve));
  }
});

/** A worker process running queue_worker_fixture.js, with its stdout lines collected. */
class WorkerProcess {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  stderr = "";
  readonly exit: Promise<{ code: number | null; signal: string | null }>;
  private readonly watchers: (() => void)[] = [];

  constructor(url: string, name: string) {
    this.child = spawn(process.execPath, [FIXTURE, url, name, LOCK_MS, STALLED_MS], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let partial = "";
    this.child.stdout?.on("data", (d) => {
      const parts = (partial + d.toString()).split("\n");
      partial = parts.pop() ?? "";
      this.lines.push(...parts);
      for (const w of this.watchers) w();
    });
    this.child.stderr?.on("data", (d) => {
      this.stderr += d.toString();
    });
    this.exit = new Promise((resolve) => this.child.once("exit", (code, signal) => resolve({ code, signal })));
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Ids this worker started, in order. */
  starts(): string[] {
    return this.lines.filter((l) => l.startsWith("start ")).map((l) => l.split(" ")[1] as string);
  }

  /** Resolves with the first line matching `re` (waiting for it); rejects if the process exits first. */
  waitForLine(re: RegExp): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const line = this.lines.find((l) => re.test(l));
        if (line !== undefined) resolve(line);
      };
      this.watchers.push(check);
      check();
      void this.exit.then(({ code, signal }) =>
        reject(new Error(`worker ${this.pid} exited (${code ?? signal}) before printing ${re}:\n${this.stderr}`)),
      );
    });
  }

  /** SIGTERM, then the process must leave by itself (nothing left open) with status 0. */
  async stopAndCheckExit(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 20_000);
    const { code, signal } = await this.exit;
    clearTimeout(timer);
    assert.equal(
      signal,
      null,
      `worker ${this.pid} did not exit by itself after close() (killed: ${signal})\n${this.stderr}`,
    );
    assert.equal(code, 0, `worker ${this.pid} exited with ${code}\n${this.stderr}`);
  }
}

interface FixtureResult {
  doubled: number;
  pid: number;
  attempt: number;
}

describe("with a real redis-server", { skip: redisSkip(), timeout: 120_000 }, () => {
  let server: RedisServer;
  const workers: WorkerProcess[] = [];
  const e2eResults = new Map<string, unknown>();

  before(async () => {
    server = await startRedisServer();
  });
  after(async () => {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill("SIGKILL");
    await server?.stop();
  });

  test("6 trials, 2 workers, one SIGKILLed holding a trial: each completes once; the other finishes it", async () => {
    const queue = await TrialQueue.open({ url: server.url, name: "e2e", pollIntervalMs: 200 });
    try {
      const a = new WorkerProcess(server.url, "e2e");
      const b = new WorkerProcess(server.url, "e2e");
      workers.push(a, b);
      await Promise.all([a.waitForLine(/^ready$/), b.waitForLine(/^ready$/)]);
      const ids = Array.from({ length: 6 }, (_, i) => `trial-${i}`);
      const runs = ids.map((id, i) => queue.run(id, { value: i, sleepMs: 1500 }));
      assert.equal(queue.run("trial-0", { value: 0, sleepMs: 1500 }), runs[0], "a pending id returns its promise");

      const held = (await a.waitForLine(/^start /)).split(" ")[1] as string;
      a.child.kill("SIGKILL");
      await a.exit;

      const results = (await Promise.all(runs)) as FixtureResult[];
      results.forEach((r, i) => {
        assert.equal(r.doubled, 2 * i, `${ids[i]}'s result`);
        assert.equal(r.pid, b.pid, `${ids[i]} was completed by the surviving worker`);
        assert.equal(r.attempt, ids[i] === held ? 2 : 1, `${ids[i]}'s start count`);
        e2eResults.set(ids[i] as string, r);
      });
      assert.deepEqual(a.starts(), [held], "the killed worker started one trial");
      assert.deepEqual([...b.starts()].sort(), ids, "the survivor started each trial exactly once");
      assert.deepEqual(await queue.counts(), { waiting: 0, active: 0, completed: 6, failed: 0 });
      await b.stopAndCheckExit();
    } finally {
      await queue.close();
    }
  });

  test("re-submitting completed ids after a coordinator restart resolves with the stored results", async () => {
    assert.equal(e2eResults.size, 6, "runs after the end-to-end test");
    const queue = await TrialQueue.open({ url: server.url, name: "e2e", pollIntervalMs: 200 });
    try {
      // no worker is running: only the stored results can answer, whatever the new payload says
      for (const [id, stored] of e2eResults) assert.deepEqual(await queue.run(id, { value: 1000, sleepMs: 0 }), stored);
      assert.deepEqual(await queue.counts(), { waiting: 0, active: 0, completed: 6, failed: 0 });
    } finally {
      await queue.close();
    }
  });

  test("a handler that throws is retried `attempts` times, then run() rejects with its message", async () => {
    const queue = await TrialQueue.open({ url: server.url, name: "failing", attempts: 2, pollIntervalMs: 200 });
    const w = new WorkerProcess(server.url, "failing");
    workers.push(w);
    try {
      await w.waitForLine(/^ready$/);
      await assert.rejects(queue.run("study-a:bad-1", { value: 1, sleepMs: 50, fail: "boom 42" }), (err: Error) => {
        return (
          err instanceof TrialFailedError &&
          err.reason === "boom 42" &&
          err.id === "study-a:bad-1" &&
          /boom 42/.test(err.message)
        );
      });
      assert.deepEqual(w.starts(), ["study-a:bad-1", "study-a:bad-1"], "two attempts, no more");
      assert.deepEqual(await queue.run("ok-1", { value: 4, sleepMs: 10 }), { doubled: 8, pid: w.pid, attempt: 1 });
      await w.stopAndCheckExit();
      // with no worker left, the failed id answers from its stored failure
      await assert.rejects(queue.run("study-a:bad-1", { value: 1, sleepMs: 0 }), /boom 42/);
      assert.deepEqual(await queue.counts(), { waiting: 0, active: 0, completed: 1, failed: 1 });
    } finally {
      await queue.close();
    }
  });

  test("close({force}) aborts a running handler without failing its trial; another worker takes it up", async () => {
    // attempts: 1, so an aborted attempt recorded as a failure would fail the trial for good
    const queue = await TrialQueue.open({ url: server.url, name: "forced", attempts: 1, pollIntervalMs: 200 });
    let started!: (signal: AbortSignal) => void;
    const handlerStarted = new Promise<AbortSignal>((resolve) => {
      started = resolve;
    });
    const local = await startWorker(
      { url: server.url, name: "forced", lockDurationMs: Number(LOCK_MS), stalledIntervalMs: Number(STALLED_MS) },
      (_payload, info) => {
        started(info.signal);
        return new Promise((_, reject) => info.signal.addEventListener("abort", () => reject(new Error("aborted"))));
      },
    );
    try {
      const result = queue.run("forced-1", { value: 21, sleepMs: 10 });
      const signal = await handlerStarted;
      await local.close({ force: true });
      assert.equal(signal.aborted, true);
      await local.finished;
      const w = new WorkerProcess(server.url, "forced");
      workers.push(w);
      assert.deepEqual(await result, { doubled: 42, pid: w.pid, attempt: 2 });
      await w.stopAndCheckExit();
    } finally {
      await local.close();
      await queue.close();
    }
  });

  test("a database the server does not have is a RedisUnavailableError saying so", async () => {
    await checkRedisReachable(server.url.replace(/\/0$/, "/3"));
    await assert.rejects(checkRedisReachable(server.url.replace(/\/0$/, "/99")), (err: Error) => {
      return (
        err instanceof RedisUnavailableError && /\(db 99\) refused: ERR DB index is out of range/.test(err.message)
      );
    });
  });

  test("bad ids and payloads are ArgumentErrors", async () => {
    const queue = await TrialQueue.open({ url: server.url, name: "args" });
    try {
      await assert.rejects(
        queue.run("7", {}),
        (err: Error) => err instanceof ArgumentError && /not an integer/.test(err.message),
      );
      await assert.rejects(queue.run("a~b", {}), ArgumentError);
      await assert.rejects(queue.run("a b", {}), ArgumentError);
      await assert.rejects(queue.run("", {}), ArgumentError);
      await assert.rejects(
        queue.run("t-1", { n: 1n }),
        (err: Error) => err instanceof ArgumentError && /payload must be JSON/.test(err.message),
      );
      await assert.rejects(queue.run("t-1", undefined), /payload must be JSON/);
    } finally {
      await queue.close();
    }
  });

  test("a closed TrialQueue leaves nothing that keeps its process alive", async () => {
    const script = `
      const { TrialQueue } = require(${JSON.stringify(QUEUE_JS)});
      TrialQueue.open({ url: ${JSON.stringify(server.url)}, name: "idle" })
        .then(async (q) => { await q.counts(); await q.close(); })
        .catch((err) => { console.error(err); process.exitCode = 2; });`;
    const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr?.on("data", (d) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    const [code, signal] = await new Promise<[number | null, string | null]>((resolve) =>
      child.once("exit", (c, s) => resolve([c, s])),
    );
    clearTimeout(timer);
    assert.equal(signal, null, "the process did not exit by itself after close()");
    assert.equal(code, 0, stderr);
  });
});

describe("a Redis that goes away", { skip: redisSkip(), timeout: 60_000 }, () => {
  test("a worker and a coordinator give up with a RedisUnavailableError instead of reconnecting forever", async () => {
    const server = await startRedisServer();
    const log: string[] = [];
    const queue = await TrialQueue.open({
      url: server.url,
      name: "lost",
      pollIntervalMs: 200,
      log: (l) => log.push(l),
    });
    let handlerSignal: AbortSignal | undefined;
    let started!: () => void;
    const handlerStarted = new Promise<void>((resolve) => {
      started = resolve;
    });
    const worker = await startWorker(
      { url: server.url, name: "lost", lockDurationMs: 3000, stalledIntervalMs: 500, log: (l) => log.push(l) },
      (_payload, info) => {
        handlerSignal = info.signal;
        started();
        return new Promise((_, reject) => info.signal.addEventListener("abort", () => reject(new Error("aborted"))));
      },
    );
    try {
      const lost = (err: Error) =>
        err instanceof RedisUnavailableError &&
        err.message.includes(`lost the connection to Redis at 127.0.0.1:${server.port}`);
      const pending = assert.rejects(queue.run("held-1", {}), lost);
      await handlerStarted;
      await server.stop();
      await assert.rejects(worker.finished, lost);
      await pending;
      assert.equal(handlerSignal?.aborted, true, "the running handler was told to stop");
      await assert.rejects(queue.run("after-loss", {}), lost);
    } catch (err) {
      throw new Error(`${(err as Error).message}\nlog:\n${log.join("\n")}`);
    } finally {
      await worker.close();
      await queue.close();
      await server.stop();
    }
  });
});
