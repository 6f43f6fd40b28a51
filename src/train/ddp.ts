// Data-parallel training (PyTorch DDP's semantics on libtorch's c10d, src/tensor/process_group.ts):
// every rank builds the same model, takes rank 0's weights and buffers, trains on its shard of each
// epoch (DataLoader shard), and averages gradients through a GradientReducer whose buckets are
// all-reduced while backward runs; only rank 0 validates and writes the run folder. The batch size
// is per rank, as in PyTorch (the global batch is batchSize x world size).
//
// Joining a job follows torchrun's environment: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT
// (LOCAL_RANK is read for the thread split). `budgetnet train --nproc N` starts N local ranks with
// that environment set (launchRanks).
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { BatchNorm2d } from "../nn/layers";
import type { Module } from "../nn/module";
import { tensor } from "../ops/creation";
import { ArgumentError } from "../tensor/errors";
import { GradientReducer, ProcessGroup } from "../tensor/process_group";

export interface DataParallel {
  group: ProcessGroup;
  rank: number;
  worldSize: number;
}

/** Seconds a rank waits for the others (rendezvous, every collective) before failing: BUDGETNET_DIST_TIMEOUT, default 600. */
export function distTimeoutMs(): number {
  const v = Number(process.env.BUDGETNET_DIST_TIMEOUT ?? 600);
  if (!(v > 0))
    throw new ArgumentError(
      `BUDGETNET_DIST_TIMEOUT must be a number of seconds > 0. Received: ${process.env.BUDGETNET_DIST_TIMEOUT}`,
    );
  return Math.round(v * 1000);
}

function envInt(name: string, min: number): number {
  const raw = process.env[name];
  const v = Number(raw);
  if (raw === undefined || raw.trim() === "" || !Number.isInteger(v) || v < min)
    throw new ArgumentError(
      `${name} must be an integer >= ${min} (torchrun's environment). Received: ${name}=${raw ?? "(unset)"}`,
    );
  return v;
}

/** Whether torchrun's environment names a job of more than one rank. */
export function inDistributedJob(): boolean {
  return process.env.WORLD_SIZE !== undefined && Number(process.env.WORLD_SIZE) > 1;
}

/** Joins the job torchrun's environment describes; the rendezvous waits for every rank (timeout: BUDGETNET_DIST_TIMEOUT). */
export function joinFromEnv(): DataParallel {
  const worldSize = envInt("WORLD_SIZE", 1);
  const rank = envInt("RANK", 0);
  if (rank >= worldSize)
    throw new ArgumentError(`RANK must be below WORLD_SIZE (${worldSize}). Received: RANK=${rank}`);
  const masterAddr = process.env.MASTER_ADDR ?? "127.0.0.1";
  const masterPort = envInt("MASTER_PORT", 1);
  try {
    const group = new ProcessGroup({ rank, worldSize, masterAddr, masterPort, timeoutMs: distTimeoutMs() });
    return { group, rank, worldSize };
  } catch (e) {
    throw new Error(
      `rank ${rank} of ${worldSize} could not join the job at ${masterAddr}:${masterPort}: ${(e as Error).message}. ` +
        "Check that MASTER_ADDR:MASTER_PORT is rank 0's address and reachable, and that every rank was started.",
    );
  }
}

/**
 * Rank 0's weights and buffers on every rank, BatchNorm made synchronous if asked, then a reducer
 * over the parameters with buckets of about bucketMb (call before the first step).
 */
export function startDataParallel(
  model: Module,
  dp: DataParallel,
  opts: { bucketMb?: number; syncBatchNorm?: boolean } = {},
): GradientReducer {
  const params = model.parameters();
  const buffers = model.namedBuffers().map(([, t]) => t);
  dp.group.broadcast([...params, ...buffers], 0);
  if (opts.syncBatchNorm === true) convertSyncBatchNorm(model, dp.group);
  return new GradientReducer(dp.group, params, Math.max(1, Math.round((opts.bucketMb ?? 25) * 1024 * 1024)));
}

/**
 * Every BatchNorm2d of the model normalizes training batches with the whole job's statistics
 * (PyTorch's SyncBatchNorm.convert_sync_batchnorm); returns how many. Weights and state-dict keys
 * are unchanged, so the run's files are those of the same model trained without it.
 */
export function convertSyncBatchNorm(model: Module, group: ProcessGroup | undefined): number {
  let n = 0;
  for (const [, m] of model.namedModules())
    if (m instanceof BatchNorm2d) {
      m.syncGroup = group;
      n++;
    }
  return n;
}

