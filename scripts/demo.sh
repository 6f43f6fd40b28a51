#!/usr/bin/env bash
# The main job: set up, train the demo recipe on Fashion-MNIST, evaluate on the test set.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh  # npm ci inside also compiles the TypeScript (prepare)
run="runs/fashion-mnist-quick-$(date +%Y%m%d-%H%M%S)"
start=$(date +%s)
node bin/budgetnet.js train --recipe fashion-mnist-quick --out "$run"
node bin/budgetnet.js eval --run "$run" --split test
echo "train + test evaluation: $(( $(date +%s) - start )) s (run folder: $run)"
