// `npm run fuzz -- [--seed N] [--cases N] [--timeout-ms N] [--only readers|ops] [--batch N]`:
// the file readers on mutated valid files and the public ops on random arguments, in child
// processes (bench/fuzz_child.ts, one at a time, one thread each, 8 GiB of address space so a
// huge allocation fails instead of swapping the machine). A child runs a batch of cases; when it
// dies by a signal, hangs past --timeout-ms on one case, or does not exit after its last case,
// the rest of the batch is re-run one case per child to isolate the culprit. Reported: crashes,
// hangs, processes that do not exit, throws that are not Error instances, errors escaping a
// case, leaked tensors; engine errors (TypeError...) are listed as unclear messages. Writes
// bench/results/fuzz.json. `--replay SEED` (with --only) runs one case here and prints its throw.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type CaseReport, CaseRunner, type FuzzMode } from "./fuzz_child";
import { caseSeed } from "./fuzz_mutate";
import { type Finding, printSummary, summarize } from "./fuzz_report";
import { writeResult } from "./results";

interface FuzzOptions {
  seed: number;
  cases: number;
  timeoutMs: number;
  modes: FuzzMode[];
  batch: number;
  replay?: number;
}

/** A child that died or hung, as seen from here. */
interface Death {
  kind: "crash" | "hang" | "no-exit" | "abnormal-exit";
  detail: string;
}

interface ChildRun {
  reports: CaseReport[];
  strays: { seed: number; errorName?: string; message?: string }[];
  /** The case that had started and not reported when the child died. */
  running?: { seed: number; target: string; how: string };
  death?: Death;
  /** The child could not start its cases (the harness failed, not a case). */
  fatal?: string;
}

const ADDRESS_SPACE_BYTES = 8 * 1024 ** 3;
const STARTUP_MS = 60_000;
/** How long a child may take to exit after its last case before it counts as not exiting. */
const EXIT_GRACE_MS = 10_000;

function parseOptions(args: string[]): FuzzOptions {
  const value = (flag: string, fallback: number): number => {
    const i = args.indexOf(flag);
    if (i < 0) return fallback;
    const v = Number(args[i + 1]);
    if (!Number.isInteger(v) || v < 0)
      throw new Error(`${flag} needs a non-negative integer. Received: ${args[i + 1]}`);
    return v;
  };
  const only = args.includes("--only") ? args[args.indexOf("--only") + 1] : undefined;
  if (only !== undefined && only !== "readers" && only !== "ops")
    throw new Error(`--only must be readers or ops. Received: --only ${only}`);
  const replay = args.includes("--replay") ? value("--replay", 0) : undefined;
  if (replay !== undefined && only === undefined) throw new Error("--replay SEED needs --only readers|ops");
  return {
    seed: value("--seed", 1),
    cases: value("--cases", 2000),
    timeoutMs: Math.max(100, value("--timeout-ms", 10_000)),
    modes: only === undefined ? ["readers", "ops"] : [only],
    batch: Math.max(1, value("--batch", 100)),
    replay,
  };
}

const CHILD = path.join(__dirname, "fuzz_child.js");
const havePrlimit = spawnSync("prlimit", ["--version"], { stdio: "ignore" }).status === 0;

function spawnChild(mode: FuzzMode, seeds: number[]): ChildProcess {
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "budgetnet-fuzz-"));
  const nodeArgs = [CHILD, JSON.stringify({ mode, seeds, workDir })];
  const [cmd, argv] = havePrlimit
    ? ["prlimit", [`--as=${ADDRESS_SPACE_BYTES}`, "--", process.execPath, ...nodeArgs]]
    : [process.execPath, nodeArgs];
  const env = { ...process.env, BUDGETNET_THREADS: "1", OMP_NUM_THREADS: "1", VIPS_CONCURRENCY: "1" };
  const child = spawn(cmd, argv, { stdio: ["ignore", "ignore", "pipe", "pipe"], env });
  child.on("close", () => fs.rmSync(workDir, { recursive: true, force: true }));
  return child;
}

