"""An independent forward pass of Hara et al.'s 3D ResNet written with torch.nn.functional over a raw state dict.

It shares no code with ``avemo.engines.resnet3d``, so agreement checks the module layout, the key names,
strides, paddings and shortcut B all at once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _bn(x: torch.Tensor, sd: dict, prefix: str) -> torch.Tensor:
    return F.batch_norm(x, sd[f"{prefix}.running_mean"], sd[f"{prefix}.running_var"], sd[f"{prefix}.weight"],
                        sd[f"{prefix}.bias"], training=False, momentum=0.0, eps=1e-5)


def hara_layer4(sd: dict, x: torch.Tensor, layers: list[int], bottleneck: bool) -> torch.Tensor:
    """layer4 output for normalised input ``x`` (N, 3, T, H, W)."""
    kt = sd["conv1.weight"].shape[2]
    x = F.conv3d(x, sd["conv1.weight"], stride=(1, 2, 2), padding=(kt // 2, 3, 3))
    x = F.max_pool3d(F.relu(_bn(x, sd, "bn1")), kernel_size=3, stride=2, padding=1)
    for stage, blocks in enumerate(layers, start=1):
        for b in range(blocks):
            p = f"layer{stage}.{b}"
            stride = 2 if stage > 1 and b == 0 else 1
            if bottleneck:
                out = F.relu(_bn(F.conv3d(x, sd[f"{p}.conv1.weight"]), sd, f"{p}.bn1"))
                out = F.relu(_bn(F.conv3d(out, sd[f"{p}.conv2.weight"], stride=stride, padding=1), sd, f"{p}.bn2"))
                out = _bn(F.conv3d(out, sd[f"{p}.conv3.weight"]), sd, f"{p}.bn3")
            else:
                out = F.relu(_bn(F.conv3d(x, sd[f"{p}.conv1.weight"], stride=stride, padding=1), sd, f"{p}.bn1"))
                out = _bn(F.conv3d(out, sd[f"{p}.conv2.weight"], padding=1), sd, f"{p}.bn2")
            if f"{p}.downsample.0.weight" in sd:
                x = _bn(F.conv3d(x, sd[f"{p}.downsample.0.weight"], stride=stride), sd, f"{p}.downsample.1")
            x = F.relu(out + x)
    return x
