"""SpeedNet in PyTorch, layer for layer and key for key as src/models/speednet.ts: a 3x3
conv-BN-activation stem, then per width a 3x3 conv, a 2x2 max-pool, BN-activation and
(convs_per_block - 1) more 3x3 conv-BN-activation layers; a global max-pool and a linear
classifier. Convolutions have no bias; weights keep PyTorch's default initialization."""
import torch.nn as nn
import torch.nn.functional as F


def _act(activation):
    return nn.GELU() if activation == "gelu" else nn.ReLU(inplace=True)


def _conv(cin, cout):
    return nn.Conv2d(cin, cout, 3, padding=1, bias=False)


class SpeedNet(nn.Module):
    def __init__(self, in_channels=1, num_classes=10, stem_width=16, widths=(32, 64, 128), convs_per_block=2,
                 activation="relu"):
        super().__init__()
        self.stem = nn.Sequential(_conv(in_channels, stem_width), nn.BatchNorm2d(stem_width), _act(activation))
        blocks = []
        cin = stem_width
        for w in widths:
            layers = [_conv(cin, w), nn.MaxPool2d(2), nn.BatchNorm2d(w), _act(activation)]
            for _ in range(convs_per_block - 1):
                layers += [_conv(w, w), nn.BatchNorm2d(w), _act(activation)]
            blocks.append(nn.Sequential(*layers))
            cin = w
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        x = F.max_pool2d(x, x.shape[2:])
        return self.fc(x.flatten(1))


def from_plan(plan):
    """The network of a budgetnet SpeedNet plan (speedNetPlan in src/models/speednet.ts)."""
    return SpeedNet(in_channels=plan["inChannels"], num_classes=plan["numClasses"], stem_width=plan["stemWidth"],
                    widths=plan["widths"], convs_per_block=plan["convsPerBlock"],
                    activation=plan.get("activation", "relu"))
