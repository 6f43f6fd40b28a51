"""The CIFAR ResNet of He et al. 2015 (sec. 4.2) in PyTorch, with torchvision's state-dict keys.

The PyTorch peer of src/models/resnet_cifar.ts: the engine benchmark trains it, and the model
tests load budgetnet's weights into it and compare outputs.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class ZeroPadShortcut(nn.Module):
    """Option A: every other pixel, new channels zero-padded (split evenly), no parameters."""

    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.extra = planes - in_planes
        self.stride = stride

    def forward(self, x):
        x = x[:, :, :: self.stride, :: self.stride]
        before = self.extra // 2
        return F.pad(x, (0, 0, 0, 0, before, self.extra - before))


class SqueezeExcite(nn.Module):
    def __init__(self, channels, reduction):
        super().__init__()
        reduced = max(1, channels // reduction)
        self.fc1 = nn.Conv2d(channels, reduced, 1)
        self.act = nn.ReLU()
        self.fc2 = nn.Conv2d(reduced, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        return x * self.gate(self.fc2(self.act(self.fc1(s))))


class BasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride, shortcut, se):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.se = SqueezeExcite(planes, se) if se > 0 else None
        self.downsample = None
        if stride != 1 or in_planes != planes:
            if shortcut == "A":
                self.downsample = ZeroPadShortcut(in_planes, planes, stride)
            else:
                self.downsample = nn.Sequential(
                    nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
                )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.se is not None:
            out = self.se(out)
        return self.relu(out + identity)


class ResNetCifar(nn.Module):
    def __init__(self, depth=20, num_classes=10, in_channels=3, shortcut="B", se=0, width=1.0):
        super().__init__()
        assert (depth - 2) % 6 == 0, "depth must be 6n+2"
        n = (depth - 2) // 6
        w = [max(1, round(c * width)) for c in (16, 32, 64)]
        self.conv1 = nn.Conv2d(in_channels, w[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w[0])
        self.relu = nn.ReLU(inplace=True)

        def stage(in_planes, planes, stride):
            blocks = [BasicBlock(in_planes if j == 0 else planes, planes, stride if j == 0 else 1, shortcut, se)
                      for j in range(n)]
            return nn.Sequential(*blocks)

        self.layer1 = stage(w[0], w[0], 1)
        self.layer2 = stage(w[0], w[1], 2)
        self.layer3 = stage(w[1], w[2], 2)
        self.fc = nn.Linear(w[2], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)
