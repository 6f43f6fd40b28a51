"""PyTorch peer of bench/cpu.ts: one model, one setting, training and inference images/s.

Usage: /usr/bin/python3 bench/peers/cpu.py '<JSON>'  -> one JSON line on stdout.
JSON: {model, config, setting: "default" | "best", shape: [C, H, W], batch, threads, warmup,
       trainIters, inferIters, seed, bf16}. With no iterations it only builds the model (its parameters).
  default: eager float32, contiguous NCHW, torch.no_grad() for inference (what a user writes).
  best:    channels_last model and input, torch.inference_mode() for inference (PyTorch's CPU
           performance guide), and with bf16: true torch.autocast("cpu", torch.bfloat16) around
           forward and loss. bench/cpu.ts runs it both ways where the CPU has native bfloat16 and
           takes the faster per phase (float32 only where bf16 is emulated and slower).
The ResNet-family nets (resnet20/56: He et al.'s CIFAR ResNet; efficient_resnet and
preact_resnet164: built from budgetnet's ResNet.toConfig(), passed in `config`) come from the
parity-tested peers; MobileNetV2 (CIFAR strides) is written here after src/models/mobilenet.ts.
Every net takes shape's C input channels (resnet20/56, mobilenetv2 here; the others through the
config, which also carries efficient_resnet's imageSize and poolSize as budgetnet sized them).
"""
import importlib.util
import json
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from resnet_cifar import ResNetCifar  # noqa: E402


def load_family_peer():
    path = os.path.join(HERE, "..", "..", "test", "peers", "resnet_cifar.py")
    spec = importlib.util.spec_from_file_location("resnet_family_peer", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def make_divisible(v, divisor=8):
    rounded = max(divisor, int((v + divisor / 2) // divisor) * divisor)
    return rounded + divisor if rounded < 0.9 * v else rounded


class ReLU6(nn.Module):
    """ReLU6 as clamp: PyTorch 1.13's nn.ReLU6 (hardtanh) has no bfloat16 backward on the CPU
    ("hardshrink_backward_cpu" not implemented for 'BFloat16'), so bf16 autocast training of a
    ReLU6 net fails; clamp's backward exists. What a user at their best writes on this PyTorch."""

    def forward(self, x):
        return torch.clamp(x, 0, 6)


class ConvBnAct(nn.Sequential):
    def __init__(self, cin, cout, k, stride=1, groups=1, act=True):
        layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
        if act:
            layers.append(ReLU6())
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin, exp, cout, stride):
        super().__init__()
        self.expand = ConvBnAct(cin, exp, 1) if exp != cin else None
        self.depthwise = ConvBnAct(exp, exp, 3, stride, groups=exp)
        self.project = ConvBnAct(exp, cout, 1, act=False)
        self.use_residual = stride == 1 and cin == cout

    def forward(self, x):
        y = x if self.expand is None else self.expand(x)
        y = self.project(self.depthwise(y))
        return x + y if self.use_residual else y


class MobileNetV2Cifar(nn.Module):
    """Sandler et al. 2018, Table 2; stem and the first stride-2 stage at stride 1 for 32x32."""

    STAGES = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

    def __init__(self, num_classes=10, dropout=0.2, in_channels=3):
        super().__init__()
        c = make_divisible(32)
        self.stem = ConvBnAct(in_channels, c, 3, 1)
        blocks = []
        for t, out, n, s in self.STAGES:
            for i in range(n):
                blocks.append(InvertedResidual(c, round(c * t), out, s if i == 0 else 1))
                c = out
        self.blocks = nn.Sequential(*blocks)
        self.head = ConvBnAct(c, 1280, 1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(1280, num_classes))

    def forward(self, x):
        y = self.head(self.blocks(self.stem(x)))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))


def build(name, config, in_channels):
    depths = {"resnet20": 20, "resnet32": 32, "resnet44": 44, "resnet56": 56, "resnet110": 110}
    if name in depths:
        return ResNetCifar(depth=depths[name], in_channels=in_channels)
    if name == "mobilenetv2":
        return MobileNetV2Cifar(in_channels=in_channels)
    if config is None:
        raise SystemExit(f"cpu.py: model {name} needs its ResNet config from budgetnet")
    if config.get("inChannels", 3) != in_channels:
        raise SystemExit(f"cpu.py: {name}'s config has inChannels {config.get('inChannels')} but the input has {in_channels}")
    return load_family_peer().ResNet(config)


def time_iterations(warmup, iters, step, profile=None, shapes=False):
    """Times iters steps after warmup; with profile (a list), runs them under the operator
    profiler and appends its table (per operator: calls, total and self wall ms)."""
    for _ in range(warmup):
        step()
    out = []

    def timed():
        for _ in range(iters):
            t0 = time.perf_counter()
            step()
            out.append((time.perf_counter() - t0) * 1000)

    if profile is None:
        timed()
        return out
    with torch.autograd.profiler.profile(record_shapes=shapes) as prof:
        timed()
    rows = [
        {
            "name": e.key + (" " + str(e.input_shapes).replace(" ", "") if shapes and e.input_shapes else ""),
            "calls": e.count,
            "totalMs": e.cpu_time_total / 1000,
            "selfMs": e.self_cpu_time_total / 1000,
        }
        for e in prof.key_averages(group_by_input_shape=shapes)
    ]
    profile.extend(sorted(rows, key=lambda r: -r["selfMs"]))
    return out


def main(cfg):
    torch.set_num_threads(cfg["threads"])
    torch.manual_seed(cfg["seed"])
    best = cfg["setting"] == "best"
    bf16 = best and cfg.get("bf16", True)
    shape = cfg.get("shape", [3, 32, 32])
    model = build(cfg["model"], cfg.get("config"), shape[0])
    x = torch.randn(cfg["batch"], *shape)
    y = torch.randint(0, 10, (cfg["batch"],))
    if best:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    model.train()

    def train_step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()

    profiles = {"train": [], "infer": []} if cfg.get("profile") else {"train": None, "infer": None}
    shapes = cfg.get("profile") == "shapes"
    train_ms = (
        time_iterations(cfg["warmup"], cfg["trainIters"], train_step, profiles["train"], shapes) if cfg["trainIters"] > 0 else []
    )

    model.eval()

    def infer_step():
        if best:
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                model(x)
        else:
            with torch.no_grad():
                model(x)

    infer_ms = (
        time_iterations(cfg["warmup"], cfg["inferIters"], infer_step, profiles["infer"], shapes) if cfg["inferIters"] > 0 else []
    )
    extra = {"trainProfile": profiles["train"], "inferProfile": profiles["infer"]} if cfg.get("profile") else {}
    return {
        **extra,
        "engine": "pytorch-" + cfg["setting"],
        "trainMs": train_ms,
        "inferMs": infer_ms,
        "params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "threads": torch.get_num_threads(),
        "info": {"torchVersion": torch.__version__, "python": sys.version.split()[0]},
    }


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
