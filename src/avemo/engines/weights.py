"""Pretrained weights files: how to read them safely and load them strictly.

Video: Hara et al.'s releases, 2017 (``resnet-101-kinetics.pth``) and 2020 (``r3d101_K_200ep.pth``,
``r3d101_KM_200ep.pth``), both ``{"state_dict": {"module.<name>": tensor}, ...}``. Audio: torchvision's
ImageNet ResNet-18 (``resnet18-f37072fd.pth``, a plain state dict). What the weights are as data (their
normalisation, their identity) is in ``avemo.spec``.

Files are read with ``torch.load(weights_only=True)``: a checkpoint is never unpickled as code.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from avemo.errors import AvemoError


class WeightsError(AvemoError):
    """Weights that cannot be used; the message names the file and what to do."""


HARA_2017_CLASSES = 400  # the 2020 releases have 700 (K), 1039 (KM) or more classes


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
