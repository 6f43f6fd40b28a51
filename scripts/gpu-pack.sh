#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh needs on a GPU machine that may lack Node and the network, into
# .gpu/ (git-ignored): this machine's Node binary (xz), Node's N-API headers, node-addon-api and
# the Fashion-MNIST files. Then send the repository with dist/ and .gpu/ (about 60 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .gpu && mkdir -p .gpu/node-include/include/node .gpu/data/fashion-mnist
xz -T2 -6 -c "$(readlink -f "$(command -v node)")" >.gpu/node.xz
inc="$(dirname "$(readlink -f "$(command -v node)")")/../include/node"
[ -f "$inc/node_api.h" ] || inc=/usr/include/node
cp "$inc"/node_api*.h "$inc"/js_native_api*.h "$inc"/node_version.h .gpu/node-include/include/node/
cp -r node_modules/node-addon-api .gpu/
data=${BUDGETNET_DATA:-$HOME/.cache/budgetnet}/fashion-mnist
[ -f "$data/t10k-labels-idx1-ubyte.gz" ] || data=/usr/share/datasets/fashion-mnist
cp "$data"/*-ubyte.gz .gpu/data/fashion-mnist/
du -sh .gpu
