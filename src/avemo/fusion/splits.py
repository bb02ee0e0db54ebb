"""Speaker-independent folds (and the seed's random clip split, only as a labelled comparison).

The speakers (RAVDESS and CREMA-D call them actors) are sorted and cut into groups of consecutive ids:
6 folds for RAVDESS, 5 for CREMA-D and any other dataset unless ``--n-folds`` says. In fold k the test
speakers are group k, the validation speakers (early stopping) group k+1, and training uses every other
group, so no speaker appears in two roles. Explicit speaker lists, or a manifest's own folds, can replace
the groups.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from avemo.choices import Protocol
from avemo.errors import AvemoError
from avemo.files import atomic_write

DEFAULT_FOLDS = {"ravdess": 6, "cremad": 5}
LEAKAGE_WARNING = ("seed's random clip split: the same speakers appear in training and test, so scores are "
                   "not comparable with speaker-independent results")


class SplitError(AvemoError, ValueError):
    """Folds that cannot be made from the data as asked (too few speakers or folds, overlapping roles).

    Also a ``ValueError``, so code that caught the plain ``ValueError`` raised before still catches it.
    """


@dataclass(frozen=True)
class Fold:
    name: str
    train: list[int]  # clip indices
    val: list[int]
    test: list[int]
    test_actors: list[int] = field(default_factory=list)
    val_actors: list[int] = field(default_factory=list)
    train_actors: list[int] = field(default_factory=list)
    protocol: str = Protocol.actors.value


def actor_groups(actors: list[int], n_folds: int) -> list[list[int]]:
    """Sorted actors cut into ``n_folds`` groups of consecutive ids (sizes differ by at most one)."""
    unique = sorted(set(actors))
    if len(unique) < 3:
        raise SplitError(f"the cache has {len(unique)} actor(s) (speakers); speaker-independent folds need at least "
                         "3 (test, validation, training): extract clips of more speakers (for --dataset folders, "
                         "check --speaker-pattern), or use --protocol random-clips")
    if not 3 <= n_folds <= len(unique):
        raise SplitError(f"--n-folds {n_folds}: the cache has {len(unique)} actors (speakers), and every fold needs "
                         f"test, validation and training speakers; use --n-folds {min(max(n_folds, 3), len(unique))}")
    return [list(map(int, g)) for g in np.array_split(unique, n_folds)]


def folds_from_groups(actors: np.ndarray, test_val: list[tuple[list[int], list[int]]]) -> list[Fold]:
    """Folds from (test speakers, validation speakers) pairs; everyone else trains.

    A speaker named in a pair but absent from ``actors`` is an error: a typo would otherwise shrink a split
    silently.
    """
    folds = []
    present = set(actors.tolist())
    for k, (test, val) in enumerate(test_val, start=1):
        if set(test) & set(val):
            raise SplitError(f"actor_folds fold {k}: speakers {sorted(set(test) & set(val))} are both test and "
                             "validation; give each speaker one role per fold")
        unknown = sorted((set(test) | set(val)) - present)
        if unknown:
            raise SplitError(f"actor_folds fold {k}: speakers {unknown} have no clip in the cache (it has "
                             f"{_some(sorted(present))}); name speakers of the cache")
        train = sorted(set(actors.tolist()) - set(test) - set(val))
        folds.append(Fold(
            name=f"fold_{k}",
            train=np.flatnonzero(np.isin(actors, train)).tolist(),
            val=np.flatnonzero(np.isin(actors, val)).tolist(),
            test=np.flatnonzero(np.isin(actors, test)).tolist(),
            test_actors=sorted(test), val_actors=sorted(val), train_actors=train,
        ))
    return folds


def explicit_folds(folds: np.ndarray, actors: np.ndarray) -> list[Fold]:
    """A manifest's own folds: fold k tests its clips and validates on the next fold's; the rest train."""
    ids = sorted(set(folds.tolist()))
    if len(ids) < 3:
        raise SplitError(f"the manifest names {len(ids)} fold(s) in its fold column; each fold needs test, "
                         "validation and training clips, so give at least 3 (or --n-folds K for speaker folds)")
    out = []
    for k, fold in enumerate(ids):
        val = ids[(k + 1) % len(ids)]
        test_rows, val_rows = np.flatnonzero(folds == fold), np.flatnonzero(folds == val)
        train_rows = np.flatnonzero(~np.isin(folds, [fold, val]))
        out.append(Fold(name=f"fold_{fold}", train=train_rows.tolist(), val=val_rows.tolist(), test=test_rows.tolist(),
                        test_actors=sorted(set(actors[test_rows].tolist())),
                        val_actors=sorted(set(actors[val_rows].tolist())),
                        train_actors=sorted(set(actors[train_rows].tolist()))))
    return out


def _some(values: list[int]) -> str:
    """The first few of ``values`` for a one-line message."""
    return ", ".join(map(str, values[:8])) + (f" and {len(values) - 8} more" if len(values) > 8 else "")


def actor_folds(actors: np.ndarray, n_folds: int) -> list[Fold]:
    """Fold k tests group k and validates on group k + 1 (cyclically)."""
    groups = actor_groups(actors.tolist(), n_folds)
    return folds_from_groups(actors, [(groups[k], groups[(k + 1) % n_folds]) for k in range(n_folds)])


def random_clip_split(n_clips: int, seed: int, test_fraction: float = 0.1) -> Fold:
    """The seed's protocol: a random 90/10 clip split (10% of training held out for early stopping)."""
    order = np.random.default_rng(seed).permutation(n_clips)
    n_test = max(1, round(n_clips * test_fraction))
    test, rest = order[:n_test], order[n_test:]
    n_val = max(1, round(len(rest) * test_fraction))
    return Fold(name="random_clips", train=sorted(rest[n_val:].tolist()), val=sorted(rest[:n_val].tolist()),
                test=sorted(test.tolist()), protocol=Protocol.random_clips.value)


def write_splits(path: Path, folds: list[Fold], clip_ids: list[str]) -> None:
    """Record every fold's actors and clip ids, so a run says exactly what it was tested on."""
    data = [{**{k: v for k, v in asdict(f).items() if k not in ("train", "val", "test")},
             **{part: [clip_ids[i] for i in getattr(f, part)] for part in ("train", "val", "test")}}
            for f in folds]
    atomic_write(path, json.dumps(data, indent=1).encode())
