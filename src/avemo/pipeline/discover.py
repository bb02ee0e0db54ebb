"""One entry point from a folder and a dataset name to clip records."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from avemo.pipeline import cremad, ravdess
from avemo.pipeline.clips import Discovery

DatasetName = Literal["ravdess", "cremad"]


def discover(root: Path, dataset: DatasetName = "ravdess",
             vocal_channels: tuple[str, ...] = ("speech", "song")) -> Discovery:
    """Turn a dataset folder into clip records (sorted by clip id) and the files skipped with reasons."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder; point avemo at the folder that holds the dataset")
    if dataset == "ravdess":
        found = ravdess.discover(root, vocal_channels)
    elif dataset == "cremad":
        found = cremad.discover(root)
    else:
        raise ValueError(f"unknown dataset {dataset!r}; choose ravdess or cremad")
    found.clips.sort(key=lambda clip: clip.clip_id)
    return found