/**
 * stop: true on every rank when any rank asks to stop (Ctrl-C on one rank stops all at the same
 * step); signal: the SIGINT or SIGTERM any rank was asked by, so that a rank whose own signal has
 * not reached its handler yet (it was in the collective) still reports it. With `step`, also
 * checks that the ranks are at the same step.
 */
export function agreeToStop(
  dp: DataParallel,
  mine: boolean,
  step?: number,
  signal?: NodeJS.Signals,
): { stop: boolean; signal?: NodeJS.Signals } {
  // float64: step numbers summed over the ranks stay exact
  const v = tensor(Float64Array.of(mine ? 1 : 0, step ?? 0, signal === "SIGINT" ? 1 : 0, signal === "SIGTERM" ? 1 : 0));
  try {
    dp.group.allreduce([v], "sum");
    const [stops, steps, sigint, sigterm] = v.toArray() as [number, number, number, number];
    // the same one-collective check catches ranks out of step (a rank that skipped or repeated a step)
    if (step !== undefined && steps !== step * dp.worldSize)
      throw new Error(
        `rank ${dp.rank} of ${dp.worldSize} is at step ${step}, but the ranks' steps sum to ${steps}, not ${step * dp.worldSize}: ` +
          "the ranks are out of step (their collectives no longer match). Every rank must run the same steps; stop the job and resume it from its checkpoint.",
      );
    return { stop: stops > 0, signal: sigint > 0 ? "SIGINT" : sigterm > 0 ? "SIGTERM" : undefined };
  } finally {
    v.dispose();
  }
}

/** A resumed run continues only with the world size it was started with (its shards and steps depend on it). */
export function checkResumedWorldSize(runDir: string, worldSize: number): void {
  let stored = 1;
  try {
    const cfg = JSON.parse(fs.readFileSync(path.join(runDir, "config.json"), "utf8")) as {
      distributed?: { worldSize?: number };
    };
    stored = cfg.distributed?.worldSize ?? 1;
  } catch {
    return; // checkResumedSettings reports a missing or broken config.json
  }
  if (stored !== worldSize)
    throw new ArgumentError(
      `${runDir} was trained on ${stored} rank${stored > 1 ? "s" : ""}; resume it with the same number (--nproc ${stored}), ` +
        `not ${worldSize}: each rank's shard of the data and the steps per epoch depend on it.`,
    );
}

/** A free TCP port on 127.0.0.1 for a local job's rendezvous. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Runs `argv` (a budgetnet command, --nproc removed) as `nproc` local ranks with torchrun's
 * environment, libtorch threads split between them. When one rank fails the others are stopped;
 * Ctrl-C is passed to every rank (they stop together at the same step). Resolves with the exit code.
 */
export async function launchRanks(nproc: number, argv: readonly string[]): Promise<number> {
  if (!Number.isInteger(nproc) || nproc < 1)
    throw new ArgumentError(`--nproc must be an integer >= 1. Received: ${nproc}`);
  const port = await freePort();
  const cores = os.availableParallelism();
  const threads = process.env.BUDGETNET_THREADS ?? String(Math.max(1, Math.floor(cores / nproc)));
  const children = Array.from({ length: nproc }, (_, rank) =>
    spawn(process.execPath, [...process.execArgv, ...argv], {
      stdio: rank === 0 ? "inherit" : ["ignore", "ignore", "inherit"],
      env: {
        ...process.env,
        RANK: String(rank),
        LOCAL_RANK: String(rank),
        WORLD_SIZE: String(nproc),
        LOCAL_WORLD_SIZE: String(nproc),
        MASTER_ADDR: "127.0.0.1",
        MASTER_PORT: String(port),
        BUDGETNET_THREADS: threads,
      },
    }),
  );
  const forward = (sig: NodeJS.Signals) => () => {
    for (const c of children) if (c.exitCode === null) c.kill(sig);
  };
  const onInt = forward("SIGINT");
  const onTerm = forward("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  try {
    const codes = await Promise.all(
      children.map(
        (c, rank) =>
          new Promise<number>((resolve) => {
            c.once("exit", (code, signal) => {
              const status = code ?? (signal !== null ? 128 + (os.constants.signals[signal] ?? 0) : 1);
              if (status !== 0 && status !== 130)
                // a failed rank: the others cannot finish their collectives; stop them now
                setTimeout(() => {
                  for (const o of children)
                    if (o !== c && o.exitCode === null && o.signalCode === null) o.kill("SIGTERM");
                }, 2000).unref();
              if (status !== 0 && rank !== 0)
                process.stderr.write(`budgetnet: rank ${rank} exited with status ${status}\n`);
              resolve(status);
            });
          }),
      ),
    );
    return codes.find((c) => c !== 0) ?? 0;
  } finally {
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
  }
}
