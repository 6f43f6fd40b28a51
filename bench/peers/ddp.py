"""PyTorch DistributedDataParallel peer of `npm run bench -- ddp`: ResNet-20 on Fashion-MNIST batches,
SGD with momentum, DDP over gloo (CPU), a DistributedSampler-style shard per rank, per-rank batch B.
Each rank times `steps` training steps after `warmup` and rank 0 prints one JSON line.

usage: RANK=r WORLD_SIZE=w MASTER_ADDR=127.0.0.1 MASTER_PORT=p python3 ddp.py --steps S --batch B --threads T
       (WORLD_SIZE=1 runs without a process group)
"""
import argparse
import json
import os
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F

from fashion_mnist import ROOT, read_idx
from resnet_cifar import ResNetCifar


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bucket-mb", type=float, default=25.0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    x = torch.from_numpy(read_idx(f"{ROOT}/train-images-idx3-ubyte.gz").copy())
    y = torch.from_numpy(read_idx(f"{ROOT}/train-labels-idx1-ubyte.gz").copy())
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    shard = perm[rank::world]
    model = ResNetCifar(depth=20, in_channels=1)
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model, bucket_cap_mb=args.bucket_mb)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    b = args.batch

    def step(i):
        idx = shard[(i * b) % (len(shard) - b):][:b]
        xb = (x[idx].float() / 255 - 0.286) / 0.353
        loss = F.cross_entropy(model(xb), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(args.warmup):
        step(i)
    if world > 1:
        dist.barrier()
    t0 = time.time()
    for i in range(args.steps):
        step(args.warmup + i)
    if world > 1:
        dist.barrier()
    seconds = time.time() - t0
    if rank == 0:
        params = sum(p.numel() for p in model.parameters())
        print(json.dumps({"imagesPerSec": world * b * args.steps / seconds, "seconds": seconds, "world": world,
                          "threads": args.threads, "bytesPerStep": 4 * params if world > 1 else 0,
                          "torch": torch.__version__}), flush=True)
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
