"""The three verbs of avemo's Python API that make things: ``extract`` (a feature cache), ``train`` (a run) and
``evaluate`` (a run's report). Reading a run and recognising emotions with it is :class:`avemo.Run`'s job.

Each takes plain Python values (paths as ``str`` or ``Path``, choices as their names), checks them all before
any work starts, and raises an :class:`avemo.AvemoError` naming what to fix. The ``avemo`` command line calls
exactly these functions.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from avemo.choices import Crop, Dataset
from avemo.errors import SetupError

if TYPE_CHECKING:
    from avemo.extraction import ExtractSummary
    from avemo.fusion.config import TrainConfig
    from avemo.fusion.run import Run
    from avemo.fusion.splits import Fold
    from avemo.fusion.train import FoldResult

PathArg = str | PathLike
VOCAL_CHANNELS = ("speech", "song")


def extract(data: PathArg | None, cache: PathArg, *, dataset: str = Dataset.ravdess.value,
            manifest: PathArg | None = None, channels: Iterable[str] = VOCAL_CHANNELS,
            speaker_pattern: str | None = None, video_weights: str = "random", video_arch: str = "r3d101",
            video_normalization: str = "auto", audio_weights: str = "random", backend: str = "auto",
            engines: PathArg | None = None, precision: str = "fp32", compile: bool = False,
            cuda_graphs: bool = False, device: str = "auto", decoder: str = "auto", batch_size: int = 2,
            workers: int | None = None, size: int = 112, crop: str = Crop.face.value, landmarks: PathArg | None = None,
            landmark_confidence: float = 0.8, dtype: str = "float16",
            on_start: Callable[[int, ExtractSummary], None] | None = None,
            on_clip: Callable[[str], None] | None = None) -> ExtractSummary:
    """Turn every usable clip of a dataset into cached backbone features; resumes a cache that exists.

    ``data`` is the dataset folder (RAVDESS or CREMA-D names, or ``DATA/<label>/*.mp4`` with
    ``dataset="folders"``), or None with ``manifest`` (a CSV or JSON Lines file of ``path,label,speaker``).
    Weights are files (Hara et al.'s 3D ResNet checkpoint, torchvision's ResNet-18), ``"imagenet"`` for the
    audio backbone (downloaded into torch's hub cache), or ``"random"`` (for demos and tests, announced).
    Bad clips never raise: they are listed in the returned summary's ``failed`` and ``skipped``.

    >>> summary = avemo.extract(data_dir, cache=tmp / "cache", video_arch="r3d10", size=32, crop="center")
    >>> summary.entries == summary.found
    True
    """
    from avemo.extraction import ExtractConfig, run_extract
    from avemo.spec import BackboneConfig, LandmarkSettings, VideoConfig

    wanted = tuple(c.strip() for c in ([channels] if isinstance(channels, str) else channels) for c in c.split(",")
                   if c.strip())
    if not wanted or set(wanted) - set(VOCAL_CHANNELS):
        raise SetupError(f"--channels {','.join(wanted) or repr('')}: use speech, song or speech,song")
    dataset = Dataset.check(str(dataset), "--dataset")
    mode = Crop(Crop.check(str(crop), "--crop"))
    data = Path(data) if data is not None else None
    manifest = Path(manifest) if manifest is not None else None
    landmarks = Path(landmarks) if landmarks is not None else None
    if manifest is not None:
        dataset = Dataset.manifest.value
        if not manifest.is_file():
            raise SetupError(f"{manifest}: no such manifest file")
    elif dataset == Dataset.manifest:
        raise SetupError("--dataset manifest needs --manifest FILE (a CSV or JSONL of path,label,speaker)")
    elif data is None or not data.is_dir():
        raise SetupError(f"{data}: not a folder; point avemo at the folder that holds the dataset" if data else
                         "give the dataset folder DATA (or --manifest FILE)")
    if speaker_pattern is not None:
        from avemo.pipeline.folders import speaker_regex

        if dataset != Dataset.folders:
            raise SetupError("--speaker-pattern reads speakers from file names with --dataset folders; a manifest "
                             "has a speaker column, RAVDESS and CREMA-D names carry the actor")
        speaker_regex(speaker_pattern)  # a bad pattern fails now, not after the models are built
    if mode.reads_landmarks and landmarks is None:
        raise SetupError("--crop landmarks needs --landmarks DIR: the folder of OpenFace CSVs named after the clips")
    if landmarks is not None and not mode.reads_landmarks:
        raise SetupError(f"--landmarks {landmarks}: used only with --crop landmarks")
    if landmarks is not None and not landmarks.is_dir():
        raise SetupError(f"--landmarks {landmarks}: not a folder; give the folder of OpenFace CSVs named after "
                         "the clips")
    config = ExtractConfig(
        data=data, cache=Path(cache), dataset=dataset, vocal_channels=wanted, speaker_pattern=speaker_pattern,
        manifest=manifest,
        backbones=BackboneConfig(video_weights=str(video_weights), video_arch=video_arch,
                                 video_normalization=str(video_normalization), audio_weights=str(audio_weights)),
        video=VideoConfig(size=size, resize=size, crop=mode.value), backend=str(backend),
        engines=Path(engines) if engines is not None else None, precision=str(precision), compile=compile,
        cuda_graphs=cuda_graphs, device=str(device), decoder=str(decoder), batch_size=batch_size, workers=workers,
        dtype=str(dtype), landmarks=landmarks, landmark_settings=LandmarkSettings(min_confidence=landmark_confidence))
    return run_extract(config, on_start=on_start, on_clip=on_clip)


def train(cache: PathArg, run: PathArg, config: TrainConfig | None = None, *, resume: bool = False,
          skip_damaged: bool = False,
          on_start: Callable[[TrainConfig, list[Fold]], None] | None = None,
          on_fold: Callable[[Fold], None] | None = None,
          on_epoch: Callable[[int, dict[str, float]], None] | None = None) -> list[FoldResult]:
    """Train the attention fusion model on a feature cache, fold by fold (speaker-independent), into ``run``.

    ``config`` defaults to ``TrainConfig()``; ``resume`` continues an interrupted run exactly where its last
    checkpoints stopped. Returns each fold's result (best epoch and validation UAR); read the run itself
    with :class:`avemo.Run`.

    >>> results = avemo.train(cache_dir, run=tmp / "run", config=avemo.TrainConfig(n_folds=4, epochs=2))
    >>> [r.name for r in results]
    ['fold_1', 'fold_2', 'fold_3', 'fold_4']
    """
    from avemo.cache import CacheError
    from avemo.fusion.config import TrainConfig
    from avemo.fusion.runs import train_run

    cache = Path(cache)
    if not (cache / "manifest.json").is_file():
        raise CacheError(f"{cache}: not an avemo feature cache (no manifest.json); create one with avemo extract")
    return train_run(cache, Path(run), config or TrainConfig(), resume=resume, skip_damaged=skip_damaged,
                     on_start=on_start, on_fold=on_fold, on_epoch=on_epoch)


def evaluate(run: PathArg | Run) -> dict[str, Any]:
    """Score a trained run on the test speakers of every fold; writes ``report.json``, ``report.md``,
    ``confusion.png`` and ``embedding.png`` into the run and returns the report.

    >>> report = avemo.evaluate(run_dir)
    >>> sorted(report["heads"])
    ['centroid', 'classifier']
    """
    from avemo.fusion.run import Run

    return (run if isinstance(run, Run) else Run(run)).evaluate()


if TYPE_CHECKING:
    from avemo.fusion.config import FusionConfig


def model_summary(config: FusionConfig) -> tuple[int, float]:
    """The size of the fusion model ``config`` describes: its parameters and its FLOPs per clip.

    >>> parameters, flops = avemo.api.model_summary(avemo.FusionConfig(dim=64))
    >>> parameters > 0 and flops > 0
    True
    """
    from avemo.fusion.model import FusionModel, count_parameters, flops_per_clip

    model = FusionModel(config)
    return count_parameters(model), flops_per_clip(model)
