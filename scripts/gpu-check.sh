#!/usr/bin/env bash
# The GPU check of docs/gpu.md, as one script for a machine with an NVIDIA GPU, a pip PyTorch with
# CUDA in python3 (its torch/ folder is the libtorch) and g++, but maybe no Node, node-gyp or
# network. From the repository root, with dist/ built and .gpu/ prepared by scripts/gpu-pack.sh
# (a Node binary, Node's headers, node-addon-api, the Fashion-MNIST files):
#   1. builds the addon against the CUDA libtorch (scripts/build-addon-gpp.js),
#   2. runs the CUDA tests (test/gpu/cuda.test.ts),
#   3. times the step statistics read each step against 25 at a time (scripts/gpu-ab.js), then
#      benchmarks the demo recipe and the speedrun recipe on the GPU against the PyTorch peer
#      (npm run bench -- e2e --device cuda): bench/results/e2e-cuda*.json,
#   4. runs the tensor and nn tests on that build (informative: their PyTorch peer is the machine's).
# Everything it prints goes to $OUT/gpu-check.log too (OUT: a folder for results, default /tmp/gpu-check).
#   5. (only when asked: profile) the speedrun and demo recipes' first epochs under node --cpu-prof,
#      for where the main thread spends a step ($OUT/cpuprof/*.cpuprofile).
# usage: bash scripts/gpu-check.sh [build|test|bench|unit|profile ...]   (default: the first four)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu-check.log") 2>&1
steps=${*:-build test bench unit}
t0=$(date +%s)
stamp() { echo "== $(($(date +%s) - t0)) s: $*"; }

# Node: the machine's own when it is 20 or newer, else the packed binary
if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -lt 20 ]; then
  mkdir -p /tmp/gpu-node/bin
  python3 -c "import lzma,shutil;shutil.copyfileobj(lzma.open('.gpu/node.xz'),open('/tmp/gpu-node/bin/node','wb'))"
  chmod +x /tmp/gpu-node/bin/node
  export PATH=/tmp/gpu-node/bin:$PATH
fi
mkdir -p node_modules
[ -e node_modules/node-addon-api ] || cp -r .gpu/node-addon-api node_modules/
export BUDGETNET_DATA=$PWD/.gpu/data BUDGETNET_PYTHON=$(command -v python3)
LIBTORCH=$(python3 -c 'import os,torch;print(os.path.dirname(torch.__file__))')
export LIBTORCH
export TORCH_CXX11_ABI=$(python3 -c 'import torch;print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
# the CUDA libraries a pip PyTorch loads from its nvidia-* packages
LD_LIBRARY_PATH=$LIBTORCH/lib:$(python3 -c 'import glob,os,torch;print(":".join(sorted(glob.glob(os.path.join(os.path.dirname(os.path.dirname(torch.__file__)),"nvidia","*","lib")))))'):${LD_LIBRARY_PATH:-}
export LD_LIBRARY_PATH
stamp "node $(node -v), torch $(python3 -c 'import torch;print(torch.__version__, torch.cuda.get_device_name())'), g++ $(g++ -dumpversion), $(nproc) cores"

if [[ " $steps " == *" build "* ]]; then
  stamp build
  node scripts/build-addon-gpp.js --nodedir .gpu/node-include || {
    stamp "build failed"
    exit 1
  }
  node -e 'const b=require("./dist/src/tensor/tensor").buildInfo();console.log(JSON.stringify(b));process.exit(b.cuda?0:1)' || {
    ldd build/Release/budgetnet.node | grep -E "torch|c10|cuda"
    stamp "the addon sees no CUDA"
    exit 1
  }
fi

if [[ " $steps " == *" test "* ]]; then
  stamp "tests: CUDA"
  timeout 150 node --test --test-reporter=spec dist/test/gpu/cuda.test.js
  echo "cuda tests exit $?"
fi

if [[ " $steps " == *" bench "* ]]; then
  stamp "a/b: step statistics read each step vs 25 at a time"
  timeout 120 node scripts/gpu-ab.js
  stamp "bench: demo recipe on the GPU"
  timeout 200 node dist/bench/run.js e2e --device cuda
  stamp "bench: speedrun recipe on the GPU"
  timeout 160 node dist/bench/run.js e2e --device cuda --recipe fashion-mnist-speedrun
  cp bench/results/e2e-cuda*.json "$OUT/" 2>/dev/null
fi

if [[ " $steps " == *" unit "* ]]; then
  stamp "tests: tensor and nn on this libtorch"
  BUDGETNET_THREADS=2 timeout 100 node --test --test-concurrency=8 $(ls dist/test/tensor/*.test.js dist/test/nn/*.test.js) |
    grep -E "^# (tests|pass|fail|skipped)|^not ok" | head -40
fi
if [[ " $steps " == *" profile "* ]]; then
  for r in fashion-mnist-speedrun fashion-mnist-quick; do
    stamp "profile: $r, 2 epochs, under node --cpu-prof"
    rm -rf "/tmp/prof-$r"
    timeout 120 node --cpu-prof --cpu-prof-dir="$OUT/cpuprof" --cpu-prof-name="$r.cpuprofile" bin/budgetnet.js \
      train --recipe "$r" --device cuda --epochs 2 --out "/tmp/prof-$r" | grep -E "^epoch [0-9]+/[0-9]+:"
  done
fi
stamp done
