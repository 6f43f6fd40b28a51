// Runs an ablation study's cells through the search's executors (local child processes or the
// Redis queue for `budgetnet worker`s), recording each launch and result in the journal before
// acting on it. A resumed study runs what has no result yet; a cell interrupted by a kill resumes
// from its run folder's checkpoint (exact resume), a finished one is never run again.
import * as os from "node:os";
import { hasTestSplit } from "../data";
import { type Journal, type JournalEvent, withStudyJournal } from "../search/journal";
import type { Executor } from "../search/study";
import type { TrialOutcome, TrialPayload } from "../search/trial";
import {
  type AblateSpec,
  type AblateState,
  type CellState,
  cellConfig,
  cellDir,
  JOURNAL_FILE,
  loadAblateState,
  type Row,
} from "./study";

export interface RunAblateOptions {
  executor: Executor;
  /** Polled twice a second; true stops launching and cancels running cells (they stay resumable). */
  shouldStop?: () => boolean;
  onEvent?: (e: JournalEvent, state: AblateState) => void;
  /** Run failed cells again (default: a failure is kept and reported). */
  retryFailed?: boolean;
}

export interface AblateRunSummary {
  done: number;
  failed: number;
  interrupted: number;
  pending: number;
  elapsed: number;
  stopReason: string;
}

/** The study's identity on a shared Redis: its name and creation time. */
export function ablateId(spec: Pick<AblateSpec, "name" | "created">): string {
  return `ablate:${spec.name}@${spec.created}`;
}

/** Runs every cell without a result, `executor.slots` at a time, in the grid's (seed-major) order. */
export async function runAblation(dir: string, spec: AblateSpec, opts: RunAblateOptions): Promise<AblateRunSummary> {
  return withStudyJournal(dir, JOURNAL_FILE, "budgetnet ablate", (journal) => runLocked(dir, spec, journal, opts));
}

async function runLocked(
  dir: string,
  spec: AblateSpec,
  journal: Journal,
  opts: RunAblateOptions,
): Promise<AblateRunSummary> {
  const state = loadAblateState(dir, spec);
  const rows = new Map<string, Row>(spec.rows.map((r) => [r.label, r]));
  const sessionStart = Date.now();
  const elapsedNow = (): number => state.elapsed + (Date.now() - sessionStart) / 1000;
  const write = (e: JournalEvent): void => {
    const full = { ...e, elapsed: Number(elapsedNow().toFixed(3)) };
    journal.append(full);
    opts.onEvent?.(full, state);
  };
  write({
    event: "session",
    session: state.sessions + 1,
    pid: process.pid,
    host: os.hostname(),
    executor: opts.executor.description,
  });
  state.sessions++;

  const todo = state.cells.filter(
    (c) => c.status === "pending" || c.status === "running" || (opts.retryFailed === true && c.status === "failed"),
  );
  const running = new Map<number, Promise<void>>();
  let cancelled = false;
  let failuresInARow = 0;
  let lastError = "";
  let stopReason = "";

  const launch = (c: CellState): void => {
    const row = rows.get(c.cell.row) as Row;
    const config = cellConfig(spec, c.cell.model, row, c.cell.k);
    const payload: TrialPayload = {
      study: spec.name,
      trial: c.cell.id,
      rung: 0,
      config,
      // an image folder without test/ has no test images: its cells report validation only
      evaluateTest: hasTestSplit(config.dataset, config.dataRoot ?? undefined),
    };
    c.status = "running";
    write({ event: "trial", trial: c.cell.id, model: c.cell.model, row: c.cell.row, seed: c.cell.seed });
    const started = Date.now();
    const p = opts.executor
      .run(payload, cellDir(dir, c.cell))
      .then(
        (outcome: TrialOutcome) => {
          failuresInARow = 0;
          const wallSeconds = Number(((Date.now() - started) / 1000).toFixed(3));
          c.status = "done";
          c.outcome = { ...outcome, wallSeconds };
          write({ event: "result", trial: c.cell.id, ...outcome, wallSeconds });
        },
        (e: unknown) => {
          if (cancelled) return; // stays "running" in the journal: a resume runs it again
          failuresInARow++;
          lastError = e instanceof Error ? e.message : String(e);
          c.status = "failed";
          c.error = lastError;
          write({ event: "failure", trial: c.cell.id, error: lastError });
        },
      )
      .finally(() => running.delete(c.cell.id));
    running.set(c.cell.id, p);
  };

  let next = 0;
  for (;;) {
    const noneDone = !state.cells.some((c) => c.status === "done");
    if (opts.shouldStop?.()) stopReason = "stopped";
    else if (noneDone && failuresInARow >= Math.max(3, opts.executor.slots))
      stopReason = `every cell failed (${failuresInARow} in a row); the last said: ${lastError}`;
    if (stopReason !== "") break;
    while (running.size < opts.executor.slots && next < todo.length) launch(todo[next++] as CellState);
    if (running.size === 0) {
      stopReason = "complete";
      break;
    }
    await Promise.race([...running.values(), new Promise((r) => setTimeout(r, 500))]);
  }
  if (running.size > 0) {
    cancelled = true;
    await opts.executor.cancelAll();
    await Promise.allSettled([...running.values()]);
  }
  write({ event: "stop", reason: stopReason });
  const count = (s: CellState["status"]): number => state.cells.filter((c) => c.status === s).length;
  return {
    done: count("done"),
    failed: count("failed"),
    interrupted: count("running"),
    pending: count("pending"),
    elapsed: elapsedNow(),
    stopReason,
  };
}