/** Runs one batch in one child, watching each case's time and the child's exit. */
function runChild(mode: FuzzMode, seeds: number[], timeoutMs: number): Promise<ChildRun> {
  return new Promise((resolve) => {
    const run: ChildRun = { reports: [], strays: [] };
    const child = spawnChild(mode, seeds);
    const startedAt = Date.now();
    let caseStartedAt = 0;
    let finishedAt = 0;
    let stderr = "";
    let pending = "";
    const kill = (death: Death): void => {
      run.death ??= death;
      child.kill("SIGKILL");
    };
    child.stderr?.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000);
    });
    (child.stdio[3] as NodeJS.ReadableStream).on("data", (d: Buffer) => {
      pending += d.toString();
      for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
        const msg = JSON.parse(pending.slice(0, nl)) as Record<string, unknown>;
        pending = pending.slice(nl + 1);
        if ("start" in msg) {
          run.running = { seed: msg.start as number, target: "", how: "" };
          caseStartedAt = Date.now();
        } else if ("planned" in msg && run.running) {
          run.running.target = msg.target as string;
          run.running.how = msg.how as string;
        } else if ("fatal" in msg) run.fatal = msg.fatal as string;
        else if ("stray" in msg) run.strays.push({ seed: msg.stray as number, ...msg });
        else if ("finished" in msg) finishedAt = Date.now();
        else {
          run.reports.push(msg as unknown as CaseReport);
          run.running = undefined;
        }
      }
    });
    const watchdog = setInterval(() => {
      const now = Date.now();
      if (run.running && now - caseStartedAt > timeoutMs)
        kill({ kind: "hang", detail: `no result after ${timeoutMs} ms` });
      else if (!run.running && run.reports.length === 0 && now - startedAt > STARTUP_MS)
        kill({ kind: "hang", detail: `the child did not start its first case within ${STARTUP_MS} ms` });
      else if (finishedAt > 0 && now - finishedAt > EXIT_GRACE_MS)
        kill({ kind: "no-exit", detail: `the process did not exit within ${EXIT_GRACE_MS} ms of its last case` });
    }, 100);
    child.on("close", (code, signal) => {
      clearInterval(watchdog);
      const tail = stderr.trim().split("\n").slice(-3).join(" | ");
      if (!run.death && signal) run.death = { kind: "crash", detail: `killed by ${signal}${tail ? `: ${tail}` : ""}` };
      else if (!run.death && (code !== 0 || finishedAt === 0))
        run.death = {
          kind: "abnormal-exit",
          detail: `exit code ${code} before its cases were done${tail ? `: ${tail}` : ""}`,
        };
      resolve(run);
    });
  });
}

class Campaign {
  readonly reports: (CaseReport & { mode: FuzzMode })[] = [];
  readonly findings: Finding[] = [];
  constructor(readonly opts: FuzzOptions) {}

  private finding(f: Omit<Finding, "replay">): void {
    this.findings.push({ ...f, replay: `node dist/bench/fuzz.js --only ${f.mode} --replay ${f.seed}` });
  }

  private record(mode: FuzzMode, run: ChildRun): void {
    for (const r of run.reports) {
      this.reports.push({ ...r, mode });
      const base = { mode, target: r.target, seed: r.seed, how: r.how, isolated: true };
      if (r.outcome === "nonError")
        this.finding({ ...base, kind: "nonError", detail: `threw ${r.errorName}: ${r.message}` });
      if (r.leaked !== 0) this.finding({ ...base, kind: "leak", detail: `${r.leaked} native tensors left alive` });
    }
    for (const s of run.strays)
      this.finding({
        mode,
        kind: "stray",
        target: "",
        seed: s.seed,
        how: "",
        detail: `${s.errorName}: ${s.message}`,
        isolated: false,
      });
  }

  private died(mode: FuzzMode, run: ChildRun, seed: number, isolated: boolean): void {
    const death = run.death as Death;
    const target = run.running?.target ?? this.reports.find((r) => r.seed === seed)?.target ?? "";
    this.finding({ mode, kind: death.kind, target, seed, how: run.running?.how ?? "", detail: death.detail, isolated });
  }

