#!/usr/bin/env bash
# Sets up a fresh Debian machine (Node 20 present) for budgetnet: system packages, then npm ci
# (which builds the libtorch addon). Used by scripts/demo.sh and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# libtorch-dev: kernels and autograd; python3-torch: the PyTorch peer for parity tests and
# benchmarks; dataset-fashion-mnist: the embedded real data set; g++/make: the addon build;
# libdnnl-dev: the headers of the oneDNN that libtorch-dev already links, for the fused inference
# plan (native/plan.cc); libgloo-dev: Gloo's headers, for data-parallel training over the c10d that
# libtorch-dev ships (native/dist.cc); redis-server: the distributed search's queue (tests start their own).
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends \
  libtorch-dev libdnnl-dev libgloo-dev python3-torch python3-numpy dataset-fashion-mnist chromium redis-server g++ make python3 ca-certificates
export ONNXRUNTIME_NODE_INSTALL=skip
npm ci
