"""PyTorch eager peer of the Fashion-MNIST recipes (fashion-mnist-quick, fashion-mnist-speedrun): the
same network (ResNet-20 or SpeedNet), optimizer, one-cycle schedule (momentum cycled only where the
recipe says so), augmentation, label smoothing, flip TTA and validation split, trained the way a
PyTorch user would (in-memory tensors, augmentation with torch ops). Prints one JSON line with time
and accuracies.

With --precision bf16 (CPU autocast) and --channels-last it is PyTorch at its best on CPUs with
native bfloat16; --precision auto picks bf16 where /proc/cpuinfo shows it (as budgetnet's
"auto" does) and float32 elsewhere. --train-subset N trains on the first N training images (a
quick check of the harness). Each epoch prints its training seconds (validation excluded).

With --device cuda the data sits on the GPU from the start and is augmented there in one batched
gather per step (crop offsets and flips drawn on the GPU), as a PyTorch user would train a small
network on a GPU; --precision auto is then bf16. The epoch times wait for the GPU (synchronize).

usage: python3 fashion_mnist.py RECIPE.json [--threads N] [--epochs E] [--precision fp32|bf16|auto]
                                [--channels-last] [--train-subset N] [--seed S] [--device cpu|cuda]
"""
import argparse
import gzip
import json
import os
import struct
import time

import numpy as np
import torch
import torch.nn.functional as F

from resnet_cifar import ResNetCifar  # the same network as src/models/resnet_cifar.ts (bench/peers/)
from speednet import SpeedNet  # the same network as src/models/speednet.ts (bench/peers/)

ROOT = (os.path.join(os.environ["BUDGETNET_DATA"], "fashion-mnist")
        if os.path.exists(os.path.join(os.environ.get("BUDGETNET_DATA", "/nonexistent"), "fashion-mnist",
                                       "t10k-labels-idx1-ubyte.gz"))
        else "/usr/share/datasets/fashion-mnist")


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    if magic == 0x803:
        rows, cols = struct.unpack(">II", data[8:16])
        return np.frombuffer(data, np.uint8, offset=16).reshape(n, 1, rows, cols)
    return np.frombuffer(data, np.uint8, offset=8).astype(np.int64)