  /** Runs a child, once more if it could not start (dist/ rebuilt under it, say); then gives up. */
  private async child(mode: FuzzMode, seeds: number[]): Promise<ChildRun> {
    let run = await runChild(mode, seeds, this.opts.timeoutMs);
    if (run.fatal !== undefined) run = await runChild(mode, seeds, this.opts.timeoutMs);
    if (run.fatal !== undefined) throw new Error(`fuzz: a child could not start: ${run.fatal}`);
    return run;
  }

  /** One batch; if its child dies, every case not reported is re-run alone, then the rest if needed. */
  async batch(mode: FuzzMode, seeds: number[]): Promise<void> {
    const run = await this.child(mode, seeds);
    this.record(mode, run);
    if (!run.death) return;
    const done = new Set(run.reports.map((r) => r.seed));
    const suspect = run.running?.seed;
    let reproduced = false;
    for (const seed of seeds.filter((s) => !done.has(s))) {
      const alone = await this.child(mode, [seed]);
      this.record(mode, alone);
      if (alone.death) {
        this.died(mode, alone, seed, true);
        reproduced ||= seed === suspect || suspect === undefined;
      }
    }
    if (reproduced) return;
    // Not reproduced alone: an earlier case may have set it up. Re-run those alone (reports kept once).
    for (const seed of seeds.filter((s) => done.has(s))) {
      const alone = await this.child(mode, [seed]);
      if (alone.death) {
        this.died(mode, alone, seed, true);
        reproduced = true;
      }
    }
    if (!reproduced) this.died(mode, run, suspect ?? (seeds[0] as number), false);
  }
}

async function replay(opts: FuzzOptions): Promise<void> {
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "budgetnet-fuzz-replay-"));
  try {
    const runner = new CaseRunner(opts.modes[0] as FuzzMode, workDir, (target, how) =>
      console.log(`running ${target}${how ? ` with ${how}` : ""}`),
    );
    const report = await runner.run(opts.replay as number);
    console.log(JSON.stringify(report, null, 2));
    if (runner.lastError !== undefined)
      console.log(runner.lastError instanceof Error ? runner.lastError.stack : runner.lastError);
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

export async function main(args: string[]): Promise<void> {
  const opts = parseOptions(args);
  if (opts.replay !== undefined) return replay(opts);
  const campaign = new Campaign(opts);
  const t0 = performance.now();
  const byMode = new Map<FuzzMode, number[]>(opts.modes.map((m) => [m, []]));
  for (let i = 0; i < opts.cases; i++)
    byMode.get(opts.modes[i % opts.modes.length] as FuzzMode)?.push(caseSeed(opts.seed, i));
  let ran = 0;
  for (const [mode, seeds] of byMode)
    for (let i = 0; i < seeds.length; i += opts.batch) {
      await campaign.batch(mode, seeds.slice(i, i + opts.batch));
      ran += Math.min(opts.batch, seeds.length - i);
      if (ran % (opts.batch * 10) === 0)
        console.log(`${ran}/${opts.cases} cases, ${campaign.findings.length} findings`);
    }
  const elapsedS = (performance.now() - t0) / 1000;
  const summary = summarize(campaign.reports, campaign.findings);
  printSummary(
    `fuzz: seed ${opts.seed}, ${opts.cases} cases (${opts.modes.join(" + ")}), ${elapsedS.toFixed(1)} s`,
    summary,
  );
  writeResult(path.join(__dirname, "..", "..", "bench", "results", "fuzz.json"), {
    benchmark: "fuzz",
    seed: opts.seed,
    cases: opts.cases,
    modes: opts.modes,
    timeoutMs: opts.timeoutMs,
    batch: opts.batch,
    addressSpaceLimitBytes: havePrlimit ? ADDRESS_SPACE_BYTES : null,
    machine: { cpu: os.cpus()[0]?.model ?? "unknown", cores: os.availableParallelism(), loadavg: os.loadavg() },
    elapsedS,
    casesPerSecond: opts.cases / elapsedS,
    ...summary,
    timestamp: new Date().toISOString(),
  });
}

if (require.main === module)
  main(process.argv.slice(2)).then(
    () => {},
    (err: unknown) => {
      console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
      process.exitCode = 1;
    },
  );
