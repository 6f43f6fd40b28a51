"""PyTorch peers of budgetnet's ResNets, loading budgetnet's safetensors files.

Reads stdin JSON {"family", "config", "weights", "input"} and prints {"logits", "keys"}: the
eval-mode logits of the PyTorch network built from `config`, with the weights of the
safetensors file `weights` (strict load), on the tensor "x" of the safetensors file `input`.
  family "resnet_cifar": src/models/resnet_cifar.ts, via the engine benchmark's peer
                         (bench/peers/resnet_cifar.py), config = its constructor's options.
  family "resnet":       src/models/resnet_network.ts (preact_resnet, resnet_imagenet,
                         efficient_resnet), config = ResNet.toConfig(), written here.
The safetensors reader is written by hand from the format (8-byte little-endian header length,
JSON header, raw little-endian bytes) so the test does not lean on budgetnet's own reader.
"""
import json
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "peers"))
from resnet_cifar import ResNetCifar, SqueezeExcite  # noqa: E402
from speednet import from_plan as speednet_from_plan  # noqa: E402

DTYPES = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16,
          "I64": torch.int64, "I32": torch.int32, "U8": torch.uint8, "BOOL": torch.bool}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    body = data[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = DTYPES[info["dtype"]]
        raw = bytearray(body[start:end])
        t = torch.frombuffer(raw, dtype=dtype) if len(raw) > 0 else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"]).clone()
    return out


def conv(cin, cout, k, stride=1):
    return nn.Conv2d(cin, cout, k, stride, k // 2, bias=False)


class Block(nn.Module):
    """Basic or bottleneck, post- or pre-activation, as resnet_blocks.ts."""

    def __init__(self, kind, preact, cin, planes, stride, k, skip_k, se, drop):
        super().__init__()
        self.kind, self.preact = kind, preact
        out = planes * (4 if kind == "bottleneck" else 1)
        self.downsample = None
        if stride != 1 or cin != out:
            layers = [conv(cin, out, skip_k, stride)] + ([] if preact else [nn.BatchNorm2d(out)])
            self.downsample = nn.Sequential(*layers)
        if kind == "basic":
            shapes = [(cin, planes, k, stride), (planes, planes, k, 1)]
        else:
            shapes = [(cin, planes, 1, 1), (planes, planes, k, stride), (planes, out, 1, 1)]
        for i, (a, b, kk, s) in enumerate(shapes, 1):
            setattr(self, f"conv{i}", conv(a, b, kk, s))
            setattr(self, f"bn{i}", nn.BatchNorm2d(a if preact else b))
        self.n = len(shapes)
        self.se = SqueezeExcite(out, se) if se > 0 else None
        self.dropout = nn.Dropout(drop) if drop > 0 else None

    def forward(self, x):
        if self.preact:
            pre = F.relu(self.bn1(x))
            shortcut = x if self.downsample is None else self.downsample(pre)
            out = self.conv1(pre)
            for i in range(2, self.n + 1):
                out = getattr(self, f"conv{i}")(F.relu(getattr(self, f"bn{i}")(out)))
        else:
            shortcut = x if self.downsample is None else self.downsample(x)
            out = x
            for i in range(1, self.n + 1):
                out = getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(out))
                if i < self.n:
                    out = F.relu(out)
        if self.se is not None:
            out = self.se(out)
        out = out + shortcut
        if not self.preact:
            out = F.relu(out)
        return out if self.dropout is None else self.dropout(out)


class ResNet(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.conv1 = conv(c["inChannels"], c["stemWidth"], 3)
        if not c["preact"]:
            self.bn1 = nn.BatchNorm2d(c["stemWidth"])
        if c["seStemReduction"] > 0:
            self.se = SqueezeExcite(c["stemWidth"], c["seStemReduction"])
        ch = c["stemWidth"]
        for i, (n, planes) in enumerate(zip(c["layers"], c["widths"])):
            blocks = []
            for j in range(n):
                blocks.append(Block(c["block"], c["preact"], ch, planes, 2 if (i > 0 and j == 0) else 1,
                                    c["kernelSizes"][i], c["skipKernelSizes"][i], c["seReduction"], c["dropout"]))
                ch = planes * (4 if c["block"] == "bottleneck" else 1)
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        if c["finalNorm"]:
            self.final_bn = nn.BatchNorm2d(ch)
        if c["dropout"] > 0:
            self.dropout = nn.Dropout(c["dropout"])
        h = c["imageSize"]
        for k in c["kernelSizes"][1:]:
            h = (h + 2 * (k // 2) - k) // 2 + 1
        pooled = 1 if c["poolSize"] == 0 else (h - c["poolSize"]) // c["poolSize"] + 1
        self.fc = nn.Linear(ch * pooled * pooled, c["numClasses"])

    def forward(self, x):
        c = self.c
        x = self.conv1(x)
        if not c["preact"]:
            x = F.relu(self.bn1(x))
        if c["seStemReduction"] > 0:
            x = self.se(x)
        for i in range(len(c["layers"])):
            x = getattr(self, f"layer{i + 1}")(x)
        if c["finalNorm"]:
            x = F.relu(self.final_bn(x))
        x = F.adaptive_avg_pool2d(x, 1) if c["poolSize"] == 0 else F.avg_pool2d(x, c["poolSize"])
        x = torch.flatten(x, 1)
        if c["dropout"] > 0:
            x = self.dropout(x)
        return self.fc(x)


def main():
    req = json.load(sys.stdin)
    torch.set_num_threads(1)
    cfg = req["config"]
    if req["family"] == "speednet":
        model = speednet_from_plan(cfg)
    else:
        model = ResNetCifar(**cfg) if req["family"] == "resnet_cifar" else ResNet(cfg)
    model.load_state_dict(read_safetensors(req["weights"]), strict=True)
    model.eval()
    x = read_safetensors(req["input"])["x"]
    with torch.no_grad():
        logits = model(x)
    print(json.dumps({"logits": logits.flatten().tolist(), "keys": list(model.state_dict().keys())}))


if __name__ == "__main__":
    main()
