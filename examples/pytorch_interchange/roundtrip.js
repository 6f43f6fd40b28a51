#!/usr/bin/env node
// Weights between budgetnet and PyTorch, both ways, through safetensors with PyTorch's keys.
//   node examples/pytorch_interchange/roundtrip.js      (after `npm ci`; needs python3-torch)
// 1. budgetnet → PyTorch: a budgetnet resnet20 saves model.safetensors; PyTorch loads it strictly
//    into its own ResNet-20 and gives the same logits.
// 2. PyTorch → budgetnet: PyTorch saves its state dict as safetensors; budgetnet loads it strictly.
"use strict";
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const bn = require("../../dist/src");

const python = process.env.BUDGETNET_PYTHON || "/usr/bin/python3";
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "budgetnet-interchange-"));
const torchSide = (...args) => {
  const r = spawnSync(python, [path.join(__dirname, "torch_side.py"), ...args], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`python3 torch_side.py failed:\n${r.stderr}`);
};

bn.manualSeed(1);
const input = bn.randn([2, 3, 32, 32]);
fs.writeFileSync(path.join(dir, "input.json"), JSON.stringify(Array.from(input.toFloat32Array())));
const logitsOf = (model) => bn.noGrad(() => bn.scope(() => Array.from(model.forward(input).toFloat32Array())));
const maxDiff = (a, b) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

// 1. budgetnet → PyTorch
const ours = bn.createModel("resnet20");
bn.noGrad(() =>
  bn.scope(() => {
    for (let i = 0; i < 3; i++) ours.forward(bn.randn([16, 3, 32, 32]));
  }),
); // BN statistics
ours.eval();
const ourFile = path.join(dir, "budgetnet.safetensors");
bn.saveSafetensors(ourFile, ours.stateDict());
torchSide("import", ourFile, path.join(dir, "input.json"), path.join(dir, "torch_logits.json"));
const d1 = maxDiff(logitsOf(ours), JSON.parse(fs.readFileSync(path.join(dir, "torch_logits.json"), "utf8")));
console.log(`budgetnet → PyTorch: ${ours.stateDict().size} tensors, max |logit difference| = ${d1.toExponential(2)}`);

// 2. PyTorch → budgetnet
const torchFile = path.join(dir, "pytorch.safetensors");
torchSide("export", torchFile, path.join(dir, "input.json"), path.join(dir, "torch_logits2.json"));
const theirs = bn.createModel("resnet20");
const { tensors, metadata } = bn.loadSafetensors(torchFile);
theirs.loadStateDict(tensors); // strict: every key and shape must fit
for (const t of tensors.values()) t.dispose();
theirs.eval();
const d2 = maxDiff(logitsOf(theirs), JSON.parse(fs.readFileSync(path.join(dir, "torch_logits2.json"), "utf8")));
console.log(
  `PyTorch → budgetnet: metadata ${JSON.stringify(metadata)}, max |logit difference| = ${d2.toExponential(2)}`,
);

ours.dispose();
theirs.dispose();
input.dispose();
fs.rmSync(dir, { recursive: true, force: true });
if (!(d1 < 1e-4 && d2 < 1e-4)) {
  console.error("the two sides disagree by more than 1e-4");
  process.exit(1);
}
