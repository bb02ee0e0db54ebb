"""The paper's experiment from nothing: fetch the dataset and the weights, extract with the paper's settings,
train on the standard actor-independent folds, evaluate, and set the result beside the published figures.

:class:`Reproduction` holds the settings and the steps, in order, like :class:`avemo.demo.Demo`; ``avemo
reproduce`` runs them one by one. Every step resumes: the fetches do nothing that is done, the extraction
continues its cache, the training continues its run. ``reproduce.json`` in the work folder keeps the settings
(another run with other settings is refused rather than mixed in) and each step's wall time on this machine::

    steps = Reproduction("work", "ravdess")
    steps.fetch_data(); steps.fetch_weights(); steps.extract(); steps.train()
    report = steps.evaluate()
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from avemo.choices import Crop
from avemo.errors import AvemoError, SetupError
from avemo.files import atomic_write
from avemo.fusion.config import TrainConfig

if TYPE_CHECKING:
    from avemo.extraction import ExtractSummary
    from avemo.fetch import FetchSummary
    from avemo.fusion.splits import Fold
    from avemo.fusion.train import FoldResult

STATE = "reproduce.json"

# Published actor-independent audio-visual results (see ARCHITECTURE.md for how far each was checked).
PUBLISHED = {
    "ravdess": [("Mocanu & Tapu, IVMSP 2022", "accuracy", 0.8789), ("HiCMAE, 2024", "WAR (accuracy)", 0.8799)],
    "cremad": [("Mocanu, Tapu & Zaharia, IVC 2023 (second-hand)", "accuracy", 0.8457),
               ("HiCMAE, 2024", "WAR (accuracy)", 0.8489)],
}


@dataclass
class Sources:
    """Mirrors of the places files come from (None: the public hosts, or the AVEMO_*_URL variables)."""

    zenodo_url: str | None = None
    github_url: str | None = None
    gdrive_url: str | None = None
    torchvision_url: str | None = None


@dataclass
class ReproduceSettings:
    """What decides the result. The defaults are the paper's: Hara's Kinetics 3D ResNet-101 and torchvision's
    ImageNet ResNet-18, 112-pixel face crops, RAVDESS speech clips (1440, 8 emotions), the default training."""

    dataset: str = "ravdess"
    video: str = "hara2017"  # which of Hara's checkpoints (avemo fetch weights --video)
    video_arch: str = "r3d101"
    size: int = 112
    crop: str = Crop.face.value
    epochs: int | None = None  # None: TrainConfig's
    train: dict[str, Any] = field(default_factory=dict)  # other TrainConfig fields (tests make it small)

    def __post_init__(self) -> None:
        if self.dataset not in PUBLISHED:
            raise SetupError(f"{self.dataset}: reproduce knows ravdess and cremad")
        if self.video == "none":
            raise SetupError("--video none: the experiment needs one of Hara's checkpoints")
        if Crop(Crop.check(self.crop, "--crop")).reads_landmarks:
            raise SetupError("--crop landmarks: reproduce crops with the face detector (face), the centre or nothing; "
                             "use avemo fetch ravdess --landmarks and avemo extract for landmark crops")

    def train_config(self) -> TrainConfig:
        extra = dict(self.train)
        if self.epochs is not None:
            extra["epochs"] = self.epochs
        return TrainConfig.from_dict(extra) if extra else TrainConfig()


class Reproduction:
    """The work folder (``data``, ``weights``, ``cache``, ``run``), the settings and the steps."""

    def __init__(self, workdir: str | PathLike, settings: ReproduceSettings | None = None,
                 sources: Sources | None = None, device: str = "auto") -> None:
        self.workdir = Path(workdir)
        self.settings = settings or ReproduceSettings()
        self.sources, self.device = sources or Sources(), device
        self.data, self.weights = self.workdir / "data", self.workdir / "weights"
        self.cache, self.run = self.workdir / "cache", self.workdir / "run"
        self.state = self._state()

    # -- the record of settings and times ---------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        path = self.workdir / STATE
        wanted = asdict(self.settings)
        if not path.is_file():
            return {"settings": wanted, "steps": {}}
        try:
            state = json.loads(path.read_text())
            settings, steps = state["settings"], state["steps"]
        except (ValueError, KeyError, TypeError):
            raise SetupError(f"{path}: damaged; delete it (the steps will check their own work again) or use "
                             "another --workdir") from None
        if settings != json.loads(json.dumps(wanted)):
            differ = ", ".join(k for k in wanted if settings.get(k) != wanted[k])
            raise SetupError(f"{self.workdir}: made with other settings ({differ}); use another --workdir, or the "
                             "settings it was made with")
        return {"settings": settings, "steps": steps}

    def _timed(self, step: str, work: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        result = work()
        record = self.state["steps"].setdefault(step, {"seconds": 0.0})
        record["seconds"] = round(record["seconds"] + time.perf_counter() - start, 1)  # summed over resumptions
        record["machine"] = f"{platform.node()} ({platform.processor() or platform.machine()})"
        self.workdir.mkdir(parents=True, exist_ok=True)
        atomic_write(self.workdir / STATE, json.dumps(self.state, indent=1).encode())
        return result

    @property
    def seconds(self) -> dict[str, float]:
        """Wall seconds of each step so far (summed over the runs that did its work)."""
        return {step: record["seconds"] for step, record in self.state["steps"].items()}

    # -- the steps ------------------------------------------------------------------------------------------

    def _fetch_options(self) -> dict[str, Any]:
        return {"zenodo_url": self.sources.zenodo_url, "github_url": self.sources.github_url,
                "gdrive_url": self.sources.gdrive_url, "torchvision_url": self.sources.torchvision_url}

    def fetch_data(self, show: Any = None, dry_run: bool = False) -> FetchSummary | None:
        """The dataset into ``data``: RAVDESS's speech clips, or CREMA-D's clips and WAV soundtracks."""
        from avemo.fetch import fetch_all

        def work() -> FetchSummary | None:
            return _whole(fetch_all(self.settings.dataset, self.data, dry_run=dry_run, show=show, next_step="",
                                    speech=True, song=False, **self._fetch_options()))

        return work() if dry_run else self._timed("fetch data", work)

    def fetch_weights(self, show: Any = None, dry_run: bool = False) -> FetchSummary | None:
        """Hara's checkpoint and torchvision's ResNet-18 into ``weights``."""
        from avemo.fetch import fetch_all

        def work() -> FetchSummary | None:
            return _whole(fetch_all("weights", self.weights, dry_run=dry_run, show=show, next_step="",
                                    video=self.settings.video, audio="imagenet", **self._fetch_options()))

        return work() if dry_run else self._timed("fetch weights", work)

    def weight_files(self) -> tuple[Path, Path]:
        from avemo.fetch.datasets import RESNET18, VIDEO_FILES

        return self.weights / VIDEO_FILES[self.settings.video][1], self.weights / RESNET18

    def extract(self, on_start: Callable[[int, ExtractSummary], None] | None = None,
                on_clip: Callable[[str], None] | None = None) -> ExtractSummary:
        """``data`` into ``cache`` with the real weights (continuing the cache if it exists)."""
        from avemo import api

        video, audio = self.weight_files()
        return self._timed("extract", lambda: api.extract(
            self.data, self.cache, dataset=self.settings.dataset,
            channels="speech" if self.settings.dataset == "ravdess" else ("speech", "song"),
            video_weights=str(video), audio_weights=str(audio), video_arch=self.settings.video_arch,
            size=self.settings.size, crop=self.settings.crop, device=self.device, on_start=on_start,
            on_clip=on_clip))

    def train(self, on_start: Callable[[TrainConfig, list[Fold]], None] | None = None,
              on_fold: Callable[[Fold], None] | None = None,
              on_epoch: Callable[[int, dict[str, float]], None] | None = None) -> list[FoldResult]:
        """The standard folds (RAVDESS 6 x 4 consecutive actors, CREMA-D 5), continuing a run that exists."""
        from avemo import api

        return self._timed("train", lambda: api.train(
            self.cache, self.run, self.settings.train_config(), resume=(self.run / "config.json").exists(),
            on_start=on_start, on_fold=on_fold, on_epoch=on_epoch))

    def evaluate(self) -> dict[str, Any]:
        from avemo import api

        return self._timed("evaluate", lambda: api.evaluate(self.run))

    def comparison(self, report: dict[str, Any]) -> list[tuple[str, str, float]]:
        """(who, measure, value) rows: this run's pooled and mean accuracy, then the published figures."""
        primary = report["heads"][report["primary_head"]]
        ours = [("avemo, this run (all test clips pooled)", "accuracy", primary["pooled"]["accuracy"]),
                ("avemo, this run (mean of folds)", "accuracy", primary["mean_std"]["accuracy"]["mean"]),
                ("avemo, this run (mean of folds)", "UAR", primary["mean_std"]["uar"]["mean"])]
        return ours + PUBLISHED[self.settings.dataset]


class ReproduceError(AvemoError):
    """A step that did not finish; the message says what to do (usually: the same command again)."""


def _whole(summary: FetchSummary | None) -> FetchSummary | None:
    """A fetch with failed files stops the reproduction: a result on part of the data is not the paper's."""
    if summary is not None and summary.failed:
        names = ", ".join(name for name, _ in summary.failed[:3]) + (" ..." if len(summary.failed) > 3 else "")
        raise ReproduceError(f"{len(summary.failed)} file(s) could not be fetched ({names}; each named above); run "
                             "the same command again to retry them before anything is extracted")
    return summary


def cache_bytes(clips: int) -> int:
    """About what a cache of ``clips`` takes: six snippets of 2048 video and 512 audio features, float16."""
    return clips * 6 * (2048 + 512) * 2 * 2  # twice, for the manifest, indexes and shards' slack
