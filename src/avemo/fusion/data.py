"""The feature cache loaded once into memory, as tensors the training loop indexes directly."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from avemo.cache import CacheError, DamagedEntryError, FeatureCache
from avemo.emotions import EMOTIONS, vocabulary
from avemo.spec import FeatureSpec


@dataclass
class FeatureSet:
    video: torch.Tensor  # (N, T, C, S), the cache's dtype (float16 by default)
    audio: torch.Tensor  # (N, T, A)
    labels: torch.Tensor  # (N,) long, index into class_names
    actors: np.ndarray  # (N,) int: the speakers
    clip_ids: list[str]
    dataset: str
    spec: FeatureSpec  # what the features were computed from
    class_names: list[str] = field(default_factory=lambda: list(EMOTIONS))  # label id -> name
    folds: np.ndarray | None = None  # (N,) explicit folds from a manifest, when every clip has one
    speakers_known: bool = True  # False: every clip was its own speaker, so folds split clips
    skipped_damaged: list[str] = field(default_factory=list)  # entries left out (--skip-damaged), with reasons

    def __len__(self) -> int:
        return len(self.clip_ids)

    @property
    def classes(self) -> list[int]:
        """Label ids present in the data, sorted."""
        return sorted(set(self.labels.tolist()))

    @classmethod
    def load(cls, root: Path, skip_damaged: bool = False) -> FeatureSet:
        """Read and verify every valid entry of the cache at ``root``; refuse an empty cache or mixed datasets.

        An entry whose checksum fails is refused, naming it (``avemo extract`` rebuilds it), or left out with
        ``skip_damaged`` (listed in ``skipped_damaged``); nothing damaged is ever trained on.
        """
        cache = FeatureCache.open(root)
        entries, _ = cache.scan()
        # One tensor per modality, filled in place: stacking a list of per-clip tensors would hold the whole
        # cache twice at its peak. Every entry is verified as it is read.
        video = audio = None
        kept, damaged = [], []
        for entry in entries:
            try:
                v, a = cache.read(entry["clip_id"], verify=True)
            except DamagedEntryError as err:
                damaged.append(f"{entry['clip_id']} ({str(err).split(': ', 1)[-1]})")
                continue
            if video is None:
                video = torch.empty((len(entries), *v.shape), dtype=v.dtype)
                audio = torch.empty((len(entries), *a.shape), dtype=a.dtype)
            video[len(kept)], audio[len(kept)] = v, a
            kept.append(entry)
        if damaged and not skip_damaged:
            named = ", ".join(damaged[:5]) + (f" and {len(damaged) - 5} more" if len(damaged) > 5 else "")
            raise CacheError(f"{root}: {len(damaged)} damaged entr{'y' if len(damaged) == 1 else 'ies'}: {named}; "
                             f"run the avemo extract command that made the cache (avemo extract DATA --cache {root} "
                             "...) to rebuild them, or pass --skip-damaged to train without them")
        entries = kept
        if not entries:
            raise CacheError(f"{root}: the cache holds no entries; run avemo extract first")
        datasets = {e["dataset"] for e in entries}
        if len(datasets) != 1:
            raise CacheError(f"{root}: the cache mixes datasets {sorted(datasets)}; train on one at a time")
        names = vocabulary([e["emotion"] for e in entries])
        folds = [e.get("fold") for e in entries]
        dataset = datasets.pop()
        return cls(
            video=video[:len(kept)], audio=audio[:len(kept)],
            labels=torch.tensor([names.index(e["emotion"]) for e in entries]),
            actors=np.array([e["actor"] for e in entries]), clip_ids=[e["clip_id"] for e in entries],
            dataset=dataset, spec=cache.spec, class_names=names,
            folds=np.array(folds) if all(f is not None for f in folds) else None,
            speakers_known=dataset not in ("folders", "manifest") or any(e.get("speaker") for e in entries),
            skipped_damaged=damaged,
        )
