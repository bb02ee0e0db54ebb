"""Training a run over folds: the folds chosen, the run folder written (through :class:`avemo.Run`), each fold
trained."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch

from avemo.distributed import World, join, leave
from avemo.files import DiskFullError, FolderLock, atomic_write
from avemo.fusion.data import FeatureSet
from avemo.fusion.losses import knows_distances
from avemo.fusion.run import LOCK, Run, RunError
from avemo.choices import Loss, Protocol
from avemo.fusion.splits import (DEFAULT_FOLDS, LEAKAGE_WARNING, Fold, actor_folds, explicit_folds, folds_from_groups,
                                 random_clip_split, write_splits)
from avemo.fusion.train import FoldResult, TrainConfig, train_fold




def make_folds(data: FeatureSet, config: TrainConfig) -> list[Fold]:
    """The folds the configuration asks for, restricted to ``config.folds`` when given."""
    if config.protocol == Protocol.random_clips:  # TrainConfig has checked the name
        warnings.warn(LEAKAGE_WARNING, UserWarning, stacklevel=2)
        folds = [random_clip_split(len(data), config.seed)]
    elif config.actor_folds:
        folds = folds_from_groups(data.actors, [(f["test"], f["val"]) for f in config.actor_folds])
    elif data.folds is not None and config.n_folds is None:  # a manifest's own folds, unless --n-folds says
        folds = explicit_folds(data.folds, data.actors)
    else:
        folds = actor_folds(data.actors, config.n_folds or DEFAULT_FOLDS.get(data.dataset, 5))
    if config.folds:
        missing = [k for k in config.folds if not 1 <= k <= len(folds)]
        if missing:
            raise RunError(f"--folds {','.join(map(str, missing))}: no such fold; there are {len(folds)}")
        folds = [folds[k - 1] for k in config.folds]
    for fold in folds:
        if not fold.train or not fold.val or not fold.test:
            raise RunError(f"{fold.name}: a split is empty (train {len(fold.train)}, validation {len(fold.val)}, "
                             f"test {len(fold.test)} clips)")
    return folds


def train_run(cache: Path, run: Path, config: TrainConfig, resume: bool = False,
              on_fold: Callable[[Fold], None] | None = None,
              on_epoch: Callable[[int, dict[str, float]], None] | None = None,
              on_start: Callable[[TrainConfig, list[Fold]], None] | None = None,
              skip_damaged: bool = False) -> list[FoldResult]:
    """Load the cache once, then train every selected fold into ``run/<fold>/``.

    ``on_start`` receives the configuration with the model fitted to the cache's shapes, and the folds.
    A cache with damaged entries (checksum mismatch) is refused, or with ``skip_damaged`` trained without
    them (named in a warning and in the run's ``config.json``).
    Under torchrun the folds are spread over the ranks (each trains its share, every N-th fold, start to
    finish, exactly as one process would: same seed, same batches) and every rank returns all folds' results;
    rank 0 alone writes the run's configuration and splits, before any fold starts.
    """
    world = join(torch.device("cpu"))
    try:
        return _train_run(cache, run, config, resume, world, on_fold, on_epoch, on_start if world.main else None,
                          skip_damaged)
    finally:
        leave(world)


def _train_run(cache: Path, run: Path, config: TrainConfig, resume: bool, world: World,
               on_fold: Callable[[Fold], None] | None,
               on_epoch: Callable[[int, dict[str, float]], None] | None,
               on_start: Callable[[TrainConfig, list[Fold]], None] | None,
               skip_damaged: bool = False) -> list[FoldResult]:
    data = FeatureSet.load(cache, skip_damaged=skip_damaged)
    if data.skipped_damaged and world.main:
        warnings.warn(f"{cache}: training without {len(data.skipped_damaged)} damaged entries (--skip-damaged): "
                      f"{', '.join(data.skipped_damaged[:5])}", UserWarning, stacklevel=2)
    snippets, channels, positions = data.video.shape[1:]
    config = replace(config, model=replace(config.model, snippets=snippets, video_channels=channels,
                                           video_positions=positions, audio_channels=data.audio.shape[2],
                                           num_classes=len(data.class_names)))
    if world.main and config.loss == Loss.emotion_metric and not knows_distances(data.class_names):
        warnings.warn(f"classes {', '.join(data.class_names)} are not all emotions avemo places in valence-arousal "
                      "space: the emotion-metric loss uses one constant margin for every pair of classes",
                      UserWarning, stacklevel=2)
    folds = make_folds(data, config)
    # Rank 0 alone locks the run: the other ranks are its own helpers, started with it and stopped with it.
    lock = FolderLock(run / LOCK, "training") if world.main else None
    if lock is not None:
        run.mkdir(parents=True, exist_ok=True)
        lock.acquire()  # before anything is checked or written, so a second trainer refuses naming the first
    try:
        if world.main:
            _prepare_run(run, config, data, cache, folds, resume)
        if on_start is not None:
            on_start(config, folds)
        world.barrier()
        results = []
        for fold in world.shard(folds):
            if on_fold is not None:
                on_fold(fold)
            try:
                results.append(train_fold(data, fold, config, run / fold.name, resume=resume, on_epoch=on_epoch))
            except DiskFullError as err:  # the last whole checkpoint is kept: --resume continues from it
                raise DiskFullError(err.errno, f"{err.reason} while writing it; free space and run the same "
                                    "avemo train command with --resume to continue", err.filename) from None
        if world.size == 1:
            return results
        by_name = {r.name: r for part in world.gather(results) for r in part}
        return [by_name[fold.name] for fold in folds]
    finally:
        if lock is not None:
            lock.release()


def _prepare_run(run: Path, config: TrainConfig, data: FeatureSet, cache: Path, folds: list[Fold],
                 resume: bool) -> None:
    """Check and write the run's configuration and splits (refusing a run of other settings or clips)."""
    if not resume and (run / "config.json").exists():
        raise RunError(f"{run}: already holds a run; pass --resume to continue it or choose a new --run folder")
    Run.write_config(run, config, data, cache)
    splits = run / "splits.json"
    if resume and splits.exists():
        before = splits.read_text()
        write_splits(splits, folds, data.clip_ids)
        if splits.read_text() != before:
            atomic_write(splits, before.encode())
            raise RunError(f"{run}: the cache's clips changed since this run started, so its folds would too; "
                             "start a new --run")
    else:
        write_splits(splits, folds, data.clip_ids)
