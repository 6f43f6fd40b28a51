// `npm run faults [-- --kills N --enospc N --seed N]`: the unlucky user, on purpose. A small real
// training run (Fashion-MNIST slice, 2 epochs, through the CLI) is
//   - killed with SIGKILL at N random moments (and at the moment a checkpoint's temp file appears),
//     each time resumed until it completes: the final weights must equal an uninterrupted run's,
//     byte for byte;
//   - given a disk that fills at N random byte offsets of everything it writes (a write wrapper,
//     bench/fault_inject.ts): each must fail with an error naming the file, leave every file that
//     was whole still whole, and resume to the same final weights;
//   - trained twice into one folder at once: one must refuse;
//   - stopped with SIGTERM: it must checkpoint and resume to the same weights.
// Writes bench/results/faults.json.
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CounterRng } from "../src/data/rng";
import { loadSafetensors } from "../src/export/safetensors";
import { parseBenchArgs } from "./args";
import { writeResult } from "./results";

const ROOT = path.resolve(__dirname, "../..");
const BIN = path.join(ROOT, "bin/budgetnet.js");
const INJECT = path.join(__dirname, "fault_inject.js");
const TRAIN_ARGS = [
  "--train-subset",
  "640",
  "--val-subset",
  "100",
  "--batch-size",
  "32",
  "--epochs",
  "2",
  "--threads",
  "1",
  "--precision",
  "fp32",
  "--channels-last",
  "false",
  "--log-every",
  "1",
];

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

function start(args: string[], env: Record<string, string> = {}): { child: ChildProcess; done: Promise<Exit> } {
  const child = spawn(process.execPath, ["-r", INJECT, BIN, ...args], {
    env: { ...process.env, BUDGETNET_PLAIN: "1", ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const done = new Promise<Exit>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal, stderr })));
  return { child, done };
}

function trainArgs(dir: string, resume: boolean): string[] {
  return resume ? ["train", "--out", dir, "--resume"] : ["train", "--out", dir, ...TRAIN_ARGS];
}

/** Resumes (or, with no checkpoint yet, starts) the run in dir; it must complete in one go. Returns the processes used. */
async function finish(dir: string): Promise<number> {
  const resume = fs.existsSync(path.join(dir, "checkpoint.safetensors"));
  const r = await start(trainArgs(dir, resume)).done;
  if (r.code !== 0) throw new Error(`finishing ${dir} failed (exit ${r.code}): ${r.stderr.slice(-800)}`);
  return 1;
}

function finalWeights(dir: string): Buffer {
  return fs.readFileSync(path.join(dir, "model.safetensors"));
}

/** Whether each file that budgetnet writes whole is whole: loadable safetensors, parseable JSON. */
function wholeFiles(dir: string): string[] {
  const broken: string[] = [];
  for (const f of ["checkpoint.safetensors", "best.safetensors", "model.safetensors"]) {
    const p = path.join(dir, f);
    if (!fs.existsSync(p)) continue;
    try {
      for (const t of loadSafetensors(p).tensors.values()) t.dispose();
    } catch (e) {
      broken.push(`${f}: ${(e as Error).message.slice(0, 120)}`);
    }
  }
  const cfg = path.join(dir, "config.json");
  if (fs.existsSync(cfg))
    try {
      JSON.parse(fs.readFileSync(cfg, "utf8"));
    } catch {
      broken.push("config.json");
    }
  const metrics = path.join(dir, "metrics.jsonl");
  if (fs.existsSync(metrics)) {
    const text = fs.readFileSync(metrics, "utf8");
    if (text.length > 0 && !text.endsWith("\n")) broken.push("metrics.jsonl (half a line)");
  }
  return broken;
}

const FLAGS = {
  kills: { type: "integer", valueName: "N", min: 0, default: 20, description: "random SIGKILL points, each resumed" },
  enospc: { type: "integer", valueName: "N", min: 0, default: 50, description: "random full-disk byte offsets" },
  seed: { type: "integer", valueName: "N", min: 0, default: 1, description: "seed of the random moments and offsets" },
} as const;

async function killRuns(base: string, reference: Buffer, n: number, rng: () => number, fullMs: number) {
  const results: { at: string; resumedWith: number; identical: boolean }[] = [];
  for (let k = 0; k < n; k++) {
    const dir = path.join(base, `kill${k}`);
    const { child, done } = start(trainArgs(dir, false));
    // Every fourth kill aims at a checkpoint write: the moment its temp file appears.
    const atWrite = k % 4 === 3;
    let at: string;
    if (atWrite) {
      at = "checkpoint write";
      const poll = setInterval(() => {
        if (fs.existsSync(dir) && fs.readdirSync(dir).some((f) => f.startsWith(".checkpoint.safetensors."))) {
          child.kill("SIGKILL");
          clearInterval(poll);
        }
      }, 1);
      done.then(() => clearInterval(poll));
    } else {
      const ms = Math.floor(300 + rng() * (fullMs - 300));
      at = `${ms} ms`;
      setTimeout(() => child.kill("SIGKILL"), ms);
    }
    const first = await done;
    const killed = first.signal === "SIGKILL";
    const resumedWith = first.code === 0 ? 0 : await finish(dir);
    const identical = finalWeights(dir).equals(reference);
    results.push({ at: killed ? at : `${at} (finished first)`, resumedWith, identical });
    console.log(
      `kill ${k + 1}/${n} at ${at}: ${killed ? "killed" : "not killed"}, resumed ${resumedWith}x, final weights ${identical ? "identical" : "DIFFER"}`,
    );
  }
  return results;
}

