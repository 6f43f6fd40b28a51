"""The PyTorch side of the interchange example (see roundtrip.js).

  python3 torch_side.py export OUT.safetensors INPUT.json LOGITS.json
      builds the CIFAR ResNet-20 in PyTorch, saves its state dict as safetensors (the keys are
      budgetnet's too), and writes its eval-mode logits on the input.
  python3 torch_side.py import WEIGHTS.safetensors INPUT.json LOGITS.json
      loads budgetnet-saved weights into the same PyTorch network (strict) and writes its logits.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench", "peers"))
from resnet_cifar import ResNetCifar  # noqa: E402  (the PyTorch twin of src/models/resnet_cifar.ts)

import safetensors_torch  # noqa: E402


def main():
    mode, weights, input_json, logits_json = sys.argv[1:5]
    torch.manual_seed(0)
    model = ResNetCifar(depth=20, num_classes=10, in_channels=3)
    if mode == "export":
        # Give BatchNorm non-trivial running statistics so eval mode really uses them.
        model.train()
        with torch.no_grad():
            for _ in range(3):
                model(torch.randn(16, 3, 32, 32))
        safetensors_torch.save(weights, model.state_dict(), {"source": "pytorch"})
    elif mode == "import":
        state, _ = safetensors_torch.load(weights)
        model.load_state_dict(state, strict=True)
    else:
        raise SystemExit(f"unknown mode {mode}: use export or import")
    model.eval()
    x = torch.tensor(json.load(open(input_json)), dtype=torch.float32).reshape(2, 3, 32, 32)
    with torch.no_grad():
        logits = model(x)
    json.dump(logits.flatten().tolist(), open(logits_json, "w"))


if __name__ == "__main__":
    main()
