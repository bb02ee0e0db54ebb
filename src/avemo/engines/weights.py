"""Pretrained weights as data: where they come from, how to load them strictly, what input they expect.

Video: Hara et al.'s releases. 2017 (``resnet-101-kinetics.pth``, 400 Kinetics classes) expects 0-255 pixels
minus the ActivityNet mean; 2020 (``r3d101_K_200ep.pth`` 700 classes, ``r3d101_KM_200ep.pth`` 1039) expects
0-1 pixels normalised by mean and std. Both files are ``{"state_dict": {"module.<name>": tensor}, ...}``.
Audio: torchvision's ImageNet ResNet-18 (``resnet18-f37072fd.pth``, a plain state dict).

Files are read with ``torch.load(weights_only=True)``: a checkpoint is never unpickled as code.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from avemo.errors import AvemoError


class WeightsError(AvemoError):
    """Weights that cannot be used; the message names the file and what to do."""


@dataclass(frozen=True)
class Normalization:
    """``(pixel * scale - mean) / std`` per RGB channel, pixels in 0-255."""

    name: str
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


HARA_2017 = Normalization("hara2017", 1.0, (114.7748, 107.7354, 99.4750), (1.0, 1.0, 1.0))
HARA_2020 = Normalization("hara2020", 1 / 255, (0.4345, 0.4051, 0.3775), (0.2768, 0.2713, 0.2737))
NORMALIZATIONS = {n.name: n for n in (HARA_2017, HARA_2020)}
HARA_2017_CLASSES = 400  # the 2020 releases have 700 (K), 1039 (KM) or more classes

RANDOM = "random"
IMAGENET = "imagenet"
RANDOM_SEED = 0  # random weights are seeded so that a resumed extraction stays consistent


@dataclass(frozen=True)
class WeightsSpec:
    """Which weights a backbone runs, identified by the file's SHA-256 (``random-seed-0``: seeded random).

    ``path`` is where the file was read from (absolute), so that ``predict`` can find it again; it is not part
    of the identity (the same file elsewhere gives the same features), and neither are ``release`` (how the
    file was recognised) and ``classes`` (its classifier's width), which are for people.
    """

    sha256: str
    release: str  # hara2017 | hara2020 | torchvision-imagenet | state-dict | random
    path: str | None = None
    classes: int | None = None

    @property
    def random(self) -> bool:
        return self.release == RANDOM

    def describe(self) -> str:
        """``RANDOM``, or the file's name and short hash."""
        if self.random:
            return "RANDOM"
        return f"{Path(self.path).name if self.path else 'file not recorded'} (sha256 {self.sha256[:12]})"


def random_weights(classes: int) -> WeightsSpec:
    return WeightsSpec(f"random-seed-{RANDOM_SEED}", RANDOM, None, classes)


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def warn_random(what: str) -> None:
    warnings.warn(f"RANDOM {what} WEIGHTS: features carry no pretrained knowledge; use them only for demos "
                  "and tests", UserWarning, stacklevel=3)


def read_state_dict(path: Path, hint: str) -> dict[str, torch.Tensor]:
    """Load a checkpoint safely and return its state dict with any ``module.`` prefix removed."""
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found; {hint}")
    if path.stat().st_size == 0:
        raise WeightsError(f"{path}: weights file is empty; download it again ({hint})")
    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for a damaged or foreign file
        raise WeightsError(f"{path}: not a readable PyTorch checkpoint (corrupt, truncated or not weights: "
                           f"{type(err).__name__}); download it again ({hint})") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path}: holds no state dict of tensors; {hint}")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in obj.items()}


def load_strict(model: nn.Module, state: dict[str, torch.Tensor], path: Path, what: str) -> None:
    """Load ``state`` into ``model`` strictly; on mismatch raise one line naming the keys at fault.

    Missing ``num_batches_tracked`` buffers are allowed: checkpoints from PyTorch < 0.4.1 (Hara 2017) have
    none, and BatchNorm does not use them in eval mode.
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
             if k in state and state[k].shape != v.shape]
    if missing or unexpected or wrong:
        parts = [f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})" if missing else "",
                 f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})" if unexpected else "",
                 f"{len(wrong)} shape mismatches (e.g. {'; '.join(wrong[:2])})" if wrong else ""]
        raise WeightsError(f"{path}: not {what} weights: " + ", ".join(p for p in parts if p))
    for key in expected:
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros((), dtype=torch.long)
    model.load_state_dict(state, strict=True)
