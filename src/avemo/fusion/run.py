"""The run folder, and its one owner: :class:`Run`.

``avemo train`` writes a run; predict, timeline, evaluate, report and the CLI read it, all through ``Run``::

    RUN/config.json          the TrainConfig, the feature spec of the cache, the class ids and names
    RUN/splits.json          every fold's speakers and clip ids
    RUN/train.lock           held while a process trains the run
    RUN/<fold>/best.pt       the fold's best weights (with class centroids): the fold is done
    RUN/<fold>/last.pt       resumable state after every epoch
    RUN/<fold>/predictions.npz   the fold's test clips: labels, predictions, embeddings
    RUN/report.json, report.md, confusion.png, embedding.png   written by evaluate
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avemo.choices import Loss, Modality
from avemo.emotions import EMOTIONS
from avemo.errors import AvemoError
from avemo.files import atomic_write
from avemo.fusion.config import TrainConfig
from avemo.spec import FeatureSpec, SpecError

if TYPE_CHECKING:
    from avemo.fusion.data import FeatureSet
    from avemo.recognizer import Recognizer

CONFIG, SPLITS, LOCK = "config.json", "splits.json", "train.lock"
BEST, LAST, PREDICTIONS, REPORT = "best.pt", "last.pt", "predictions.npz", "report.json"
RANDOM_CLIPS = "random_clips"  # the one fold of --protocol random-clips


class RunError(AvemoError):
    """A run folder that cannot be used as asked; the message names it and says what to do."""


@dataclass(frozen=True)
class RunFold:
    """One fold's folder in a run."""

    name: str
    path: Path

    @property
    def best(self) -> Path:
        return self.path / BEST

    @property
    def last(self) -> Path:
        return self.path / LAST

    @property
    def predictions(self) -> Path:
        return self.path / PREDICTIONS

    @property
    def trained(self) -> bool:
        """Whether the fold finished (its best weights are written)."""
        return self.best.is_file()


def _fold_order(name: str) -> tuple[int, str]:
    number = name.rsplit("_", 1)[-1]
    return (int(number), name) if number.isdigit() else (1 << 30, name)


