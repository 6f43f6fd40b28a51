// What state a run folder is in, judged from its files only (the dashboard never writes to them
// and never takes their lock, which would make a trainer starting at that moment fail):
//   running      its run.lock is flocked (Linux lists every lock in /proc/locks; elsewhere the pid
//                written in run.lock is checked alive on this host)
//   finished     model.safetensors exists (the trainer writes it after the last epoch)
//   diverged     a journaled loss or accuracy is not finite, the loss blew up before the journal
//                ended, or its search trial failed with the trainer's divergence message
//   interrupted  stopped before its last epoch (Ctrl-C, kill, a crash): --resume continues it
//   corrupt      config.json is unreadable; empty: nothing written yet and no trainer holds it
//   reading      the dashboard has not read its journal yet (a large tree is indexed after the
//                server starts, newest runs first)
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { MetricsSummary } from "./metrics_reader";

export type RunStatus =
  | "running"
  | "finished"
  | "diverged"
  | "interrupted"
  | "failed"
  | "corrupt"
  | "empty"
  | "reading";

/** Inodes ("major:minor:inode") holding a lock now, from /proc/locks; undefined where it is not readable. */
export function lockedInodes(): Set<string> | undefined {
  let text: string;
  try {
    text = fs.readFileSync("/proc/locks", "utf8");
  } catch {
    return undefined;
  }
  const held = new Set<string>();
  for (const line of text.split("\n")) {
    // "1: FLOCK  ADVISORY  WRITE 14399 fe:00:2146593 0 EOF" (a blocked waiter's line has "->")
    const f = line.trim().split(/\s+/);
    if (f[1] !== "FLOCK" || f[2] === "->") continue;
    const id = f[5];
    if (id !== undefined) held.add(id.toLowerCase());
  }
  return held;
}

/** The "major:minor:inode" of a file as /proc/locks writes it (hex device numbers). */
function lockId(st: fs.Stats): string {
  const dev = st.dev;
  const major = Math.floor(dev / 256) & 0xfff;
  const minor = (dev & 0xff) | (Math.floor(dev / 2 ** 20) & ~0xff);
  return `${major.toString(16).padStart(2, "0")}:${minor.toString(16).padStart(2, "0")}:${st.ino}`;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Whether a trainer holds the run folder's lock now. */
export function isLocked(runDir: string, held: Set<string> | undefined): boolean {
  const file = path.join(runDir, "run.lock");
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return false;
  }
  if (held !== undefined) return held.has(lockId(st));
  try {
    const owner = JSON.parse(fs.readFileSync(file, "utf8")) as { pid?: unknown; host?: unknown };
    return typeof owner.pid === "number" && owner.host === os.hostname() && pidAlive(owner.pid);
  } catch {
    return false;
  }
}

export interface StatusInput {
  locked: boolean;
  hasConfig: boolean;
  configBroken: boolean;
  hasFinalWeights: boolean;
  hasCheckpoint: boolean;
  metrics: MetricsSummary;
  /** A search trial's recorded failure, if any. */
  trialError?: string;
}

const DIVERGED_TEXT = /diverg|loss became (nan|-?infinity)/i;
/** A last loss this many times the first (about ln(classes) at initialization): it blew up. */
const BLOWUP = 5;

export function runStatus(s: StatusInput): { status: RunStatus; why?: string } {
  const m = s.metrics;
  if (s.locked) return { status: "running" };
  if (s.configBroken) return { status: "corrupt", why: "config.json cannot be read" };
  if (s.hasFinalWeights) return { status: "finished" };
  if (s.trialError !== undefined && DIVERGED_TEXT.test(s.trialError)) return { status: "diverged", why: s.trialError };
  if (m.nonFinite) return { status: "diverged", why: "a journaled loss or accuracy is NaN or infinite" };
  if (m.lastLoss > BLOWUP * m.firstLoss)
    return { status: "diverged", why: `the last loss (${m.lastLoss.toPrecision(3)}) is over ${BLOWUP}x the first` };
  if (s.trialError !== undefined) return { status: "failed", why: s.trialError };
  if (m.firstTime === null && !s.hasCheckpoint)
    return { status: "empty", why: s.hasConfig ? "no metrics yet" : "no config.json or metrics yet" };
  return { status: "interrupted" };
}