async function enospcRuns(base: string, reference: Buffer, n: number, rng: () => number, totalBytes: number) {
  const results: { offset: number; clearError: boolean; brokenFiles: string[]; identical: boolean }[] = [];
  for (let k = 0; k < n; k++) {
    const dir = path.join(base, `enospc${k}`);
    const offset = Math.floor(rng() * totalBytes);
    const r = await start(trainArgs(dir, false), { BUDGETNET_FAULT_ENOSPC_AFTER: String(offset) }).done;
    const named = /could not write (\S+): the disk is full/.exec(r.stderr);
    const clearError = r.code !== 0 && r.signal === null && named !== null;
    const brokenFiles = wholeFiles(dir);
    let identical = false;
    try {
      await finish(dir);
      identical = finalWeights(dir).equals(reference);
    } catch (e) {
      brokenFiles.push(`resume: ${(e as Error).message.slice(0, 200)}`);
    }
    results.push({ offset, clearError, brokenFiles, identical });
    console.log(
      `ENOSPC ${k + 1}/${n} after ${offset} bytes: exit ${r.code}, ${named ? `names ${path.basename(named[1] as string)}` : `UNCLEAR: ${r.stderr.trim().split("\n").pop()}`}, ` +
        `${brokenFiles.length === 0 ? "every file whole" : `BROKEN ${brokenFiles.join("; ")}`}, resumed ${identical ? "identical" : "DIFFERENT"}`,
    );
  }
  return results;
}

async function twoTrainers(base: string) {
  const dir = path.join(base, "two");
  const a = start(trainArgs(dir, false));
  await new Promise((r) => setTimeout(r, 200));
  const b = start(trainArgs(dir, false));
  const [ra, rb] = await Promise.all([a.done, b.done]);
  const codes = [ra.code, rb.code].sort();
  const refused = [ra, rb].find((r) => r.code !== 0);
  const ok = codes[0] === 0 && codes[1] !== 0 && /is in use: process \d+/.test(refused?.stderr ?? "");
  console.log(`two trainers on one folder: exits ${ra.code} and ${rb.code}: ${ok ? "one refused, clearly" : "FAIL"}`);
  return { exits: [ra.code, rb.code], ok };
}

async function sigterm(base: string, reference: Buffer) {
  const dir = path.join(base, "sigterm");
  const { child, done } = start(trainArgs(dir, false));
  const watch = setInterval(() => {
    if (fs.existsSync(path.join(dir, "metrics.jsonl")) && fs.statSync(path.join(dir, "metrics.jsonl")).size > 0) {
      child.kill("SIGTERM");
      clearInterval(watch);
    }
  }, 20);
  const r = await done;
  clearInterval(watch);
  const checkpointed = r.code === 130 && /stopped by SIGTERM/.test(r.stderr);
  await finish(dir);
  const identical = finalWeights(dir).equals(reference);
  console.log(
    `SIGTERM: exit ${r.code}, ${checkpointed ? "checkpointed" : "NO CHECKPOINT"}, resumed ${identical ? "identical" : "DIFFERENT"}`,
  );
  return { exit: r.code, checkpointed, identical };
}

export async function main(args: string[]): Promise<void> {
  const opts = parseBenchArgs("faults", FLAGS, args);
  if (opts === undefined) return;
  const { kills, enospc, seed } = opts;
  const rng = new CounterRng(seed, 0, 0, 0xfa17);
  const uniform = () => rng.uniform();
  const base = fs.mkdtempSync(path.join(os.tmpdir(), "budgetnet-faults-"));
  try {
    const refDir = path.join(base, "reference");
    const countFile = path.join(base, "bytes");
    const t0 = Date.now();
    const ref = await start(trainArgs(refDir, false), { BUDGETNET_FAULT_COUNT_FILE: countFile }).done;
    if (ref.code !== 0) throw new Error(`the reference run failed: ${ref.stderr.slice(-800)}`);
    const fullMs = Date.now() - t0;
    const totalBytes = Number(fs.readFileSync(countFile, "utf8"));
    const reference = finalWeights(refDir);
    console.log(`reference run: ${(fullMs / 1000).toFixed(1)} s, ${totalBytes} bytes written`);
    const killResults = await killRuns(base, reference, kills, uniform, fullMs);
    const enospcResults = await enospcRuns(base, reference, enospc, uniform, totalBytes);
    const two = await twoTrainers(base);
    const term = await sigterm(base, reference);
    const summary = {
      kills: `${killResults.filter((r) => r.identical).length}/${kills} identical final weights`,
      enospc: `${enospcResults.filter((r) => r.clearError).length}/${enospc} clear errors naming the file, ${enospcResults.filter((r) => r.brokenFiles.length === 0).length}/${enospc} left every file whole, ${enospcResults.filter((r) => r.identical).length}/${enospc} resumed to identical weights`,
      twoTrainers: two.ok ? "one refused" : "FAIL",
      sigterm: term.checkpointed && term.identical ? "checkpointed, resumed identical" : "FAIL",
    };
    console.log(JSON.stringify(summary, null, 2));
    writeResult("bench/results/faults.json", {
      benchmark: "faults",
      date: new Date().toISOString(),
      seed,
      referenceSeconds: fullMs / 1000,
      bytesWritten: totalBytes,
      summary,
      kills: killResults,
      enospc: enospcResults,
      twoTrainers: two,
      sigterm: term,
    });
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
}
