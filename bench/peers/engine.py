"""PyTorch peer of bench/engine.ts: the same CIFAR ResNet, batch, threads, data and SGD step.

Usage: /usr/bin/python3 bench/peers/engine.py '<EngineConfig JSON>'  -> one JSON line on stdout.
Written the way a PyTorch user writes a training loop (model(x), loss.backward(),
optimizer.step(), optimizer.zero_grad()); inference in eval mode under torch.no_grad().
"""
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resnet_cifar import ResNetCifar  # noqa: E402

DEPTHS = {"resnet20": 20, "resnet32": 32, "resnet44": 44, "resnet56": 56, "resnet110": 110}


def phase_timing(timed, batch):
    iter_ms, cpu_ms, faults = timed
    n = len(iter_ms)
    return {
        "iterMs": iter_ms,
        "imagesPerSecMean": batch * n / (sum(iter_ms) / 1000),
        "imagesPerSecMedian": batch / (statistics.median(iter_ms) / 1000),
        "cpuMsPerIter": cpu_ms / n,
        "minorFaultsPerIter": faults / n,
    }


def time_iterations(warmup, iters, step):
    for _ in range(warmup):
        step()
    out = []
    cpu0 = time.process_time()
    faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        out.append((time.perf_counter() - t0) * 1000)
    cpu_ms = (time.process_time() - cpu0) * 1000
    return out, cpu_ms, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0


def main(cfg):
    torch.set_num_threads(cfg["threads"])
    torch.manual_seed(cfg["seed"])
    model = ResNetCifar(depth=DEPTHS[cfg["model"]])
    x = torch.randn(cfg["batch"], 3, 32, 32)
    y = torch.randint(0, 10, (cfg["batch"],))
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"],
                          weight_decay=cfg["weightDecay"])

    model.train()

    def train_step():
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()

    train_ms = time_iterations(cfg["trainWarmup"], cfg["trainIters"], train_step)

    model.eval()

    def infer_step():
        with torch.no_grad():
            model(x)

    infer_ms = time_iterations(cfg["inferWarmup"], cfg["inferIters"], infer_step)
    return {
        "engine": "pytorch",
        "train": phase_timing(train_ms, cfg["batch"]),
        "infer": phase_timing(infer_ms, cfg["batch"]),
        "params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "threads": torch.get_num_threads(),
        "info": {"torchVersion": torch.__version__, "python": sys.version.split()[0],
                 "parallelInfo": torch.__config__.parallel_info()},
    }


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
