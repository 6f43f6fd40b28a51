// One fuzz child process: runs a batch of cases (given as JSON in argv[2]: mode, seeds, work
// folder) one after another and reports on fd 3, one JSON line each: {"start": seed} before a
// case (so the parent knows which one was running if this process dies or hangs), the case's
// report after it, {"finished": true} at the end ({"fatal": why} if it cannot start). Then it exits on its own: a case that leaves
// a handle open (a worker, a pending read) shows up as a process that does not exit.
import * as fs from "node:fs";
import * as path from "node:path";
import { liveTensors } from "../src";
import { buildFixtures, type Fixtures } from "./fuzz_fixtures";
import { Rng } from "./fuzz_mutate";
import { runOpCase } from "./fuzz_ops";
import { READER_TARGETS } from "./fuzz_readers";

export type FuzzMode = "readers" | "ops";

export interface CaseReport {
  seed: number;
  target: string;
  how: string;
  /**
   * returned: no throw; error: an Error with a message of the package (or libtorch, or Node);
   * unclear: an error V8 wrote (TypeError: x is not iterable...); nonError: a thrown non-Error.
   */
  outcome: "returned" | "error" | "unclear" | "nonError";
  errorName?: string;
  message?: string;
  /** Native tensors alive after the case that were not before it. */
  leaked: number;
  ms: number;
}

const ENGINE_ERRORS = new Set(["TypeError", "RangeError", "ReferenceError", "SyntaxError", "EvalError", "URIError"]);
/** Messages V8 writes itself: they name no file, option or op and say nothing about what to do. */
const ENGINE_MESSAGE =
  /is not iterable|Cannot read propert|Cannot set propert|is not a function|is not a constructor|Cannot convert|Invalid array length|Maximum call stack|Unexpected token|Unexpected end of JSON|in JSON at position|is not valid JSON|Unexpected non-whitespace|Bad control character|Cannot destructure|Cannot access|Cannot mix BigInt|serialize a BigInt|Cannot create property|Invalid typed array length|out of range index|Array buffer allocation failed/;

function text(v: unknown): string {
  try {
    return typeof v === "symbol" ? v.toString() : typeof v === "object" && v !== null ? JSON.stringify(v) : String(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}

function classify(e: unknown): Pick<CaseReport, "outcome" | "errorName" | "message"> {
  if (!(e instanceof Error))
    return { outcome: "nonError", errorName: e === null ? "null" : typeof e, message: text(e).slice(0, 300) };
  const name = e.constructor?.name ?? e.name;
  const unclear = ENGINE_ERRORS.has(name) && ENGINE_MESSAGE.test(e.message);
  return { outcome: unclear ? "unclear" : "error", errorName: name, message: e.message.slice(0, 500) };
}

export class CaseRunner {
  private fixtures: Fixtures | undefined;
  /** What the last case threw (for --replay, which prints its stack). */
  lastError: unknown;
  constructor(
    readonly mode: FuzzMode,
    readonly workDir: string,
    /** Told a case's target (and, for ops, its arguments) just before it runs. */
    readonly planned: (target: string, how: string) => void = () => {},
  ) {}

  /** Builds the reader fixtures (before any case, so a failure is the harness's, not a case's). */
  async prepare(): Promise<void> {
    if (this.mode === "readers") this.fixtures ??= await buildFixtures(path.join(this.workDir, "fixtures"));
  }

  async run(seed: number): Promise<CaseReport> {
    this.lastError = undefined;
    const info = { target: "", how: "" };
    const before = liveTensors();
    const t0 = performance.now();
    const caseDir = path.join(this.workDir, `case-${seed}`);
    let result: Pick<CaseReport, "outcome" | "errorName" | "message"> = { outcome: "returned" };
    try {
      const rng = new Rng(seed);
      if (this.mode === "ops") runOpCase(rng, info, () => this.planned(info.target, info.how));
      else {
        if (this.fixtures === undefined) throw new Error("CaseRunner.prepare() was not called");
        const names = Object.keys(READER_TARGETS);
        info.target = rng.pick(names);
        this.planned(info.target, "");
        fs.mkdirSync(caseDir, { recursive: true });
        info.how = await (READER_TARGETS[info.target] as (typeof READER_TARGETS)[string])(this.fixtures, rng, caseDir);
      }
    } catch (e) {
      this.lastError = e;
      result = classify(e);
    } finally {
      fs.rmSync(caseDir, { recursive: true, force: true });
    }
    // A negative difference is V8's finalizer freeing an earlier case's garbage: not this case's doing.
    const leaked = Math.max(0, liveTensors() - before);
    return { seed, ...info, ...result, leaked, ms: Math.round(performance.now() - t0) };
  }
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] as string) as { mode: FuzzMode; seeds: number[]; workDir: string };
  const report = (v: unknown): void => {
    fs.writeSync(3, `${JSON.stringify(v)}\n`);
  };
  let current = -1;
  // An error that escapes a case (a stray rejection or callback) is a finding of its own.
  const stray = (e: unknown): void => report({ stray: current, ...classify(e) });
  process.on("uncaughtException", stray);
  process.on("unhandledRejection", stray);
  const runner = new CaseRunner(job.mode, job.workDir, (target, how) => report({ planned: current, target, how }));
  try {
    await runner.prepare();
  } catch (e) {
    report({ fatal: `the fixtures could not be built: ${e instanceof Error ? e.stack : String(e)}` });
    process.exit(2);
  }
  for (const seed of job.seeds) {
    current = seed;
    report({ start: seed });
    report(await runner.run(seed));
  }
  fs.rmSync(job.workDir, { recursive: true, force: true });
  report({ finished: true });
  fs.closeSync(3);
}

if (require.main === module) void main();
