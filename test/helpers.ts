// Shared test helpers: a leak check per file, closeness asserts, and the PyTorch peer.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before } from "node:test";
import { liveTensors, type Tensor } from "../src";

/** Call once at the top of a test file: the live tensor count must be back where it started. */
export function checkNoLeaks(): void {
  let start = 0;
  before(() => {
    start = liveTensors();
  });
  after(() => {
    assert.equal(liveTensors(), start, "tensors leaked by this test file (live count differs from its start)");
  });
}

export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol = 1e-5, rtol = 1e-5): void {
  assert.equal(actual.length, expected.length, "length differs");
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i] as number;
    const e = expected[i] as number;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e)))
      assert.fail(`element ${i}: ${a} vs expected ${e} (atol ${atol}, rtol ${rtol})`);
  }
}

export function assertTensorClose(t: Tensor, expected: ArrayLike<number>, atol = 1e-5, rtol = 1e-5): void {
  assertClose(t.toArray(), expected, atol, rtol);
}

/** Debian's python3-torch (same libtorch 1.13) lives under /usr/bin/python3. */
export const PYTHON = process.env.BUDGETNET_PYTHON ?? "/usr/bin/python3";

/**
 * BUDGETNET_REQUIRE_PEERS=1 (.ci/run sets it): a missing PyTorch peer fails the tests that compare
 * with PyTorch instead of skipping them, so a machine without python3-torch cannot pass green.
 */
const REQUIRE_PEERS = process.env.BUDGETNET_REQUIRE_PEERS === "1";

const MISSING_PEER = `the PyTorch peer is missing: \`${PYTHON} -c "import torch"\` fails. Install python3-torch (scripts/setup.sh does), or set BUDGETNET_PYTHON to a python that has torch`;

let pyTorchFound: boolean | undefined;

/** True when the PyTorch peer can run here (CI installs python3-torch); checked once per process. */
export function havePyTorch(): boolean {
  pyTorchFound ??= spawnSync(PYTHON, ["-c", "import torch"], { stdio: "ignore" }).status === 0;
  return pyTorchFound;
}

/**
 * The `skip` option of a test that compares with PyTorch: false when the peer is here, else why.
 * Under BUDGETNET_REQUIRE_PEERS=1 it is always false: the test runs and fails (requirePyTorch).
 */
export function peerSkip(): string | false {
  if (havePyTorch() || REQUIRE_PEERS) return false;
  return "python3-torch is not installed (BUDGETNET_REQUIRE_PEERS=1 makes this a failure)";
}

/** First line of a peer test: throws, saying what to install, when PyTorch cannot run here. */
export function requirePyTorch(): void {
  if (!havePyTorch()) throw new Error(MISSING_PEER);
}

/**
 * Runs a Python script (text) with torch available; `input` is passed as JSON on stdin and the
 * script prints one JSON value on stdout, which is returned.
 */
export function runPython<T = unknown>(script: string, input: unknown = null): T {
  requirePyTorch();
  const r = spawnSync(PYTHON, ["-c", script], {
    input: JSON.stringify(input),
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, OMP_NUM_THREADS: "1" },
  });
  if (r.status !== 0) throw new Error(`python peer failed (${r.status}):\n${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** A fresh temporary folder, removed when the process exits. */
export function tempDir(prefix = "budgetnet-test-"): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The events of a study's journal.jsonl (search or ablate), whole lines only; [] before it exists. */
export function journalEvents<E = Record<string, unknown> & { event: string }>(study: string): E[] {
  const file = path.join(study, "journal.jsonl");
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.endsWith("}"))
    .map((l) => JSON.parse(l) as E);
}

/** Resolves once cond() holds (polled every 100 ms); rejects after ms naming what it waited for. */
export function waitFor(cond: () => boolean, ms: number, what = "the condition"): Promise<void> {
  const until = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (cond()) resolve();
      else if (Date.now() > until) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(tick, 100);
    };
    tick();
  });
}