def augment(x, pad, flip, gen):
    n, c, h, w = x.shape
    if pad:
        xp = F.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        x = torch.stack([xp[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    if flip:
        mask = torch.rand(n, generator=gen) < 0.5
        x = torch.where(mask[:, None, None, None], x.flip(3), x)
    return x


def augment_batched(x, pad, flip, gen):
    """The same crop+flip as augment(), drawn and applied on x's device in a few batched ops."""
    n, c, h, w = x.shape
    dev = x.device
    if pad:
        xp = F.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen, device=dev)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen, device=dev)
        iy = dy[:, None] + torch.arange(h, device=dev)
        ix = dx[:, None] + torch.arange(w, device=dev)
        x = xp[torch.arange(n, device=dev)[:, None, None], :, iy[:, :, None], ix[:, None, :]].permute(0, 3, 1, 2)
    if flip:
        mask = torch.rand(n, generator=gen, device=dev) < 0.5
        x = torch.where(mask[:, None, None, None], x.flip(3), x)
    return x


def evaluate(model, x, y, mean, std, tta=False, layout=torch.contiguous_format, bs=256):
    """Accuracy; with tta the mean of the softmax outputs on each image and its mirror (as budgetnet)."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), bs):
            dev = next(model.parameters()).device
            xb = ((x[i:i + bs].to(dev).float() / 255 - mean) / std).contiguous(memory_format=layout)
            p = model(xb).softmax(1)
            if tta:
                p = (p + model(xb.flip(3)).softmax(1)) / 2
            correct += (p.argmax(1) == y[i:i + bs].to(dev)).sum().item()
    model.train()
    return correct / len(x)


def build_model(r):
    """The recipe's network: resnet20 or speednet (with its modelOptions), one input channel."""
    name, opts = r.get("model", "resnet20"), r.get("modelOptions", {})
    if name == "resnet20":
        return ResNetCifar(depth=20, in_channels=1)
    if name == "speednet":
        return SpeedNet(in_channels=1, stem_width=opts.get("stemWidth", 16), widths=opts.get("widths", (32, 64, 128)),
                        convs_per_block=opts.get("convsPerBlock", 2), activation=opts.get("activation", "relu"))
    raise SystemExit(f"fashion_mnist.py: the peer builds resnet20 and speednet, not {name}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("recipe")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--precision", choices=["fp32", "bf16", "auto"], default="fp32")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--train-subset", type=int, default=None)
    ap.add_argument("--seed", type=int, default=None, help="instead of the recipe's seed")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = ap.parse_args()
    cuda = args.device == "cuda"
    precision = args.precision
    if precision == "auto" and cuda:
        precision = "bf16"
    elif precision == "auto":
        flags = open("/proc/cpuinfo").read()
        precision = "bf16" if any(f in flags.split() for f in ("avx512_bf16", "amx_bf16", "bf16")) else "fp32"
    layout = torch.channels_last if args.channels_last else torch.contiguous_format
    r = json.load(open(args.recipe))
    torch.set_num_threads(args.threads)
    seed = args.seed if args.seed is not None else r.get("seed", 0)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)

    t0 = time.time()
    xtr = torch.from_numpy(read_idx(f"{ROOT}/train-images-idx3-ubyte.gz").copy())
    ytr = torch.from_numpy(read_idx(f"{ROOT}/train-labels-idx1-ubyte.gz").copy())
    xte = torch.from_numpy(read_idx(f"{ROOT}/t10k-images-idx3-ubyte.gz").copy())
    yte = torch.from_numpy(read_idx(f"{ROOT}/t10k-labels-idx1-ubyte.gz").copy())
    perm = torch.randperm(len(xtr), generator=gen)
    nval = int(round(len(xtr) * r.get("valFraction", 0.1)))
    xval, yval = xtr[perm[:nval]], ytr[perm[:nval]]
    xtr, ytr = xtr[perm[nval:]], ytr[perm[nval:]]
    if args.train_subset is not None:
        xtr, ytr = xtr[: args.train_subset], ytr[: args.train_subset]
    mean = (xtr.float() / 255).mean().item()
    std = (xtr.float() / 255).std().item()

    model = build_model(r).to(device=args.device, memory_format=layout)
    if cuda:
        xtr, ytr = xtr.to(args.device), ytr.to(args.device)
        gen = torch.Generator(device=args.device).manual_seed(seed)
    o = r["optimizer"]
    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    groups = [{"params": decay, "weight_decay": o["weightDecay"]}, {"params": no_decay, "weight_decay": 0.0}]
    opt = torch.optim.SGD(groups, lr=o["lr"], momentum=o.get("momentum", 0.9), nesterov=o.get("nesterov", False))
    epochs = args.epochs or r["epochs"]
    bs = r["batchSize"]
    steps_per_epoch = len(xtr) // bs
    s = r.get("schedule", {})
    # budgetnet's onecycle keeps the optimizer's momentum unless the recipe cycles it (OneCycleLR's
    # own default cycles it: the peer follows the recipe, not PyTorch's default)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=o["lr"], total_steps=epochs * steps_per_epoch, pct_start=s.get("pctStart", 0.3),
        cycle_momentum=s.get("cycleMomentum", False), base_momentum=s.get("baseMomentum", 0.85),
        max_momentum=s.get("maxMomentum", 0.95))
    aug = r.get("augment", {})
    # a recipe's augment fields left out take budgetnet's defaults (crop padding 4, flip); null is off
    crop = aug.get("crop", {"padding": 4})
    pad = crop.get("padding", 4) if crop else 0
    flip = aug.get("flip", True)
    ls = r.get("labelSmoothing", 0.0)
    tta = r.get("tta", False)

    setup_s = time.time() - t0
    t1 = time.time()
    epoch_seconds = []
    for epoch in range(epochs):
        te = time.time()
        model.train()
        order = torch.randperm(len(xtr), generator=gen, device=xtr.device)
        for b in range(steps_per_epoch):
            idx = order[b * bs:(b + 1) * bs]
            xb = (augment_batched if cuda else augment)(xtr[idx].float() / 255, pad, flip, gen)
            xb = ((xb - mean) / std).contiguous(memory_format=layout)
            with torch.autocast(args.device, dtype=torch.bfloat16, enabled=precision == "bf16"):
                out = model(xb)
            loss = F.cross_entropy(out.float(), ytr[idx], label_smoothing=ls)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        if cuda:
            torch.cuda.synchronize()
        epoch_seconds.append(time.time() - te)
        val_acc = evaluate(model, xval, yval, mean, std, tta, layout)
        print(json.dumps({"epoch": epoch + 1, "valAccuracy": val_acc, "seconds": time.time() - t1,
                          "trainSeconds": epoch_seconds[-1]}), flush=True)
    train_s = time.time() - t1
    t2 = time.time()
    test_acc = evaluate(model, xte, yte, mean, std, tta, layout)
    eval_s = time.time() - t2
    print(json.dumps({"result": True, "setupSeconds": setup_s, "trainSeconds": train_s, "evalSeconds": eval_s,
                      "totalSeconds": train_s + eval_s, "valAccuracy": val_acc, "testAccuracy": test_acc,
                      "epochs": epochs, "threads": args.threads, "torch": torch.__version__,
                      "precision": precision, "channelsLast": args.channels_last, "epochSeconds": epoch_seconds,
                      "trainImages": len(xtr), "device": torch.cuda.get_device_name() if cuda else "cpu", "imagesPerSec": steps_per_epoch * bs * epochs / sum(epoch_seconds)}),
          flush=True)


if __name__ == "__main__":
    main()
