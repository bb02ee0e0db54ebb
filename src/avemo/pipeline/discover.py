"""One entry point from a folder and a dataset name to clip records."""

from __future__ import annotations

from pathlib import Path

from avemo.pipeline import cremad, ravdess
from avemo.choices import Dataset
from avemo.pipeline.clips import Discovery

def discover(root: Path, dataset: str = Dataset.ravdess.value,
             vocal_channels: tuple[str, ...] = ("speech", "song")) -> Discovery:
    """Turn a dataset folder into clip records (sorted by clip id) and the files skipped with reasons."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder; point avemo at the folder that holds the dataset")
    dataset = Dataset.check(dataset, "dataset")
    found = ravdess.discover(root, vocal_channels) if dataset == Dataset.ravdess else cremad.discover(root)
    found.clips.sort(key=lambda clip: clip.clip_id)
    return found
