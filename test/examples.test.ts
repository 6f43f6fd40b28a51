// The examples keep working: examples/pytorch_interchange/roundtrip.js moves weights both ways.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { test } from "node:test";
import { peerSkip, requirePyTorch } from "./helpers";

const skip = peerSkip();

test("examples/pytorch_interchange: budgetnet → PyTorch and PyTorch → budgetnet give the same logits", { skip }, () => {
  requirePyTorch();
  const script = path.resolve(__dirname, "../../examples/pytorch_interchange/roundtrip.js");
  const r = spawnSync(process.execPath, [script], {
    encoding: "utf8",
    env: { ...process.env, BUDGETNET_THREADS: "1" },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /budgetnet → PyTorch: \d+ tensors, max \|logit difference\| = /);
  assert.match(r.stdout, /PyTorch → budgetnet: metadata \{"source":"pytorch"\}/);
});
