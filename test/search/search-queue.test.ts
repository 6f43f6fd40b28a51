// `budgetnet search --queue` with `budgetnet worker` processes, end to end on a real redis-server:
// two workers, one SIGKILLed while it trains a trial; the other takes that trial up, and the
// study's journal records every trial once. An unreachable Redis is a clear error within seconds.
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { tempDir, waitFor } from "../helpers";
import { freePort, redisSkip, startRedisServer } from "../redis_server";

const BIN = path.resolve(__dirname, "../../../bin/budgetnet.js");
const env = { ...process.env, BUDGETNET_THREADS: "1", BUDGETNET_PLAIN: "1" };
const SMALL = [
  "--train-subset",
  "320",
  "--val-subset",
  "128",
  "--batch-size",
  "32",
  "--epochs",
  "2",
  "--precision",
  "fp32",
];

function tinySpace(dir: string): string {
  const file = path.join(dir, "tiny.json");
  fs.writeFileSync(
    file,
    JSON.stringify({
      model: "efficient_resnet",
      stages: { int: [1, 2] },
      options: {
        blocks: { perStage: { int: [1, 2] } },
        channels: { choices: [4, 6, 8] },
        poolSize: { choices: [0, 4] },
      },
      fixed: { se: false },
    }),
  );
  return file;
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once("exit", (code) => resolve(code));
  });
}

/** Trial folders a worker has started (each holds trial.json once its child is spawned). */
function started(workerDir: string): string[] {
  if (!fs.existsSync(workerDir)) return [];
  const out: string[] = [];
  for (const study of fs.readdirSync(workerDir))
    for (const t of fs.readdirSync(path.join(workerDir, study)))
      if (fs.existsSync(path.join(workerDir, study, t, "trial.json"))) out.push(t);
  return out;
}

test(
  "a queued search with two workers, one killed mid-trial: every trial done once, the killed one by the other worker",
  { skip: redisSkip(), timeout: 300_000 },
  async () => {
    const redis = await startRedisServer();
    const dir = tempDir();
    const study = path.join(dir, "study");
    const children: ChildProcess[] = [];
    try {
      const worker = (name: string): ChildProcess => {
        const c = spawn(
          process.execPath,
          [BIN, "worker", "--queue", redis.url, "--dir", path.join(dir, name), "--lock-seconds", "3"],
          {
            env,
            stdio: "ignore",
          },
        );
        children.push(c);
        return c;
      };
      const coordinator = spawn(
        process.execPath,
        [
          BIN,
          "search",
          "--space",
          tinySpace(dir),
          "--strategy",
          "random",
          "--trials",
          "4",
          "--queue",
          redis.url,
          "--out",
          study,
          "--json",
          ...SMALL,
        ],
        { env, stdio: ["ignore", "pipe", "pipe"] },
      );
      children.push(coordinator);
      let stdout = "";
      let stderr = "";
      coordinator.stdout?.on("data", (d: Buffer) => {
        stdout += d.toString();
      });
      coordinator.stderr?.on("data", (d: Buffer) => {
        stderr += d.toString();
      });
      const a = worker("a");
      await waitFor(() => started(path.join(dir, "a")).length >= 1, 120_000, "worker a to start a trial");
      const b = worker("b");
      a.kill("SIGKILL");
      await exited(a);
      const killedTrial = started(path.join(dir, "a"))[0] as string;
      const code = await exited(coordinator);
      assert.equal(code, 0, stderr);
      const summary = JSON.parse(stdout.trim().split("\n").pop() as string) as {
        trials: number;
        done: number;
        failed: number;
      };
      assert.deepEqual([summary.trials, summary.done, summary.failed], [4, 4, 0]);
      const events = fs
        .readFileSync(path.join(study, "journal.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { event: string; trial?: number; runDir?: string });
      const results = events.filter((e) => e.event === "result");
      assert.equal(results.length, 4);
      assert.equal(new Set(results.map((r) => r.trial)).size, 4, "no trial counted twice");
      // the trial worker a was killed in was trained by worker b (its folder shows up under b too)
      assert.ok(started(path.join(dir, "b")).includes(killedTrial), `b took up ${killedTrial}`);
      const killedId = Number(/^t(\d+)/.exec(killedTrial)?.[1]);
      const byB = results.find((r) => r.trial === killedId);
      assert.ok(
        byB?.runDir?.startsWith(path.join(dir, "b")),
        `trial ${killedId}'s result came from worker b: ${byB?.runDir}`,
      );
      b.kill("SIGTERM");
      assert.equal(await exited(b), 0, "a worker stops cleanly on SIGTERM");
    } finally {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
      await redis.stop();
    }
  },
);

test("an unreachable Redis is a clear error within seconds, for search and for worker", async () => {
  const port = await freePort();
  const dir = tempDir();
  const t0 = Date.now();
  const w = spawnSync(process.execPath, [BIN, "worker", "--queue", `redis://127.0.0.1:${port}/0`], {
    env,
    encoding: "utf8",
    timeout: 30_000,
  });
  assert.notEqual(w.status, 0);
  assert.match(w.stderr, new RegExp(`127\\.0\\.0\\.1:${port}`));
  assert.doesNotMatch(w.stderr, /\n\s+at /, "no stack trace");
  const s = spawnSync(
    process.execPath,
    [
      BIN,
      "search",
      "--space",
      tinySpace(dir),
      "--trials",
      "2",
      "--queue",
      `redis://127.0.0.1:${port}/0`,
      "--out",
      path.join(dir, "s"),
      ...SMALL,
    ],
    { env, encoding: "utf8", timeout: 60_000 },
  );
  assert.notEqual(s.status, 0);
  assert.match(s.stderr, new RegExp(`127\\.0\\.0\\.1:${port}`));
  assert.ok(Date.now() - t0 < 45_000, "both failed within seconds, not after a reconnect loop");
  const bad = spawnSync(process.execPath, [BIN, "worker", "--queue", "http://x"], { env, encoding: "utf8" });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /redis:\/\/HOST:PORT\/DB/);
});