class Run:
    """A run folder written by ``avemo train``: its configuration, feature spec, classes, folds and reports.

    Reading it checks ``config.json`` once; a folder that is not a run raises :class:`RunError`.

    >>> run = avemo.Run(run_dir)
    >>> run.classes
    ['neutral', 'calm', 'happy', 'sad', 'angry', 'fearful', 'disgust', 'surprised']
    >>> [fold.name for fold in run.folds]
    ['fold_1', 'fold_2', 'fold_3', 'fold_4']
    >>> run.config.loss, run.head
    ('emotion-metric', 'classifier')
    """

    def __init__(self, path: str | PathLike) -> None:
        self.path = Path(path)
        config = self.path / CONFIG
        if not config.is_file():
            what = "no such folder" if not self.path.exists() else "no config.json"
            raise RunError(f"{self.path}: {what}; give a run folder written by avemo train")
        try:
            record = json.loads(config.read_text())
            self.spec = (FeatureSpec.from_json(record["feature_spec"]) if "feature_spec" in record
                         # runs written before specs existed recorded the cache's fingerprint inputs
                         else FeatureSpec.from_fingerprint_inputs(record["cache_inputs"], record["cache_dtype"]))
            self.config = TrainConfig.from_dict(record["train"])
            self.class_ids: list[int] = [int(c) for c in record["classes"]]
            # the names of the label ids (runs written by avemo 0.1.0 knew the emotions only)
            self.label_names: list[str] = list(record.get("class_names", EMOTIONS))  # by label id
            self.classes: list[str] = [self.label_names[c] for c in self.class_ids]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, IndexError, ValueError,
                SpecError) as err:
            raise RunError(f"{config}: not a readable avemo run configuration ({type(err).__name__}: "
                           f"{' '.join(str(err).split())}); train the run again") from None
        self.record: dict[str, Any] = record  # config.json as stored, for what has no typed field yet

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    # -- what the run is ------------------------------------------------------------------------------

    @property
    def dataset(self) -> str:
        return self.record.get("dataset", "")

    @property
    def cache(self) -> Path | None:
        """The feature cache the run was trained on (it may since have moved or gone)."""
        return Path(self.record["cache"]) if self.record.get("cache") else None

    @property
    def modality(self) -> str:
        return self.config.model.modality

    @property
    def needs_audio(self) -> bool:
        """Whether the run's models read the soundtrack (every modality but video alone)."""
        return self.modality != Modality.video

    @property
    def head(self) -> str:
        """The prediction head the run is read by: "classifier", or "centroid" for a triplet-only run."""
        return Loss(self.config.loss).head

    @property
    def speakers_known(self) -> bool:
        return bool(self.record.get("speakers_known", True))

    @property
    def planned_folds(self) -> list[str]:
        """The names of the folds the run was started with (``splits.json``), trained or not."""
        path = self.path / SPLITS
        if not path.is_file():
            return []
        try:
            return [f["name"] for f in json.loads(path.read_text())]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
            raise RunError(f"{path}: unreadable ({type(err).__name__}); train the run again") from None

    @property
    def folds(self) -> list[RunFold]:
        """The folds with a folder in the run, in fold order (trained or not: see ``RunFold.trained``)."""
        names = set(self.planned_folds) | {p.parent.name for p in self.path.glob(f"*/{BEST}")} | \
            {p.parent.name for p in self.path.glob(f"*/{PREDICTIONS}")}
        return [RunFold(n, self.path / n) for n in sorted(names, key=_fold_order) if (self.path / n).is_dir()]

    @property
    def trained_folds(self) -> list[RunFold]:
        return [f for f in self.folds if f.trained]

    def clip_seconds(self) -> float | None:
        """The mean duration of the clips in the run's cache, or None when the cache cannot be read."""
        from avemo.cache import FeatureCache

        if self.cache is None:
            return None
        try:
            entries, _ = FeatureCache.open(self.cache).scan()
            durations = [float(e["duration"]) for e in entries if e.get("duration")]
        except (AvemoError, OSError, KeyError, TypeError, ValueError):
            return None
        return sum(durations) / len(durations) if durations else None

    def report(self) -> dict[str, Any] | None:
        """The report ``evaluate`` wrote last, or None."""
        path = self.path / REPORT
        return json.loads(path.read_text()) if path.is_file() else None

    # -- what one does with it ------------------------------------------------------------------------

    def recognizer(self, device: str = "auto", video_weights: str | PathLike | None = None,
                   audio_weights: str | PathLike | None = None) -> Recognizer:
        """The backbones and every trained fold's model, loaded once, for ``predict`` and ``timeline``.

        The backbones are rebuilt from the weights files the run's feature spec names, checked by SHA-256;
        ``video_weights`` / ``audio_weights`` say where a file is now if it moved.

        >>> rec = avemo.Run(run_dir).recognizer(device="cpu")
        >>> rec.classes == avemo.Run(run_dir).classes
        True
        """
        from avemo.recognizer import Recognizer

        return Recognizer(self, device=device, video_weights=video_weights, audio_weights=audio_weights)

    def evaluate(self) -> dict[str, Any]:
        """Score every trained fold on its test speakers; write the reports and plots into the run.

        >>> avemo.Run(run_dir).evaluate()["primary_head"]
        'classifier'
        """
        from avemo.reports.report import evaluate_run

        return evaluate_run(self)

    # -- writing (by training) ------------------------------------------------------------------------

    @staticmethod
    def record_of(config: TrainConfig, data: FeatureSet, cache: Path) -> dict[str, Any]:
        """What ``config.json`` holds for a run of ``config`` on ``data`` (the cache at ``cache``)."""
        record = {"train": config.to_dict(), "cache": str(cache), "dataset": data.dataset,
                  "cache_fingerprint": data.spec.fingerprint, "feature_spec": data.spec.to_json(),
                  "classes": data.classes, "class_names": data.class_names, "speakers_known": data.speakers_known}
        if data.skipped_damaged:  # --skip-damaged: the run says which clips it never saw
            record["skipped_damaged_entries"] = data.skipped_damaged
        return record

    @classmethod
    def write_config(cls, path: Path, config: TrainConfig, data: FeatureSet, cache: Path) -> None:
        """Write the run's ``config.json``; refuse a folder that holds a run of other settings or clips."""
        path.mkdir(parents=True, exist_ok=True)
        record = cls.record_of(config, data, cache)
        target = path / CONFIG
        if target.exists():
            try:
                old = json.loads(target.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                old = None
            if old != json.loads(json.dumps(record)):
                raise RunError(f"{path}: holds a run with other settings or another cache; choose a new --run "
                               "folder")
        atomic_write(target, json.dumps(record, indent=1).encode())
