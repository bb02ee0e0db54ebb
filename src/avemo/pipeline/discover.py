"""One entry point from a dataset (a folder and its naming scheme, or a manifest) to clip records."""

from __future__ import annotations

from pathlib import Path

from avemo.choices import Dataset
from avemo.pipeline import cremad, folders, manifest, ravdess
from avemo.pipeline.clips import Discovery


def discover(root: Path | None, dataset: str = Dataset.ravdess.value,
             vocal_channels: tuple[str, ...] = ("speech", "song"), speaker_pattern: str | None = None,
             manifest_file: Path | None = None) -> Discovery:
    """Clip records (sorted by clip id) and the files skipped with reasons.

    ``root`` is the dataset folder; a ``manifest`` dataset reads ``manifest_file`` instead (its paths are
    relative to the manifest's folder).
    """
    dataset = Dataset.check(dataset, "dataset")
    if dataset == Dataset.manifest:
        if manifest_file is None:
            raise FileNotFoundError("--dataset manifest needs --manifest FILE (a CSV or JSONL of path,label,speaker)")
        found = manifest.discover(manifest_file)
    else:
        if root is None or not root.is_dir():
            raise FileNotFoundError(f"{root}: not a folder; point avemo at the folder that holds the dataset")
        if dataset == Dataset.ravdess:
            found = ravdess.discover(root, vocal_channels)
        elif dataset == Dataset.cremad:
            found = cremad.discover(root)
        else:
            found = folders.discover(root, speaker_pattern)
    found.clips.sort(key=lambda clip: clip.clip_id)
    return found
