"""The feature cache loaded once into memory, as tensors the training loop indexes directly."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avemo.cache import CacheError, FeatureCache
from avemo.emotions import EMOTIONS


@dataclass
class FeatureSet:
    video: torch.Tensor  # (N, 6, C, S), the cache's dtype (float16 by default)
    audio: torch.Tensor  # (N, 6, 512)
    labels: torch.Tensor  # (N,) long, index into EMOTIONS
    actors: np.ndarray  # (N,) int
    clip_ids: list[str]
    dataset: str
    manifest: dict[str, Any]  # of the cache: fingerprint and what it was computed from

    def __len__(self) -> int:
        return len(self.clip_ids)

    @property
    def classes(self) -> list[int]:
        """Label ids present in the data, sorted."""
        return sorted(set(self.labels.tolist()))

    @classmethod
    def load(cls, root: Path) -> FeatureSet:
        """Read every valid entry of the cache at ``root``; refuse an empty cache or mixed datasets."""
        cache = FeatureCache.open(root)
        entries, _ = cache.scan()
        if not entries:
            raise CacheError(f"{root}: the cache holds no entries; run avemo extract first")
        datasets = {e["dataset"] for e in entries}
        if len(datasets) != 1:
            raise CacheError(f"{root}: the cache mixes datasets {sorted(datasets)}; train on one at a time")
        # One tensor per modality, filled in place: stacking a list of per-clip tensors would hold the whole
        # cache twice at its peak (2 GB for RAVDESS in float16).
        video = audio = None
        for i, entry in enumerate(entries):
            v, a = cache.read(entry["clip_id"])
            if video is None:
                video = torch.empty((len(entries), *v.shape), dtype=v.dtype)
                audio = torch.empty((len(entries), *a.shape), dtype=a.dtype)
            video[i], audio[i] = v, a
        return cls(
            video=video, audio=audio,
            labels=torch.tensor([EMOTIONS.index(e["emotion"]) for e in entries]),
            actors=np.array([e["actor"] for e in entries]), clip_ids=[e["clip_id"] for e in entries],
            dataset=datasets.pop(), manifest=cache.manifest,
        )
