"""The 3D ResNets of Hara, Kataoka & Satoh (CVPR 2018), with the parameter names of their releases.

Both the 2017 (``resnet-101-kinetics.pth``) and 2020 (``r3d101_K_200ep.pth``) checkpoints use this layout:
a 7 x 7 x 7 stem with temporal stride 1 (the temporal kernel is read from the checkpoint), max pooling, four
stages and shortcut type B (1 x 1 x 1 projection + BN where the shape changes). ``forward_features``
returns layer4: (N, 2048, 1, 4, 4) for a 16 x 112 x 112 snippet and the bottleneck models.
"""

from __future__ import annotations

import torch
from torch import nn


def conv3x3x3(inplanes: int, planes: int, stride: int = 1) -> nn.Conv3d:
    return nn.Conv3d(inplanes, planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1x1(inplanes: int, planes: int, stride: int = 1) -> nn.Conv3d:
    return nn.Conv3d(inplanes, planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv3x3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = conv3x3x3(planes, planes)
        self.bn2 = nn.BatchNorm3d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv1x1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = conv3x3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = conv1x1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm3d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


Block = type[BasicBlock] | type[Bottleneck]


class ResNet3d(nn.Module):
    def __init__(self, block: Block, layers: list[int], num_classes: int = 400, conv1_t_size: int = 7) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv3d(3, 64, kernel_size=(conv1_t_size, 7, 7), stride=(1, 2, 2),
                               padding=(conv1_t_size // 2, 3, 3), bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        self.feature_channels = 512 * block.expansion
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, block: Block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm3d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, T, H, W) normalised snippets -> layer4 maps (N, C, T/16, H/32, W/32)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(self.forward_features(x)), 1))


ARCHITECTURES: dict[str, tuple[Block, list[int]]] = {
    "r3d10": (BasicBlock, [1, 1, 1, 1]),
    "r3d18": (BasicBlock, [2, 2, 2, 2]),
    "r3d34": (BasicBlock, [3, 4, 6, 3]),
    "r3d50": (Bottleneck, [3, 4, 6, 3]),
    "r3d101": (Bottleneck, [3, 4, 23, 3]),
    "r3d152": (Bottleneck, [3, 8, 36, 3]),
    "r3d200": (Bottleneck, [3, 24, 36, 3]),
}


def resnet3d(arch: str = "r3d101", num_classes: int = 400, conv1_t_size: int = 7) -> ResNet3d:
    """Build one of Hara's 3D ResNets by name (randomly initialised, as their code initialises it)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown video architecture {arch!r}; choose from {', '.join(ARCHITECTURES)}")
    block, layers = ARCHITECTURES[arch]
    return ResNet3d(block, layers, num_classes=num_classes, conv1_t_size=conv1_t_size)
