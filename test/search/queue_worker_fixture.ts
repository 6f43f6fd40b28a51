// A worker process for test/search/queue.test.ts:
//   node dist/test/search/queue_worker_fixture.js URL QUEUE_NAME LOCK_MS STALLED_MS
// Its handler takes {value, sleepMs, fail?}: it sleeps sleepMs, then throws `fail` when given,
// else returns {doubled: 2 * value, pid, attempt}. It prints "ready", "start ID ATTEMPT" and
// "done ID" lines on stdout. SIGTERM closes the worker and nothing else: the process must then
// exit by itself, which shows that no connection or timer is left open.
import { startWorker } from "../../src/search/queue";

interface FixturePayload {
  value: number;
  sleepMs: number;
  fail?: string;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new Error("aborted"));
    });
  });
}

async function main(): Promise<void> {
  const [url, name, lockMs, stalledMs] = process.argv.slice(2);
  if (!url || !name || !lockMs || !stalledMs)
    throw new Error("usage: queue_worker_fixture.js URL QUEUE_NAME LOCK_MS STALLED_MS");
  const handle = await startWorker(
    { url, name, lockDurationMs: Number(lockMs), stalledIntervalMs: Number(stalledMs) },
    async (payload, info) => {
      const p = payload as FixturePayload;
      process.stdout.write(`start ${info.id} ${info.attempt}\n`);
      await sleep(p.sleepMs, info.signal);
      if (p.fail) throw new Error(p.fail);
      process.stdout.write(`done ${info.id}\n`);
      return { doubled: 2 * p.value, pid: process.pid, attempt: info.attempt };
    },
  );
  process.once("SIGTERM", () => void handle.close());
  handle.finished.catch((err: Error) => {
    process.stderr.write(`worker stopped: ${err.message}\n`);
    process.exitCode = 3;
  });
  process.stdout.write("ready\n");
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  process.exitCode = 2;
});
