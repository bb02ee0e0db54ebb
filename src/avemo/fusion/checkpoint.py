"""Fold checkpoints (``best.pt``, ``last.pt``): the one writer and the one reader every command uses.

A damaged file (a text file or an image saved under the name, a copy cut short, a checkpoint of another model
configuration or of another avemo format) must give one line naming the file and what to do, never a
traceback. Files are read with ``torch.load(weights_only=True)``: nothing in them is executed.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any, Literal

import torch

from avemo.errors import AvemoError
from avemo.files import atomic_write
from avemo.fusion.model import FusionConfig, FusionModel

FORMAT = "avemo-checkpoint/1"
Kind = Literal["best", "last", "best-so-far"]
# What each kind must hold (checkpoints written before the format tag existed hold exactly these).
REQUIRED: dict[str, set[str]] = {
    "best": {"model", "centroids", "config"},
    "last": {"model", "optimizer", "scheduler", "rng", "state", "config", "fold"},
    "best-so-far": {"model", "config"},  # the best weights while a fold still trains
}
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's container (a zip archive) since PyTorch 1.6


class CheckpointError(AvemoError, ValueError):
    """A fold checkpoint that cannot be used; the message is one line naming the file and what to do.

    A ``ValueError``, so the commands that already report bad settings in one line report it too.
    """


def save_checkpoint(obj: dict[str, Any], path: Path, kind: Kind) -> None:
    """Write a fold checkpoint atomically, tagged with its format and kind so a reader can tell them apart."""
    buffer = io.BytesIO()
    torch.save({**obj, "format": FORMAT, "kind": kind}, buffer)
    atomic_write(path, buffer.getvalue())


def _what_to_do(path: Path, kind: Kind) -> str:
    if kind == "last":
        return (f"delete the fold's folder {path.parent} to train that fold again with --resume, "
                "or start a new --run")
    return f"delete the fold's folder {path.parent} and run avemo train --resume on the run, or use another run"


def load_checkpoint(path: Path, kind: Kind) -> dict[str, Any]:
    """Read and check a fold checkpoint of ``kind``; raise :class:`CheckpointError` for anything unusable.

    Checked: it is a PyTorch file, whole, holds only tensors and plain data, is a fold checkpoint of this
    format and kind, and its weights fit the model configuration it records.
    """
    todo = _what_to_do(path, kind)
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError as err:
        raise CheckpointError(f"{path}: cannot be read ({err.strerror or err}); {todo}") from None
    if head != ZIP_MAGIC:
        what = "empty" if not head else f"starts with {head!r}"
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (file {what}); {todo}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # weights_only refused an object: never unpickle it
        raise CheckpointError(f"{path}: holds objects other than tensors and plain data, so it was not loaded "
                              f"(avemo writes none); {todo}") from None
    except (RuntimeError, zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError):
        raise CheckpointError(f"{path}: truncated or damaged (the archive cannot be read); {todo}") from None
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path}: a PyTorch file but not an avemo fold checkpoint (holds a "
                              f"{type(checkpoint).__name__}); {todo}")
    found = checkpoint.get("format", FORMAT)  # untagged: written before the tag, same layout
    if found != FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {found!r}, this avemo reads {FORMAT}; {todo}")
    if checkpoint.get("kind", kind) != kind:
        raise CheckpointError(f"{path}: a {checkpoint['kind']}.pt checkpoint saved under another name; {todo}")
    missing = REQUIRED[kind] - set(checkpoint)
    if missing:
        raise CheckpointError(f"{path}: not an avemo {kind}.pt checkpoint (lacks {', '.join(sorted(missing))}); "
                              f"{todo}")
    build_model(checkpoint, path, todo)
    return checkpoint


INPUT_STATISTICS = ("video_norm", "audio_norm")  # the model's Standardize modules


def has_input_statistics(weights: dict[str, Any]) -> bool:
    """Whether a state dict carries the input standardisation (checkpoints written since 2026-11-30 do)."""
    return any(key.split(".")[0] in INPUT_STATISTICS for key in weights)


def build_model(checkpoint: dict[str, Any], path: Path, todo: str = "train the fold again") -> FusionModel:
    """The fusion model of the configuration a checkpoint records, with its weights (strictly loaded)."""
    try:
        config = FusionConfig(**checkpoint["config"]["model"])
        with torch.random.fork_rng(devices=[]):  # building initialises weights: leave a resumed run's RNG alone
            model = FusionModel(config)
    except (TypeError, KeyError, ValueError) as err:
        raise CheckpointError(f"{path}: from another model configuration ({' '.join(str(err).split())}); "
                              f"{todo}") from None
    weights = checkpoint["model"]
    if not isinstance(weights, dict):
        raise CheckpointError(f"{path}: its model weights are not a state dict; {todo}")
    expected = model.state_dict()
    if not has_input_statistics(weights):
        # Written before avemo standardised the model's inputs: that model saw raw features, which is exactly
        # what the identity statistics of a fresh Standardize give it. Any other missing key is an error below.
        weights = {**weights, **{k: v for k, v in expected.items() if k.split(".")[0] in INPUT_STATISTICS}}
    wrong = sorted(k for k in expected.keys() & weights.keys()
                   if not isinstance(weights[k], torch.Tensor) or weights[k].shape != expected[k].shape)
    missing, unexpected = sorted(expected.keys() - weights.keys()), sorted(weights.keys() - expected.keys())
    if wrong or missing or unexpected:
        parts = [f"{name} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                 for name, keys in (("other shapes:", wrong), ("missing:", missing), ("unexpected:", unexpected))
                 if keys]
        raise CheckpointError(f"{path}: weights from another model configuration than the one it records "
                              f"({'; '.join(parts)}); {todo}")
    model.load_state_dict(weights)
    return model
